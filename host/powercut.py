"""Power-cut simulation: cut the power at every flash operation of a SAVE, boot again,
and check that the board comes back with either the previous or the new checkpoint,
exactly, never a mix.

    python -m host.powercut                          # the demo's sparse plan (default)
    python -m host.powercut --model M --plan P.json  # any model and plan

The firmware is the device app (runtime_c/apps/device) built for the host board, whose
checkpoint flash is the NOR model of boards/common/nor_model.c kept in a file: erase sets
a sector to 0xFF, programming only clears bits, and an operation interrupted half way
leaves a mix of old and new. The scenario, from a flash image that already holds two
checkpoints (the newer one is "old"):

1. boot (restores "old"), train on K samples ("new" weights), SAVE: count its erase and
   program operations (N);
2. for every operation k = 1..N, and for "before k" and "half way through k": copy the
   image, boot, train on the same K samples, SAVE with the power cut there (the board
   process dies), boot again and download the trained arrays; and once with the power
   cut right after the SAVE has answered (2N + 1 cases);
3. they must equal "old" or "new" byte for byte, and the board must boot from a
   checkpoint (or, when both slots were lost, which must never happen, say so).

Last line: ``power cut at every flash operation: N/N recovered (old A, new B)``; the
exit status is 0 only when every case recovered.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import termios
import time
from pathlib import Path

import numpy as np
import serial

from compiler import paths
from compiler.ir.errors import CompilerError
from host import protocol as P

POWER_CUT_EXIT = 86          # boards/host/board.c: TT_HOST_POWER_CUT_EXIT
DEMO_PLAN = paths.REPO / "bench" / "plans" / "demo-mcunet-5fps-80.json"
DEMO_MODEL = paths.BUILD / "demo" / "model" / "mcunet-5fps-digits-80.json"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m host.powercut", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model (name, .json/.npz, .onnx); default: the demo's "
                                    "pre-trained model if `make demo` made it, else mcunet-5fps "
                                    "with the demo's 10-class head at 80x80 (same trained arrays)")
    ap.add_argument("--plan", help=f"sparse-update plan (default {DEMO_PLAN.relative_to(paths.REPO)})")
    ap.add_argument("--samples", type=int, default=3, metavar="K",
                    help="samples trained on between the checkpoints (default 3)")
    ap.add_argument("--out", default=str(paths.BUILD / "powercut"), help="work folder")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def demo_graph():
    """The demo's model: pre-trained when `make demo` has run, else the same layers with
    the untrained head (the power-cut case depends on the trained arrays' layout only)."""
    from compiler.frontend import models
    from compiler.sparse import heads
    if DEMO_MODEL.exists():
        return models.load(str(DEMO_MODEL))
    return heads.with_input_size(heads.replace_head(models.load("mcunet-5fps"), 10, init="seeded",
                                                    seed=0), 80)


def build_firmware(model: str | None, plan_path: str | None, out: Path) -> str:
    """Host-board device firmware for the plan (its executable)."""
    from compiler.autodiff import program as ad
    from compiler.frontend import models
    from compiler.sparse import plan as sparse
    from compiler.target import firmware, from_plan
    plan = sparse.load(plan_path or DEMO_PLAN)
    base = models.load(model) if model else demo_graph()
    if not model and not DEMO_MODEL.exists():
        # the demo's layers with an untrained head: the plan's arrays, not its model hash
        plan.meta = {k: v for k, v in plan.meta.items() if k != "model_sha256"}
    g = sparse.apply(base, plan)
    prog = ad.build_program(g, plan.trainable(g))
    kw = from_plan.plan_firmware_kwargs(plan, prog, app="device")
    kw["defines"] = {"TT_HISTORY_MAX": 0}
    rep = firmware.build(g, "host", out / "fw", quiet=True, **kw)
    return rep["elf"]


class Board:
    """One boot of the host firmware on a flash image."""

    def __init__(self, exe: str, flash: Path, cut: str | None = None):
        from compiler.target import runner
        self.h = runner.HostSerial(exe, timeout=60, flash=flash, power_cut=cut)

    def __enter__(self):
        self.h.__enter__()
        self.port = serial.serial_for_url(self.h.url, timeout=10)
        self.c = P.Client(self.port, timeout=10, retries=0)
        self.info = self.c.hello()
        return self

    def train(self, images, labels):
        for im, lab in zip(images, labels):
            self.c.sample(im, int(lab))

    def __exit__(self, *exc):
        try:
            self.port.close()
        except Exception:
            pass
        self.h.__exit__(*exc)


def run(exe: str, work: Path, k: int, progress: bool = True, log=print) -> dict:
    rng = np.random.default_rng(0)
    with Board(exe, work / "probe.bin") as b:
        info = b.info
        b.c.exit(0)
    n_img = 2 * k + k
    h, w = min(info.in_h, 32), min(info.in_w, 32)        # the device resizes them
    images = rng.integers(0, 256, (n_img, h, w, info.in_c), dtype=np.uint8)
    labels = rng.integers(0, info.num_classes, n_img)
    first, second, third = slice(0, k), slice(k, 2 * k), slice(2 * k, 3 * k)

    # the starting image: two checkpoints ("older", then "old")
    base = work / "base.bin"
    base.unlink(missing_ok=True)
    with Board(exe, base) as b:
        b.c.reset(weights=True, history=True, checkpoints=True)
        b.train(images[first], labels[first])
        b.c.save()
        b.train(images[second], labels[second])
        b.c.save()
        b.c.exit(0)
    with Board(exe, base) as b:
        old = b.c.download()
        status = b.info.status
        b.c.exit(0)
    if "checkpoint" not in status:
        raise RuntimeError(f"the board did not boot from its checkpoint: {status!r}")

    # "new", and the number of flash operations of its SAVE
    ref = work / "ref.bin"
    shutil.copy(base, ref)
    with Board(exe, ref) as b:
        b.train(images[third], labels[third])
        new = b.c.download()
        b.c.save()
        b.c.exit(0)
    if new == old:
        raise RuntimeError("training did not change the weights: the check would prove nothing")
    # count the SAVE's operations: the first cut point that no longer cuts
    lo, hi = 1, 1
    while _cuts(exe, base, work, images[third], labels[third], f"{hi}"):
        lo, hi = hi, hi * 2
    while lo + 1 < hi:                 # the last op that cuts is in [lo, hi)
        mid = (lo + hi) // 2
        if _cuts(exe, base, work, images[third], labels[third], f"{mid}"):
            lo = mid
        else:
            hi = mid
    ops = lo
    cases = [f"{i}{h}" for i in range(1, ops + 1) for h in ("", ".5")] + ["after"]
    log(f"SAVE of {len(new)} trained bytes (+ state and header) = {ops} flash operations "
        f"(erase sectors, program 1 KB chunks, header); cutting the power before and half way "
        f"through each, and once right after the SAVE: {len(cases)} cases")
    got = {"old": 0, "new": 0, "lost": 0, "mixed": 0}
    failures = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(cases), unit="cut", file=sys.stderr, dynamic_ncols=True)
    for cut in cases:
        img = work / "case.bin"
        shutil.copy(base, img)
        if cut == "after":           # the SAVE completes, then the power goes
            b = Board(exe, img)
            with b:
                b.train(images[third], labels[third])
                b.c.save()
                b.h.power_off()
        elif not _cuts(exe, img, work, images[third], labels[third], cut, copy=False):
            failures.append(f"cut {cut}: the SAVE completed (expected a power cut)")
            continue
        with Board(exe, img) as b:
            w = b.c.download()
            st = b.info.status
            # and the board still works: a new checkpoint after the cut
            b.c.save()
            b.c.exit(0)
        kind = "old" if w == old else "new" if w == new else "mixed"
        if "checkpoint" not in st:
            kind = "lost"
        got[kind] += 1
        if kind in ("lost", "mixed"):
            failures.append(f"cut {cut}: {kind} ({st})")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return {"cases": len(cases), "operations": ops, "recovered": got["old"] + got["new"],
            **got, "failures": failures, "trained_bytes": len(new)}


def _cuts(exe, base: Path, work: Path, images, labels, cut: str, copy: bool = True) -> bool:
    """Boot on (a copy of) ``base`` with the power cut at ``cut``, train, SAVE: True when
    the power went out during the SAVE."""
    img = base
    if copy:
        img = work / "trial.bin"
        shutil.copy(base, img)
    b = Board(exe, img, cut=cut)
    with b:
        b.train(images, labels)
        try:
            b.c.save()
        except (P.ProtocolError, serial.SerialException, OSError, termios.error):
            pass
        else:
            b.c.exit(0)
            return False
    r = b.h.result
    if r is None or r.exit_code != POWER_CUT_EXIT:
        raise RuntimeError(f"the board ended with {r.describe() if r else '?'} instead of a power cut")
    return True


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    if a.samples < 1:
        build_parser().error("--samples must be at least 1")
    t0 = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        exe = build_firmware(a.model, a.plan, out)
    except CompilerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(dir=out) as td:
        r = run(exe, Path(td), a.samples, progress=not a.no_progress)
    for f in r["failures"]:
        print(f"FAILED {f}")
    print(f"done in {time.time() - t0:.0f}s")
    print(f"power cut at every flash operation: {r['recovered']}/{r['cases']} recovered "
          f"(old {r['old']}, new {r['new']})")
    return 0 if r["recovered"] == r["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
