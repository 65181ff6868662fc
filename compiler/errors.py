"""Exceptions raised by the compiler.

Every error the compiler raises on bad *input* (an unsupported layer, a malformed model
file, a graph that breaks the IR's rules) is a :class:`CompilerError`, so callers and the
CLI can catch one class. They are raised by the front end and the IR checks, i.e. before
any code is generated.

- :class:`UnsupportedOpError`: the model is well formed but uses an operator or an
  attribute the toolchain does not implement (dilation, asymmetric padding, max pooling,
  a sigmoid, ...). The message names the op, the node and, where known, the source
  location (the ``nn.Module`` path for PyTorch, the node and its exporter scope for ONNX,
  the JSON path for the int8 model files).
- :class:`ModelFormatError`: the model file or object is malformed or inconsistent
  (missing keys or arrays, shapes that do not chain, wrong dtypes, a bad JSON format tag).
- :class:`GraphError`: an IR graph violates the IR invariants (raised by
  :meth:`compiler.ir.Graph.validate`; an importer producing one is a bug).
- :class:`QuantizationError`: post-training quantization cannot proceed (e.g. no
  calibration data, calibration data of the wrong shape).
"""
from __future__ import annotations


class CompilerError(Exception):
    """Base class of every error the compiler raises on bad input."""


class ModelFormatError(CompilerError):
    """A model file or object is malformed or internally inconsistent."""


class GraphError(CompilerError):
    """An IR graph breaks the invariants documented in :mod:`compiler.ir`."""


class QuantizationError(CompilerError):
    """Post-training quantization cannot be carried out."""


class UnsupportedOpError(CompilerError):
    """An operator or attribute the toolchain does not support.

    Attributes: ``op`` (operator or layer type, e.g. ``"Conv2d"``), ``node`` (node name in
    the source graph), ``source`` (module path / exporter scope / JSON path, or ``None``),
    ``reason`` (what exactly is unsupported).
    """

    def __init__(self, op: str, node: str, reason: str, source: str | None = None):
        self.op = op
        self.node = node
        self.reason = reason
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(f"unsupported op {op!r} at node {node!r}{where}: {reason}")
