"""Replay of the device application's SAMPLE policy (runtime_c/apps/device/main.c) on
the numpy reference, so a stream's predictions and final weights can be checked bit for
bit against the board.

Inputs are the model-input-sized uint8 images the device saw (after its resize), in
stream order, with their labels (None = unlabelled) and no-train flags. Settings mirror
the device's: history (0 = one SGD step per trainable sample), epochs, train_every,
enabled, augment and augment_shift (each step of a history round trains on its stored
input mirrored and shifted as :mod:`compiler.ref.augment` draws it from the step counter
and ``state.config.seed``; the device refuses augment when its history stores features,
the model is an mse autoencoder or its input is flat; so does this replay for the last
two).

An mse program (an autoencoder, unsupervised): the inputs are the int8 model inputs the
device received (SAMPLE_RAW; float feature vectors are quantized as the host does it,
:func:`compiler.ref.inputs.flat_samples`; uint8 images go through the pixel table as above), labels
are None, every sample is trainable, each stored with its target
(:func:`compiler.autodiff.trainer.mse_target_of`), and ``scores`` holds the anomaly score
the device reports (the mse of the prediction's output against the target).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler.autodiff import trainer as tr
from compiler.autodiff.program import TrainingProgram
from compiler.ir.graph import Graph
from compiler.ref import augment as aug
from compiler.ref import grad_ops as rgo
from compiler.ref.inputs import apply_lut, flat_samples, in_model_order, pixel_lut


@dataclass
class DeviceSettings:
    history: int = 0
    epochs: int = 1
    train_every: int = 1
    enabled: bool = True
    augment: bool = False
    augment_shift: int | None = None    # None: the device's default, min(in_h, in_w) // 8


@dataclass
class Replay:
    preds: list[int] = field(default_factory=list)
    trained: list[bool] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def replay(g: Graph, program: TrainingProgram, state: tr.TrainState, images, labels,
           no_train=None, settings: DeviceSettings | None = None) -> Replay:
    """Run the device policy over the stream; ``g`` is updated in place like the device."""
    s = settings or DeviceSettings()
    lut, _ = pixel_lut(g)
    out = Replay()
    hist_x, hist_y = [], []
    seen = 0
    no_train = no_train if no_train is not None else [False] * len(labels)
    mse = program.loss == "mse"
    want = g.tensors[g.inputs[0]].shape
    if s.augment and mse:
        raise ValueError("augment: not for an mse model (the device refuses it)")
    if s.augment and (len(want) != 4 or want[1] == want[2] == 1):
        raise ValueError(f"augment: the input {tuple(want)} is not an image (the device refuses it)")
    shift = s.augment_shift
    if s.augment and shift is None:
        shift = aug.default_shift(want[1], want[2])
    zero = g.tensors[g.inputs[0]].zero_point
    for img, label, nt in zip(images, labels, no_train):
        img = np.asarray(img)
        if img.dtype == np.int8:
            x = img.reshape(want)
        elif img.dtype.kind == "f":     # float features: the host's raw int8 sample of them
            x = flat_samples(g, img.reshape(1, -1))
        else:
            x = apply_lut(lut, in_model_order(g, img))[None]
        # the frozen prefix's outputs never change: computed once per sample (identical
        # results, far less work in history rounds)
        f = tr.prefix_features(g, program, x)
        if mse and label is not None:
            raise ValueError("an mse (unsupervised) stream has no labels")
        target = tr.mse_target_of(program, x) if mse else None
        trainable = (mse or label is not None) and not nt and s.enabled
        if trainable:
            seen += 1
            if seen % s.train_every:
                trainable = False
        if trainable and s.history == 0:
            r = tr.train_step(g, program, state, label=int(label or 0), features=f, target=target)
            logits, trained = r.logits, True
        else:
            logits = tr.forward(g, program, features=f)[program.logits].reshape(-1)
            trained = False
            if trainable:
                hist_x.append(x if s.augment else f)
                hist_y.append((int(label or 0), target))
                if len(hist_x) >= s.history:
                    for _ in range(s.epochs):
                        for hx, (hy, ht) in zip(hist_x, hist_y):
                            if s.augment:
                                xa = aug.augment(hx, zero, state.config.seed, state.step, shift)
                                hx = tr.prefix_features(g, program, xa)
                            tr.train_step(g, program, state, label=hy, features=hx, target=ht)
                    hist_x, hist_y = [], []
                    trained = True
        if mse:
            out.scores.append(rgo.mse_grad(logits, target, program.steps[0].s_y)[1])
        out.preds.append(0 if mse else int(np.argmax(logits)))
        out.trained.append(trained)
        out.logits.append(np.asarray(logits).copy())
    return out
