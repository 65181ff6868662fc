"""Precomputed requantization records (compiler/kernels/rq_records.py, tt_kernels.h rq).

1. The compiler's plans are the C kernels' plans: compiler.kernels.rq_records against
   tt_rq_plan32 / tt_rq_plan_w / tt_rq_record of runtime_c/src/kernels/tt_simd.h, built
   for the host (DSP code on C models of the instructions), on random channels of every
   kind (usual, huge biases, near-dead channels with saturated biases, tiny and large
   multipliers, every shift).
2. The kernels with records are bit-exact with the reference: conv2d, conv2d_1x1,
   depthwise (3x3 s1 / s2, general, wrapper) and fc cases (random shapes and
   requantization regimes, bands, split weights) through every host variant, records and
   no records side by side. (The QEMU kernel suite runs the
   sweep, in which every second such case has records, on the real DSP instructions;
   the real models run with records in tests/test_model_forward.py.)
3. Code generation: the layers that do not train get records, trained ones (bias or
   weights in RAM) and portable builds do not; every conv (depthwise included) and fc
   of the three real models has records.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.autodiff import program as ad
from compiler.codegen import generate as codegen
from compiler.frontend import models
from compiler.kernels import rq_records as R
from compiler.sparse import heads
from tests import kernel_cases as kc
from tests import specgen

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not found")

_SHIM = r"""
#include "tt_simd.h"
int c_plan32(int32_t bias, int32_t mult, int32_t shift, int32_t zero, int32_t k,
             int32_t xmax, int32_t *out)
{
    tt_rq q;
    if (!tt_rq_plan32(&q, bias, mult, shift, zero, k, xmax)) return 0;
    out[0] = q.mult; out[1] = q.off; out[2] = q.t; out[3] = q.lsh;
    return 1;
}
int c_plan_w(int32_t bias, int32_t mult, int32_t shift, int32_t zero, const int8_t *w,
             int32_t k, int32_t xmax, int32_t *out)
{
    tt_rq q;
    if (!tt_rq_plan_w(&q, bias, mult, shift, zero, w, k, xmax, 8)) return 0;
    out[0] = q.mult; out[1] = q.off; out[2] = q.t; out[3] = q.lsh;
    return 1;
}
void c_record(int32_t r, int32_t mult, int32_t zero, int32_t *out)
{
    tt_rq_record(r, mult, zero, &out[0], &out[1], &out[2]);
}
"""


@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    d = tmp_path_factory.mktemp("rq_shim")
    (d / "shim.c").write_text(_SHIM)
    so = d / "libshim.so"
    kernels = kc.REPO / "runtime_c" / "src" / "kernels"
    subprocess.run(["gcc", "-std=c99", "-O2", "-shared", "-fPIC", "-DTT_EMULATE_DSP",
                    f"-I{kc.INCLUDE}", f"-I{kernels}", str(d / "shim.c"), "-o", str(so)],
                   check=True)
    return ctypes.CDLL(str(so))


def _out():
    return (ctypes.c_int32 * 4)()


I32 = st.integers(-2**31, 2**31 - 1)


@st.composite
def channels(draw):
    k = draw(st.integers(1, 600))
    kind = draw(st.sampled_from(["usual", "big_bias", "dead", "any"]))
    zero = draw(st.integers(-128, 127))
    in_zero = draw(st.integers(-128, 127))
    if kind == "dead":   # all-zero or tiny weights, bias saturated near +-2^31
        w = np.zeros(k, np.int8)
        nz = draw(st.integers(0, min(3, k)))
        w[:nz] = draw(st.lists(st.integers(-2, 2), min_size=nz, max_size=nz)) if nz else []
        room = int(np.abs(w.astype(np.int64)).sum()) * 255
        bias = draw(st.sampled_from([-1, 1])) * (2**31 - 1 - room - draw(st.integers(0, 1000)))
        mult = draw(st.integers(1 << 30, 2**31 - 1))
        shift = draw(st.sampled_from([-31, -29, -25, -22, -18, -10]))
    else:
        seed = draw(st.integers(0, 2**32 - 1))
        w = np.random.default_rng(seed).integers(-127, 128, k).astype(np.int8)
        if kind == "usual":
            bias = draw(st.integers(-k * 2000, k * 2000))
        elif kind == "big_bias":
            bias = draw(st.integers(-(2**31 - 1), 2**31 - 1))
        else:
            bias = draw(I32)
        mult = draw(st.one_of(st.integers(1 << 30, 2**31 - 1), st.integers(0, 2**31 - 1),
                              st.integers(-5, 5)))
        shift = draw(st.integers(-31, 4))
    return bias, mult, shift, zero, w, R.xmax(in_zero)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channels())
def test_plans_are_the_kernels_plans(clib, ch):
    bias, mult, shift, zero, w, xm = ch
    k = len(w)
    out = _out()
    ok = clib.c_plan32(bias, mult, shift, zero, k, xm, out)
    py = R.plan32(bias, mult, shift, zero, k, xm)
    assert (py is not None) == bool(ok)
    if ok:
        assert py == (out[0], out[1], out[2]) and out[3] == 0
    wbuf = np.ascontiguousarray(w)
    ok = clib.c_plan_w(bias, mult, shift, zero, wbuf.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
                       k, xm, out)
    py = R.plan_w(bias, mult, shift, zero, w, xm)
    assert (py is not None) == bool(ok)
    if ok:
        assert py == tuple(out)
    # the record the compiler stores decodes (tt_rq_record, the kernels' lsh rule) to
    # the plan the kernels would compute
    p32 = R.plan32(bias, mult, shift, zero, k, xm)
    want = (*p32, 0) if p32 is not None else R.plan_w(bias, mult, shift, zero, w, xm)
    for depthwise in (False, True):
        rec = R.channel_record(bias, mult, shift, zero, w, xm, depthwise)
        if rec is None:
            assert want is None or (want[3] != 0 and not depthwise) or R.record(
                want, mult, shift, zero) is None
            continue
        got = (ctypes.c_int32 * 3)()
        clib.c_record(rec, mult, zero, got)
        lsh = shift + 2 if (rec & 0xFF) and shift >= -1 else 0
        assert (*got, lsh) == tuple(want)


OPS = ["conv2d_1x1", "conv2d", "fc", "dwconv_3x3_s1", "dwconv_3x3_s2", "dwconv", "dwconv_wrapper"]


def _cases(seed: int, n: int) -> list[kc.Case]:
    """Random conv-family and fc cases over every regime (dead channels included), each
    twice: without and with records (where the layer has them)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        op = OPS[i % len(OPS)]
        regime = ["typical", "mixed", "extreme", "dead"][(i // len(OPS)) % 4]
        sd = int(rng.integers(0, 2**31))
        if op == "fc":
            c = kc.fc_case(ci=int(rng.integers(1, 200)), co=int(rng.integers(1, 40)),
                           batch=int(rng.integers(1, 3)), seed=sd, regime=regime)
        else:
            dw = op.startswith("dwconv")
            k = {"conv2d_1x1": 1, "dwconv_3x3_s1": 3, "dwconv_3x3_s2": 3}.get(
                op, int(rng.choice([3, 5, 7] if dw else [1, 3, 5])))
            stride = {"conv2d_1x1": int(rng.integers(1, 3)), "dwconv_3x3_s1": 1,
                      "dwconv_3x3_s2": 2}.get(op, int(rng.integers(1, 3)))
            pad = 0 if k == 1 else int(rng.integers(0, k // 2 + 1))
            h, w = int(rng.integers(k, k + 8)), int(rng.integers(k, k + 9))
            ci = int(rng.integers(1, 30 if dw else 70))
            c = kc.conv_case(op, h=h, w=w, ci=ci, co=ci if dw else int(rng.integers(1, 40)),
                             k=k, stride=stride, pad=pad, seed=sd, regime=regime,
                             act=None if rng.random() < 0.3 else (-128, 127),
                             bands="random" if rng.random() < 0.4 else None)
        if rng.random() < 0.25:
            c.split = kc.pick_split(rng, kc.out_channels(c))
        recs = kc.records_of(c)
        out.append(c)
        if recs is not None:
            out.append(kc.Case(c.op, c.params, c.arrays, c.expected, c.bands, c.name, c.macs,
                               c.split, recs))
    return out


@pytest.fixture(scope="module")
def drivers(tmp_path_factory):
    out = tmp_path_factory.mktemp("rq_drivers")
    return {v: kc.build_host_driver(out, v) for v in kc.HOST_VARIANTS}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernels_with_records_bit_exact(drivers, seed):
    cases = _cases(seed, 140)
    with_rq = [c for c in cases if c.rq is not None]
    # records for every kernel (the extreme regimes' shifts have none), constant
    # channels among them
    assert all(sum(c.op == op for c in with_rq) >= 2 for op in OPS)
    assert any((c.rq & 0xFF == 0).any() for c in with_rq)
    for variant, exe in drivers.items():
        errs = kc.check_results(cases, kc.run_host_driver(exe, cases), variant)
        assert not errs, "\n".join(errs[:10])


def test_codegen_records_only_for_layers_that_do_not_train(tmp_path):
    g = heads.with_input_size(heads.replace_head(models.load("mcunet-5fps"), 10, init="zero"), 48)
    prog = ad.build_program(g, ad.last_blocks(g, 1))
    from compiler.memory import training as memtrain
    plan = memtrain.plan_training(g, prog, "auto")
    rep = codegen.generate(g, tmp_path / "train", plan, program=prog)
    text = (tmp_path / "train" / "tt_model.c").read_text()
    trained = {a["node"] for a in rep["trained_arrays"]}
    assert trained
    convs = [n for n in g.nodes if n.op in ("conv2d", "fully_connected")]
    assert any(n.is_depthwise for n in convs)
    for n in convs:
        cid = "p_" + codegen._cid(n.name)
        has = f".rq = {cid}_r," in text
        assert has == (n.name not in trained), n.name
    assert rep["rq_record_bytes"] == 2 * sum(n.params["bias"].size for n in convs
                                              if n.name not in trained)
    rep = codegen.generate(g, tmp_path / "plain", plan, program=prog, rq_records=False)
    assert ".rq = " not in (tmp_path / "plain" / "tt_model.c").read_text()
    assert rep["rq_record_bytes"] == 0


@pytest.mark.parametrize("model", ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"])
def test_every_conv_and_fc_of_the_real_models_has_records(model):
    g = models.load(model)
    convs = [n for n in g.nodes if n.op in ("conv2d", "fully_connected")]
    assert any(n.is_depthwise for n in convs)
    for n in convs:
        recs = R.node_records(g, n)
        assert recs is not None and recs.shape == (n.params["bias"].size,), n.name


def test_constants_beside_the_vector_table():
    """place_low (stm32f746: the rest of flash sector 0): the records first, then the
    largest other constant arrays that still fit; arrays in RAM never."""
    arrays = [{"name": "p_a_w", "nbytes": 9000}, {"name": "p_b_w", "nbytes": 5000},
              {"name": "p_c_b", "nbytes": 4000}, {"name": "p_a_r", "nbytes": 98, "rq": True},
              {"name": "p_d_w", "nbytes": 20000}, {"name": "p_e_w", "nbytes": 1000}]
    for a in arrays:
        a["section"] = ""
    used = codegen.place_low(arrays, {"p_b_w"}, 10 * 1024)
    placed = {a["name"] for a in arrays if a["section"]}
    assert placed == {"p_a_r", "p_a_w", "p_e_w"}   # 100 + 9000 + 1000 <= 10240; p_b_w in RAM
    assert used == 100 + 9000 + 1000
    assert all(a["section"] == ".rodata.tt_lo." + a["name"] for a in arrays if a["section"])
    assert codegen.place_low([dict(a, section="") for a in arrays], set(), 0) == 0


def test_build_without_records_when_they_overflow_the_flash(tmp_path, monkeypatch, capsys):
    """A link that fails on flash with records is redone without them (they only save
    instructions), and says so; any other link failure is reported as it is."""
    from compiler.target import firmware
    g = specgen.random_graph(3)
    real_run = subprocess.run
    calls = []

    def run(args, **kw):
        if args and args[0] == "make":
            calls.append((tmp_path / "tt_model.c").read_text().count(".rq = "))
            if len(calls) == 1:   # the first link: as if the records did not fit
                return subprocess.CompletedProcess(args, 2, "", "region `FLASH' overflowed by 12 bytes")
        return real_run(args, **kw)
    monkeypatch.setattr(firmware.subprocess, "run", run)
    rep = firmware.build(g, "qemu-mps2-an500", tmp_path)
    assert calls[0] > 0 and calls[1] == 0 and rep["rq_record_bytes"] == 0
    assert "without the precomputed requantization records" in capsys.readouterr().out
    calls.clear()

    def run_fail(args, **kw):
        if args and args[0] == "make":
            calls.append(1)
            return subprocess.CompletedProcess(args, 2, "", "undefined reference to `x'")
        return real_run(args, **kw)
    monkeypatch.setattr(firmware.subprocess, "run", run_fail)
    with pytest.raises(firmware.CompilerError, match="undefined reference"):
        firmware.build(g, "qemu-mps2-an500", tmp_path / "b")
    assert len(calls) == 1
