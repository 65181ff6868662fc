"""The device's command dispatcher and settings under AddressSanitizer + UBSan: the fuzz
harness (tests/fuzz/fuzz_device.c: the real device loop and runtime_c/apps/device/main.c
on a small generated model) built with gcc and run by tests/fuzz/driver_main.c over the
seed corpus (tests/fuzz/corpus) and a fixed-seed set of mutations of it. Any memory
error, undefined behaviour or protocol-oracle violation aborts the driver. Then the inputs
that found bugs (tests/fuzz/regress): each must pass, except those of KNOWN_OPEN, which
must still fail on the oracle (remove a bug from KNOWN_OPEN when it is fixed). The
coverage-guided libFuzzer run of the same harness is `make fuzz`."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parent / "fuzz"
MUTATIONS = 5000
# keys host/PROTOCOL.md and main.c document; each must be accepted and refused at least once
SET_KEYS = ["lr", "lr_body", "history", "epochs", "train_every", "enabled", "bits", "rounding", "seed",
            "augment", "augment_shift", "range", "loss_range"]
# regression inputs of bugs not fixed yet (in runtime_c/apps/device/main.c), with what is wrong
KNOWN_OPEN: dict[str, str] = {}


def _fuzz_build():
    spec = importlib.util.spec_from_file_location("tt_fuzz_build", FUZZ_DIR / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sanitizers_work(tmp_path: Path) -> bool:
    if shutil.which("gcc") is None:
        return False
    src = tmp_path / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    p = subprocess.run(["gcc", "-fsanitize=address,undefined", str(src), "-o", str(tmp_path / "probe")],
                       capture_output=True, text=True)
    return p.returncode == 0


def test_fuzz_driver_asan_ubsan(tmp_path):
    if not _sanitizers_work(tmp_path):
        pytest.skip("gcc cannot build with -fsanitize=address,undefined here")
    fb = _fuzz_build()
    exe = fb.build(tmp_path / "fuzz", "gcc", quiet=True)
    seeds = sorted(p for p in fb.CORPUS.iterdir() if not p.name.startswith("."))
    assert len(seeds) >= 20, "seed corpus missing: python tests/fuzz/build.py corpus"
    t0 = time.time()
    crash = tmp_path / "crash.bin"
    p = fb.run_driver(exe, MUTATIONS, seed=1, crash_file=crash, timeout=300)
    took = time.time() - t0
    log = p.stdout + p.stderr
    assert p.returncode == 0, (f"fuzz driver failed (exit {p.returncode}); failing input saved as {crash} "
                               f"(reproduce: {exe} {crash}):\n{log[-6000:]}")
    m = re.search(r"executed (\d+) inputs \((\d+) seeds, (\d+) mutations\)", p.stdout)
    assert m, log[-3000:]
    assert (int(m.group(1)), int(m.group(2)), int(m.group(3))) == (len(seeds) + MUTATIONS, len(seeds), MUTATIONS)

    # the inputs got through the CRC to every handler: each request type was answered
    # with its own reply type at least once, and every documented key was both set and refused
    types = {int(t, 16) for t, _ in re.findall(r" ([0-9a-f]{2})=(\d+)", re.search(r"replies by type:(.*)", p.stderr).group(1))}
    missing = sorted({0x81 + i for i in range(14)} - types)
    assert not missing, f"no successful reply of type(s) {[hex(t) for t in missing]}:\n{p.stderr[-3000:]}"
    keys = {k: (int(ok), int(err)) for k, ok, err in re.findall(r"key (\w+): set ok (\d+), set error (\d+)", p.stderr)}
    for k in SET_KEYS:
        assert k in keys, f"key {k!r} not found in runtime_c/apps/device/main.c"
        assert keys[k][0] > 0 and keys[k][1] > 0, f"key {k}: set ok/error {keys[k]}"
    print(f"{m.group(1)} inputs under ASan/UBSan in {took:.1f} s")

    for f in sorted(fb.REGRESS.glob("*.bin")):
        r = fb.run_driver(exe, 0, corpus=f, crash_file=tmp_path / f"{f.stem}.crash", timeout=60)
        if f.name in KNOWN_OPEN:
            assert r.returncode != 0 and "oracle violated" in r.stderr and "Sanitizer" not in r.stderr, (
                f"{f.name} passes now: if the bug ({KNOWN_OPEN[f.name]}) is fixed, remove it from KNOWN_OPEN"
                f"\n{r.stderr[-3000:]}")
        else:
            assert r.returncode == 0, f"regression input {f} fails again:\n{r.stderr[-4000:]}"
