"""Replay of the device application's SAMPLE policy (runtime_c/apps/device/main.c) on
the numpy reference, so a stream's predictions and final weights can be checked bit for
bit against the board.

Inputs are the model-input-sized uint8 images the device saw (after its resize), in
stream order, with their labels (None = unlabelled) and no-train flags. Settings mirror
the device's: history (0 = one SGD step per trainable sample), epochs, train_every,
enabled.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler.autodiff import trainer as tr
from compiler.autodiff.program import TrainingProgram
from compiler.ir.graph import Graph
from compiler.ref.inputs import apply_lut, in_model_order, pixel_lut


@dataclass
class DeviceSettings:
    history: int = 0
    epochs: int = 1
    train_every: int = 1
    enabled: bool = True


@dataclass
class Replay:
    preds: list[int] = field(default_factory=list)
    trained: list[bool] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)


def replay(g: Graph, program: TrainingProgram, state: tr.TrainState, images, labels,
           no_train=None, settings: DeviceSettings | None = None) -> Replay:
    """Run the device policy over the stream; ``g`` is updated in place like the device."""
    s = settings or DeviceSettings()
    lut, _ = pixel_lut(g)
    out = Replay()
    hist_x, hist_y = [], []
    seen = 0
    no_train = no_train if no_train is not None else [False] * len(labels)
    for img, label, nt in zip(images, labels, no_train):
        x = apply_lut(lut, in_model_order(g, img))[None]
        # the frozen prefix's outputs never change: computed once per sample (identical
        # results, far less work in history rounds)
        f = tr.prefix_features(g, program, x)
        trainable = label is not None and not nt and s.enabled
        if trainable:
            seen += 1
            if seen % s.train_every:
                trainable = False
        if trainable and s.history == 0:
            r = tr.train_step(g, program, state, label=int(label), features=f)
            logits, trained = r.logits, True
        else:
            logits = tr.forward(g, program, features=f)[program.logits].reshape(-1)
            trained = False
            if trainable:
                hist_x.append(f)
                hist_y.append(int(label))
                if len(hist_x) >= s.history:
                    for _ in range(s.epochs):
                        for hx, hy in zip(hist_x, hist_y):
                            tr.train_step(g, program, state, label=hy, features=hx)
                    hist_x, hist_y = [], []
                    trained = True
        out.preds.append(int(np.argmax(logits)))
        out.trained.append(trained)
        out.logits.append(np.asarray(logits).copy())
    return out
