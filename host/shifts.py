"""Distribution shifts applied on the host to a sample before it is streamed.

Each shift maps a uint8 image of shape (H, W) or (H, W, C) to a uint8 image of the same
shape. All of them are deterministic: the fixed ones (spotlight, brightness, rotation)
are plain functions of the image, and the random one (noise) draws from a generator
seeded by (seed, sample index), so a sample gets exactly the same noise in every pass
of a stream (the frozen baseline and the adapting run see identical inputs).

Specification strings (``--shift`` of ``python -m host.stream``): ``NAME:ARGS`` where
ARGS is a comma-separated list of values, positional (in the order given below) or
``key=value``; several shifts are combined with ``+`` (or by repeating ``--shift``) and
applied left to right::

    spotlight:radius=32,gain=4,corner=ul     a bright spot (the lighting shift of the
                                             incremental-training study)
    brightness:0.6                           global brightness factor
    rotation:15                              rotate 15 degrees counter-clockwise
    noise:8                                  additive Gaussian noise, std 8 (0..255 scale)
    brightness:0.7+noise:4                   both, in that order

Shifts
------
``spotlight(radius, gain=4, corner="ul", add=0)``
    Pixels whose centre lies within ``radius`` pixels (Euclidean distance, inclusive)
    of the centre of the ``corner`` pixel become ``clip(rint(x * gain + add), 0, 255)``;
    the others are unchanged. ``corner`` is one of ``ul ur ll lr`` (upper/lower,
    left/right) or ``c`` (the image centre). ``radius`` is in pixels of the image as
    sent, or a percentage of its longer side (``radius=50%``). ``add`` (default 0)
    brightens dark pixels too, which a pure gain cannot (MNIST's black background).
``brightness(factor)``
    ``clip(rint(x * factor), 0, 255)`` on every pixel.
``rotation(degrees, fill=0)``
    Counter-clockwise rotation (as displayed, y pointing down) about the image centre
    ``((H-1)/2, (W-1)/2)``, bilinear interpolation, pixels that come from outside the
    image take ``fill``. Multiples of 90 degrees on square images are exact
    (``np.rot90``).
``noise(std)``
    ``clip(rint(x + N(0, std^2)), 0, 255)``, one draw per pixel and channel, from
    ``numpy.random.default_rng([seed, index])``.

Rounding is numpy's ``rint`` (half to even) everywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CORNERS = ("ul", "ur", "ll", "lr", "c")


class ShiftError(ValueError):
    """A shift specification that cannot be parsed or has invalid parameters."""


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _check(img) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise ValueError(f"uint8 image of shape (H, W) or (H, W, C) expected, got "
                         f"{a.dtype} {a.shape}")
    return a


# ---- the shifts as functions ------------------------------------------------------------
def spotlight_mask(h: int, w: int, radius: float, corner: str = "ul") -> np.ndarray:
    """Boolean (h, w) mask of the pixels within ``radius`` of ``corner``'s pixel centre."""
    if corner not in CORNERS:
        raise ShiftError(f"spotlight corner {corner!r}: one of {', '.join(CORNERS)}")
    cy = {"ul": 0.0, "ur": 0.0, "ll": h - 1.0, "lr": h - 1.0, "c": (h - 1) / 2}[corner]
    cx = {"ul": 0.0, "ur": w - 1.0, "ll": 0.0, "lr": w - 1.0, "c": (w - 1) / 2}[corner]
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= float(radius) ** 2


def spotlight(img, radius: float, gain: float = 4.0, corner: str = "ul",
              add: float = 0.0) -> np.ndarray:
    a = _check(img)
    m = spotlight_mask(a.shape[0], a.shape[1], radius, corner)
    out = a.copy()
    out[m] = _u8(a[m].astype(np.float64) * gain + add)
    return out


def brightness(img, factor: float) -> np.ndarray:
    return _u8(_check(img).astype(np.float64) * factor)


def rotation(img, degrees: float, fill: float = 0.0) -> np.ndarray:
    a = _check(img)
    h, w = a.shape[:2]
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    # inverse map of a counter-clockwise (on screen) rotation
    sx = np.round(dx * c - dy * s + cx, 9)
    sy = np.round(dx * s + dy * c + cy, 9)
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = sx - x0, sy - y0
    src = a.astype(np.float64)
    if src.ndim == 2:
        src = src[:, :, None]

    def px(y, x):
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        v = src[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)]
        return np.where(ok[..., None], v, float(fill))

    fx, fy = fx[..., None], fy[..., None]
    v = (px(y0, x0) * (1 - fx) * (1 - fy) + px(y0, x0 + 1) * fx * (1 - fy)
         + px(y0 + 1, x0) * (1 - fx) * fy + px(y0 + 1, x0 + 1) * fx * fy)
    out = _u8(v)
    return out[:, :, 0] if a.ndim == 2 else out


def noise(img, std: float, rng: np.random.Generator) -> np.ndarray:
    a = _check(img)
    return _u8(a.astype(np.float64) + rng.normal(0.0, std, a.shape))


# ---- specifications -----------------------------------------------------------------------
# name -> (parameter names in positional order, defaults, required names)
_PARAMS = {
    "spotlight": (("radius", "gain", "corner", "add"), {"gain": 4.0, "corner": "ul", "add": 0.0},
                  ("radius",)),
    "brightness": (("factor",), {}, ("factor",)),
    "rotation": (("degrees", "fill"), {"fill": 0.0}, ("degrees",)),
    "noise": (("std",), {}, ("std",)),
}
NAMES = tuple(_PARAMS)


@dataclass(frozen=True)
class Shift:
    """One parsed shift. ``params`` holds numbers (and ``corner``); a spotlight radius
    given in percent is kept as ``radius_pct`` and resolved per image."""
    name: str
    params: dict = field(default_factory=dict)

    def __call__(self, img, rng: np.random.Generator | None = None) -> np.ndarray:
        p = dict(self.params)
        if self.name == "spotlight":
            a = _check(img)
            if "radius_pct" in p:
                p["radius"] = p.pop("radius_pct") / 100.0 * max(a.shape[0], a.shape[1])
            return spotlight(a, **p)
        if self.name == "brightness":
            return brightness(img, **p)
        if self.name == "rotation":
            return rotation(img, **p)
        if self.name == "noise":
            if rng is None:
                raise ValueError("the noise shift needs a random generator")
            return noise(img, p["std"], rng)
        raise ShiftError(f"unknown shift {self.name!r}")

    def describe(self) -> str:
        p = dict(self.params)
        if "radius_pct" in p:
            p["radius"] = f"{p.pop('radius_pct'):g}%"
        return self.name + ":" + ",".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


def _number(name: str, key: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ShiftError(f"shift {name}: {key}={text!r} is not a number") from None
    if not math.isfinite(v):
        raise ShiftError(f"shift {name}: {key}={text!r} is not finite")
    return v


def parse_one(spec: str) -> Shift:
    """``"spotlight:radius=32,gain=4,corner=ul"`` -> Shift (see the module docstring)."""
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    name = name.strip().lower()
    if name not in _PARAMS:
        raise ShiftError(f"unknown shift {name!r} in {spec!r}; known: {', '.join(NAMES)}")
    order, defaults, required = _PARAMS[name]
    got: dict = {}
    positional = True
    for i, item in enumerate(x.strip() for x in rest.split(",") if x.strip()):
        if "=" in item:
            key, _, val = item.partition("=")
            key, val = key.strip().lower(), val.strip()
            positional = False
            if key not in order:
                raise ShiftError(f"shift {name}: unknown parameter {key!r}; "
                                 f"parameters: {', '.join(order)}")
        else:
            if not positional or i >= len(order):
                raise ShiftError(f"shift {name}: unexpected value {item!r} in {spec!r}")
            key, val = order[i], item
        if key in got:
            raise ShiftError(f"shift {name}: {key} given twice")
        got[key] = val
    for key in required:
        if key not in got:
            raise ShiftError(f"shift {name} needs {key} (e.g. {name}:{key}=...)")
    params: dict = {}
    for key in order:
        val = got.get(key, defaults.get(key))
        if isinstance(val, str):
            if key == "corner":
                val = val.lower()
                if val not in CORNERS:
                    raise ShiftError(f"shift spotlight: corner={val!r}, one of {', '.join(CORNERS)}")
            elif key == "radius" and val.endswith("%"):
                pct = _number(name, key, val[:-1])
                if pct < 0:
                    raise ShiftError("shift spotlight: radius must be >= 0")
                params["radius_pct"] = pct
                continue
            else:
                val = _number(name, key, val)
        params[key] = val
    if name == "spotlight" and params.get("radius", 0) < 0:
        raise ShiftError("shift spotlight: radius must be >= 0")
    if name == "brightness" and params["factor"] < 0:
        raise ShiftError("shift brightness: factor must be >= 0")
    if name == "noise" and params["std"] < 0:
        raise ShiftError("shift noise: std must be >= 0")
    if name == "rotation" and not 0 <= params["fill"] <= 255:
        raise ShiftError("shift rotation: fill must be in 0..255")
    return Shift(name, params)


class ShiftChain:
    """Shifts applied left to right; ``chain(img, index)`` is deterministic given
    ``seed`` and the sample's index (its position in the dataset)."""

    def __init__(self, shifts=(), seed: int = 0):
        self.shifts = list(shifts)
        self.seed = int(seed)

    @classmethod
    def parse(cls, specs, seed: int = 0) -> "ShiftChain":
        """``specs``: strings, each one shift or several joined with ``+``."""
        if isinstance(specs, str):
            specs = [specs]
        out = []
        for s in specs or ():
            out += [parse_one(p) for p in s.split("+") if p.strip()]
        return cls(out, seed)

    def __bool__(self) -> bool:
        return bool(self.shifts)

    def __call__(self, img, index: int = 0) -> np.ndarray:
        a = _check(img)
        if not self.shifts:
            return a
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, int(index)])
        for s in self.shifts:
            a = s(a, rng)
        return a

    def describe(self) -> str:
        return " + ".join(s.describe() for s in self.shifts) if self.shifts else "none"
