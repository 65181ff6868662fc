"""Build system: every board links, the budget is enforced at link time with a
readable message, a wrong BOARD lists the boards, the memory report prints."""
import json
import subprocess

import harness
import pytest

REPO = harness.REPO
SELFTEST = REPO / "runtime_c" / "apps" / "selftest" / "main.c"


def make(*args):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO,
                          capture_output=True, text=True)


# stm32f746: the 768 KB code region (sectors 5-7); sectors 0-4 hold the vector table
# and the checkpoint slots (boards/stm32f746/link.ld)
@pytest.mark.parametrize("board, flash_kb", [("qemu-mps2-an500", 1024), ("stm32f746", 768),
                                             ("host", 1024)])
def test_every_board_links_and_reports_memory(board, flash_kb, tmp_path):
    p = make("-f", "boards/common.mk", "firmware", f"BOARD={board}", f"OUT={tmp_path}",
             f"APP_SRCS={SELFTEST}", "RUNTIME_SRCS=")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "RAM   [" in p.stdout and "Flash [" in p.stdout
    assert "of 256 KB" in p.stdout and f"of {flash_kb} KB" in p.stdout
    mem = json.loads((tmp_path / "memory.json").read_text())
    assert mem["board"] == board and 0 < mem["ram"] <= 256 * 1024


def test_stm32_image_is_placed_in_flash(tmp_path):
    elf = harness.build_firmware("stm32f746", [SELFTEST], tmp_path, runtime_srcs=[])
    out = subprocess.run(["arm-none-eabi-readelf", "-h", str(elf)], capture_output=True,
                         text=True).stdout
    entry = int(out.split("Entry point address:")[1].split()[0], 16)
    assert 0x08000000 <= entry < 0x08100000
    assert (tmp_path / "firmware.bin").stat().st_size < 1024 * 1024


@pytest.mark.parametrize("board", ["qemu-mps2-an500", "stm32f746"])
def test_oversized_array_fails_at_link_time_readably(board, tmp_path):
    src = tmp_path / "big.c"
    src.write_text("#include <stdint.h>\nvolatile int8_t big[300 * 1024];\n"
                   "int main(void) { big[7] = 1; return big[7]; }\n")
    with pytest.raises(harness.BuildError) as e:
        harness.build_firmware(board, [src], tmp_path / "out", runtime_srcs=[])
    msg = str(e.value)
    assert f"firmware does not fit board '{board}'" in msg
    assert "RAM over budget by" in msg and "budget 256 KB" in msg


def test_oversized_flash_fails_at_link_time(tmp_path):
    src = tmp_path / "bigflash.c"
    src.write_text("#include <stdint.h>\nconst volatile int8_t table[1100 * 1024] = {1};\n"
                   "int main(void) { return table[0]; }\n")
    with pytest.raises(harness.BuildError) as e:
        harness.build_firmware("qemu-mps2-an500", [src], tmp_path / "out", runtime_srcs=[])
    assert "FLASH over budget by" in str(e.value)


def test_wrong_board_lists_boards():
    p = make("build", "BOARD=stm32f4-nonexistent")
    assert p.returncode != 0
    assert "Unknown BOARD 'stm32f4-nonexistent'" in p.stderr
    for b in ("host", "qemu-mps2-an500", "stm32f746"):
        assert b in p.stderr


def test_flash_command_is_shown():
    p = make("-n", "flash", "BOARD=stm32f746")
    assert p.returncode == 0, p.stderr
    assert "openocd" in p.stdout and "program build/stm32f746/selftest/firmware.elf" in p.stdout
    p = make("-n", "flash", "BOARD=stm32f746", "FLASHER=st-flash")
    # an Intel hex of the ELF: a raw binary would span (and overwrite) the checkpoint slots
    assert "-O ihex build/stm32f746/selftest/firmware.elf build/stm32f746/selftest/firmware.hex" in p.stdout
    assert "st-flash --reset --format ihex write build/stm32f746/selftest/firmware.hex" in p.stdout


def test_flash_learning_firmware_commands_are_shown():
    """make flash MODEL=... PLAN=...: compile the learning firmware into FW_OUT, then flash
    that very ELF (flash-elf does not relink it); nothing runs under -n."""
    args = ["-n", "flash", "BOARD=stm32f746", "MODEL=mcunet-5fps", "PLAN=some.json"]
    p = make(*args)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    build = ("-m compiler build mcunet-5fps --plan some.json --board stm32f746 "
             "--out build/stm32f746/mcunet-5fps")
    flash = 'openocd -f board/stm32f7discovery.cfg -c "program build/stm32f746/mcunet-5fps/firmware.elf'
    assert build in out and flash in out, out
    assert out.index(build) < out.index(flash)
    assert "selftest" not in out and "flash-firmware" not in out
    p = make(*args, "FLASHER=st-flash")
    assert "st-flash --reset --format ihex write build/stm32f746/mcunet-5fps/firmware.hex" in p.stdout
    # make build: the same compile command; the CLI's default folder is the same one
    p = make("-n", "build", "BOARD=stm32f746", "MODEL=mbv2-w0.35", "PLAN=p.json")
    assert "-m compiler build mbv2-w0.35 --plan p.json --board stm32f746 --out build/stm32f746/mbv2-w0.35" in p.stdout
    p = make("-n", "flash", "BOARD=stm32f746", "MODEL=mcunet-5fps")
    assert "-m compiler build mcunet-5fps --board stm32f746 --out build/stm32f746/mcunet-5fps" in p.stdout
    assert "program build/stm32f746/mcunet-5fps/firmware.elf" in p.stdout


def test_plan_without_model_is_refused():
    p = make("-n", "build", "BOARD=stm32f746", "PLAN=plan.json")
    assert p.returncode != 0 and "needs MODEL=" in p.stderr


def test_flash_elf_refuses_a_missing_firmware(tmp_path):
    p = make("-f", "boards/common.mk", "flash-elf", "BOARD=stm32f746", f"OUT={tmp_path}")
    assert p.returncode != 0 and "firmware.elf not found" in p.stderr


def test_host_build_runs(tmp_path):
    exe = harness.build_firmware("host", [SELFTEST], tmp_path, runtime_srcs=[])
    r = harness.run_host(exe)
    assert r.exit_code == 0
    assert b"selftest on host" in r.output


def test_default_runtime_is_every_source_below_src(tmp_path):
    """Without RUNTIME_SRCS a firmware links every .c under runtime_c/src (kernels/,
    proto/, io/), each compiled once into the object cache, with the kernels' private
    headers on the include path."""
    cache = tmp_path / "obj"
    p = make("-n", "-f", "boards/common.mk", "firmware", "BOARD=host", f"OUT={tmp_path}",
             f"OBJ_CACHE={cache}")
    assert p.returncode == 0, p.stdout + p.stderr
    words = p.stdout.split()
    srcs = [str(s.relative_to(REPO)) for s in sorted((REPO / "runtime_c" / "src").rglob("*.c"))]
    assert len(srcs) > 30
    assert [w for w in words if w.startswith("runtime_c/src/")] == srcs     # compiled
    link, = [ln for ln in p.stdout.splitlines() if f"-o {tmp_path}/firmware.elf" in ln]
    objs = [w for w in link.split() if w.endswith(".o")]
    assert all(o.startswith(f"{cache}/host-") for o in objs)
    assert [o.split("/", len(cache.parts) + 1)[-1] for o in objs] == [s[:-2] + ".o" for s in srcs]
    assert "-Iruntime_c/src/kernels" in words


def test_one_public_kernel_per_file():
    """Every function of tt_kernels.h, tt_train_kernels.h, tt_block.h and tt_packed.h is defined in
    runtime_c/src/kernels/<its name>.c, its <name>_scratch_bytes() companion in the same
    file (tt_dwconv_wrapper_select_s8 lives with the wrapper it describes)."""
    import re

    def strip(text):
        return re.sub(r"/\*.*?\*/", "", text, flags=re.S)

    inc, kernels = REPO / "runtime_c" / "include", REPO / "runtime_c" / "src" / "kernels"
    public = []
    for h in ("tt_kernels.h", "tt_train_kernels.h", "tt_block.h", "tt_packed.h"):
        for line in strip((inc / h).read_text()).splitlines():
            m = re.match(r"(?!static|typedef|#)[A-Za-z_][\w \*]*?[\s\*](tt_\w+)\s*\(", line)
            if m:
                public.append(m.group(1))
    assert len(public) > 50
    home = {"tt_dwconv_wrapper_select_s8": "tt_dwconv_wrapper_s8"}
    srcs = {p: strip(p.read_text()) for p in (REPO / "runtime_c" / "src").rglob("*.c")}
    bad = []
    for f in public:
        base = home.get(f, f.removesuffix("_scratch_bytes"))
        defined = [p for p, t in srcs.items()
                   if re.search(rf"^(?!\s)[^;\n]*\b{f}\(([^;{{]*)\)\s*\{{", t, re.M)]
        if defined != [kernels / f"{base}.c"]:
            bad.append(f"{f}: defined in {[str(p.relative_to(REPO)) for p in defined]}")
    assert not bad, "\n".join(bad)
    stray = sorted(p.stem for p in kernels.glob("*.c"))
    assert set(stray) <= set(public), set(stray) - set(public)
