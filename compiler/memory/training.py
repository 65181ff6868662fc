"""Memory plan of the on-device training step (forward with saves + backward).

One arena over one timeline -- forward steps ``0..F-1``, then backward step ``i`` at
``F + i``. Forward tensors the backward reads (saved activations, logits) live until
their last backward use; clamp masks (1 bit / element) are packed right after the
forward step that produces their tensor; gradient buffers live from their first write
to their last read (aliases share storage); every backward kernel's scratch lives only
during its step (sizes from :mod:`compiler.kernels.backward`). Trained weights and
biases live in RAM (``.data``), outside the arena. Also: which frozen-prefix features a
device history buffer stores instead of raw inputs.
"""
from __future__ import annotations

import numpy as np

from compiler.autodiff import program as ad
from compiler.autodiff.program import root
from compiler.ir.graph import Graph
from compiler.kernels import backward as KB
from compiler.kernels.sizes import c_sizes
from compiler.memory import schedule as memplan
from compiler.memory import two_pass as TP

ALIGN = memplan.ALIGN


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_training(g: Graph, program: ad.TrainingProgram, fuse: str = "auto",
                  reorder: bool = True, two_pass: str | None = None) -> memplan.Plan:
    """One arena for the forward pass with saves and the backward program.

    ``reorder=False`` plans the conventional order instead, for comparison only (no code
    is generated from it): every weight / bias gradient is computed during the backward
    pass but applied after it, so each int32 gradient buffer lives from its step to the
    end of the step list (the generated code fuses each update right after its gradient,
    and the gradient never leaves the kernel's scratch).

    ``two_pass`` (fit | auto | on | off, see :mod:`compiler.memory.two_pass`; ``fit`` is
    ``auto`` here): which input gradients skip their int32 tensor; the choice is recorded
    in the program's steps."""
    mode = TP.mode_of(two_pass)
    if mode == "fit":
        mode = "auto"
    cands = TP.candidates(g, program)
    TP.apply(program, cands if mode != "off" else [])
    p = _plan(g, program, fuse, reorder)
    if mode != "auto" or not cands:
        return p
    chosen = TP.choose(g, program, p, cands)
    F = len(p.steps)
    for _ in range(TP.REPAIRS + 1):
        if len(chosen) == len(cands):
            break
        TP.apply(program, chosen)
        q = _plan(g, program, fuse, reorder)
        if q.arena_bytes <= p.arena_bytes:
            return q
        # the placement came out worse: also the pair whose steps are the most crowded
        rest = [i for i in cands if i not in chosen]
        chosen = chosen + [max(rest, key=lambda i: max(q.live_all[F + i - 1], q.live_all[F + i]))]
    TP.apply(program, cands)    # keep every pair two-pass
    return p


def _plan(g: Graph, program: ad.TrainingProgram, fuse: str, reorder: bool) -> memplan.Plan:
    keep = {s.node for s in program.steps}
    for t in program.saved.values():
        p = g.producer(t.tensor)
        if p is not None:
            keep.add(p.name)
    fsteps = memplan.schedule(g, fuse, frozenset(keep))
    F = len(fsteps)
    produced_at = {t: 0 for t in g.inputs}
    for i, st in enumerate(fsteps):
        produced_at[st.output] = i
    extend: dict[str, int] = {}
    extra: list[tuple[str, int, int, int]] = []
    for key, t in program.saved.items():
        if not t.used_by:
            continue
        last = F + max(t.used_by)
        if t.kind == "mask":
            extra.append((f"mask:{t.tensor}", _align(t.nbytes), produced_at[t.tensor], last))
        elif t.kind == "lowp":      # packed right after the forward step producing it
            extra.append((f"lowp:{key}", _align(t.nbytes), produced_at[t.tensor], last))
        else:
            extend[t.tensor] = max(extend.get(t.tensor, 0), last)
    # the frozen prefix's features need not outlive the forward pass: the device app
    # copies them out at the frozen / trained boundary (tt_model_forward_saving_features)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, s in enumerate(program.steps):
        reads, writes = TP.step_io(program, i)
        for b in writes:
            r = root(program, b)
            first.setdefault(r, F + i)
            last[r] = max(last.get(r, F + i), F + i)
        for b in reads:
            r = root(program, b)
            last[r] = max(last.get(r, F + i), F + i)
            first.setdefault(r, F + i)
    for r in first:
        extra.append((f"grad:{r}", _align(program.buffers[r].nbytes), first[r], last[r]))
    if not reorder:
        end = F + len(program.steps) - 1
        for i, s in enumerate(program.steps):
            if isinstance(s, (ad.ConvUpdate, ad.FcUpdate)):
                extra.append((f"wgrad:{i}", _align(s.acc_bytes), F + i, end))
            elif isinstance(s, ad.BiasUpdate):
                extra.append((f"wgrad:{i}", _align(4 * s.k), F + i, end))
    exprs = [(i, KB.step_scratch_expr(g, s)) for i, s in enumerate(program.steps)]
    sizes = c_sizes([e for _, e in exprs if e])
    it = iter(sizes)
    for i, e in exprs:
        if e:
            extra.append((f"bscratch:{i}", _align(next(it)), F + i, F + i))
    p = memplan.plan(g, fuse, frozenset(keep), extend, extra)
    assert len(p.steps) == F
    p.program = program
    return p


def feature_tensors(g, program, plan) -> tuple[int, list[str]]:
    """(index of the first forward step that is not frozen, the tensors produced before it
    that later steps read): what a history buffer stores per sample instead of the input.
    ``plan``: a memory plan or its list of forward steps."""
    frozen = set(program.frozen_nodes)
    steps = plan if isinstance(plan, list) else plan.steps
    start = next((i for i, st in enumerate(steps) if any(n.name not in frozen for n in st.nodes)),
                 len(steps))
    produced_before = set(g.inputs) | {st.output for st in steps[:start]}
    needed: list[str] = []
    for st in steps[start:]:
        for t in st.inputs:
            if t in produced_before and t not in needed:
                needed.append(t)
    return start, needed


def history_item_bytes(g, program, plan) -> int:
    """Bytes one history-buffer entry takes on the device (runtime_c/apps/device/main.c:
    the frozen-prefix features when they are smaller than the input, else the input)."""
    needed = stores_features(g, program, plan)
    if needed:
        return sum(int(np.prod(g.tensors[t].shape)) for t in needed)
    return int(np.prod(g.tensors[g.inputs[0]].shape))


def stores_features(g, program, steps) -> list[str]:
    """The feature tensors a history buffer stores instead of the input (empty when the
    input itself is stored: the features would not be smaller)."""
    _, needed = feature_tensors(g, program, steps)
    feat = sum(int(np.prod(g.tensors[t].shape)) for t in needed)
    inp = int(np.prod(g.tensors[g.inputs[0]].shape))
    return needed if 0 < feat < inp else []


def table(p: memplan.Plan) -> list[dict]:
    """Per-step memory rows of a training plan: the forward steps (as
    :func:`compiler.memory.schedule.table`), then every backward step that emits code, with
    the gradient bytes it writes, its scratch, and the arena bytes live during it (saved
    activations, masks and gradients included). ``peak`` marks the step where the whole
    timeline peaks; ``phase`` is ``forward`` or ``backward``."""
    program = p.program
    g = p.graph
    rows = [dict(r, phase="forward", peak=False) for r in memplan.table(p)]
    F = len(rows)
    scratch = {int(name.split(":")[1]): size for name, size, _, _ in p.extra
               if name.startswith("bscratch:")}
    for i, s in enumerate(program.steps):
        kernel = KB.emitter_for(s).kernel(g, s)
        if kernel is None:          # aliases: no code, no bytes
            continue
        writes = [program.buffers[root(program, b)] for b in s.writes()]
        shape = list(writes[0].shape) if writes else []
        if len(shape) > 1 and shape[0] == 1:
            shape = shape[1:]       # per sample, as the forward rows
        rows.append({"step": F + i, "name": s.node, "kernel": kernel,
                     "output_shape": shape, "output_bytes": sum(b.nbytes for b in writes),
                     "scratch_bytes": scratch.get(i, 0), "live_bytes": p.live_all[F + i],
                     "phase": "backward", "peak": False})
    peak = max(range(len(rows)), key=lambda k: rows[k]["live_bytes"])
    rows[peak]["peak"] = True
    return rows
