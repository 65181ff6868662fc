"""Photos -> model input: centre-crop to a square, resize, and convert to the int8 NHWC
input of the real models (``pixel - 128``).

Bundled test photos come from ``skimage.data`` (no download): ``chelsea`` (a cat),
``coffee``, ``astronaut``, ``rocket``, ...
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


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

    fn = getattr(skimage.data, name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"skimage.data has no image {name!r}")
    return _rgb(fn())


def load_image(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8."""
    with Image.open(path) as im:
        return _rgb(np.asarray(im.convert("RGB")))


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
