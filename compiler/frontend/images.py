"""Photos -> model input: centre-crop to a square, resize, and convert to the int8 NHWC
input of the real models (``pixel - 128``).

Bundled test photos come from ``skimage.data`` (no download): ``chelsea`` (a cat),
``coffee``, ``astronaut``, ``rocket``, ...
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from compiler.ir.errors import CompilerError

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
#: names in ``skimage.data`` that are not photos (or download things)
_NOT_PHOTOS = {"data_dir", "download_all", "file_hash", "lbp_frontal_face_cascade_filename",
               "lfw_subset", "stereo_motorcycle", "binary_blobs", "cells3d", "brain",
               "nickel_solidification", "protein_transport", "vortex"}


class ImageError(CompilerError, ValueError):
    """An image argument that is neither a readable image file nor a bundled photo."""


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {img.shape}")
    return np.ascontiguousarray(img[:, :, :3])


def load_photo(name: str) -> np.ndarray:
    """A photo bundled with scikit-image (``skimage.data.<name>``) as HxWx3 uint8."""
    import skimage.data

    fn = getattr(skimage.data, name, None) if name not in _NOT_PHOTOS else None
    if fn is None or not callable(fn) or name.startswith("_"):
        raise ImageError(f"{name}: not an image file and not a photo bundled with scikit-image "
                         f"(expected a path or one of {', '.join(PHOTOS)}, ...)")
    try:
        return _rgb(fn())
    except Exception as e:  # noqa: BLE001 - a download needed, not an image array, ...
        raise ImageError(f"{name}: cannot load the scikit-image photo: {e}") from None


def load_image(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 (:class:`ImageError` naming the file when it is
    missing, a directory, empty or not an image)."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: image file not found")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory, expected an image file")
    try:
        with Image.open(p) as im:
            return _rgb(np.asarray(im.convert("RGB")))
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds (UnidentifiedImageError, OSError, ...)
        raise ImageError(f"{p}: cannot read as an image (png, jpg, bmp, ...): {e}") from None


def load_any(spec: str) -> np.ndarray:
    """An image file, or the name of a photo bundled with scikit-image, as HxWx3 uint8.
    A ``spec`` that looks like a path (a folder separator or a suffix) must be a file."""
    p = Path(spec)
    if p.exists() or "/" in spec or "\\" in spec or p.suffix:
        return load_image(p)
    return load_photo(spec)


def center_crop_resize(img: np.ndarray, size: int = 128) -> np.ndarray:
    """Centre square crop, then resize to ``size`` x ``size`` (bilinear, antialiased)."""
    img = _rgb(img)
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = img[top:top + s, left:left + s]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))


def to_int8(img: np.ndarray) -> np.ndarray:
    """uint8 RGB (HxWx3 or NxHxWx3) -> int8 ``pixel - 128``."""
    return (np.asarray(img, dtype=np.int16) - 128).astype(np.int8)


def photo_batch(names=PHOTOS, size: int = 128) -> np.ndarray:
    """Bundled photos as one int8 NHWC batch ready for the real models."""
    return np.stack([to_int8(center_crop_resize(load_photo(n), size)) for n in names])
