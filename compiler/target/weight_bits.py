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


def apply(g: Graph, spec, prog=None):
    """``spec`` = (bits, layer globs or None) as :func:`compiler.quantize.codebook.
    parse_weight_bits` returns it (None: 8 bits) -> (graph, program, per-layer rows)."""
    bits, layers = spec if spec is not None else (8, None)
    if bits == 8:
        return g, prog, []
    g4, rows = CB.pack_graph(g, bits, layers, keep=program_weight_nodes(prog))
    if prog is not None:
        prog = ad.build_program(g4, prog.trainable, loss=prog.loss)
    return g4, prog, rows
