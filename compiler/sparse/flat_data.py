"""Flat feature data for ``plan --loss mse`` (an autoencoder / regression model).

``npz:FILE`` with an array ``x``: (N, F) feature vectors (float or uint8) in the model's
float input units, F = the model's input size (or (N, *input shape)); an array ``y`` of
labels may be there and is ignored. The vectors become the int8 samples the device
receives with :func:`compiler.ref.inputs.flat_samples`."""
from __future__ import annotations

import numpy as np

from compiler.ir.graph import Graph
from compiler.ref.inputs import flat_samples
from compiler.sparse.plan import PlanError


def load_features(spec: str, g: Graph) -> np.ndarray:
    """The int8 model inputs (N, *input shape) of ``spec`` for ``g``; a clear
    :class:`PlanError` for anything else (image data sets, a wrong feature count, ...)."""
    shape = tuple(int(d) for d in g.tensors[g.inputs[0]].shape[1:])
    size = int(np.prod(shape))
    want = f"npz:FILE whose array x is (N, {size}) feature vectors in the model's float input units"
    kind, sep, path = str(spec).partition(":")
    if kind.strip().lower() != "npz" or not sep or not path:
        raise PlanError(f"--data {spec}: plan --loss mse learns to reconstruct flat feature "
                        f"vectors: expected {want} (image data sets do not apply)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files:
                raise PlanError(f"--data {spec}: {path} has no array 'x' (it has: "
                                f"{', '.join(z.files) or 'none'}); expected {want}")
            x = z["x"]
    except PlanError:
        raise
    except Exception as e:  # noqa: BLE001 - missing file, zip and format errors of every kind
        raise PlanError(f"--data {spec}: cannot read {path}: {e}") from None
    if x.dtype.kind not in "fiu" or x.ndim < 2 or len(x) == 0 or x[0].size != size:
        raise PlanError(f"--data {spec}: x is {x.dtype} {tuple(x.shape)}, but {g.name} takes "
                        f"{size} features per sample (input {shape}): expected {want}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise PlanError(f"--data {spec}: x has NaN or infinite values")
    return flat_samples(g, x.reshape(len(x), -1))
