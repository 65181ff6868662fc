"""How long the contribution analysis of mcunet-5fps takes, and that it measures the same.

Two workloads, both on MNIST (1000 training + 1000 held-out digits, the defaults), with
``--jobs`` worker processes (default 2, the cores the figures are quoted for) and no
result cache:

- ``default``: ``python -m compiler plan mcunet-5fps --data mnist`` as a user runs it
  (listing, channel order, every bias depth, the weight configurations on top of the best
  one, search, whole plans re-measured); its wall time and how many configurations ran;
- ``depth 28``: the weight stage of the pinned plan's analysis (bench/plans/mcunet-5fps.json,
  made when the deepest bias depth that fit 256 KB was 32 and the best one 28): the
  listing and channel order, then every (layer, ratio) on top of the biases of the last 28
  layers that fits 256 KB, timed; each accuracy the pinned plan recorded is compared with
  the new one (they must be identical: same data, same int8 training step);
- ``full 28``: the whole ``plan`` command with the weights measured on bias depth 28
  (``--bias-depth 28``): the workload of the default command on data whose best bias
  depth is 28, as when the pinned plan was made (listing, channel order, every bias
  depth that fits, every fitting (layer, ratio) on depth 28, search, whole plans
  re-measured); its wall time, and its bias and weight accuracies compared with the
  pinned plan's.

Writes bench/results.json (section "analysis") and prints a table.

    .venv/bin/python bench/analysis.py [--only default|depth28|full28] [--jobs 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "bench" / "results.json"
PINNED = REPO / "bench" / "plans" / "mcunet-5fps.json"
MODEL = "mcunet-5fps"


def _plan_command(jobs: int, extra: list[str]) -> tuple[dict, float, str]:
    """(plan file, wall seconds, command) of ``python -m compiler plan`` on MNIST, no cache."""
    args = ["plan", MODEL, "--data", "mnist", "--cache", "", "--jobs", str(jobs), *extra]
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "plan.json"
        t = time.time()
        subprocess.run([sys.executable, "-m", "compiler", *args, "--quiet", "--out", str(out)],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        wall = time.time() - t
        plan = json.loads(out.read_text())
    return plan, wall, "python -m compiler " + " ".join(a if a else "''" for a in args)


def run_default(jobs: int) -> dict:
    plan, wall, cmd = _plan_command(jobs, [])
    an = plan["analysis"]
    return {"command": cmd, "wall_seconds": round(wall, 1),
            "bias_configs": len(an["bias"]) + 1, "best_bias_depth": an["weights_measured_with_bias_layers"],
            "weight_configs": len(an["weight"]), "plan": plan["plan"]}


def run_full28(jobs: int) -> dict:
    plan, wall, cmd = _plan_command(jobs, ["--bias-depth", "28"])
    an = plan["analysis"]
    pinned = json.loads(PINNED.read_text())["analysis"]
    same = {part: sum(1 for k, v in pinned[part].items() if an[part].get(k) == v)
            for part in ("bias", "weight")}
    return {"command": cmd, "wall_seconds": round(wall, 1),
            "analysis_seconds": an["seconds"], "bias_configs": len(an["bias"]) + 1,
            "weight_configs": len(an["weight"]), "plan": plan["plan"],
            "recorded_accuracies": len(pinned["bias"]) + len(pinned["weight"]),
            "identical_accuracies": same["bias"] + same["weight"]}


def run_depth28(jobs: int) -> dict:
    from compiler.frontend import datasets as D
    from compiler.frontend import models
    from compiler.ref import inputs
    from compiler.sparse import contrib, planner
    from compiler.sparse import plan as sparse
    from compiler.target import firmware

    t0 = time.time()
    info = firmware.board_info("stm32f746")
    budget = info["ram_kb"] * 1024
    settings = contrib.Settings()
    g0 = sparse.prepare(models.load(MODEL), classes=10)
    ds = D.load("mnist")
    x = inputs.model_inputs(g0, ds.x)
    x_tr, y_tr, x_te, y_te = planner.split_data(x, ds.y, 1000, 1000, settings.seed)
    mm = sparse.MemoryModel(g0, info["stack"], sparse.app_reserve(g0, "device"))
    one = contrib.Settings(ratios=(min(settings.ratios),))
    layers = [c[1] for c in contrib.weight_candidates(g0, mm, budget, one, 0, {}, {}, jobs=jobs)]
    g, _ = planner.choose_channels(g0, layers, x_tr, y_tr, settings)
    listing = time.time() - t0
    t = time.time()
    cfgs = contrib.weight_candidates(g, mm, budget, settings, 28, {}, {}, None, jobs)
    memory = time.time() - t
    runner = contrib._Runner(g, x_tr, y_tr, x_te, y_te, settings, jobs, None, True)
    t = time.time()
    acc = runner.run(cfgs, "weights (+ biases of 28 layers)")
    train = time.time() - t
    recorded = json.loads(PINNED.read_text())["analysis"]["weight"]
    # the plan file keeps accuracies rounded to 3 decimals (Analysis.to_dict)
    same = sum(1 for k, v in recorded.items()
               if f"weight {k} bias 28" in acc and round(acc[f"weight {k} bias 28"], 3) == v)
    return {"weight_configs": len(cfgs), "listing_and_channels_seconds": round(listing, 1),
            "memory_model_seconds": round(memory, 1), "training_seconds": round(train, 1),
            "wall_seconds": round(time.time() - t0, 1),
            "recorded_accuracies": len(recorded), "identical_accuracies": same}


def _say_default(d: dict) -> str:
    return (f"default plan command: {d['wall_seconds'] / 60:.1f} min wall ({d['bias_configs']} bias "
            f"configurations, {d['weight_configs']} weight configurations on bias depth "
            f"{d['best_bias_depth']})")


def _identical(d: dict) -> str:
    return f"{d['identical_accuracies']} of {d['recorded_accuracies']} accuracies the pinned plan recorded are identical"


def _say_depth28(d: dict) -> str:
    return (f"weight stage on bias depth 28: {d['weight_configs']} configurations, "
            f"{d['wall_seconds'] / 60:.1f} min wall (listing and channel order "
            f"{d['listing_and_channels_seconds']:.0f} s, memory model {d['memory_model_seconds']:.0f} s, "
            f"training {d['training_seconds']:.0f} s); " + _identical(d))


def _say_full28(d: dict) -> str:
    return (f"whole plan command, weights on bias depth 28: {d['wall_seconds'] / 60:.1f} min wall "
            f"({d['bias_configs']} bias configurations, {d['weight_configs']} weight configurations; "
            f"analysis {d['analysis_seconds'] / 60:.1f} min); " + _identical(d))


#: workload -> (run with jobs, one line of what it measured)
WORKLOADS = {"default": (run_default, _say_default), "depth28": (run_depth28, _say_depth28),
             "full28": (run_full28, _say_full28)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=tuple(WORKLOADS), help="one of the workloads")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = ap.parse_args()
    res = {"jobs": args.jobs}
    for key, (run, say) in WORKLOADS.items():
        if args.only in (None, key):
            res[key] = run(args.jobs)
            print(say(res[key]), flush=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data["analysis"] = {**data.get("analysis", {}), **res}
    RESULTS.write_text(json.dumps(data, indent=1))
    sys.path.insert(0, str(REPO / "bench"))
    import results_md
    results_md.write(data, RESULTS.with_suffix(".md"))
    ok = all(res[k]["identical_accuracies"] == res[k]["recorded_accuracies"]
             for k in ("depth28", "full28") if k in res)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
