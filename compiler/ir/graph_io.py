"""Saving and loading a compiler graph (int8 or float) as ``<name>.json`` + ``<name>.npz``.

The JSON holds the structure (tensors, nodes with their attributes and sources, inputs,
outputs, metadata) and the format tag :data:`FORMAT`; every parameter array lives in the
``.npz`` beside it under the key ``<node index>/<param name>``. A saved graph loads back
with the same :meth:`compiler.ir.graph.Graph.sha256`, so a plan made for it, or a firmware
built from it, is recognised. Every command that takes a model takes such a file
(``compiler.frontend.models.load`` tells it from a real-model file by its format tag); the demo
saves its pre-trained model this way so ``python -m compiler plan`` can plan for it.
"""
from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from compiler.ir.errors import GraphError, ModelFormatError
from compiler.ir.graph import Graph, Node, Tensor

FORMAT = "tt-graph/1"


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, tuple):
        return {"tuple": [_jsonable(x) for x in v]}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, float) and not np.isfinite(v):
        return {"float": repr(v)}
    return v


def _restore(v):
    if isinstance(v, dict):
        if set(v) == {"tuple"}:
            return tuple(_restore(x) for x in v["tuple"])
        if set(v) == {"float"}:
            return float(v["float"])
        return {k: _restore(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_restore(x) for x in v]
    return v


def save(g: Graph, path) -> Path:
    """Write ``path`` (``.json``) and its ``.npz``; returns the JSON path."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = path.with_suffix(".json")
    arrays = {}
    nodes = []
    for i, n in enumerate(g.nodes):
        for k, a in n.params.items():
            arrays[f"{i}/{k}"] = np.asarray(a)
        nodes.append({"op": n.op, "name": n.name, "inputs": list(n.inputs),
                      "outputs": list(n.outputs), "attrs": _jsonable(dict(n.attrs)),
                      "params": sorted(n.params), "source": n.source})
    doc = {"format": FORMAT, "name": g.name, "sha256": g.sha256(),
           "inputs": list(g.inputs), "outputs": list(g.outputs),
           "tensors": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                        "scale": None if t.scale is None else float(t.scale),
                        "zero_point": None if t.zero_point is None else int(t.zero_point)}
                       for t in g.tensors.values()],
           "nodes": nodes, "metadata": _jsonable(dict(g.metadata))}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".npz"), **arrays)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def is_graph_file(path) -> bool:
    """True when ``path`` is a JSON file written by :func:`save`."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return FORMAT.encode() in head


def load(path) -> Graph:
    """Read a graph written by :func:`save` (checks its recorded sha256)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"cannot read graph file {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise ModelFormatError(f"{path} is not a saved graph (format {fmt!r}, "
                               f"expected {FORMAT!r})")
    npz = path.with_suffix(".npz")
    try:
        z = np.load(npz, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive (a single .npy array?)")
        with z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise ModelFormatError(f"cannot read the arrays of {path}: {npz}: {e}") from None
    try:
        g = Graph(doc["name"], metadata=_restore(doc.get("metadata", {})))
        for t in doc["tensors"]:
            g.tensors[t["name"]] = Tensor(t["name"], tuple(t["shape"]), t["dtype"], t["scale"],
                                          t["zero_point"])
        g.inputs, g.outputs = list(doc["inputs"]), list(doc["outputs"])
        for i, n in enumerate(doc["nodes"]):
            params = {k: arrays[f"{i}/{k}"] for k in n["params"]}
            g.nodes.append(Node(n["op"], n["name"], list(n["inputs"]), list(n["outputs"]),
                                _restore(n["attrs"]), params, n.get("source")))
        g.validate()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, GraphError) as e:
        raise ModelFormatError(f"malformed graph file {path}: {type(e).__name__}: {e}") from None
    if doc.get("sha256") and g.sha256() != doc["sha256"]:
        raise ModelFormatError(f"graph file {path}: its arrays do not match the sha256 it "
                               "records (edited or mixed-up .npz?)")
    return g
