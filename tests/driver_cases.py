"""What the two kernel test drivers share, on the Python side.

tests/c/kernel_driver.c (forward kernels, cases from tests/kernel_cases.py) and
tests/c/train_kernel_driver.c (training kernels, tests/train_kernel_cases.py) are built on
tests/c/driver_common.h: the same case stream framing, the same host front end (stream on
stdin, results on stdout) and the same embedded front end (cases and golden outputs
compiled into the firmware, one ``K`` line per case on the UART). This module is their
Python half: stream primitives, the host builds and runs, the generated firmware header,
the parsing of the firmware's report, and building / running that firmware on QEMU.
The op-specific encoding of a case stays in the two case modules.
"""
from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from compiler import paths

REPO = paths.REPO
INCLUDE = REPO / "runtime_c" / "include"
KERNELS = REPO / "runtime_c" / "src" / "kernels"
BOARD = "qemu-mps2-an500"

STATUS = {0: "ok", 1: "malformed case", 2: "scratch guard overwritten",
          3: "output guard overwritten", 4: "out of memory", 5: "unknown op"}

# compiler flags of every host build of a driver, and the variants it is built in
COMMON_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
HOST_VARIANTS = {
    # name: extra compiler flags
    "portable": ["-O2"],
    "dsp-emulated": ["-O2", "-DTT_EMULATE_DSP"],
    "sanitize-dsp-emulated": ["-O1", "-DTT_EMULATE_DSP", "-fsanitize=address,undefined",
                              "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"],
    "sanitize-portable": ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                          "-fno-omit-frame-pointer"],
}


def kernel_sources(*functions: str) -> list[Path]:
    """The runtime files defining these public functions (one per file, named after it:
    runtime_c/src/kernels/<function>.c)."""
    srcs = [KERNELS / f"{f}.c" for f in functions]
    missing = [p.name for p in srcs if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no kernel source {', '.join(missing)} in {KERNELS}")
    return srcs


# ---- stream ------------------------------------------------------------------------

def i32(*vals) -> bytes:
    return struct.pack(f"<{len(vals)}i", *[int(v) for v in vals])


def arr_bytes(b: bytes) -> bytes:
    """One array of the stream: i32 n_bytes, the bytes, zero padding to 4."""
    return i32(len(b)) + b + b"\0" * (-len(b) % 4)


def encode_expected(items) -> bytes:
    """Golden outputs for the embedded front end, from (exact bytes, loose values) per
    case; loose values are (float32 value, relative tolerance) pairs compared after the
    exact bytes."""
    out = []
    for exact, loose in items:
        out.append(arr_bytes(exact))
        out.append(i32(len(loose)))
        out.extend(struct.pack("<ff", v, tol) for v, tol in loose)
    return b"".join(out)


@dataclass
class Result:
    status: int
    cycles: int
    out: bytes | None


def decode_results(data: bytes, n: int) -> list[Result]:
    """The host front end's output: per case i32 status, u32 cycles, i32 n, n bytes
    (padded to 4); stops early if the driver stopped."""
    res, pos = [], 0
    for _ in range(n):
        if pos + 12 > len(data):
            break
        status, cycles, nb = struct.unpack_from("<iIi", data, pos)
        pos += 12
        out = data[pos:pos + nb] if status == 0 else None
        pos += nb + (-nb % 4)
        res.append(Result(status, cycles, out))
    return res


# ---- host driver -------------------------------------------------------------------

def build_host_driver(out_dir: Path, variant: str, driver_c: Path, srcs: list[Path],
                      flags: list[str] | None = None) -> Path:
    """Compile the kernels and the stdin/stdout front end of ``driver_c`` with the host
    gcc in one of HOST_VARIANTS; the executable is <out_dir>/<driver>_<variant>."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / f"{driver_c.stem}_{variant}"
    cmd = ["gcc", *(flags or COMMON_FLAGS), *HOST_VARIANTS[variant], "-DTT_DRIVER_HOST",
           "-D_POSIX_C_SOURCE=200809L", f"-I{INCLUDE}", *map(str, srcs), str(driver_c),
           "-lm", "-o", str(exe)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"host driver build failed ({variant}):\n{p.stdout}{p.stderr}")
    return exe


def run_host_driver(exe: Path, stream: bytes, n: int, timeout: float = 120) -> list[Result]:
    p = subprocess.run([str(exe)], input=stream, capture_output=True, timeout=timeout)
    if p.returncode:
        raise RuntimeError(f"{exe.name} exited with {p.returncode}: {p.stderr.decode()[-3000:]}")
    return decode_results(p.stdout, n)


# ---- firmware (embedded front end) ---------------------------------------------------

def c_bytes(name: str, data: bytes) -> str:
    lines = [",".join(str(b) for b in data[i:i + 32]) + "," for i in range(0, len(data), 32)]
    return (f"static const uint8_t {name}[{max(len(data), 1)}] __attribute__((aligned(4))) = {{\n"
            + "\n".join(lines) + "\n};\n")


def write_cases_header(path: Path, stream: bytes, expected: bytes, generator: str) -> Path:
    """C header with the case stream and the expected outputs (TT_DRIVER_EMBEDDED)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"/* generated by {generator}; do not edit */\n#include <stdint.h>\n"
                    + c_bytes("tt_case_stream", stream)
                    + f"static const uint32_t tt_case_stream_len = {len(stream)}u;\n"
                    + c_bytes("tt_expected", expected))
    return path


def parse_firmware_output(text: str) -> list[tuple[int, ...]]:
    """K lines of the embedded front end: (case, status, first_bad, got, expected, cycles);
    first_bad is -1 when the case matches, -2 when only a loose value is off."""
    rows = []
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 7 and parts[0] == "K":
            rows.append(tuple(int(v) for v in parts[1:]))
    return rows


def build_firmware(driver_c: Path, srcs: list[Path], header: Path, out_dir: Path,
                   portable: bool, extra_cflags: str = "-Werror", board: str = BOARD) -> Path:
    """The embedded driver with the cases of ``header`` (write_cases_header) for the
    emulated board: Arm DSP kernels, or the portable ones (-DTT_PORTABLE)."""
    from tests import harness  # the firmware runner (only the QEMU users need it)

    defines = {"TT_DRIVER_EMBEDDED": None}
    if portable:
        defines["TT_PORTABLE"] = None
    return harness.build_firmware(board, [driver_c], out_dir / "fw", defines=defines,
                                  include_dirs=[header.parent], runtime_srcs=srcs,
                                  extra_cflags=extra_cflags)


def run_firmware(elf: Path, timeout: float):
    """Boot the firmware on QEMU: (the run, its UART text, its K rows)."""
    from tests import harness

    r = harness.run_qemu(elf, timeout=timeout)
    text = r.output.decode(errors="replace")
    return r, text, parse_firmware_output(text)
