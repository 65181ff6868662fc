"""Exceptions raised by the compiler.

Every error the compiler raises on bad *input* (an unsupported layer, a malformed model
file, a graph that breaks the IR's rules) is a :class:`CompilerError`, so callers and the
CLI can catch one class. They are raised by the front end and the IR checks, i.e. before
any code is generated.

- :class:`UnsupportedOpError`: the model is well formed but uses an operator or an
  attribute the toolchain does not implement (dilation, negative padding, a padding
  that is not directly before a conv or max pool, ...). The message names the op, the node and, where known, the source
  location (the ``nn.Module`` path for PyTorch, the node and its exporter scope for ONNX,
  the JSON path for the int8 model files).
- :class:`ModelFormatError`: the model file or object is malformed or inconsistent
  (missing keys or arrays, shapes that do not chain, wrong dtypes, a bad JSON format tag).
- :class:`GraphError`: an IR graph violates the IR invariants (raised by
  :meth:`compiler.ir.graph.Graph.validate`; an importer producing one is a bug).
- :class:`QuantizationError`: post-training quantization cannot proceed (e.g. no
  calibration data, calibration data of the wrong shape).

Entry points (``python -m compiler``, the bench scripts, the host tools) turn a
:class:`CompilerError` into one ``error: ...`` line on stderr and exit status 2, without a
traceback: :func:`report` prints the line, :func:`exit_on_error` wraps a block or a
``main`` function::

    from compiler.frontend import models
    from compiler.ir.errors import exit_on_error

    with exit_on_error():
        g = models.load(args.model)      # unknown model -> "error: unknown model ..."; exit 2

    @exit_on_error()
    def main(argv=None) -> int: ...
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

#: exit status of an entry point stopped by a :class:`CompilerError` (as argparse's)
EXIT_ERROR = 2


class CompilerError(Exception):
    """Base class of every error the compiler raises on bad input."""


class ModelFormatError(CompilerError):
    """A model file or object is malformed or internally inconsistent."""


class GraphError(CompilerError):
    """An IR graph breaks the invariants documented in :mod:`compiler.ir.graph`."""


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


def report(e: BaseException, status: int = EXIT_ERROR) -> int:
    """Print ``error: <e>`` to stderr; return ``status`` (the exit status to use)."""
    print(f"error: {e}", file=sys.stderr, flush=True)
    return status


@contextmanager
def exit_on_error(status: int = EXIT_ERROR):
    """Context manager (or decorator: ``@exit_on_error()``): a :class:`CompilerError`
    raised inside prints ``error: ...`` to stderr and exits with ``status`` (default 2)
    instead of a traceback. Other exceptions pass through."""
    try:
        yield
    except CompilerError as e:
        raise SystemExit(report(e, status)) from None
