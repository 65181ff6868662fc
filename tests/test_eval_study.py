"""The building blocks of `make eval` (eval/study.py), cheaply: its prequential loop is the
device app's SAMPLE policy (predictions and trained weights equal the reference replay
of compiler.autodiff.device_replay), the 3*max/4 range function and the reference-only
backward weight truncation. The study itself runs in `make eval`, not here."""
import copy
import importlib.util
import sys

import numpy as np
import pytest
import specgen

from compiler.autodiff import device_replay
from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.ref import grad_ops as rgo
from compiler.target.runner import REPO


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("eval_study", REPO / "eval" / "study.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod            # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("history,epochs", [(0, 1), (3, 2)])
def test_prequential_policy(study, history, epochs):
    """Predict every sample first; history 0: one step right after; else rounds of
    ``epochs`` passes over a full buffer, in storage order, then the buffer empties."""
    calls = []
    study.prequential(7, lambda i: calls.append(("p", i)) or i, lambda i: calls.append(("t", i)),
                      history, epochs)
    if history == 0:
        want = [c for i in range(7) for c in (("p", i), ("t", i))]
    else:
        want = [("p", 0), ("p", 1), ("p", 2)] + [("t", i) for i in (0, 1, 2)] * 2 + \
               [("p", 3), ("p", 4), ("p", 5)] + [("t", i) for i in (3, 4, 5)] * 2 + [("p", 6)]
    assert calls == want


@pytest.mark.parametrize("bits,mode,x_bits", [(8, "max", 8), (4, "3*max/4", 3)])
def test_int8_run_equals_device_replay(study, monkeypatch, bits, mode, x_bits):
    """The study's int8 run on a tiny stream: predictions and trained weights identical to
    the reference replay of the device policy (what QEMU is checked against)."""
    g = specgen.random_graph(4, hw=10, n_blocks=2, classes=5)
    monkeypatch.setattr(study, "TRAINABLE", 2)
    rng = np.random.default_rng(1)
    n, history, epochs = 10, 3, 2
    imgs = rng.integers(0, 256, (n, 10, 10, 3), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 5, n)]
    cfg = tr.TrainConfig(lr=0.05, bits=bits, range_mode=mode, loss_range_mode="max", seed=3)
    gs = copy.deepcopy(g)
    preds, _ = study.run_int8(gs, imgs, labels, history=history, epochs=epochs, cfg=cfg,
                              x_bits=x_bits)
    gr = copy.deepcopy(g)
    prog = ad.build_program(gr, study.trainable(gr, x_bits))
    sim = device_replay.replay(gr, prog, tr.TrainState(cfg), list(imgs), labels, None,
                               device_replay.DeviceSettings(history, epochs, 1))
    assert preds == sim.preds
    changed = 0
    for name in prog.trainable:
        for p in ("weight", "bias"):
            np.testing.assert_array_equal(gs.node(name).params[p], gr.node(name).params[p])
            changed += int(not np.array_equal(gs.node(name).params[p], g.node(name).params[p]))
    assert changed


def test_range_three_quarters_of_max():
    acc = np.array([5, -1001, 7, 0], np.int32)
    assert rgo.grad_range_int(acc, "3*max/4") == (3 * 1001) >> 2 == 750
    q, s = rgo.requant_grad(acc, np.float32(0.5), 4, "3*max/4")
    assert q.tolist() == [0, -7, 0, 0] and s == np.float32(np.float32(0.5) * np.float32(750 / 7))
    g = np.array([0.25, -2.0, 1.0], np.float32)
    q, s = rgo.quantize_grad_f32(g, 3, "3*max/4")             # R = 1.5, qmax 3: scale 0.5
    assert s == np.float32(0.5) and q.tolist() == [1, -3, 2]
    with pytest.raises(ValueError, match="3\\*max/4"):
        rgo._parse_mode("max/3")


def test_backward_weight_truncation():
    w = np.array([-128, -65, -64, -63, -1, 0, 1, 63, 64, 127], np.int8)
    assert rgo.lowp_weight(w, 2).tolist() == [-128, -64, -64, 0, 0, 0, 0, 0, 64, 64]
    assert rgo.lowp_weight(w, 8).tolist() == w.tolist()
    with pytest.raises(ValueError, match="2..8"):
        tr.TrainConfig(backward_w_bits=1)
