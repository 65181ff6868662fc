"""PyTorch beside us: the memory (and time) of the same sparse-update training step.

For each real model (128x128, new 10-class head, batch 1) and its pinned plan
(bench/plans/<model>.json: the biases of the last k layers, some conv weights at a channel
ratio, the head), PyTorch trains the SAME trainable set on CPU, and the table puts its
memory next to our training build's and the published engine's (MCUNetV3 paper).

PyTorch side (one fresh subprocess per model, so models do not pollute each other):

- the model: the float twin of the plan's int8 graph (:mod:`compiler.sparse.float_twin`,
  dequantized parameters, float32, same channel order as the plan's), every parameter
  frozen (``requires_grad=False``) except the plan's: a bias-only layer trains its bias;
  a weight layer at channel ratio r its bias and its weight, whose gradient a hook
  multiplies by a mask of the first ``max(1, floor(Co * r))`` output channels (torch
  still computes and stores the full weight gradient); the classifier trains in full;
- the forward frees each intermediate tensor after its last use, like a plain
  ``nn.Module`` (what autograd saved for backward stays alive through the graph);
- ``torch.optim.SGD`` (lr 2e-3, no momentum: no optimizer state), cross-entropy, batch 1,
  ``--steps`` steps on three bundled photos (cat, coffee, astronaut; labels 1, 7, 3),
  one thread.

Measured:

- process peak RSS: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the steps; the
  resident set once the model is ready, before the first step (``/proc/self/statm``; the
  process also holds our compiler and the int8 model, so peak minus ready is what the
  training steps added); and, reported separately, the peak RSS of an idle process that only imported torch
  and numpy (the interpreter + libraries floor);
- tensor level, one extra step recorded after the RSS was read:
  * saved for backward: ``torch.autograd.graph.saved_tensors_hooks`` sums the bytes of
    the distinct storages autograd saves during the forward, parameters excluded (they
    are counted as parameters);
  * parameters (all, and the trainable ones as whole tensors), gradients (the ``.grad``
    tensors after the backward), optimizer state (tensors in ``optimizer.state``);
  * the step's peak of live bytes: ``torch.profiler`` with ``profile_memory``, its
    memory timeline (every allocation and free on the CPU: tensors categorised as
    parameter, input, activation, gradient, temporary, ..., and allocations the profiler
    cannot tie to a tensor, "untracked", e.g. a convolution kernel's workspace) summed at
    each instant, maximum over the step; and the step's largest single allocation. The
    oneDNN convolutions torch uses by default take workspaces of several MB in the
    backward; the same peak is also recorded for one step with oneDNN off
    (``torch.backends.mkldnn.flags(enabled=False)``: torch's plain kernels, slower,
    whose peak is the tensors themselves);
- wall time per step (mean over the steps after the first; informational).

Our side: the plan's training build for stm32f746 (``compiler.target.firmware.build``,
the training-test app as bench/sparse.py links it): arena, trained-parameter bytes in
RAM and the linked RAM; the QEMU instructions per step from bench/results.json
(section "sparse") when it holds the same plan. Published: MCUNetV3 paper, 128x128,
sparse update + reordering: peak SRAM 141 / 135 / 173 KB for mbv2-w0.35 /
proxyless-w0.3 / mcunet-5fps, 373 / 443 / 546 ms per training step at 216 MHz on an
STM32F746.

Writes bench/results.json (section "pytorch"), bench/memory.png, and regenerates
bench/results.md (bench/results_md.py) from every section.

    .venv/bin/python bench/pytorch_compare.py [--models ...] [--steps 6] [--ours build]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODELS = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]
#: MCUNetV3 paper, 128x128, batch 1, sparse update + operator reordering: peak SRAM (KB)
#: and training-step latency (ms) at 216 MHz on STM32F746
PAPER_KB = {"mbv2-w0.35": 141, "proxyless-w0.3": 135, "mcunet-5fps": 173}
PAPER_MS = {"mbv2-w0.35": 373, "proxyless-w0.3": 443, "mcunet-5fps": 546}
PLANS = REPO / "bench" / "plans"
RESULTS = REPO / "bench" / "results.json"
PLOT = REPO / "bench" / "memory.png"
LR = 2e-3
PHOTOS = (("chelsea", 1), ("coffee", 7), ("astronaut", 3))


# ----------------------------------------------------------------------------- torch side

def _rss_now() -> int:
    """Current resident set (bytes), or the peak so far where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _rss_peak()


def _rss_peak() -> int:
    """Peak resident set of this process (bytes; ru_maxrss is KB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if sys.platform == "darwin" else int(r) * 1024


def trainable_twin(g, trainable: dict):
    """The float twin of ``g`` with only ``trainable`` ({node: LayerTrain}) left to train.
    Returns (twin, the parameters to optimise, {node: trained output channels})."""
    import torch

    from compiler.autodiff import program as ad
    from compiler.sparse.float_twin import FloatTwin

    twin = FloatTwin(g)
    for p in twin.parameters():
        p.requires_grad_(False)
    params, rows = [], {}
    for name, lt in trainable.items():
        w, b = twin.weight(name), twin.bias(name)
        if lt.train_bias:
            b.requires_grad_(True)
            params.append(b)
        if lt.train_weight:
            w.requires_grad_(True)
            params.append(w)
            k = ad.channels_of_ratio(w.shape[0], lt.ratio)
            rows[name] = k
            if k < w.shape[0]:
                mask = torch.zeros((w.shape[0],) + (1,) * (w.dim() - 1))
                mask[:k] = 1
                w.register_hook(lambda gr, m=mask: gr * m)
    return twin, params, rows


def forward_freeing(twin, g, x):
    """Logits of the twin for the real NHWC input ``x``, node by node, dropping each
    intermediate tensor after its last consumer (the twin's own forward returns, and so
    keeps, every tensor of the graph)."""
    nodes = twin.node_list
    last = {}
    for i, n in enumerate(nodes):
        for t in n.inputs:
            last[t] = i
    env = {g.inputs[0]: x}
    try:
        for i, n in enumerate(nodes):
            twin.node_list = [n]
            env[n.output] = twin.forward({t: env[t] for t in n.inputs})[n.output]
            for t in set(n.inputs):
                if last[t] == i and t not in g.outputs:
                    del env[t]
    finally:
        twin.node_list = nodes
    return env[g.outputs[0]]


def _saved_bytes_hooks(param_ptrs: set, seen: dict):
    import torch

    def pack(t):
        if isinstance(t, torch.Tensor):
            s = t.untyped_storage()
            if s.data_ptr() not in param_ptrs:
                seen[s.data_ptr()] = s.nbytes()
        return t

    return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)


def _timeline_peak(prof) -> dict:
    """Peak of live CPU bytes in a profiler's memory timeline (every allocation of the
    recorded step, tensors and kernel workspaces), the bytes of each category at that
    instant, and the largest single allocation."""
    from torch.profiler import _memory_profiler as mp

    tl = mp.MemoryProfileTimeline(prof._memory_profile())
    _, sizes = tl._coalesce_timeline("cpu")
    largest = max((nb for _, action, _, nb in tl.timeline if action == mp.Action.CREATE),
                  default=0)
    if not sizes:
        return {"bytes": 0, "by_category": {}, "largest_allocation": int(largest)}
    totals = [sum(s) for s in sizes]
    i = max(range(len(totals)), key=totals.__getitem__)
    names = [c.name.lower() if c is not None else "untracked" for c in mp._CATEGORY_TO_INDEX]
    return {"bytes": int(totals[i]), "largest_allocation": int(largest),
            "by_category": {n: int(v) for n, v in zip(names, sizes[i][1:]) if v}}


def measure_torch(g, trainable: dict, x_int8, labels, steps: int, without_onednn: bool = True) -> dict:
    """Train ``trainable`` of ``g``'s float twin for ``steps`` steps on ``x_int8`` (cycled)
    in this process, then record one more step at tensor level (see the module doc), and
    with ``without_onednn`` one more with oneDNN off (its many small kernel calls make the
    profiler's analysis slow: tens of seconds)."""
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    twin, params, rows = trainable_twin(g, trainable)
    opt = torch.optim.SGD(params, lr=LR)
    xs = [twin.dequantize(g.inputs[0], x_int8[i:i + 1]) for i in range(len(x_int8))]
    ys = [torch.tensor([int(v)]) for v in labels]

    def step(i):
        logits = forward_freeing(twin, g, xs[i % len(xs)])
        loss = F.cross_entropy(logits.reshape(1, -1), ys[i % len(ys)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    rss_ready = _rss_now()
    times, losses = [], []
    for i in range(steps):
        t0 = time.perf_counter()
        losses.append(step(i))
        times.append(time.perf_counter() - t0)
    # the kernel's RSS counters are approximate per read (per-CPU caches): the peak is at
    # least every resident figure observed
    rss_peak = max(_rss_peak(), rss_ready, _rss_now())

    # one more step, recorded: saved tensors, the profiler's memory timeline
    param_ptrs = {p.untyped_storage().data_ptr() for p in twin.parameters()}

    def recorded_step(i):
        saved: dict = {}
        opt.zero_grad(set_to_none=True)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                     with_stack=True) as prof:
            with _saved_bytes_hooks(param_ptrs, saved):
                logits = forward_freeing(twin, g, xs[i % len(xs)])
                loss = F.cross_entropy(logits.reshape(1, -1), ys[i % len(ys)])
            loss.backward()
            grads = sum(p.grad.nbytes for p in params if p.grad is not None)
            opt.step()
            del logits, loss
        return _timeline_peak(prof), int(sum(saved.values())), int(grads)

    peak, saved, grads = recorded_step(steps)
    peak_plain = None
    if without_onednn:
        with torch.backends.mkldnn.flags(enabled=False):
            peak_plain = recorded_step(steps + 1)[0]["bytes"]

    def nbytes(ps):
        return int(sum(p.nbytes for p in ps))

    opt_state = sum(v.nbytes for st in opt.state.values() for v in st.values()
                    if isinstance(v, torch.Tensor))
    trained_elems = 0
    for name, lt in trainable.items():
        if lt.train_bias:
            trained_elems += twin.bias(name).numel()
        if lt.train_weight:
            w = twin.weight(name)
            trained_elems += rows[name] * (w.numel() // w.shape[0])
    timed = times[1:] or times
    return {
        "steps": steps, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "rss_ready_bytes": int(rss_ready), "rss_peak_bytes": int(rss_peak),
        "tensor_peak_bytes": peak["bytes"], "tensor_peak_by_category": peak["by_category"],
        "largest_allocation_bytes": peak["largest_allocation"],
        "tensor_peak_without_onednn_bytes": peak_plain,
        "saved_for_backward_bytes": saved,
        "grad_bytes": int(grads), "optimizer_state_bytes": int(opt_state),
        "param_bytes": nbytes(twin.parameters()), "trainable_param_bytes": nbytes(params),
        "trained_elements": int(trained_elems), "trainable_tensors": len(params),
        "input_bytes": int(xs[0].nbytes),
        "ms_per_step": round(1000 * sum(timed) / len(timed), 2),
        "first_step_ms": round(1000 * times[0], 2) if times else None,
        "losses": [round(v, 4) for v in losses],
    }


def load_plan_graph(model: str, size: int | None = None):
    """(prepared graph, plan) of a model's pinned plan; ``size`` overrides its input size."""
    from compiler.frontend import models
    from compiler.sparse import heads
    from compiler.sparse import plan as sparse

    plan = sparse.load(PLANS / f"{model}.json")
    g = sparse.apply(models.load(model), plan)
    if size is not None and size != g.tensors[g.inputs[0]].shape[1]:
        g = heads.with_input_size(g, size)
    return g, plan


def child(model: str, steps: int, size: int | None) -> dict:
    """What the per-model subprocess does (``--child``); ``model == "idle"``: nothing
    after importing torch and numpy."""
    import numpy  # noqa: F401
    import torch

    torch.set_num_threads(1)
    if model == "idle":
        now = _rss_now()
        return {"rss_peak_bytes": _rss_peak(), "rss_now_bytes": now, "torch": torch.__version__}
    from compiler.frontend import images

    g, plan = load_plan_graph(model, size)
    hw = int(g.tensors[g.inputs[0]].shape[1])
    x = images.photo_batch(tuple(n for n, _ in PHOTOS), size=hw)
    r = measure_torch(g, plan.trainable(g), x, [y for _, y in PHOTOS], steps)
    r["input_size"] = hw
    r["plan"] = plan.describe(g)
    return r


def run_child(model: str, steps: int, size: int | None) -> dict:
    env = dict(os.environ)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[v] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", model, "--steps", str(steps)]
    if size is not None:
        cmd += ["--size", str(size)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"PyTorch measurement of {model} failed:\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- our side

def ours_build(model: str, g, plan) -> dict:
    """Arena, trained parameters and linked RAM of the plan's training build (stm32f746)."""
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    from compiler.target import firmware

    prog = ad.build_program(g, plan.trainable(g))
    rep = firmware.build(g.copy(), "stm32f746", REPO / "build" / "bench" / f"torchcmp_{model}",
                         program=prog, app=firmware.TRAIN_TEST_APP, quiet=True,
                         config=tr.TrainConfig(lr=LR, loss_range_mode="max"))
    return {"source": "build stm32f746", "arena_bytes": int(rep["arena_bytes"]),
            "trained_param_bytes": int(rep["ram_param_bytes"]),
            "ram_linked_bytes": int(rep["linked"]["ram"])}


def ours_from_results(model: str, plan, data: dict) -> dict | None:
    """The same figures from bench/results.json's "sparse" section (the plan's predicted
    arena and parameters, the linked RAM), if it holds this very plan."""
    r = data.get("sparse", {}).get("models", {}).get(model)
    if not r:
        return None
    from compiler.sparse import plan as sparse
    if sparse.SparsePlan.from_dict(r["plan"]).key() != plan.key():
        return None
    pred = r["plan"].get("predicted", {})
    return {"source": "bench/results.json (sparse)", "arena_bytes": pred.get("arena_bytes"),
            "trained_param_bytes": pred.get("trained_param_bytes"),
            "ram_linked_bytes": r.get("linked_ram_bytes", {}).get("stm32f746")}


def qemu_instructions(model: str, plan, data: dict) -> int | None:
    r = data.get("sparse", {}).get("models", {}).get(model)
    if not r:
        return None
    from compiler.sparse import plan as sparse
    if sparse.SparsePlan.from_dict(r["plan"]).key() != plan.key():
        return None
    return r.get("instructions_per_step")


# ----------------------------------------------------------------------------- plot

def plot(section: dict, path: Path) -> None:
    """Training-step memory per model, log scale: PyTorch (process peak RSS, an idle torch
    process, the RSS growth over the steps, the step's peak from the profiler with and
    without oneDNN), ours (linked RAM), the paper."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = section["models"]
    ms = [m for m in MODELS if m in rows] + [m for m in rows if m not in MODELS]
    idle = section.get("idle_torch", {}).get("rss_peak_bytes", 0)
    bars = [
        ("PyTorch process peak RSS", lambda r: r["torch"]["rss_peak_bytes"], "C3"),
        ("PyTorch idle process (import torch)", lambda r: idle or None, "C1"),
        ("PyTorch RSS growth while training",
         lambda r: r["torch"]["rss_peak_bytes"] - r["torch"]["rss_ready_bytes"], "C6"),
        ("PyTorch step peak (profiler)", lambda r: r["torch"]["tensor_peak_bytes"], "C5"),
        ("PyTorch step peak, oneDNN off",
         lambda r: r["torch"].get("tensor_peak_without_onednn_bytes"), "C4"),
        ("ours: linked RAM (stm32f746)",
         lambda r: (r.get("ours") or {}).get("ram_linked_bytes"), "C0"),
        ("MCUNetV3 paper", lambda r: PAPER_KB.get(r["model"], 0) * 1024 or None, "C7"),
    ]
    fig = Figure(figsize=(11, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    w = 0.8 / len(bars)
    for j, (label, get, color) in enumerate(bars):
        vals = [get({**rows[m], "model": m}) for m in ms]
        xs = np.arange(len(ms)) + (j - (len(bars) - 1) / 2) * w
        kb = [v / 1024 if v else 0 for v in vals]
        ax.bar(xs, kb, w, label=label, color=color)
        for xx, v in zip(xs, kb):
            if v:
                ax.text(xx, v, f"{v:.0f}" if v < 10240 else f"{v / 1024:.0f} MB", ha="center",
                        va="bottom", fontsize=6)
    ax.axhline(256, color="k", lw=0.8, ls="--")
    ax.text(-0.5, 256, "256 KB", va="bottom", ha="left", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(bottom=64)
    ax.set_xticks(range(len(ms)), ms)
    ax.set_ylabel("KB (log scale)")
    ax.set_title("memory of the same sparse-update training step, 128x128, batch 1")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--steps", type=int, default=6, help="timed training steps (default 6)")
    ap.add_argument("--size", type=int, default=None,
                    help="input size instead of the plan's (for quick checks; the comparison "
                         "with the paper is at the plans' 128x128)")
    ap.add_argument("--ours", choices=("build", "results", "none"), default="build",
                    help="our figures: build the plan's training firmware (default), read "
                         "them from bench/results.json, or leave them out")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--plot", type=Path, default=PLOT)
    ap.add_argument("--markdown", type=Path, default=None,
                    help="results table (default: results.md beside --results)")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: redraw the plot and bench/results.md from --results")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.steps < 1:
        ap.error("--steps must be >= 1")
    if a.child:
        print(json.dumps(child(a.child, a.steps, a.size)))
        return 0
    if a.render_only:
        data = json.loads(a.results.read_text())
        return render(data, a)
    from compiler.frontend import models
    models.require(*a.models)
    for m in a.models:
        if not (PLANS / f"{m}.json").exists():
            ap.error(f"no pinned plan bench/plans/{m}.json (make it with bench/sparse.py)")
    data = json.loads(a.results.read_text()) if a.results.exists() else {}
    section = {"method": "see bench/pytorch_compare.py", "steps": a.steps, "lr": LR,
               "paper_kb": PAPER_KB, "paper_ms_per_step": PAPER_MS, "models": {}}
    idle = run_child("idle", 1, None)
    section["idle_torch"] = idle
    section["torch_version"] = idle["torch"]
    print(f"idle torch process (import torch, numpy): peak RSS {idle['rss_peak_bytes'] / 2**20:.1f} MB")
    hdr = (f"  {'model':<15} {'torch RSS MB':>12} {'tensor peak KB':>14} {'saved KB':>9} "
           f"{'grads KB':>9} {'ms/step':>8} | {'ours RAM KB':>11} | {'paper KB':>8}")
    print(hdr)
    for m in a.models:
        g, plan = load_plan_graph(m, a.size)
        t = run_child(m, a.steps, a.size)
        ours = None
        if a.ours == "build":
            ours = ours_build(m, g, plan)
        elif a.ours == "results":
            ours = ours_from_results(m, plan, data)
        row = {"plan": plan.describe(g), "input_size": t["input_size"], "torch": t, "ours": ours,
               "qemu_instructions_per_step": qemu_instructions(m, plan, data),
               "paper_kb": PAPER_KB.get(m), "paper_ms_per_step": PAPER_MS.get(m)}
        section["models"][m] = row
        ram = f"{ours['ram_linked_bytes'] / 1024:11.1f}" if ours and ours.get("ram_linked_bytes") else f"{'-':>11}"
        print(f"  {m:<15} {t['rss_peak_bytes'] / 2**20:12.1f} {t['tensor_peak_bytes'] / 1024:14.1f} "
              f"{t['saved_for_backward_bytes'] / 1024:9.1f} {t['grad_bytes'] / 1024:9.1f} "
              f"{t['ms_per_step']:8.1f} | {ram} | {PAPER_KB.get(m, '-'):>8}", flush=True)
    # re-read: other benchmarks may have written their sections meanwhile
    data = json.loads(a.results.read_text()) if a.results.exists() else {}
    data["pytorch"] = section
    a.results.write_text(json.dumps(data, indent=1))
    print(f"wrote {a.results}")
    return render(data, a)


def render(data: dict, a) -> int:
    """The plot of the "pytorch" section and bench/results.md of every section."""
    plot(data["pytorch"], a.plot)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import results_md
    md = a.markdown or a.results.with_suffix(".md")
    results_md.write(data, md)
    print(f"wrote {a.plot} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
