"""Test-side name for the firmware runner (compiler/target/runner.py): build_firmware, run_qemu,
QemuSerial, run_host, HostSerial."""
from compiler.target.runner import *  # noqa: F401,F403
from compiler.target.runner import EXIT_FAULT, EXIT_STACK_OVERFLOW, REPO, BuildError  # noqa: F401
