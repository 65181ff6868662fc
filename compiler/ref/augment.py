"""Augmentation of history rounds (the device app's ``augment`` setting), bit-exact with
``augment_into`` in runtime_c/apps/device/main.c.

Before each training step of a round, the stored int8 input (NHWC) is mirrored
left-right when bit 0 of a 32-bit draw is set, then shifted: ``out[y, x] =
mirrored[y + dy, x + dx]``, the input zero point where that falls outside the image
(pad and crop, same size). ``dx = ((draw >> 1) & 0x7FFF) % (2s + 1) - s`` and
``dy = (draw >> 16) % (2s + 1) - s`` with ``s = augment_shift``. The draw is
``hash32(step, hash32(seed, SALT))``: ``step`` is the training step about to run (the
device's step counter), ``seed`` the ``seed`` setting, so nothing extra needs to travel
from the device for a replay.
"""
from __future__ import annotations

import numpy as np

from compiler.ref.grad_ops import hash32

SALT = 0x41554731


def default_shift(h: int, w: int) -> int:
    """The device's ``augment_shift`` at start-up: min(h, w) / 8."""
    return min(h, w) // 8


def max_shift(h: int, w: int) -> int:
    """The largest ``augment_shift`` the device takes: min(h, w) / 2."""
    return min(h, w) // 2


def draw(seed: int, step: int, shift: int) -> tuple[bool, int, int]:
    """(mirror, dx, dy) of the training step ``step``."""
    key = int(hash32(seed & 0xFFFFFFFF, SALT))
    h = int(hash32(step & 0xFFFFFFFF, key))
    span = 2 * shift + 1
    return bool(h & 1), ((h >> 1) & 0x7FFF) % span - shift, (h >> 16) % span - shift


def augment(x: np.ndarray, zero_point: int, seed: int, step: int, shift: int) -> np.ndarray:
    """The augmented copy of the int8 input ``x`` ((1,) H, W, C) for training step ``step``."""
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[0] != 1):
        raise ValueError(f"augment takes one int8 NHWC input, got {x.dtype} {x.shape}")
    img = x.reshape(x.shape[-3:])
    h, w, _ = img.shape
    if not 0 <= shift <= max_shift(h, w):
        raise ValueError(f"augment_shift {shift} out of range 0..{max_shift(h, w)} for a "
                         f"{h}x{w} input")
    mirror, dx, dy = draw(seed, step, shift)
    src = img[:, ::-1] if mirror else img
    out = np.full_like(img, np.int8(zero_point))
    ys, ye = max(0, -dy), min(h, h - dy)        # rows y with 0 <= y + dy < h
    xs, xe = max(0, -dx), min(w, w - dx)
    if ys < ye and xs < xe:
        out[ys:ye, xs:xe] = src[ys + dy:ye + dy, xs + dx:xe + dx]
    return out.reshape(x.shape)
