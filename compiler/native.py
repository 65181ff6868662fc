"""Host-only C helpers of the compiler, compiled on first use and loaded with ctypes.

A helper is one C source beside the Python module that uses it (the arena placer's
``compiler/memory/first_fit.c``, the trainer's ``compiler/autodiff/native_steps.c``).
:class:`Library` compiles it with the host's C compiler (``cc``, the one the host board
uses) once per source content into ``build/.native/<name>/[cpu-<hash>/]<hash>/`` (an
atomic rename, so parallel processes never load half a library; the CPU level for
``-march=native`` builds) and loads it. Every helper has a Python
twin that gives the same results: without a working compiler, or with the helper's
environment switch set to 0, the twin runs and a one-line note says so.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from compiler import paths


class Library:
    """``source`` compiled into ``lib<name>.so``; :meth:`load` gives the ``ctypes.CDLL``
    or None (no compiler, or ``env`` set to 0). ``what`` and ``fallback`` name the
    helper and what runs instead, for the note."""

    def __init__(self, source: Path, name: str, env: str, what: str, fallback: str,
                 flags: tuple = ("-O2",), this_cpu: bool = False):
        self.source, self.name, self.env = Path(source), name, env
        self.what, self.fallback, self.flags = what, fallback, tuple(flags)
        self.this_cpu = this_cpu   # also try -march=native (the build is then per CPU)
        self._lib: list = []   # [CDLL or None] once tried

    def build(self) -> Path:
        tag = hashlib.sha256(self.source.read_bytes() + " ".join(self.flags).encode()).hexdigest()[:16]
        # one folder per CPU for -march=native builds: a checkout shared by machines with
        # different CPUs keeps one library for each (older sources are removed per CPU)
        home = paths.BUILD / ".native" / self.name
        if self.this_cpu:
            home = home / ("cpu-" + hashlib.sha256(cpu_fingerprint()).hexdigest()[:12])
        lib = home / tag / f"lib{self.name}.so"
        if lib.exists():
            return lib
        lib.parent.mkdir(parents=True, exist_ok=True)
        tries = [[*self.flags, "-march=native"]] if self.this_cpu else []
        tries.append(list(self.flags))
        with tempfile.TemporaryDirectory(dir=lib.parent) as td:
            tmp = Path(td) / lib.name
            for flags in tries:   # a compiler without -march=native: the plain flags
                p = subprocess.run(["cc", "-std=c99", *flags, "-shared", "-fPIC", str(self.source),
                                    "-o", str(tmp)], capture_output=True, text=True)
                if p.returncode == 0:
                    break
            else:
                raise RuntimeError(p.stderr.strip()[-500:] or "cc failed")
            os.replace(tmp, lib)
        for old in home.iterdir():   # libraries of older sources
            if old.name != tag and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return lib

    def load(self):
        if self._lib:
            return self._lib[0]
        lib = None
        if os.environ.get(self.env, "1") != "0":
            try:
                lib = ctypes.CDLL(str(self.build()))
            except (OSError, RuntimeError) as e:
                print(f"note: {self.what} is unavailable ({e}); {self.fallback}", file=sys.stderr)
        self._lib.append(lib)
        return lib

    def reset(self) -> None:
        """Forget the loaded library (tests: load again, e.g. after changing ``env``)."""
        self._lib.clear()


def cpu_fingerprint() -> bytes:
    """What identifies this machine's instruction set: the architecture and, on Linux, the
    CPU's feature flags (a library built with -march=native runs only where they match)."""
    text = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features", "model name")):
                text += "\n" + line
    except OSError:
        text += "\n" + platform.processor()
    return text.encode()
