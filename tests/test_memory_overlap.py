"""Steps writing their output over their dying input (compiler.memory.overlap): fused
blocks and unfused convolutions run band by band. The plans really overlap the two, and
the firmware stays bit-exact with the reference: a kernel that read an input row after
the row order tt_block.h / tt_kernels.h document (or wrote an output row early) would
make these runs differ."""
import numpy as np
import pytest
import specgen

from compiler.frontend import models
from compiler.memory import overlap
from compiler.memory import schedule as memplan
from compiler.ref import executor as reference
from compiler.target import firmware


def _overlapping_pairs(p):
    """(input, output) pairs of the plan that share arena bytes."""
    out = []
    for (src, dst) in p.lags:
        a, b = p.offset(src), p.offset(dst)
        if a < b + p.buffers[dst].size and b < a + p.buffers[src].size:
            out.append((src, dst))
    return out


# seed 27's random graph, fused: blocks with the first conv as expand conv, without expand
# conv, with residual adds, stride 2 and depthwise k = 5 and 7; unfused: the same layers
# as 3x3 / pointwise / depthwise convolutions run band by band
# (on QEMU, DSP kernels: tests/test_model_forward.py's real models)
@pytest.mark.parametrize("fuse,rows", [("all", 1), ("all", 3), ("none", 1)])
def test_overlapped_steps_bit_exact_on_host(fuse, rows, tmp_path, monkeypatch):
    board = "host"
    # the placement keeps an overlap only where it makes the arena smaller (not in this
    # small graph, where scratch dominates): force every chain of overlaps here
    monkeypatch.setattr(memplan, "_place", lambda items, lags, blocks=(): (
        memplan._first_fit(items, lags, {}, memplan._ORDERS[0]), lags))
    g = specgen.random_graph(27, hw=14, n_blocks=4)
    if rows > 1:   # every fused block runs `rows` output rows per group (tt_block_rows)
        blocks = [s.name for s in memplan.schedule(g, fuse) if s.kind == "block"]
        monkeypatch.setattr(memplan, "_plan_tiled", lambda g, fuse, keep, ext, extra: (
            memplan._plan(g, fuse, keep, ext, extra, {b: (False, rows) for b in blocks})))
    p = memplan.plan(g, fuse)
    if rows > 1:
        assert all(s.block["rows"] == rows for s in p.steps if s.kind == "block")
    memplan.verify(p)
    pairs = _overlapping_pairs(p)
    assert len(pairs) >= (3 if fuse == "all" else 8)
    root = {t: b.alias_of or t for t, b in p.buffers.items()}
    assert all(p.writes_over_input(i) == ((root[s.inputs[0]], s.output) in pairs)
               for i, s in enumerate(p.steps) if s.kind == "conv")
    x = np.random.default_rng(27).integers(-128, 128, (3, 14, 14, 3)).astype(np.int8)
    ref = np.asarray(reference.run(g, x))
    rep = firmware.build(g, board, tmp_path, fuse=fuse, quiet=True)
    y, _, _ = firmware.infer(rep["elf"], x, ref.shape[1], board=board, timeout=120)
    np.testing.assert_array_equal(y, ref)
    if fuse == "none":   # the convolutions written over their input run in bands
        assert "for (int32_t y = 0;" in (tmp_path / "tt_model.c").read_text()


def test_first_block_of_mbv2_writes_over_the_image():
    g = models.load("mbv2-w0.35")
    p = memplan.plan(g)
    memplan.verify(p)
    s = p.steps[0]
    # 3x3 stride-2 first conv -> 3x3 depthwise: output row y (512 bytes) may overwrite
    # the input below row 2y + 1 (384 bytes a row); row 0 needs the input's rows 0..3
    assert overlap.block_lag(g, s.block) == -512
    assert p.offset(s.output) - p.offset(s.inputs[0]) <= -512
    assert (s.inputs[0], s.output) in _overlapping_pairs(p)
    assert p.live_bytes[0] < 49152 + 32768
