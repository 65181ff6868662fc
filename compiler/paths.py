"""Where the project's non-Python parts live: templates, the C runtime, boards, models.

The one module that knows the repository layout; every stage asks it instead of
walking up from its own ``__file__``. It imports nothing from the compiler.
"""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates"
RUNTIME = REPO / "runtime_c"
RUNTIME_INCLUDE = RUNTIME / "include"
RUNTIME_SRC = RUNTIME / "src"
APPS = RUNTIME / "apps"
BOARDS = REPO / "boards"
MODELS = REPO / "models"
BUILD = REPO / "build"
TESTS_C = REPO / "tests" / "c"


def runtime_sources() -> list[Path]:
    """Every C source of the runtime (kernels, protocol, resize), sorted."""
    return sorted(RUNTIME_SRC.rglob("*.c"))


def runtime_private_headers() -> list[Path]:
    """Headers under ``runtime_c/src`` (shared by kernels, not part of the public API)."""
    return sorted(RUNTIME_SRC.rglob("*.h"))


def kernel_source(kernel: str) -> Path:
    """The C file that defines the public function ``kernel`` (one public kernel per
    file, named after it); KeyError names the kernel when there is none."""
    for p in runtime_sources():
        if p.stem == kernel:
            return p
    raise KeyError(f"no runtime source file named {kernel}.c")


def app_main(app: str) -> Path:
    """``runtime_c/apps/<app>/main.c`` (apps: infer, train_test, device, selftest, ...)."""
    return APPS / app / "main.c"
