"""Models with a flat input (fully connected only, e.g. the MLPerf Tiny anomaly-detection
autoencoder, 640 -> ... -> 640): import, build and run in C bit-exact with the
reference on the host build and QEMU, and train (a classifier MLP) bit-exact."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from test_model_forward import forward_both  # board vs reference forward, bit for bit
from test_train_firmware import run_both  # board vs reference trainer, bit for bit
from zoo_models import autoencoder  # the MLPerf Tiny anomaly-detection autoencoder

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend.torch_fx import import_module


def _autoencoder():
    torch.manual_seed(0)
    return autoencoder().eval()


def _mlp(classes=4):
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                         nn.Linear(16, classes)).eval()


def _int8(m, features, seed=0):
    calib = np.random.default_rng(seed).normal(0, 1, (128, features)).astype(np.float32)
    return import_module(m, torch.zeros(1, features), calibration=calib)


def _inputs(g, n, seed):
    shape = g.tensors[g.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n,) + shape).astype(np.int8)


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_autoencoder_runs_bit_exact(board, tmp_path):
    g = _int8(_autoencoder(), 640)
    assert g.tensors[g.inputs[0]].shape == (1, 640)
    assert {n.op for n in g.nodes} == {"fully_connected"}
    forward_both(g, board, tmp_path, n=2, seed=3)


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_flat_input_classifier_trains_bit_exact(board, tmp_path):
    g = _int8(_mlp(), 64, seed=1)
    run_both(g, ad.whole_model(g), tr.TrainConfig(lr=0.01), board, tmp_path, _inputs(g, 5, 4),
             np.random.default_rng(5).integers(0, 4, 5))
