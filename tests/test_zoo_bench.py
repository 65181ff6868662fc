"""bench/zoo.py and its pre-training (bench/zoo_pretrain.py), without training anything:
the new 5-class head of every classifier, the held-out split, the cache key, and the
table's predicted gains capped at what is possible."""
from pathlib import Path

import numpy as np
import pytest
import torch
import zoo_models as Z
from harness import load_bench

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pre():
    return load_bench("zoo_pretrain")


@pytest.mark.parametrize("name", ["resnet8", "dscnn", "lenet"])
def test_new_head_has_the_pretraining_classes(pre, name):
    model, shape = pre._architecture(name)
    with torch.no_grad():
        out = model.eval()(torch.zeros((2,) + shape))
    assert out.shape == (2, len(pre.PRETRAIN_CLASSES))


def test_split_holds_out_the_last_digits_of_each_class(pre):
    y = np.repeat(np.arange(10), 500)[np.random.default_rng(0).permutation(5000)]
    tr, te = pre.split(y, pre.PRETRAIN_CLASSES)
    assert len(tr) == 5 * pre.TRAIN_PER_CLASS and len(te) == 5 * (500 - pre.TRAIN_PER_CLASS)
    assert not set(tr) & set(te) and set(y[te]) == set(pre.PRETRAIN_CLASSES)
    for k in pre.PRETRAIN_CLASSES:     # held out: the last of each class
        assert te[y[te] == k].min() > tr[y[tr] == k].max()


def test_cache_key_follows_the_recipe(pre, monkeypatch):
    k = pre._key("lenet")
    assert k == pre._key("lenet") and k != pre._key("resnet8")
    monkeypatch.setitem(pre.RECIPES, "lenet", {**pre.RECIPES["lenet"], "steps": 1})
    assert pre._key("lenet") != k
    assert set(pre.RECIPES) == set(Z.ZOO)


def test_table_caps_the_predicted_gain():
    zoo = load_bench("zoo")
    assert zoo.capped_gain(110.0, 41.7) == 58.3
    assert zoo.capped_gain(3.5, 90.0) == 3.5
    row = {"plan": "head + x", "ram_bytes": 2048, "summed_gain": 15.0,
           "predicted_gain": zoo.capped_gain(15.0, 90.0), "head_only_accuracy": 90.0,
           "measured_accuracy": 93.0, "measured_gain": 3.0}
    cell = zoo._plan_cell(row)
    assert "predicted +10.0 (summed +15.0)" in cell and "measured 93.0% (+3.0)" in cell
    assert "summed" not in zoo._plan_cell({**row, "summed_gain": 10.0})
