"""Two-pass input gradients: which ConvGradInput + RequantGrad pairs of a training
program the C code runs as one ``tt_conv_grad_in_two_pass_s8`` call.

That kernel computes the int32 input gradient band by band twice (pass 1: the range
statistic requant_grad needs, pass 2: the int8 values with the resulting scale), so the
whole int32 tensor (4 bytes / element) never exists: the step holds only one band of
int32 rows in scratch. The values are those of the two steps run one after the other
(the reference executes them unchanged); the cost is the input-gradient MACs twice.
When the int16 prescaled gradient feeds only that input gradient, the kernel also
prescales the rows each band reads from the int8 gradient (the Prescale step then emits
no code), so the int16 tensor does not exist either.

Modes (``plan_training(two_pass=...)``, default from the environment variable
``TT_TWO_PASS``, else ``fit``): ``off`` never, ``on`` every candidate pair, ``auto``
only the pairs whose int32 tensor would raise the peak (:func:`choose`; if that set
places into a larger arena than all pairs, up to :data:`REPAIRS` more pairs are added,
the most crowded first, else all pairs are kept); ``fit`` (the default) is ``auto`` for
the memory model (a plan search asks how small a step can be), and for a firmware build
(:func:`compiler.target.firmware.build`) ``off`` -- no recomputation, the fastest step --
whenever that build fits its RAM budget, else ``auto``. ``TT_TWO_PASS_ROWS`` (default 1) sets
the gx rows per band: more rows cost scratch but fewer kernel calls (proxyless-w0.3's
plan, training step on the emulated Cortex-M7: +30% instructions at 1 row, +15% at 4).
"""
from __future__ import annotations

import os

from compiler.autodiff import program as ad
from compiler.ir.graph import Graph
from compiler.kernels import backward as KB
from compiler.kernels.sizes import c_sizes
from compiler.memory.schedule import _align

MODES = ("fit", "auto", "on", "off")
ROWS = 1            # gx rows per band: the smallest scratch (TT_TWO_PASS_ROWS: more)
REPAIRS = 6         # auto: pairs added one by one when the chosen set places worse


def mode_of(two_pass: str | None) -> str:
    mode = two_pass or os.environ.get("TT_TWO_PASS") or "fit"
    if mode not in MODES:
        raise ValueError(f"two-pass input gradients: mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def candidates(g: Graph, program: ad.TrainingProgram) -> list[int]:
    """Indices of the RequantGrad steps whose accumulator comes from the ConvGradInput
    right before them and is read by nothing else (conv kinds with a band kernel)."""
    readers: dict[str, int] = {}
    for s in program.steps:
        for b in s.reads():
            readers[b] = readers.get(b, 0) + 1
    out = []
    for i, s in enumerate(program.steps):
        if not isinstance(s, ad.RequantGrad) or i == 0:
            continue
        c = program.steps[i - 1]
        if not isinstance(c, ad.ConvGradInput) or c.out != s.acc or readers.get(s.acc) != 1:
            continue
        if c.groups != 1 and not c.depthwise:
            continue
        if program.buffers[s.acc].alias_of is not None:
            continue
        out.append(i)
    return out


def apply(program: ad.TrainingProgram, chosen, rows: int | None = None) -> None:
    """Mark the pairs of the RequantGrad step indices ``chosen`` two-pass (``rows`` gx rows
    per band; default :data:`ROWS` or the environment's ``TT_TWO_PASS_ROWS``), the others
    not."""
    rows = rows or int(os.environ.get("TT_TWO_PASS_ROWS") or ROWS)
    if rows < 1:
        raise ValueError(f"two-pass input gradients: rows per band must be >= 1, got {rows}")
    chosen = set(chosen)
    for s in program.steps:
        if isinstance(s, (ad.ConvGradInput, ad.RequantGrad, ad.Prescale)):
            s.two_pass_rows = 0
        if isinstance(s, ad.RequantGrad):
            s.two_pass_prescale = False
    for i in chosen:
        program.steps[i].two_pass_rows = rows
        program.steps[i - 1].two_pass_rows = rows
        pre = fused_prescale(program, i)
        if pre is not None:
            pre.two_pass_rows = rows
            program.steps[i].two_pass_prescale = True


def fused_prescale(program: ad.TrainingProgram, i: int):
    """The Prescale step whose int16 output only the grad-in of pair ``i`` reads (the
    two-pass kernel then prescales band by band from the int8 gradient), else None."""
    c = program.steps[i - 1]
    pre = program.steps[i - 2] if i >= 2 else None
    if not isinstance(pre, ad.Prescale) or pre.out != c.src:
        return None
    if sum(c.src in s.reads() for s in program.steps) != 1:
        return None
    return pre


def step_io(program: ad.TrainingProgram, i: int) -> tuple[list[str], list[str]]:
    """(reads, writes) of backward step ``i`` as the C code runs it: a two-pass pair's
    ConvGradInput does nothing, its RequantGrad reads the int16 source and writes int8."""
    s = program.steps[i]
    if isinstance(s, (ad.ConvGradInput, ad.Prescale)) and s.two_pass_rows:
        return [], []
    if isinstance(s, ad.RequantGrad) and s.two_pass_rows:
        src = program.steps[i - 2].grad if s.two_pass_prescale else program.steps[i - 1].src
        return [src], s.writes()
    return s.reads(), s.writes()


def acc_bytes(program: ad.TrainingProgram, i: int) -> int:
    return program.buffers[program.steps[i].acc].nbytes


def choose(g: Graph, program: ad.TrainingProgram, on, cands: list[int]) -> list[int]:
    """The pairs (of ``cands``) to keep two-pass, from the plan ``on`` with all of them
    two-pass: a pair's steps (the grad-in step ``a``, the requant step ``b``) touch no other
    pair's buffers, so each pair's live bytes with the int32 tensor follow from ``on``'s
    (at ``a``: + the tensor + the grad-in kernel's scratch; at ``b``: + the tensor - the
    int16 source - the two-pass scratch). The lowest reachable peak is the max over the
    other steps and every pair's better option; a pair stays two-pass only where its int32
    tensor would exceed that peak."""
    F = len(on.steps)
    live = on.live_all
    fused = {i: fused_prescale(program, i) is not None for i in cands}
    own = {k for i in cands for k in (F + i - 2 * fused[i], F + i - 1, F + i)}
    scratch = {int(n.split(":")[1]): sz for n, sz, _, _ in on.extra if n.startswith("bscratch:")}
    exprs = []
    for i in cands:
        c = program.steps[i - 1]
        lit = KB.conv_literal(g, g.node(c.node))
        exprs.append(f"{KB.ConvGradInputE().band_kernel(g, c)}_scratch_bytes({lit})")
    conv_scratch = c_sizes(exprs)
    base = max((v for k, v in enumerate(live) if k not in own), default=0)
    opts = {}
    for i, scc in zip(cands, conv_scratch):
        a, b = F + i - 1, F + i
        acc = _align(acc_bytes(program, i))
        src = _align(program.buffers[ad.root(program, program.steps[i - 1].src)].nbytes)
        scc = _align(scc) if scc else 0
        if fused[i]:    # the int16 source exists only without two-pass
            c = F + i - 2
            off = max(live[c] + src, live[a] + src + acc + scc, live[b] + acc - scratch.get(i, 0))
            opts[i] = (max(live[c], live[a], live[b]), off)
        else:
            off = max(live[a] + acc + scc, live[b] + acc - src - scratch.get(i, 0))
            opts[i] = (max(live[a], live[b]), off)
    best = max([base] + [min(o) for o in opts.values()])
    return [i for i, (_, off) in opts.items() if off > best]
