"""bench/pytorch_compare.py and bench/results_md.py, cheaply: the PyTorch side trains
exactly a plan's trainable set (bias-only layers their bias, a channel ratio its first
output channels), its forward that frees tensors gives the float twin's logits, one
measured step reports every figure, and the results writer renders each section."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from harness import load_bench

from compiler.autodiff import program as ad
from compiler.frontend import images, models
from compiler.sparse import plan as sparse
from compiler.sparse.float_twin import _key as key

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pc():
    return load_bench("pytorch_compare")


@pytest.fixture(scope="module")
def small():
    """mcunet-5fps, new 10-class head, 32x32; biases of the last 3 layers, the last body
    layer's weights at 1/4, the head (seeded, so the body gets gradients in the first step)."""
    g = sparse.prepare(models.load("mcunet-5fps"), input_size=32, classes=10, head_init="seeded")
    body = sparse.body_layers(g)
    plan = sparse.SparsePlan(3, {body[-1]: "1/4"})
    return g, plan.trainable(g), body


def test_torch_side_trains_only_the_plan(pc, small):
    g, trainable, body = small
    torch.manual_seed(0)
    twin, params, rows = pc.trainable_twin(g, trainable)
    before = {k: v.detach().clone() for k, v in twin.state_dict().items()}
    x = twin.dequantize(g.inputs[0], images.photo_batch(("chelsea",), size=32))
    logits = pc.forward_freeing(twin, g, x)
    with torch.no_grad():
        assert torch.equal(logits, twin.forward({g.inputs[0]: x})[g.outputs[0]])
    opt = torch.optim.SGD(params, lr=0.5)
    F.cross_entropy(logits.reshape(1, -1), torch.tensor([3])).backward()
    opt.step()
    changed = {k for k, v in twin.state_dict().items() if not torch.equal(v, before[k])}
    want = {f"biases.{key(n)}" for n in body[-3:]} | {f"weights.{key(body[-1])}"}
    head = sparse.head(g)
    want |= {f"biases.{key(head)}", f"weights.{key(head)}"}
    assert changed == want
    w = twin.weight(body[-1]).detach()
    k = ad.channels_of_ratio(w.shape[0], trainable[body[-1]].ratio)
    assert rows[body[-1]] == k < w.shape[0]
    old = before[f"weights.{key(body[-1])}"]
    assert torch.equal(w[k:], old[k:]) and not torch.equal(w[:k], old[:k])


def test_one_measured_step_reports_every_figure(pc, small):
    g, trainable, _ = small
    x = images.photo_batch(("chelsea", "coffee"), size=32)
    r = pc.measure_torch(g, trainable, x, [1, 7], steps=1, without_onednn=False)
    assert r["rss_peak_bytes"] >= r["rss_ready_bytes"] > 0
    assert r["saved_for_backward_bytes"] > 0 and r["grad_bytes"] == r["trainable_param_bytes"]
    assert r["optimizer_state_bytes"] == 0            # plain SGD
    assert r["tensor_peak_bytes"] >= r["grad_bytes"] + r["input_bytes"]
    assert r["tensor_peak_without_onednn_bytes"] is None and r["ms_per_step"] > 0
    assert r["param_bytes"] > r["trainable_param_bytes"] > 4 * r["trained_elements"]  # 1/4 of a weight
    assert np.isfinite(r["losses"]).all()


FIXTURE = {
    "forward": {"m": {"variants": {"dsp_fuse-auto": {
        "instructions": 43_000_000, "macs_per_instruction": 0.5, "ram_linked_bytes": 96 * 1024,
        "flash_linked_bytes": 700 * 1024, "arena_bytes": 88 * 1024}}}},
    "train_steps": {"input_size": 128, "models": {"m": {
        "head": {"fits": True, "instructions_per_step": 42_000_000, "arena_bytes": 88 * 1024,
                 "trained_param_bytes": 1640, "ram_linked_bytes": 98 * 1024,
                 "flash_linked_bytes": 600 * 1024},
        "everything": {"fits": False, "message": "needs 3.1 MB"}}}},
    "sparse": {"models": {"m": {
        "plan": {"plan": "head + biases of the last 2 layers"},
        "memory_bytes": {"full update, no reordering": 3 << 20, "full update, reordering": 1 << 20,
                         "sparse plan, no reordering": 600 << 10, "sparse plan, reordering": 240 << 10},
        "paper_kb": {"full": 3650, "sparse": 560, "sparse+reorder": 173},
        "linked_ram_bytes": {"stm32f746": 241 << 10}, "instructions_per_step": 92_600_000,
        "bit_exact_qemu": True,
        "accuracy": {"head only (int8)": {"accuracy": 88.4, "ram_bytes": 98 << 10}}}}},
    "pytorch": {"steps": 6, "torch_version": "2.x", "idle_torch": {"rss_peak_bytes": 220 << 20},
                "models": {"m": {
                    "torch": {"rss_peak_bytes": 370 << 20, "rss_ready_bytes": 330 << 20,
                              "tensor_peak_bytes": 15 << 20, "tensor_peak_without_onednn_bytes": 4 << 20,
                              "saved_for_backward_bytes": 1500 << 10, "grad_bytes": 520 << 10,
                              "trainable_param_bytes": 520 << 10, "param_bytes": 1840 << 10,
                              "optimizer_state_bytes": 0, "largest_allocation_bytes": 11 << 20,
                              "ms_per_step": 55.0},
                    "ours": {"arena_bytes": 109 << 10, "trained_param_bytes": 124 << 10,
                             "ram_linked_bytes": 242 << 10},
                    "qemu_instructions_per_step": 92_600_000, "paper_kb": 173, "paper_ms_per_step": 546}}},
    "soak": {},
}


def test_results_writer_renders_each_section(tmp_path):
    md = load_bench("results_md")
    text = md.render(FIXTURE)
    for title in ("Forward pass", "Training step", "Sparse update", "PyTorch beside us"):
        assert f"## {title}" in text
    assert "| m | 370.0 | 40.0 | 15,360 | 4,096 | 242.0 | 173 | 55 | 93 | 546 |" in text
    assert "does not fit: needs 3.1 MB" in text and "| m | head only (int8) | 88.4 | 98.0 |" in text
    assert "Other sections of bench/results.json: soak." in text
    (tmp_path / "r.json").write_text(json.dumps(FIXTURE))
    assert md.main(["--results", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "r.md").read_text() == text
    # the repository's own results render too (whatever sections they have today)
    md.render(json.loads((REPO / "bench" / "results.json").read_text()))
