"""The main job, end to end (``make demo``):

1. a real int8 ImageNet model (mcunet-5fps) gets a new 10-class head and a smaller
   input; the head is pre-trained on clean MNIST digits on the host with the int8
   reference trainer (what a user's "pretrained model" would be);
2. the compiler builds it, with its on-device training step, into firmware for the
   emulated Cortex-M7 (memory report printed);
3. QEMU boots it and host/stream.py streams *other* digits under a lighting shift
   (a spotlight in the upper-left corner), first to the frozen model, then (after a
   RESET) to the model adapting on the device -- prequential accuracy of both;
4. the adapting pass is replayed on the numpy reference: every prediction and the final
   weights must match the board bit for bit.

The last line states both accuracies, e.g. ``frozen 64.7% -> on-device 78.7% (n=600)``.

    python -m host.demo [--model mcunet-5fps] [--size 80] [--limit 600] [--shift SPEC]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_SHIFT = "spotlight:radius=20,gain=4,corner=ul,add=160"


def say(msg: str) -> None:
    print(msg, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mcunet-5fps", help="real model (default mcunet-5fps)")
    ap.add_argument("--size", type=int, default=80, help="model input size (default 80)")
    ap.add_argument("--limit", type=int, default=600, help="samples streamed per pass (default 600)")
    ap.add_argument("--pretrain", type=int, default=2000,
                    help="clean digits for the host-side pre-training of the head (default 2000)")
    ap.add_argument("--pretrain-epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.003, help="learning rate, host and device")
    ap.add_argument("--shift", default=DEFAULT_SHIFT, help=f"stream shift (default {DEFAULT_SHIFT})")
    ap.add_argument("--board", default="qemu-mps2-an500")
    ap.add_argument("--out", default=str(REPO / "build" / "demo"))
    ap.add_argument("--no-verify", action="store_true", help="skip the bit-exact replay")
    a = ap.parse_args(argv)
    t_start = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    from compiler import autodiff as ad
    from compiler import device_sim, firmware, heads, models
    from compiler import train as tr
    from host import datasets, protocol, stream
    from host.shifts import ShiftChain

    # 1. model + host-side pre-training -------------------------------------------------
    say(f"[1/4] {a.model}: new 10-class head, input {a.size}x{a.size}; pre-training the head "
        f"on {a.pretrain} clean MNIST digits (int8 reference trainer)")
    g = heads.with_input_size(heads.replace_head(models.load(a.model), 10, init="seeded", seed=0),
                              a.size)
    ds = datasets.load_mnist()
    order = np.random.default_rng(0).permutation(len(ds.y))   # stream.py's order (--seed 0)
    pre_idx = order[a.limit:a.limit + a.pretrain]              # disjoint from the stream

    def device_view(img):  # what the device does to a streamed 28x28 gray digit
        return protocol.resize_u8(img, a.size, a.size, 3, mode=protocol.RESIZE_BILINEAR)

    from compiler import codegen
    lut, _ = codegen.pixel_lut(g)
    head = ad.last_layers(g, 1)
    prog = ad.build_program(g, head)
    xp = lut[np.stack([device_view(ds.x[i]) for i in pre_idx])]
    feats = tr.prefix_features(g, prog, xp)
    cfg = tr.TrainConfig(lr=a.lr, seed=0)
    tr.train_epochs(g, prog, tr.TrainState(cfg), feats, ds.y[pre_idx], a.pretrain_epochs)
    say(f"      pre-trained in {time.time() - t_start:.0f}s")

    # 2. compile ----------------------------------------------------------------------
    say(f"[2/4] compiling with on-device training of {', '.join(head)} for {a.board}")
    fw_dir = out / "firmware"
    rep = firmware.build(g, a.board, fw_dir, program=prog, config=cfg, app=firmware.DEVICE_APP,
                         defines={"TT_HISTORY_MAX": 0})
    (out / "report.json").write_text(json.dumps(rep, indent=1))

    # 3. stream -----------------------------------------------------------------------
    say(f"[3/4] streaming {a.limit} shifted digits ({a.shift}) to the emulated board: "
        "frozen, then adapting")
    weights_file = out / "device_weights.bin"
    boot = "qemu" if a.board.startswith("qemu") else "host"
    status = stream.main(["--boot", f"{boot}:{rep['elf']}", "--expect-report", str(out / "report.json"),
                          "--dataset", "mnist", "--limit", str(a.limit), "--gray",
                          "--shift", a.shift, "--lr", str(a.lr), "--compare",
                          "--out", str(out / "stream"), "--download", str(weights_file)]
                         + ([] if sys.stdout.isatty() else ["--no-progress"]))
    if status != 0:
        say(f"stream failed with status {status}")
        return status

    # 4. bit-exact replay of the adapting pass -----------------------------------------
    summary = json.loads((out / "stream" / "summary.json").read_text())
    if not a.no_verify:
        say("[4/4] replaying the adapting pass on the numpy reference")
        rows = [r for r in csv.DictReader(open(out / "stream" / "stream.csv")) if r["mode"] == "adapting"]
        chain = ShiftChain.parse([a.shift], seed=0)
        imgs = [device_view(chain(ds.x[int(r["dataset_index"])], int(r["dataset_index"]))) for r in rows]
        labels = [int(r["label"]) for r in rows]
        sim = device_sim.replay(g, prog, tr.TrainState(cfg), imgs, labels)
        dev_preds = [int(r["pred"]) for r in rows]
        same_preds = sim.preds == dev_preds
        blob = weights_file.read_bytes()
        got = firmware.split_trained(g, rep, blob)
        same_w = all(np.array_equal(v, g.node(n).params[p]) for (n, p), v in got.items())
        say(f"      predictions {'identical' if same_preds else 'DIFFER'} "
            f"({sum(x == y for x, y in zip(sim.preds, dev_preds))}/{len(rows)}); final weights "
            f"{'identical' if same_w else 'DIFFER'} ({len(blob)} bytes)")
        if not (same_preds and same_w):
            return 1
    say(f"done in {time.time() - t_start:.0f}s; plot: {out / 'stream' / 'accuracy.png'}")
    say(summary["result"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
