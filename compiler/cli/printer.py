"""Human-readable listing of an IR graph: one line per node with its output shape,
attributes, output quantization parameters, parameter count and MACs."""
from __future__ import annotations

import math

from compiler.ir.graph import Graph, Node


def _fmt_shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def _fmt_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 10_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def _fmt_act(node: Node) -> str:
    lo, hi = node.attrs.get("act_min"), node.attrs.get("act_max")
    if lo is None:
        return ""
    if isinstance(lo, float) or isinstance(hi, float):
        if lo == -math.inf and hi == math.inf:
            return ""
        return f" clamp[{lo:g},{hi:g}]"
    if (lo, hi) == (-128, 127):
        return ""
    return f" clamp[{lo},{hi}]"


def node_summary(node: Node) -> str:
    """Short attribute string, e.g. ``k3x3 s2 p1 dw`` or ``eps=1e-05``."""
    a = node.attrs
    if "kernel" in a:       # any windowed op: convolutions, pooling
        kh, kw = a["kernel"]
        g = a.get("groups", 1)
        kind = " dw" if node.is_depthwise else (f" g{g}" if g > 1 else "")
        return f"k{kh}x{kw} s{a['stride']} p{a['pad']}{kind}{_fmt_act(node)}"
    if node.traits.clamps:
        return _fmt_act(node).strip()
    if node.op == "clip":
        return f"[{a['min']:g},{a['max']:g}]"
    if node.op == "batch_norm":
        return f"eps={a['eps']:g}"
    return ""


def format_graph(g: Graph) -> str:
    """The graph as a table (inputs, nodes, outputs) followed by totals."""
    kind = "int8" if g.is_int8 else "float"
    lines = [f"graph {g.name}  ({kind}, {len(g.nodes)} nodes, sha256 {g.sha256()[:16]})"]
    for t in g.inputs:
        ti = g.tensors[t]
        lines.append(f"  input  {t}: {_fmt_shape(ti.shape)} {ti.dtype} {ti.qparams()}".rstrip())
    for k, v in g.metadata.items():
        if k != "notes":
            lines.append(f"  {k}: {v}")
    rows = [("#", "op", "name", "inputs", "output shape", "attrs", "out qparams", "params", "MACs")]
    for i, n in enumerate(g.nodes):
        out = g.tensors[n.output]
        rows.append((str(i), n.op, n.name, ", ".join(n.inputs), _fmt_shape(out.shape),
                     node_summary(n), out.qparams(), _fmt_count(g.param_count(n)),
                     _fmt_count(g.node_macs(n))))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    widths[3] = min(widths[3], 40)
    for r in rows:
        cells = list(r)
        if len(cells[3]) > 40:
            cells[3] = cells[3][:37] + "..."
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    for t in g.outputs:
        to = g.tensors[t]
        lines.append(f"  output {t}: {_fmt_shape(to.shape)} {to.dtype} {to.qparams()}".rstrip())
    for note in g.metadata.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def summary(g: Graph) -> dict:
    """Totals for reports: parameter count, MACs (total, classifier, backbone)."""
    head = g.classifier_nodes()
    head_macs = sum(g.node_macs(n) for n in head)
    total = g.macs()
    return {
        "name": g.name,
        "dtype": "int8" if g.is_int8 else "float32",
        "nodes": len(g.nodes),
        "params": g.param_count(),
        "macs": total,
        "classifier_macs": head_macs,
        "backbone_macs": total - head_macs,
        "sha256": g.sha256(),
    }
