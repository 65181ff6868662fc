"""Build firmware and run it on the emulated board (QEMU mps2-an500) or the host build.

Used by the compiler (`python -m compiler run`), the tests and the benchmarks:

    elf = build_firmware("qemu-mps2-an500", [src], out_dir)
    r = run_qemu(elf, stdin_bytes=b"...")      # UART0 on stdin/stdout
    r.exit_code, r.output, r.instructions, r.timed["name"]

    with QemuSerial(elf) as q:                  # UART0 on a TCP socket
        port = serial.serial_for_url(q.url)     # any pyserial code works unchanged
    q.result                                    # QemuResult once it has exited

Out-of-band lines reach the harness through semihosting (board_report()), so they
never mix with the serial protocol: ``TT_INSNS n`` (instructions since reset, written
by board_exit) and ``TT_TIMED name n`` (a timed region). Under ``-icount shift=0`` one
instruction is one nanosecond of virtual time and the CMSDK timer ticks every 40.
"""
from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from compiler import paths

REPO = paths.REPO

EXIT_FAULT = 100
EXIT_STACK_OVERFLOW = 101
EXIT_MEANING = {EXIT_FAULT: "fault (see the *** FAULT line)",
                EXIT_STACK_OVERFLOW: "stack overflow caught by the MPU guard"}

QEMU_BASE = ["qemu-system-arm", "-M", "mps2-an500", "-cpu", "cortex-m7", "-display", "none",
             "-monitor", "none", "-icount", "shift=0"]


class BuildError(RuntimeError):
    """Firmware failed to compile or link; ``.log`` holds the compiler's output."""

    def __init__(self, msg: str, log: str):
        super().__init__(msg + "\n" + log)
        self.log = log


@dataclass
class QemuResult:
    exit_code: int | None          # None when killed by the timeout
    output: bytes                  # everything the firmware wrote to UART0
    reports: list[str] = field(default_factory=list)   # semihosting lines
    stderr: str = ""
    timed_out: bool = False

    @property
    def instructions(self) -> int | None:
        for line in self.reports:
            if line.startswith("TT_INSNS "):
                return int(line.split()[1])
        return None

    @property
    def timed(self) -> dict[str, int]:
        out = {}
        for line in self.reports:
            m = re.match(r"TT_TIMED (\S+) (\d+)", line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def describe(self) -> str:
        meaning = EXIT_MEANING.get(self.exit_code, "")
        return (f"exit={self.exit_code}{' (' + meaning + ')' if meaning else ''} "
                f"timed_out={self.timed_out}\nUART: {self.output[-2000:]!r}\n"
                f"reports: {self.reports[-20:]}\nstderr: {self.stderr[-2000:]}")


def build_firmware(board: str, sources: list, out_dir, defines: dict | None = None,
                   include_dirs: list | None = None, opt: str = "-O2",
                   runtime_srcs: list | None = None, extra_cflags: str = "") -> Path:
    """Compile ``sources`` (+ the runtime and the board support) into ``out_dir``.

    Returns the ELF (host: the executable). ``runtime_srcs=None`` links every
    C file under runtime_c/src (compiler.paths.runtime_sources); pass a list to choose. Raises BuildError with the log.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cflags = [extra_cflags] if extra_cflags else []
    for k, v in (defines or {}).items():
        cflags.append(f"-D{k}" if v is None else f"-D{k}={v}")
    args = ["make", "--no-print-directory", "-f", "boards/common.mk", "firmware",
            f"BOARD={board}", f"OUT={out_dir}",
            "APP_SRCS=" + " ".join(str(s) for s in sources),
            "EXTRA_CFLAGS=" + " ".join(cflags),
            "EXTRA_INCS=" + " ".join(str(i) for i in (include_dirs or [])),
            f"OPT={opt}"]
    if runtime_srcs is not None:
        args.append("RUNTIME_SRCS=" + " ".join(str(s) for s in runtime_srcs))
    p = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0:
        raise BuildError(f"firmware build failed for board {board}: {shlex.join(args)}",
                         p.stdout + p.stderr)
    return out_dir / "firmware.elf"


def _read_reports(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _semihost_args(path: Path, flash=None) -> list[str]:
    cfg = "enable=on,target=native,chardev=semi"
    if flash is not None:   # the board's checkpoint flash, kept in this file across boots
        cfg += f",arg=firmware,arg=nor={Path(flash).resolve()}"
    return ["-chardev", f"file,id=semi,path={path}", "-semihosting-config", cfg]


def run_qemu(elf, timeout: float = 120, stdin_bytes: bytes | None = None) -> QemuResult:
    """Boot ``elf`` on QEMU mps2-an500, send ``stdin_bytes`` to UART0, collect what the
    firmware writes to UART0 until it exits (or ``timeout`` seconds pass)."""
    with QemuSerial(elf, timeout=timeout) as q:
        sock = socket.create_connection(("127.0.0.1", q.port), timeout=10)
        deadline = time.monotonic() + timeout
        chunks = []
        try:
            if stdin_bytes:
                sock.sendall(stdin_bytes)
            sock.settimeout(0.2)
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    if q._p.poll() is not None:
                        break
                    continue
                if not data:
                    break
                chunks.append(data)
        finally:
            sock.close()
        r = q.wait(timeout=max(1.0, deadline - time.monotonic()))
    r.output = b"".join(chunks)
    return r


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuSerial:
    """QEMU with UART0 on a loopback TCP server; ``url`` is a pyserial URL for it.
    ``flash``: a file that holds the board's checkpoint flash across boots (created
    erased when missing); without it the flash starts erased at every boot."""

    def __init__(self, elf, timeout: float = 600, flash=None):
        self.elf = Path(elf)
        self.flash = flash
        self.timeout = timeout
        self.result: QemuResult | None = None
        self._td = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.url = f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> "QemuSerial":
        self._semi = Path(self._td.name) / "semihost.log"
        if " " in str(Path(self.flash).resolve() if self.flash else ""):
            raise ValueError(f"flash file path must not contain spaces: {self.flash}")
        cmd = QEMU_BASE + _semihost_args(self._semi, self.flash) + [
            "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on",
            "-kernel", str(self.elf)]
        self._p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # QEMU announces the listening socket on stderr before it boots the guest
        # (wait=on: the guest starts only when the first client connects).
        line = self._p.stderr.readline().decode(errors="replace")
        if "waiting for connection" not in line:
            self._p.kill()
            raise RuntimeError("QEMU did not open its serial socket: " + line
                               + self._p.stderr.read().decode(errors="replace"))
        return self

    def wait(self, timeout: float | None = None) -> QemuResult:
        try:
            out, err = self._p.communicate(timeout=timeout or self.timeout)
            self.result = QemuResult(self._p.returncode, b"", _read_reports(self._semi),
                                     err.decode(errors="replace"))
        except subprocess.TimeoutExpired:
            self._p.kill()
            out, err = self._p.communicate()
            self.result = QemuResult(None, b"", _read_reports(self._semi),
                                     err.decode(errors="replace"), timed_out=True)
        return self.result

    def power_off(self) -> None:
        """Cut the power: kill the emulator at once."""
        self._p.kill()
        self.wait(timeout=10)

    def __exit__(self, *exc):
        if self.result is None:
            self.wait(timeout=10)
        self._td.cleanup()


def run_host(exe, stdin_bytes: bytes = b"", timeout: float = 60) -> QemuResult:
    """Run a host-board executable with the serial line on stdin/stdout."""
    p = subprocess.run([str(exe)], input=stdin_bytes, capture_output=True, timeout=timeout)
    err = p.stderr.decode(errors="replace")
    return QemuResult(p.returncode, p.stdout, err.splitlines(), err)


class HostSerial:
    """Host build with its serial line on a pseudo-terminal (``url`` = its path).
    ``flash``: the file that holds its checkpoint flash across runs (TT_NOR_FILE);
    ``power_cut``: "k" or "k.5" cuts the power at the k-th flash operation (TT_NOR_CUT)."""

    def __init__(self, exe, timeout: float = 600, flash=None, power_cut: str | None = None):
        self.exe, self.timeout = Path(exe), timeout
        self.flash, self.power_cut = flash, power_cut
        self.result: QemuResult | None = None

    def __enter__(self) -> "HostSerial":
        env = dict(os.environ, TT_PTY="1")
        env.pop("TT_NOR_FILE", None)
        env.pop("TT_NOR_CUT", None)
        if self.flash is not None:
            env["TT_NOR_FILE"] = str(self.flash)
        if self.power_cut:
            env["TT_NOR_CUT"] = str(self.power_cut)
        self._p = subprocess.Popen([str(self.exe)], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        line = self._p.stderr.readline().decode()
        if not line.startswith("TT_PTY "):
            raise RuntimeError(f"host firmware did not open a pty: {line!r}")
        self.url = line.split()[1]
        return self

    def wait(self, timeout: float | None = None) -> QemuResult:
        try:
            self._p.wait(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            self._p.kill()
            self._p.wait()
            self.result = QemuResult(None, b"", [], "", timed_out=True)
            return self.result
        err = self._p.stderr.read().decode(errors="replace")
        self.result = QemuResult(self._p.returncode, b"", err.splitlines(), err)
        return self.result

    def power_off(self) -> None:
        """Cut the power: kill the process at once."""
        if self._p.poll() is None:
            self._p.kill()
        self.wait(timeout=10)

    def __exit__(self, *exc):
        if self.result is None:
            if self._p.poll() is None:
                self._p.kill()
            self.wait(timeout=10)
