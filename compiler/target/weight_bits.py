"""``--weight-bits``: which layers of a build are stored at 4 bits.

Frozen layers only: a layer whose weights the training program reads (trained, or on
the gradient path: its input gradient multiplies by its weights) keeps int8 weights;
every other packable layer gets a codebook (:mod:`compiler.quantize.codebook`). The
training program is rebuilt on the packed graph (the frozen layers' new weights and
requantization change what the trained layers see, not which steps run).
"""
from __future__ import annotations

from compiler.autodiff import program as ad
from compiler.ir.graph import Graph
from compiler.quantize import codebook as CB


def program_weight_nodes(prog) -> set[str]:
    """Layers whose weights a training program reads or writes."""
    if prog is None:
        return set()
    return {s.node for s in prog.steps if getattr(s, "node", None)} | set(prog.trainable)


#: bytes of output rows a packed conv that runs alone (not in a fused block) buffers per
#: kernel call
ROW_BUFFER_BYTES = 2048


def set_rows(g4: Graph, fuse: str = "auto", g8: Graph | None = None) -> None:
    """``weight_rows`` of the packed convs that run alone in the forward schedule: as many
    output rows per int8 kernel call (fewer calls, each preparing the chunk's weights
    once) as fit in ROW_BUFFER_BYTES and, given the int8 graph ``g8``, under its arena
    beside what is live at that step; those in fused blocks keep 1 (the block calls them
    a few rows at a time)."""
    from compiler.kernels import forward as KF
    from compiler.memory import schedule as memplan
    room = {}
    if g8 is not None:
        p8 = memplan.plan(g8, fuse)
        room = {st.name: p8.arena_bytes - (p8.live_bytes[i] - st.scratch)
                for i, st in enumerate(p8.steps)}
    for st in memplan.schedule(g4, fuse):
        if st.kind != "conv":
            continue
        n = st.nodes[0]
        if KF.is_packed(n) and not n.is_depthwise:
            y = g4.tensors[n.output].shape
            per_row = y[2] * KF.packed_chunk(g4, n)
            r = max(1, min(y[1], ROW_BUFFER_BYTES // per_row))
            if st.name in room:
                n.attrs.pop("weight_rows", None)
                one = KF.scratch(g4, n)           # with one row
                while r > 1 and one + -(-(r - 1) * per_row // 8) * 8 > room[st.name]:
                    r //= 2
            n.attrs["weight_rows"] = int(r)


def fit_arena(g4: Graph, g8: Graph, rows: list[dict], fuse: str = "auto",
              rounds: int = 64) -> list[dict]:
    """Keep the forward arena of packed ``g4`` within that of its int8 graph ``g8``: while
    the packed plan is larger, the packed layers of its fullest step with packed layers
    buffer fewer rows (``weight_rows`` halved) or unpack fewer output channels at a time
    (``weight_chunk`` halved, down to 2), and when that is not enough
    the one whose unpacking costs most goes back to int8 (its row in ``rows`` then says
    ``int8 (arena)``). Returns ``rows``."""
    from compiler.kernels import forward as KF
    from compiler.memory import schedule as memplan
    target = memplan.plan(g8, fuse).arena_bytes
    for _ in range(rounds):
        p = memplan.plan(g4, fuse)
        if p.arena_bytes <= target:
            break
        over = sorted(range(len(p.steps)), key=lambda i: -p.live_bytes[i])
        packed = next(([n for n in p.steps[i].nodes if KF.is_packed(n)] for i in over
                       if any(KF.is_packed(n) for n in p.steps[i].nodes)), [])
        if not packed:
            break
        shrink = [n for n in packed if n.op == "fully_connected" or not n.is_depthwise]
        shrink = [n for n in shrink if KF.packed_chunk(g4, n) > 2 or KF.packed_rows(n) > 1]
        if shrink:
            n = max(shrink, key=lambda n: KF.scratch(g4, n))
            if KF.packed_rows(n) > 1:
                n.attrs["weight_rows"] = KF.packed_rows(n) // 2
            else:
                n.attrs["weight_chunk"] = max(2, (KF.packed_chunk(g4, n) // 2) & ~1)
            continue
        n = max(packed, key=lambda n: KF.scratch(g4, n) - KF.scratch(g8, g8.node(n.name)))
        n.params = {k: v.copy() for k, v in g8.node(n.name).params.items()}
        n.attrs.pop("weight_chunk", None)
        n.attrs.pop("weight_rows", None)
        for r in rows:
            if r["layer"] == n.name:
                r.update(kind="int8 (arena)", packed_bytes=r["int8_bytes"])
    return rows


def apply(g: Graph, spec, prog=None, fuse: str | None = "auto"):
    """``spec`` = (bits, layer globs or None) as :func:`compiler.quantize.codebook.
    parse_weight_bits` returns it (None: 8 bits) -> (graph, program, per-layer rows).
    ``fuse``: the forward plan's fusion, whose arena the packed layers must not grow
    (:func:`fit_arena`; None: not checked)."""
    bits, layers = spec if spec is not None else (8, None)
    if bits == 8:
        return g, prog, []
    g4, rows = CB.pack_graph(g, bits, layers, keep=program_weight_nodes(prog))
    if fuse is not None:
        set_rows(g4, fuse, g)
        fit_arena(g4, g, rows, fuse)
    if prog is not None:
        prog = ad.build_program(g4, prog.trainable, loss=prog.loss)
    return g4, prog, rows
