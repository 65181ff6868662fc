"""Locating and loading models by name or path.

The three real int8 models (``mcunet-5fps``, ``mbv2-w0.35``, ``proxyless-w0.3``) live
in ``shared/models`` next to the repository (``<repo>/../shared/models``); the
``TT_MODELS_DIR`` environment variable overrides that directory.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelFormatError
from .ir import Graph

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
ENV_VAR = "TT_MODELS_DIR"


def models_dir() -> Path:
    """Directory of the real int8 models (``$TT_MODELS_DIR`` or ``<repo>/../shared/models``)."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "models"


def resolve(model: str | os.PathLike) -> Path:
    """A model argument (real-model name, ``.json`` or ``.onnx`` path) -> existing file."""
    s = str(model)
    p = Path(s)
    if p.suffix.lower() in (".json", ".onnx"):
        if not p.is_file():
            raise ModelFormatError(f"model file not found: {p}")
        return p
    cand = models_dir() / f"{s}.json"
    if cand.is_file():
        return cand
    known = ", ".join(REAL_MODELS)
    raise ModelFormatError(f"unknown model {s!r}: expected one of {known} (looked in "
                           f"{models_dir()}, set ${ENV_VAR} to change), or a .json/.onnx file")


def load(model: str | os.PathLike, calibration=None) -> Graph:
    """Load a model into IR.

    - real-model name or ``.json``: the int8 model file, as-is (int8 graph);
    - ``.onnx``: a QDQ int8 model (int8 graph) or a float model (float graph, or int8 if
      ``calibration`` samples in the ONNX input layout are given).
    PyTorch modules are imported with :func:`compiler.frontend.torch_fx.import_module`.
    """
    path = resolve(model)
    if path.suffix.lower() == ".onnx":
        from .frontend.onnx_model import load_onnx
        return load_onnx(path, calibration=calibration)
    from .frontend.tte_json import load_tte
    return load_tte(path)
