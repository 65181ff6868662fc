"""The QEMU harness end to end: build, boot, serial I/O over TCP, exit codes, faults,
the MPU stack guard, instruction counts under -icount."""
import harness
import pytest
import serial

pytestmark = pytest.mark.qemu
BOARD = "qemu-mps2-an500"
PROBE = harness.REPO / "tests" / "c" / "harness_probe.c"


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    return {m: harness.build_firmware(BOARD, [PROBE], d / str(m), defines={"PROBE_MODE": m},
                                      runtime_srcs=[])
            for m in (0, 1, 2, 3)}


def test_echo_frames_and_instruction_count(probes):
    frames = [b"hello", bytes(range(1, 200)), b"x"]
    r = harness.run_qemu(probes[0], timeout=60, stdin_bytes=b"".join(f + b"\0" for f in frames) + b"\0")
    assert r.exit_code == 0, r.describe()
    assert r.output == b"".join(f[::-1] + b"\0" for f in frames)
    # 10000 iterations of a multiply-add loop: at least 3 instructions each, and the
    # timer's 40-instruction granularity
    n = r.timed["loop10000"]
    assert 30000 <= n <= 80000 and n % 40 == 0, r.describe()
    assert r.instructions is not None and r.instructions > n


def test_serial_over_socket_with_pyserial(probes):
    with harness.QemuSerial(probes[0], timeout=60) as q:
        port = serial.serial_for_url(q.url, timeout=10)
        for payload in (b"abc", b"\x01\x02\x03\xff" * 50):
            port.write(payload + b"\0")
            assert port.read_until(b"\0") == payload[::-1] + b"\0"
        port.write(b"\0")
        r = q.wait(30)
        port.close()
    assert r.exit_code == 0, r.describe()
    assert "loop10000" in r.timed


def test_exit_code_is_returned(probes):
    r = harness.run_qemu(probes[3], timeout=30)
    assert r.exit_code == 42, r.describe()
    assert b"exiting with 42" in r.output


def test_fault_exits_nonzero_and_is_reported(probes):
    r = harness.run_qemu(probes[1], timeout=30)
    assert r.exit_code == harness.EXIT_FAULT, r.describe()
    assert b"*** FAULT" in r.output
    assert "fault" in r.describe()


def test_stack_overflow_caught_by_mpu_guard(probes):
    r = harness.run_qemu(probes[2], timeout=30)
    assert r.exit_code == harness.EXIT_STACK_OVERFLOW, r.describe()
    assert b"STACK OVERFLOW" in r.output
