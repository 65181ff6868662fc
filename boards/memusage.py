#!/usr/bin/env python3
"""Print a firmware's RAM / flash use against its board budget (PlatformIO-style bars).

Reads section sizes from the ELF (``<cross>size -A``); after a failed link, turns the
linker's "region `RAM' overflowed by N bytes" into a readable message. Standard
library only, so it runs before any virtualenv exists.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

FLASH_SECTIONS = (".isr_vector", ".text", ".ARM.exidx", ".data")
RAM_SECTIONS = (".stack", ".data", ".bss")
# constants beside the vector table (board.mk BOARD_FLASH_LO_KB; a region of its own on
# the stm32f746), reported on a line of their own
LO_SECTION = ".rodata_lo"


def bar(used: float, total: float, width: int = 10) -> str:
    frac = used / total if total else 0.0
    n = min(width, int(round(frac * width)))
    return "[" + "=" * n + " " * (width - n) + "]"


def line(label: str, used: int, total_kb: int, detail: str = "") -> str:
    total = total_kb * 1024
    pct = 100.0 * used / total if total else 0.0
    s = f"{label:<5} {bar(used, total)} {pct:5.1f}%  {used / 1024:7.1f} KB of {total_kb} KB"
    return s + (f"   ({detail})" if detail else "")


def sections(elf: str, kind: str) -> dict[str, int]:
    tool = "arm-none-eabi-size" if kind == "cortexm" else "size"
    out = subprocess.run([tool, "-A", elf], check=True, capture_output=True, text=True).stdout
    sizes: dict[str, int] = {}
    for row in out.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)", row)
        if m:
            sizes[m.group(1)] = int(m.group(2))
    return sizes


def usage(elf: str, kind: str, stack: int) -> dict:
    s = sections(elf, kind)
    if kind == "cortexm":
        flash = sum(s.get(k, 0) for k in FLASH_SECTIONS)
        ram = sum(s.get(k, 0) for k in RAM_SECTIONS)
        return {"flash": flash, "ram": ram, "stack": s.get(".stack", stack),
                "data": s.get(".data", 0), "bss": s.get(".bss", 0),
                "flash_lo": s.get(LO_SECTION, 0)}
    flash = sum(v for k, v in s.items() if k.startswith((".text", ".rodata")))
    ram = s.get(".data", 0) + s.get(".bss", 0) + stack
    return {"flash": flash, "ram": ram, "stack": stack, "data": s.get(".data", 0),
            "bss": s.get(".bss", 0)}


def link_error(log: str, board: str, ram_kb: int, flash_kb: int, lo_kb: int = 0) -> str:
    text = open(log, encoding="utf-8", errors="replace").read()
    msgs = []
    for region, over in re.findall(r"region [`']?(\w+)'? overflowed by (\d+) bytes", text):
        budget = ram_kb if region.upper() == "RAM" else flash_kb
        if region.upper() == "SECTOR0":
            budget = lo_kb
        msgs.append(f"ERROR: firmware does not fit board '{board}': {region} over budget by "
                    f"{int(over) / 1024:.1f} KB ({int(over)} bytes; budget {budget} KB). "
                    f"Shrink the model or the plan, or pick a larger --budget/board.")
    if not msgs:
        msgs.append(f"ERROR: link failed for board '{board}' (see {log})")
    return "\n".join(msgs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--board", required=True)
    ap.add_argument("--ram-kb", type=int, required=True)
    ap.add_argument("--flash-kb", type=int, required=True)
    ap.add_argument("--flash-lo-kb", type=int, default=0,
                    help="room for constants beside the vector table (BOARD_FLASH_LO_KB)")
    ap.add_argument("--stack", type=int, default=0)
    ap.add_argument("--elf")
    ap.add_argument("--kind", default="cortexm")
    ap.add_argument("--link-log")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    a = ap.parse_args(argv)
    if a.link_log:
        print(link_error(a.link_log, a.board, a.ram_kb, a.flash_kb, a.flash_lo_kb))
        return 1
    u = usage(a.elf, a.kind, a.stack)
    note = "" if a.kind == "cortexm" else "host build: sizes of the native binary"
    print(line("RAM", u["ram"], a.ram_kb,
               f"stack {u['stack'] / 1024:.1f}, data {u['data'] / 1024:.1f}, "
               f"bss {u['bss'] / 1024:.1f}"))
    print(line("Flash", u["flash"], a.flash_kb, note))
    if a.flash_lo_kb:
        print(line("Flash", u.get("flash_lo", 0), a.flash_lo_kb, "beside the vector table"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"board": a.board, "ram_kb": a.ram_kb, "flash_kb": a.flash_kb,
                       "flash_lo_kb": a.flash_lo_kb, **u}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
