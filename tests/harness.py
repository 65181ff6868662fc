"""Test-side name for the firmware runner (compiler/target/runner.py): build_firmware, run_qemu,
QemuSerial, run_host, HostSerial; and :func:`load_bench` (a bench/ script as a module)."""
import importlib.util

from compiler.target.runner import *  # noqa: F401,F403
from compiler.target.runner import EXIT_FAULT, EXIT_STACK_OVERFLOW, REPO, BuildError  # noqa: F401


def load_bench(name: str):
    """bench/<name>.py imported as the module ``bench_<name>`` (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
