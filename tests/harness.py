"""Test-side name for the firmware runner (host/runner.py): build_firmware, run_qemu,
QemuSerial, run_host, HostSerial."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host.runner import *  # noqa: E402,F401,F403
from host.runner import EXIT_FAULT, EXIT_STACK_OVERFLOW, REPO, BuildError  # noqa: E402,F401
