"""STM32F746 flash layout and driver (boards/stm32f746/flash.c, link.ld): an app that calls
the four tt_flash.h functions links for the real board, with the vector table in sector 0,
the code from sector 5 (0x08040000) on, and nothing in the checkpoint slots (sectors 1-4,
0x08008000..0x0803FFFF). Link-level only: nothing runs (QEMU has no STM32F7 machine)."""
import json
import re
import shutil
import subprocess

import harness
import pytest

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("arm-none-eabi-gcc", "arm-none-eabi-nm",
                                           "arm-none-eabi-objdump")),
    reason="arm-none-eabi toolchain not found")

REPO = harness.REPO
SLOTS = (0x08008000, 0x08040000)  # slot 0 = sectors 1-3, slot 1 = sector 4
CODE = (0x08040000, 0x08100000)   # sectors 5-7
DRIVER = ("board_flash_slot_bytes", "board_flash_erase", "board_flash_program",
          "board_flash_read")

APP = r"""
#include <stdint.h>
#include "tt_flash.h"
static uint8_t buf[64];
int main(void)
{
    uint32_t cap = board_flash_slot_bytes(0) + board_flash_slot_bytes(1);
    int rc = board_flash_erase(0);
    rc |= board_flash_program(0, 4, buf + 1, 8);   /* unaligned source */
    rc |= board_flash_read(0, 0, buf, sizeof buf);
    return rc | (int)(cap & 1u) | buf[5];
}
"""


def _tool(name, elf):
    return subprocess.run([f"arm-none-eabi-{name}", *(["-h"] if name == "objdump" else ["-n"]),
                           str(elf)], capture_output=True, text=True, check=True).stdout


def _sections(elf):
    """(name, vma, lma, size, flags) of every section of the ELF (objdump -h)."""
    lines = _tool("objdump", elf).splitlines()
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s", line)
        if m:
            flags = lines[i + 1].strip() if i + 1 < len(lines) else ""
            out.append((m.group(1), int(m.group(3), 16), int(m.group(4), 16),
                        int(m.group(2), 16), flags))
    return out


def _overlaps(lo, size, rng):
    return size > 0 and lo < rng[1] and rng[0] < lo + size


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    d = tmp_path_factory.mktemp("stm32_flash")
    (d / "app.c").write_text(APP)
    p = subprocess.run(["make", "--no-print-directory", "-f", "boards/common.mk", "firmware",
                        "BOARD=stm32f746", f"OUT={d / 'out'}", f"APP_SRCS={d / 'app.c'}",
                        "RUNTIME_SRCS="], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return d / "out", p


def test_driver_builds_without_warnings_and_report_counts_code_only(firmware):
    out, p = firmware
    assert "flash.c" not in p.stderr, p.stderr  # no warning from the driver
    assert "SECTOR0:" not in p.stderr           # the linker's region table stays hidden
    assert "of 768 KB" in p.stdout
    mem = json.loads((out / "memory.json").read_text())
    assert mem["flash_kb"] == 768 and 0 < mem["flash"] < 32 * 1024  # slots not counted


def test_vector_table_in_sector0_code_from_sector5(firmware):
    out, _ = firmware
    secs = {s[0]: s for s in _sections(out / "firmware.elf")}
    assert secs[".isr_vector"][1] == 0x08000000
    assert secs[".text"][1] == CODE[0]
    syms = {m.group(2): int(m.group(1), 16) for m in re.finditer(
        r"^([0-9a-f]+) \w (\S+)$", _tool("nm", out / "firmware.elf"), re.M)}
    assert syms["tt_vectors"] == 0x08000000
    for f in DRIVER:
        assert f in syms, f
        assert CODE[0] <= syms[f] < CODE[1], (f, hex(syms[f]))
    assert (syms["_ckpt_slot0_start"], syms["_ckpt_slot0_end"]) == (0x08008000, 0x08020000)
    assert (syms["_ckpt_slot1_start"], syms["_ckpt_slot1_end"]) == (0x08020000, 0x08040000)
    inside = [n for n, a in syms.items()
              if SLOTS[0] <= a < SLOTS[1] and not n.startswith("_ckpt_slot")]
    assert not inside, inside


def test_no_section_in_the_checkpoint_slots(firmware):
    out, _ = firmware
    for name, vma, lma, size, flags in _sections(out / "firmware.elf"):
        if "ALLOC" in flags:
            assert not _overlaps(vma, size, SLOTS), (name, hex(vma), size)
        if "LOAD" in flags:
            assert not _overlaps(lma, size, SLOTS), (name, hex(lma), size)
