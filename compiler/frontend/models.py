"""Locating and loading models by name or path.

The three real int8 models (``mcunet-5fps``, ``mbv2-w0.35``, ``proxyless-w0.3``) live
in ``models/`` at the repository root; the ``TT_MODELS_DIR`` environment variable
overrides that directory.

Every problem with a model argument (unknown name, missing file, a ``.json`` without its
``.npz``, an unreadable or corrupt file) raises :class:`compiler.ir.errors.ModelFormatError`;
entry points turn it into one ``error: ...`` line and exit status 2 with
:func:`compiler.ir.errors.exit_on_error`. :func:`require` checks model arguments up front,
before any heavy work.
"""
from __future__ import annotations

import os
from pathlib import Path

from compiler import paths
from compiler.ir.errors import GraphError, ModelFormatError
from compiler.ir.graph import Graph

REAL_MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
ENV_VAR = "TT_MODELS_DIR"


def models_dir() -> Path:
    """Directory of the real int8 models (``$TT_MODELS_DIR`` or ``<repo>/models``)."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else paths.MODELS


def _with_arrays(path: Path) -> Path:
    """``path`` (a model ``.json``) if its ``.npz`` is beside it."""
    npz = path.with_suffix(".npz")
    if not npz.is_file():
        raise ModelFormatError(f"model arrays not found: {npz} (a model .json needs its .npz "
                               "beside it)")
    return path


def resolve(model: str | os.PathLike) -> Path:
    """A model argument (real-model name, ``.json`` or ``.onnx`` path) -> existing file.
    A ``.json`` must have its ``.npz`` beside it."""
    s = str(model)
    p = Path(s)
    if p.suffix.lower() in (".json", ".onnx"):
        if p.is_dir():
            raise ModelFormatError(f"{p}: is a directory, expected a model file (.json or .onnx)")
        if not p.is_file():
            raise ModelFormatError(f"model file not found: {p}")
        return _with_arrays(p) if p.suffix.lower() == ".json" else p
    cand = models_dir() / f"{s}.json"
    if cand.is_file():
        return _with_arrays(cand)
    known = ", ".join(REAL_MODELS)
    raise ModelFormatError(f"unknown model {s!r}: expected one of {known} (looked in "
                           f"{models_dir()}, set ${ENV_VAR} to change), or a .json/.onnx file")


def require(*model_args: str | os.PathLike) -> list[Path]:
    """Resolve every model argument (see :func:`resolve`) before any work is done: the
    first bad one raises :class:`ModelFormatError`."""
    return [resolve(m) for m in model_args]


def name_of(model: str | os.PathLike) -> str:
    """The short name of a model argument: ``mbv2-w0.35`` -> ``mbv2-w0.35``,
    ``path/to/net.onnx`` -> ``net`` (what ``build`` names its default output folder)."""
    s = str(model)
    if ".py:" in s:        # FILE.py:FACTORY -> FILE-FACTORY
        path, _, fn = s.rpartition(":")
        return f"{Path(path).stem}-{fn}"
    p = Path(s)
    return p.stem if p.suffix.lower() in (".json", ".onnx", ".pt2") else p.name


def load(model: str | os.PathLike, calibration=None) -> Graph:
    """Load a model into IR.

    - real-model name or ``.json``: the int8 model file, as-is (int8 graph), or a graph
      saved by :func:`compiler.ir.graph_io.save` (e.g. a model with a pre-trained head);
    - ``.onnx``: a QDQ int8 model (int8 graph) or a float model (float graph, or int8 if
      ``calibration`` samples in the ONNX input layout are given).
    PyTorch modules are imported with :func:`compiler.frontend.torch_fx.import_module`.
    Raises :class:`ModelFormatError` (a :class:`CompilerError`) for any bad model argument
    or file.
    """
    path = resolve(model)
    if path.stat().st_size == 0:
        raise ModelFormatError(f"{path}: the model file is empty, expected a model "
                               f"({'ONNX' if path.suffix.lower() == '.onnx' else 'JSON'})")
    try:
        g = _load(path, calibration)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, OverflowError) as e:
        if calibration is not None:   # may be the calibration data's fault: as it is
            raise
        # an importer meeting a malformed file it does not check field by field
        raise ModelFormatError(f"{path}: malformed model file ({type(e).__name__}: {e})") from None
    except (ModelFormatError, GraphError) as e:
        if str(path) in str(e) or path.name in str(e):
            raise
        raise ModelFormatError(f"{path}: {e}") from None    # name the file
    check_usable(g, path)
    return g


def check_usable(g: Graph, where) -> Graph:
    """A model the toolchain can compile: at least one node, one input and one output
    (an empty ONNX file, for one, parses as a model without any)."""
    missing = [what for what, n in (("nodes", len(g.nodes)), ("input", len(g.inputs)),
                                    ("output", len(g.outputs))) if n == 0]
    if missing:
        raise ModelFormatError(f"{where}: a model with no {' / no '.join(missing)}: expected a "
                               "network with an input, at least one layer and an output")
    return g


def _load(path: Path, calibration) -> Graph:
    if path.suffix.lower() == ".onnx":
        from compiler.frontend.onnx_model import load_onnx
        return load_onnx(path, calibration=calibration)
    from compiler.ir import graph_io
    if graph_io.is_graph_file(path):
        return graph_io.load(path)
    from compiler.frontend.tte_json import load_tte
    return load_tte(path)
