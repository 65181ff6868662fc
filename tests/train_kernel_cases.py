"""Training-kernel test cases shared by the host tests and the QEMU tests.

A case is one call of one C training kernel (runtime_c/include/tt_train_kernels.h) or
one batch of calls of a scalar helper (tt_train_math.h), with its inputs and its golden
output, which always comes from compiler.ref.grad_ops. Cases are serialised into the
binary stream read by tests/c/train_kernel_driver.c (the format is described there); the
same stream is piped to the host driver or compiled into the firmware for QEMU (the
machinery both kernel drivers share: tests/driver_cases.py).

The output of a case is one byte string: exact bytes (int8/int16/int32 tensors, the
kernel's return code, float32 scales as their bit patterns) followed by "loose" float32
values compared with a relative tolerance (only the softmax loss).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler import paths
from compiler.ir.qmath import hw
from compiler.ref import grad_ops as rg
from tests import driver_cases as dc

REPO = paths.REPO
DRIVER_C = REPO / "tests" / "c" / "train_kernel_driver.c"
KERNEL_SRCS = dc.kernel_sources(
    "tt_quantize_grad_f32", "tt_softmax_xent_grad_s8", "tt_grad_range_s32",
    "tt_requant_grad_s8", "tt_add_grads_s8", "tt_grad_prescale_s16", "tt_clamp_mask_pack_s8",
    "tt_grad_mask_s8", "tt_avgpool_grad_s8", "tt_conv2d_grad_in_s16", "tt_conv2d_1x1_grad_in_s16",
    "tt_dwconv_grad_in_s16", "tt_fc_grad_in_s16", "tt_conv2d_grad_w_update_s8",
    "tt_conv2d_1x1_grad_w_update_s8", "tt_dwconv_grad_w_update_s8", "tt_fc_grad_w_update_s8",
    "tt_bias_grad_update_s32", "tt_maxpool_grad_s8", "tt_lut_grad_s8", "tt_mul_grad_s8",
    "tt_mul_gate_grad_s8", "tt_concat_grad_s8", "tt_avgpool_window_grad_s8", "tt_mse_grad_s8",
    "tt_train_kernels_dsp", "tt_conv_grad_in_two_pass_s8")
INCLUDE = dc.INCLUDE

OPS = {"q31": 1, "expf": 2, "round": 3, "hash": 4, "fixed_round": 5, "update_key": 6,
       "quant_f32": 7, "softmax": 8, "grad_range": 9, "requant_grad": 10, "add_grads": 11,
       "prescale": 12, "mask_pack": 13, "grad_mask": 14, "avgpool_grad": 15,
       "conv2d_grad_in": 16, "conv2d_1x1_grad_in": 17, "dwconv_grad_in": 18,
       "fc_grad_in": 19, "conv2d_grad_w": 20, "conv2d_1x1_grad_w": 21, "dwconv_grad_w": 22,
       "fc_grad_w": 23, "bias": 24, "factors": 25, "maxpool_grad": 26, "lut_grad": 27,
       "mul_grad": 28, "mul_gate_grad": 29, "concat_grad": 30, "avg_pool_grad": 40,
       "mse": 31, "grad_in_two_pass": 41}
CONV_OPS = ("conv2d", "conv2d_1x1", "dwconv")
STATUS = dc.STATUS
TT_OK, TT_ERR_ARG, TT_ERR_FACTOR = 0, 1, 2  # runtime_c/include/tt_status.h
MODES = ["max", "max/2", "max/4", "mean*1", "mean*2", "mean*3", "mean*8", "mean*64", "3*max/4"]
NO_STAT = -12345  # the driver's value of an r_stat that was not requested

F32 = np.float32


@dataclass
class Case:
    op: str
    params: list[int]
    arrays: list[np.ndarray]
    expected: bytes
    loose: list[tuple[float, float]] = field(default_factory=list)  # (value, rel tol)
    name: str = ""
    macs: int = 0

    def describe(self) -> str:
        return f"{self.name or self.op} params={self.params}"


# ---- encoding ----------------------------------------------------------------------

_i32 = dc.i32
_arr_bytes = dc.arr_bytes


def encode(cases: list[Case]) -> bytes:
    out = [_i32(len(cases))]
    for c in cases:
        out.append(_i32(OPS[c.op], len(c.params), *c.params, len(c.arrays)))
        out.extend(_arr_bytes(np.ascontiguousarray(a).tobytes()) for a in c.arrays)
    return b"".join(out)


def encode_expected(cases: list[Case]) -> bytes:
    return dc.encode_expected((c.expected, c.loose) for c in cases)


def bits(x) -> int:
    """Bit pattern of a float32 as a signed int32 (a driver parameter)."""
    return int(np.array(x, dtype=np.float32).view(np.int32))


def f32b(x) -> bytes:
    return np.array(x, dtype=np.float32).tobytes()


def range_params(mode: str) -> list[int]:
    kind, k = rg._parse_mode(mode)
    return [{"shift": 0, "mean": 1, "shift3": 2}[kind], k]


Result = dc.Result  # status, cycles, out (bytes, None unless status is 0)
decode_results = dc.decode_results


def _first_diff(a: bytes, b: bytes) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_results(cases: list[Case], results: list[Result], label: str = "") -> list[str]:
    """Human-readable failures (empty when every case matches)."""
    errs = []
    if len(results) != len(cases):
        errs.append(f"{label}: driver returned {len(results)} results for {len(cases)} cases")
    for i, (c, r) in enumerate(zip(cases, results)):
        if r.status:
            errs.append(f"{label} case {i} {c.describe()}: {STATUS.get(r.status, r.status)}")
            continue
        n = len(c.expected)
        if len(r.out) != n + 4 * len(c.loose):
            errs.append(f"{label} case {i} {c.describe()}: {len(r.out)} bytes, expected "
                        f"{n + 4 * len(c.loose)}")
            continue
        if r.out[:n] != c.expected:
            j = _first_diff(r.out[:n], c.expected)
            errs.append(f"{label} case {i} {c.describe()}: first byte mismatch at {j} of {n}: "
                        f"got {r.out[j:j + 8].hex()} expected {c.expected[j:j + 8].hex()}")
            continue
        got = np.frombuffer(r.out[n:], np.float32)
        for g, (v, tol) in zip(got, c.loose):
            if not abs(float(g) - v) <= tol * max(1.0, abs(v)):
                errs.append(f"{label} case {i} {c.describe()}: loose value {g} vs {v}")
    return errs


# ---- host driver -------------------------------------------------------------------

COMMON_FLAGS = [*dc.COMMON_FLAGS, "-ffp-contract=off"]
HOST_VARIANTS = dc.HOST_VARIANTS


def build_host_driver(out_dir: Path, variant: str) -> Path:
    return dc.build_host_driver(out_dir, variant, DRIVER_C, KERNEL_SRCS, COMMON_FLAGS)


def run_host_driver(exe: Path, cases: list[Case], timeout: float = 120) -> list[Result]:
    return dc.run_host_driver(exe, encode(cases), len(cases), timeout)


# ---- firmware ----------------------------------------------------------------------

def write_cases_header(cases: list[Case], path: Path) -> Path:
    return dc.write_cases_header(path, encode(cases), encode_expected(cases),
                                 "tests/train_kernel_cases.py")


def parse_firmware_output(text: str) -> list[tuple[int, ...]]:
    """K lines of the embedded driver: (case, status, first_bad, got, expected, cycles)."""
    return dc.parse_firmware_output(text)


def run_firmware(cases: list[Case], out_dir: Path, portable: bool, timeout: float = 120):
    """The cases compiled into the embedded driver, run on QEMU (Arm DSP or portable
    kernels): (the run, its UART text, its K rows)."""
    header = write_cases_header(cases, out_dir / "gen" / "train_cases_data.h")
    elf = dc.build_firmware(DRIVER_C, KERNEL_SRCS, header, out_dir, portable)
    return dc.run_firmware(elf, timeout)


# ---- scalar helpers -----------------------------------------------------------------

def q31_case(xs) -> Case:
    xs = np.asarray(xs, np.float32)
    out = []
    for x in xs:
        try:
            m, s = rg.q31_of_f32(x)
            out.append(_i32(TT_OK, m, s))
        except ValueError:
            out.append(_i32(TT_ERR_FACTOR, 0, 0))
    return Case("q31", [], [xs], b"".join(out))


def expf_case(xs) -> Case:
    xs = np.asarray(xs, np.float32)
    return Case("expf", [], [xs], rg.expf(xs).astype(np.float32).tobytes())


def round_case(xs) -> Case:
    xs = np.asarray(xs, np.float32)
    return Case("round", [], [xs], rg.round_half_away_f32(xs).astype(np.float32).tobytes())


def hash_case(idx, key: int) -> Case:
    idx = np.asarray(idx, np.uint32)
    exp = rg.hash32(idx.astype(np.uint64), key).astype(np.uint32)
    return Case("hash", [np.uint32(key).view(np.int32)], [idx], exp.tobytes())


def update_key_case(triples) -> Case:
    t = np.asarray(triples, np.uint32).reshape(-1, 3)
    exp = np.array([rg.update_key(int(s), int(st), int(la)) for s, st, la in t], np.uint32)
    return Case("update_key", [], [t], exp.tobytes())


def fixed_round_case(v, total, rnd, rounding: str) -> Case:
    v = np.asarray(v, np.int64)
    total = np.asarray(total, np.int32)
    rnd = np.asarray(rnd, np.uint32)
    exp = rg._fixed_round(v, total.astype(np.int64), rounding, rnd.astype(np.int64))
    return Case("fixed_round", [rg.ROUNDINGS.index(rounding)], [v, total, rnd],
                exp.astype(np.int64).tobytes())


def factors_case(rows) -> Case:
    """Rows of float32 (lr, s_gy, s_x, s_w) -> weight_factors, bias_factors,
    weight_factors_plain and input_grad_scale(s_gy, s_w), as float32 bit patterns."""
    rows = np.asarray(rows, np.float32).reshape(-1, 4)
    out = []
    with np.errstate(all="ignore"):
        for lr, sgy, sx, sw in rows:
            out += [rg.weight_factors(lr, sgy, sx, [sw])[0], rg.bias_factors(lr, sgy, sx, [sw])[0],
                    rg.weight_factors_plain(lr, sgy, sx, [sw])[0], rg.input_grad_scale(sgy, sw)]
    return Case("factors", [], [rows], np.array(out, np.float32).tobytes())


# ---- loss and scales ----------------------------------------------------------------

def quant_f32_case(g, bits_: int, mode: str) -> Case:
    g = np.asarray(g, np.float32)
    with np.errstate(all="ignore"):
        q, sc = rg.quantize_grad_f32(g, bits_, mode)
    return Case("quant_f32", [bits_, *range_params(mode)], [g],
                _i32(TT_OK) + q.tobytes() + f32b(sc), name=f"quant_f32 {mode} b{bits_}")


def softmax_case(logits, s_y, z_y: int, label: int, bits_: int, mode: str,
                 in_place: bool = False) -> Case:
    logits = np.asarray(logits, np.int8)
    g, loss = rg.softmax_xent_grad(logits, s_y, z_y, label)
    q, sc = rg.quantize_grad_f32(g, bits_, mode)
    return Case("softmax", [len(logits), bits(s_y), z_y, label, bits_, *range_params(mode),
                            int(in_place)], [logits],
                _i32(TT_OK) + q.tobytes() + f32b(sc), loose=[(float(loss), 2e-6)],
                name=f"softmax C={len(logits)} {mode} b{bits_}")


def mse_case(y, t, s_y, bits_: int, mode: str, in_place: bool = False) -> Case:
    """tt_mse_grad_s8: the gradient, its scale and the loss, all exact."""
    y, t = np.asarray(y, np.int8), np.asarray(t, np.int8)
    g, loss = rg.mse_grad(y, t, s_y)
    q, sc = rg.quantize_grad_f32(g, bits_, mode)
    return Case("mse", [len(y), bits(s_y), bits_, *range_params(mode), int(in_place)], [y, t],
                _i32(TT_OK) + q.tobytes() + f32b(sc) + f32b(loss),
                name=f"mse N={len(y)} {mode} b{bits_}")


def grad_range_case(acc, mode: str) -> Case:
    acc = np.asarray(acc, np.int32)
    r = rg.grad_range_int(acc, mode)
    return Case("grad_range", range_params(mode), [acc], struct.pack("<q", r))


def requant_grad_case(acc, acc_scale, bits_: int, mode: str, r: int | None = None,
                      want_stat: bool = True, in_place: bool = False) -> Case:
    acc = np.asarray(acc, np.int32)
    q, sc = rg.requant_grad(acc, acc_scale, bits_, mode, r)
    stat = rg.grad_range_int(acc, mode) if want_stat else NO_STAT
    rr = 0 if r is None else int(r)
    lo, hi = struct.unpack("<ii", struct.pack("<q", rr))
    return Case("requant_grad", [bits(acc_scale), bits_, *range_params(mode), int(r is not None),
                                 lo, hi, int(want_stat), int(in_place)], [acc],
                _i32(TT_OK) + q.tobytes() + f32b(sc) + struct.pack("<q", stat),
                name=f"requant_grad n={acc.size} {mode} b{bits_} r={r}")


def add_grads_case(q1, s1, q2, s2, bits_: int, mode: str, alias: int = 0) -> Case:
    q1 = np.asarray(q1, np.int8)
    q2 = np.asarray(q2, np.int8)
    try:
        with np.errstate(all="ignore"):
            q, sc = rg.add_grads(q1, s1, q2, s2, bits_, mode)
        exp = _i32(TT_OK) + q.tobytes() + f32b(sc)
    except (ValueError, OverflowError):
        # the kernel reports TT_ERR_ARG and writes nothing (output buffer keeps its
        # pre-call contents: zeros, or the aliased input)
        pre = {0: np.zeros_like(q1), 1: q1, 2: q2}[alias]
        exp = _i32(TT_ERR_ARG) + pre.tobytes() + f32b(0.0)
    return Case("add_grads", [bits(s1), bits(s2), bits_, *range_params(mode), alias], [q1, q2],
                exp, name=f"add_grads n={q1.size} {mode} b{bits_} alias={alias}")


# ---- elementwise --------------------------------------------------------------------

def prescale_case(gy, w_scales) -> Case:
    gy = np.asarray(gy, np.int8)
    m, s, _ = rg.prescale_params(w_scales)
    t = rg.prescale(gy, m, s)
    return Case("prescale", [gy.shape[0], gy.shape[1]],
                [gy, m.astype(np.int32), s.astype(np.int32)], t.astype(np.int16).tobytes())


def _set_bits(mask: np.ndarray, bit0: int, vals: np.ndarray) -> np.ndarray:
    bits_ = np.unpackbits(mask, bitorder="little")
    bits_[bit0:bit0 + len(vals)] = vals
    return np.packbits(bits_, bitorder="little")


def mask_pack_case(y, act_min: int, act_max: int, bit0: int, init) -> Case:
    y = np.asarray(y, np.int8)
    init = np.asarray(init, np.uint8)
    m = rg.clamp_mask(y, act_min, act_max).astype(np.uint8)
    exp = _set_bits(init, bit0, m)
    return Case("mask_pack", [len(y), act_min, act_max, bit0], [y, init], exp.tobytes())


def grad_mask_case(g, mask_bytes, bit0: int) -> Case:
    g = np.asarray(g, np.int8)
    mb = np.asarray(mask_bytes, np.uint8)
    m = np.unpackbits(mb, bitorder="little")[bit0:bit0 + len(g)].astype(bool)
    exp = np.where(m, g, 0).astype(np.int8)
    return Case("grad_mask", [len(g), bit0], [g, mb], exp.tobytes())


def maxpool_grad_case(x: np.ndarray, gy: np.ndarray, k: int, stride: int, pad: int,
                      kw: int | None = None, stride_w: int | None = None,
                      pad_w: int | None = None) -> Case:
    """tt_maxpool_grad_s8 against max_pool_grad_acc: x [h, w, c], gy [ho, wo, c] int8;
    ``kw`` / ``stride_w`` / ``pad_w``: the columns' window when it differs (per axis)."""
    kw = k if kw is None else kw
    per_axis = stride_w is not None or pad_w is not None
    sw = stride if stride_w is None else stride_w
    pw = pad if pad_w is None else pad_w
    acc = rg.max_pool_grad_acc(gy[None], x[None], (k, kw), (stride, sw), (pad, pw))[0]
    (h, w, c), (ho, wo, _) = x.shape, gy.shape
    return Case("maxpool_grad", [h, w, c, ho, wo, k, kw, stride, pad] + ([sw, pw] if per_axis else []),
                [x, gy], acc.astype("<i4").tobytes(),
                name=f"maxpool_grad {h}x{w}x{c} k{k}x{kw} s{stride}x{sw} p{pad}x{pw}")


def lut_grad_case(n: int, rng) -> Case:
    """tt_lut_grad_s8 against lut_grad_acc: a random int16 derivative table (the extremes
    included), random x and gy."""
    t = rng.integers(-32767, 32768, 256).astype(np.int16)
    t[rng.integers(0, 256, 4)] = [-32767, 32767, 0, 1 << rg.LUT_GRAD_BITS]
    x = rng.integers(-128, 128, n).astype(np.int8)
    gy = random_grad(rng, (n,), qmax=128 if rng.random() < 0.5 else 127)
    acc = rg.lut_grad_acc(gy, x, t)
    return Case("lut_grad", [n], [t, x, gy], acc.astype("<i4").tobytes(), name=f"lut_grad n={n}")


def mul_grad_case(pixels: int, c: int, bcast: bool, rng) -> Case:
    """tt_mul_grad_s8 against mul_grad_acc (the other operand broadcast per channel or not)."""
    gy = random_grad(rng, (1, pixels, 1, c))
    other = rng.integers(-128, 128, (1, 1, 1, c) if bcast else (1, pixels, 1, c)).astype(np.int8)
    z = int(rng.integers(-128, 128))
    acc = rg.mul_grad_acc(gy, other, z)
    return Case("mul_grad", [pixels, c, z, int(bcast)], [gy, other], acc.astype("<i4").tobytes(),
                name=f"mul_grad {pixels}x{c} bcast={bcast}")


def mul_gate_grad_case(pixels: int, c: int, rng) -> Case:
    """tt_mul_gate_grad_s8 against mul_gate_grad_acc (sum over the pixels per channel)."""
    gy = random_grad(rng, (1, pixels, 1, c), qmax=128 if rng.random() < 0.3 else 127)
    a = rng.integers(-128, 128, (1, pixels, 1, c)).astype(np.int8)
    z = int(rng.integers(-128, 128))
    acc = rg.mul_gate_grad_acc(gy, a, z)
    return Case("mul_gate_grad", [pixels, c, z], [gy, a], acc.astype("<i4").tobytes(),
                name=f"mul_gate_grad {pixels}x{c}")


def concat_grad_case(pixels: int, out_c: int, c0: int, c: int, rng) -> Case:
    """tt_concat_grad_s8 against concat_grad_split (one input's channel range)."""
    gy = random_grad(rng, (pixels, out_c), sparsity=0.1)
    gx = rg.concat_grad_split(gy, c0, c)
    return Case("concat_grad", [pixels, out_c, c0, c], [gy], gx.tobytes(),
                name=f"concat_grad {pixels}x{out_c} [{c0}, {c0 + c})")


def avg_pool_grad_case(h: int, w: int, gy: np.ndarray, kernel: tuple[int, int], stride, pad) -> Case:
    """tt_avgpool_window_grad_s8 against avg_pool_grad_acc: gy [ho, wo, c] int8;
    ``stride``, ``pad`` an int or per axis."""
    acc = rg.avg_pool_grad_acc(gy[None], (h, w), kernel, stride, pad)[0]
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    ho, wo, c = gy.shape
    return Case("avg_pool_grad", [h, w, c, ho, wo, kernel[0], kernel[1], sh, sw, ph, pw], [gy],
                acc.astype("<i4").tobytes(),
                name=f"avg_pool_grad {h}x{w}x{c} k{kernel} s{stride} p{pad}")


def avgpool_grad_case(gy, gy_scale, h: int, w: int) -> Case:
    gy = np.asarray(gy, np.int8)
    q, sc = rg.avgpool_grad_input(gy[None], gy_scale, (h, w))
    return Case("avgpool_grad", [h, w, gy.size, bits(gy_scale)], [gy], q.tobytes() + f32b(sc))


# ---- convolutions -------------------------------------------------------------------

def conv_geom(op: str, h, w, ci, co, k, kw, stride, pad, stride_w=None, pad_w=None):
    if op == "conv2d_1x1":
        k = kw = 1
        pad = 0
    if op == "dwconv":
        co = ci
    sw = stride if stride_w is None else stride_w
    pw = pad if pad_w is None else pad_w
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pw - kw) // sw + 1
    return h, w, ci, co, k, kw, stride, pad, ho, wo


def _axis(stride, pad, stride_w, pad_w):
    """(stride, pad for the reference, the driver's extra geometry array or None, a
    label): per axis when stride_w / pad_w is given."""
    if stride_w is None and pad_w is None:
        return stride, pad, None, f"s{stride} p{pad}"
    sw = stride if stride_w is None else stride_w
    pw = pad if pad_w is None else pad_w
    return (stride, sw), (pad, pw), np.array([sw, pw], np.int32), f"s{stride}x{sw} p{pad}x{pw}"


def _conv_params(h, w, ci, ho, wo, co, k, kw, stride, pad, x_zero=0) -> list[int]:
    return [h, w, ci, ho, wo, co, k, kw, stride, pad, x_zero]


def conv_grad_in_case(op: str, *, h, w, ci, co, k, kw=None, stride=1, pad=0, rng,
                      bands=None, t_range=2047, sparsity=0.3, stride_w=None, pad_w=None,
                      name="") -> Case:
    kw = k if kw is None else kw
    h, w, ci, co, k, kw, stride, pad, ho, wo = conv_geom(op, h, w, ci, co, k, kw, stride, pad,
                                                         stride_w, pad_w)
    g_s, g_p, geo, label = _axis(stride, pad, stride_w, pad_w)
    t = rng.integers(-t_range, t_range + 1, (ho, wo, co)).astype(np.int16)
    t[rng.random(t.shape) < sparsity] = 0
    groups = ci if op == "dwconv" else 1
    wshape = (co, k, kw, 1 if op == "dwconv" else ci)
    wq = rng.integers(-128, 128, wshape).astype(np.int8)
    gx = rg.conv_grad_input(t[None], wq, (h, w), g_s, g_p, groups)[0]
    if bands == "random":
        cuts = sorted(set(rng.integers(0, h + 1, 3).tolist()) | {0, h})
        bands = list(zip(cuts[:-1], cuts[1:]))
    bands_arr = np.array(bands or [], np.int32).reshape(-1)
    macs = ho * wo * co * k * kw * (1 if op == "dwconv" else ci)
    return Case(f"{op}_grad_in", _conv_params(h, w, ci, ho, wo, co, k, kw, stride, pad),
                [t, wq, bands_arr] + ([] if geo is None else [geo]), gx.astype(np.int32).tobytes(),
                macs=macs,
                name=name or f"{op}_grad_in {h}x{w}x{ci}->{co} k{k}x{kw} {label} "
                             f"bands={bands}")


def grad_in_two_pass_case(op: str, *, h, w, ci, co, k, stride=1, pad=0, rng, rows=1,
                          bits_=8, mode="max", t_scale=None, t_range=2047, sparsity=0.3,
                          stride_w=None, pad_w=None, prescale=False) -> Case:
    """tt_conv_grad_in_two_pass_s8 with band kernel ``op``: conv_grad_input then
    requant_grad of the reference (the int8 values, then the status and the scale); with
    ``prescale`` from the int8 gradient (prescale first)."""
    h, w, ci, co, k, kw, stride, pad, ho, wo = conv_geom(op, h, w, ci, co, k, k, stride, pad,
                                                         stride_w, pad_w)
    g_s, g_p, geo, label = _axis(stride, pad, stride_w, pad_w)
    if prescale:
        gy = random_grad(rng, (ho, wo, co), sparsity=sparsity)
        m, sh, _ = rg.prescale_params(rng.uniform(0.002, 0.05, co))
        t = rg.prescale(gy, m, sh)
        src = [gy, m.astype(np.int32), sh.astype(np.int32)]
    else:
        t = rng.integers(-t_range, t_range + 1, (ho, wo, co)).astype(np.int16)
        t[rng.random(t.shape) < sparsity] = 0
        src = [t]
    groups = ci if op == "dwconv" else 1
    wq = rng.integers(-128, 128, (co, k, kw, 1 if op == "dwconv" else ci)).astype(np.int8)
    gx = rg.conv_grad_input(t[None], wq, (h, w), g_s, g_p, groups)[0]
    t_scale = F32(rng.uniform(1e-7, 1e-3)) if t_scale is None else F32(t_scale)
    q, sc = rg.requant_grad(gx.astype(np.int32), t_scale, bits_, mode)
    return Case("grad_in_two_pass", _conv_params(h, w, ci, ho, wo, co, k, kw, stride, pad)
                + [CONV_OPS.index(op), bits(t_scale), rows, bits_, *range_params(mode),
                   int(prescale)],
                src + [wq] + ([] if geo is None else [geo]),
                _i32(TT_OK) + q.astype(np.int8).tobytes() + f32b(sc),
                macs=2 * ho * wo * co * k * kw * (1 if op == "dwconv" else ci),
                name=f"grad_in_two_pass {op} {h}x{w}x{ci}->{co} k{k} {label} rows={rows} "
                     f"{mode} b{bits_}" + (" prescale" if prescale else ""))


def grad_in_two_pass_cases(seed: int = 7) -> list[Case]:
    """Every band kernel, several band heights (one row, uneven, taller than the map),
    range modes, bit widths, strides, padding and an all-zero gradient."""
    rng = np.random.default_rng(seed)
    out = []
    for j, (op, k, s, p, rows, mode, b) in enumerate([
            ("conv2d", 3, 2, 1, 1, "max", 8), ("conv2d", 3, 1, 1, 4, "mean*8", 6),
            ("conv2d_1x1", 1, 1, 0, 1, "max/2", 8), ("conv2d_1x1", 1, 2, 0, 2, "max", 4),
            ("conv2d_1x1", 1, 1, 0, 3, "mean*3", 8), ("dwconv", 3, 1, 1, 1, "max", 8),
            ("dwconv", 5, 2, 2, 2, "max/4", 7), ("dwconv", 3, 2, 1, 64, "mean*16", 2),
            ("conv2d", 3, 2, 1, 2, "max", 8), ("conv2d_1x1", 1, 2, 0, 1, "max", 8),
            ("conv2d_1x1", 1, 1, 0, 2, "max/2", 6), ("dwconv", 3, 1, 1, 1, "mean*4", 8),
            ("dwconv", 5, 2, 2, 3, "max", 8), ("conv2d_1x1", 1, 1, 0, 2, "3*max/4", 5)]):
        ci = 37 if op == "dwconv" else 11
        out.append(grad_in_two_pass_case(op, h=7, w=6, ci=ci, co=ci if op == "dwconv" else 9,
                                         k=k, stride=s, pad=p, rng=rng, rows=rows, bits_=b,
                                         mode=mode, prescale=j >= 8))
    out.append(grad_in_two_pass_case("dwconv", h=5, w=5, ci=8, co=8, k=3, pad=1, rng=rng,
                                     sparsity=1.0))
    out.append(grad_in_two_pass_case("conv2d", h=9, w=5, ci=3, co=4, k=3, stride=1, pad=1,
                                     stride_w=2, pad_w=0, rng=rng, rows=2, mode="mean*5"))
    out.append(grad_in_two_pass_case("dwconv", h=9, w=5, ci=6, co=6, k=3, stride=2, pad=1,
                                     stride_w=1, pad_w=1, rng=rng, rows=1, prescale=True))
    return out


def fc_grad_in_case(*, ci, co, batch, rng, t_range=2047, name="") -> Case:
    t = rng.integers(-t_range, t_range + 1, (batch, co)).astype(np.int16)
    wq = rng.integers(-128, 128, (co, ci)).astype(np.int8)
    gx = rg.fc_grad_input(t, wq)
    return Case("fc_grad_in", [ci, co, batch], [t, wq], gx.astype(np.int32).tobytes(),
                macs=batch * ci * co, name=name or f"fc_grad_in {ci}<-{co} batch {batch}")


def sgd_setup(rng, co: int, amax: float, regime: str, qas_off: bool = False):
    """(lr, s_gy, s_x, s_w) so that the update factors f_c * max|A| land in a regime:
    typical (deltas ~0.3..20 LSB), small (deltas mostly < 1: stochastic matters),
    tiny (factors below 2^-32: no update), huge (saturating deltas), mid (factors around
    0.05..13: both sides of 1/2, small and saturating deltas), invalid (one
    channel's factor >= 2^30, negative or not finite: TT_ERR_FACTOR)."""
    s_w = (rng.uniform(0.002, 0.05, co)).astype(np.float32)
    s_gy = F32(rng.uniform(1e-5, 1e-2))
    s_x = F32(rng.uniform(0.005, 0.1))
    target = {"typical": rng.uniform(0.3, 20), "small": rng.uniform(0.01, 0.9),
              "mid": max(1.0, amax) * rng.uniform(0.1, 1.0),
              "tiny": 1e-12, "huge": rng.uniform(1e3, 1e6), "invalid": 1.0}[regime]
    f = target / max(1.0, amax)
    sw_med = float(np.median(s_w))
    if qas_off:
        lr = F32(f / (float(s_gy) * float(s_x) * sw_med))
    else:
        lr = F32(f * sw_med / (float(s_gy) * float(s_x)))
    if regime == "invalid":
        c = int(rng.integers(0, co))
        bad = [F32(0.0), F32(1e-30), F32(1e30), F32(-0.01), F32(np.inf)]
        s_w[c] = bad[int(rng.integers(0, len(bad)))]
    return lr, s_gy, s_x, s_w


def _expected_update(w, acc, lr, s_gy, s_x, s_w, k, rounding, key, qas_off=False):
    with np.errstate(all="ignore"):
        f = (rg.weight_factors_plain if qas_off else rg.weight_factors)(lr, s_gy, s_x, s_w[:k])
    try:
        return TT_OK, rg.sgd_update_weights(w, acc, f, rounding, key)
    except ValueError:
        return TT_ERR_FACTOR, np.asarray(w, np.int8)


def _sgd_params(lr, s_gy, s_x, k, rounding, key, qas_off=False) -> list[int]:
    return [bits(lr), bits(s_gy), bits(s_x), k, rg.ROUNDINGS.index(rounding),
            int(np.uint32(key).view(np.int32)), int(qas_off)]


def random_grad(rng, shape, qmax=127, sparsity=0.4) -> np.ndarray:
    g = rng.integers(-qmax, qmax + 1, shape).astype(np.int8)
    g[rng.random(shape) < sparsity] = 0
    return g


def conv_grad_w_case(op: str, *, h, w, ci, co, k, kw=None, stride=1, pad=0, rng, kk=None,
                     rounding="stochastic", regime="typical", x_zero=None, key=None,
                     qas_off=False, stride_w=None, pad_w=None, name="") -> Case:
    kw = k if kw is None else kw
    h, w, ci, co, k, kw, stride, pad, ho, wo = conv_geom(op, h, w, ci, co, k, kw, stride, pad,
                                                         stride_w, pad_w)
    g_s, g_p, geo, label = _axis(stride, pad, stride_w, pad_w)
    gy = random_grad(rng, (ho, wo, co))
    x = rng.integers(-128, 128, (h, w, ci)).astype(np.int8)
    x_zero = int(rng.integers(-128, 128)) if x_zero is None else x_zero
    groups = ci if op == "dwconv" else 1
    wshape = (co, k, kw, 1 if op == "dwconv" else ci)
    wq = rng.integers(-128, 128, wshape).astype(np.int8)
    kk = co if kk is None else min(kk, co)
    key = int(rng.integers(0, 2**32)) if key is None else key
    acc = rg.conv_grad_weight_acc(gy[None], x[None], x_zero, (k, kw), g_s, g_p, groups, kk)
    amax = float(np.abs(acc).max()) if acc.size else 1.0
    lr, s_gy, s_x, s_w = sgd_setup(rng, co, amax, regime, qas_off)
    st, w2 = _expected_update(wq, acc, lr, s_gy, s_x, s_w, kk, rounding, key, qas_off)
    macs = ho * wo * kk * k * kw * (1 if op == "dwconv" else ci)
    return Case(f"{op}_grad_w",
                _conv_params(h, w, ci, ho, wo, co, k, kw, stride, pad, x_zero)
                + _sgd_params(lr, s_gy, s_x, kk, rounding, key, qas_off),
                [gy, x, wq, s_w] + ([] if geo is None else [geo]), _i32(st) + w2.tobytes(),
                macs=macs,
                name=name or f"{op}_grad_w {h}x{w}x{ci}->{co} k{k}x{kw} {label} "
                             f"k={kk} {rounding} {regime}{' qas_off' if qas_off else ''}")


def fc_grad_w_case(*, ci, co, batch, rng, kk=None, rounding="stochastic", regime="typical",
                   x_zero=None, key=None, qas_off=False, name="") -> Case:
    gy = random_grad(rng, (batch, co))
    x = rng.integers(-128, 128, (batch, ci)).astype(np.int8)
    x_zero = int(rng.integers(-128, 128)) if x_zero is None else x_zero
    wq = rng.integers(-128, 128, (co, ci)).astype(np.int8)
    kk = co if kk is None else min(kk, co)
    key = int(rng.integers(0, 2**32)) if key is None else key
    acc = rg.fc_grad_weight_acc(gy, x, x_zero, kk)
    amax = float(np.abs(acc).max()) if acc.size else 1.0
    lr, s_gy, s_x, s_w = sgd_setup(rng, co, amax, regime, qas_off)
    st, w2 = _expected_update(wq, acc, lr, s_gy, s_x, s_w, kk, rounding, key, qas_off)
    return Case("fc_grad_w",
                [ci, co, batch, x_zero] + _sgd_params(lr, s_gy, s_x, kk, rounding, key, qas_off),
                [gy, x, wq, s_w], _i32(st) + w2.tobytes(), macs=batch * ci * kk,
                name=name or f"fc_grad_w {ci}->{co} batch {batch} k={kk} {rounding} {regime}"
                             f"{' qas_off' if qas_off else ''}")


def bias_case(*, pixels, c, rng, kk=None, regime="typical", qas_off=False, name="") -> Case:
    gy = random_grad(rng, (pixels, c))
    kk = c if kk is None else min(kk, c)
    b = rng.integers(-2**31, 2**31, c, dtype=np.int64).astype(np.int32)
    if rng.random() < 0.3:  # near the int32 limits: saturation
        b[: c // 2] = np.where(rng.random(c // 2) < 0.5, 2**31 - 1 - rng.integers(0, 50, c // 2),
                               -2**31 + rng.integers(0, 50, c // 2))
    gb = rg.bias_grad_acc(gy, kk)
    amax = float(np.abs(gb).max()) if gb.size else 1.0
    lr, s_gy, s_x, s_w = sgd_setup(rng, c, amax, regime, qas_off)
    if regime == "typical" and not qas_off:
        # QAS bias factors are (s_w s_x)^-2 larger than the weights': aim at ~1..1e4 LSB
        lr = F32(float(lr) * float(s_x) ** 2 * rng.uniform(0.1, 10))
    with np.errstate(all="ignore"):
        f = (rg.bias_factors_plain if qas_off else rg.bias_factors)(lr, s_gy, s_x, s_w[:kk])
    try:
        st, b2 = TT_OK, rg.sgd_update_bias(b, gb, f)
    except ValueError:
        st, b2 = TT_ERR_FACTOR, b
    return Case("bias", [pixels, c, bits(lr), bits(s_gy), bits(s_x), kk, int(qas_off)],
                [gy, s_w, b], _i32(st) + b2.astype(np.int32).tobytes(),
                name=name or f"bias {pixels}x{c} k={kk} {regime}{' qas_off' if qas_off else ''}")


# ---- split weights (tt_kernels.h w_tail / w_split) ---------------------------------------

GRAD_IN_OPS = ("conv2d_grad_in", "conv2d_1x1_grad_in", "dwconv_grad_in", "fc_grad_in")
GRAD_W_OPS = ("conv2d_grad_w", "conv2d_1x1_grad_w", "dwconv_grad_w", "fc_grad_w")
# number of the op's own parameters (the driver takes one more: the split)
_N_PARAMS = {"conv2d_grad_in": 11, "conv2d_1x1_grad_in": 11, "dwconv_grad_in": 11,
             "fc_grad_in": 3, "conv2d_grad_w": 18, "conv2d_1x1_grad_w": 18,
             "dwconv_grad_w": 18, "fc_grad_w": 11}


def out_channels(c: Case) -> int:
    return c.params[1] if c.op.startswith("fc") else c.params[5]


def update_k(c: Case) -> int:
    """u->k of a weight-update case."""
    return c.params[7] if c.op == "fc_grad_w" else c.params[14]


def split_of(c: Case) -> int | None:
    return c.params[-1] if len(c.params) == _N_PARAMS[c.op] + 1 else None


def with_split(c: Case, split: int) -> Case:
    """A copy of a weight-reading / weight-updating case with split weights: output
    channels [0, split) at w, the rest at w_tail (split >= out_c: all at w; -1: w_tail
    NULL, w_split ignored).
    Input gradients: same golden output. Weight updates: same bytes when u->k <= split
    (the tail is appended unchanged), else TT_ERR_ARG with w untouched."""
    assert c.op in _N_PARAMS and split_of(c) is None and split >= -1
    exp = c.expected
    if c.op in GRAD_W_OPS and 0 <= split < update_k(c):
        exp = _i32(TT_ERR_ARG) + np.ascontiguousarray(c.arrays[2]).tobytes()
    return Case(c.op, [*c.params, split], c.arrays, exp, c.loose,
                f"{c.name or c.op} split={split}", c.macs)


def pick_split(rng, c: Case) -> int:
    """Mostly inside (input gradients: 0 < s < out_c; weight updates: k <= s <= out_c),
    sometimes the edges 0 / out_c, a NULL tail (-1), or for a weight update s < k, which
    the kernel must refuse."""
    co = out_channels(c)
    r = rng.random()
    if c.op in GRAD_W_OPS:
        k = update_k(c)
        if r < 0.6:
            return int(rng.integers(k, co + 1))
        if r < 0.75:
            return co
        if r < 0.85:
            return -1
        return int(rng.integers(0, k)) if k > 0 else 0
    if r < 0.6 and co >= 2:
        return int(rng.integers(1, co))
    if r < 0.75:
        return 0
    if r < 0.9:
        return co
    return -1


def apply_splits(cases: list[Case], seed: int, every: int = 3) -> list[Case]:
    """Every `every`-th case of a kernel that takes weights gets split weights (in place
    in the list; a fraction, so the suites keep their size and run time)."""
    rng = np.random.default_rng([seed, 0x5117])
    n = 0
    for i, c in enumerate(cases):
        if c.op in _N_PARAMS:
            if n % every == every - 1:
                cases[i] = with_split(c, pick_split(rng, c))
            n += 1
    return cases


def split_edge_cases(seed: int = 5) -> list[Case]:
    """Every input gradient at the edges of the split and inside the DSP cores' channel
    pairs / chunks of 32 (depthwise) / 64 (1x1, fc); the weight updates with k <= split,
    k > split (refused) and a NULL tail."""
    rng = np.random.default_rng(seed)
    base = [
        conv_grad_in_case("conv2d", h=6, w=5, ci=3, co=7, k=3, stride=2, pad=1, rng=rng),
        conv_grad_in_case("conv2d_1x1", h=4, w=5, ci=11, co=9, k=1, rng=rng, bands="random"),
        conv_grad_in_case("conv2d_1x1", h=3, w=4, ci=8, co=70, k=1, stride=2, rng=rng),
        conv_grad_in_case("dwconv", h=6, w=6, ci=37, co=37, k=3, stride=1, pad=1, rng=rng,
                          bands="random"),
        conv_grad_in_case("dwconv", h=7, w=7, ci=7, co=7, k=5, stride=2, pad=2, rng=rng),
        fc_grad_in_case(ci=21, co=67, batch=2, rng=rng),
        fc_grad_in_case(ci=16, co=5, batch=1, rng=rng),
    ]
    out = []
    for c in base:
        co = out_channels(c)
        picks = {0, 1, co // 2, co - 1, co, co + 3, -1, int(rng.integers(1, co))}
        if co > 64:
            picks |= {63, 64, 65}
        if co > 32:
            picks |= {31, 32, 33}
        out += [with_split(c, sp) for sp in sorted(picks)]
    upd = [
        conv_grad_w_case("conv2d", h=5, w=5, ci=3, co=6, k=3, pad=1, rng=rng, kk=2),
        conv_grad_w_case("conv2d_1x1", h=4, w=4, ci=9, co=10, k=1, rng=rng, kk=5),
        conv_grad_w_case("dwconv", h=6, w=6, ci=9, co=9, k=3, pad=1, rng=rng, kk=6),
        fc_grad_w_case(ci=12, co=7, batch=3, rng=rng, kk=3),
    ]
    for c in upd:
        kk, co = update_k(c), out_channels(c)
        out += [with_split(c, sp) for sp in (kk, kk + 1, co, co + 3, kk - 1, 0, -1)]
    return out


# ---- value generators ------------------------------------------------------------------

def special_floats() -> np.ndarray:
    v = [0.0, -0.0, 1.0, 0.5, 0.49999997, 0.50000006, 1.5, 2.5, -0.5, -1.5, -2.5, 2**-32,
         2**-33, 2**-31, 2**29, 2**30, 2**30 * 0.99999994, 1e-45, 1e-40, 1.1754942e-38,
         1.1754944e-38, 3.4028235e38, 8388607.5, 8388608.0, 16777215.0, -1e-45, -1.0]
    out = np.array(v, np.float32)
    return np.concatenate([out, np.array([np.inf, -np.inf, np.nan], np.float32)])


def random_float_bits(rng, n: int) -> np.ndarray:
    return rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)


# ---- suites -----------------------------------------------------------------------

def sweep_cases(seed: int = 1234, small: bool = False) -> list[Case]:
    """Every kernel and helper x modes x bit widths x roundings x shape tails."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    n_vec = 64 if small else 400
    # scalar helpers
    cases.append(q31_case(np.concatenate([special_floats(), random_float_bits(rng, n_vec),
                                          rng.uniform(0, 2**31, n_vec // 4).astype(np.float32)])))
    xs = np.concatenate([rng.uniform(-100, 0, n_vec), -np.abs(rng.standard_normal(n_vec)),
                         [0.0, -0.0, -86.0, -86.00001, -85.99999, -1e-30, -1e-45, -1000.0]])
    cases.append(expf_case(xs.astype(np.float32)))
    r = np.concatenate([special_floats()[:-3], rng.uniform(-300, 300, n_vec),
                        rng.integers(-200, 200, n_vec) + 0.5])
    cases.append(round_case(r.astype(np.float32)))
    cases.append(hash_case(rng.integers(0, 2**32, n_vec, dtype=np.uint64), int(rng.integers(0, 2**32))))
    cases.append(hash_case(np.arange(n_vec), 0))
    cases.append(update_key_case(rng.integers(0, 2**32, (n_vec // 4, 3), dtype=np.uint64)))
    for rounding in rg.ROUNDINGS:
        n = n_vec
        v = rng.integers(-2**62 + 1, 2**62, n, dtype=np.int64)
        v[: n // 4] = rng.integers(-2**20, 2**20, n // 4)
        tot = rng.integers(1, 63, n).astype(np.int32)
        tot[:8] = [1, 31, 32, 33, 62, 63, 70, 0]
        tot[8:12] = [-1, -2, -3, 0]
        v[8:12] = rng.integers(-2**40, 2**40, 4)
        cases.append(fixed_round_case(v, tot, rng.integers(0, 2**32, n, dtype=np.uint64), rounding))
    # loss / scales
    for i, mode in enumerate(MODES):
        b = [8, 2, 3, 4, 5, 6, 7, 8, 4][i]
        g = (rng.standard_normal(37) * 10.0 ** rng.uniform(-8, 2)).astype(np.float32)
        cases.append(quant_f32_case(g, b, mode))
        c = int(rng.integers(2, 40))
        logits = rng.integers(-128, 128, c)
        cases.append(softmax_case(logits, F32(rng.uniform(0.01, 0.5)), int(rng.integers(-128, 128)),
                                  int(rng.integers(0, c)), b, mode, in_place=bool(i & 1)))
        acc = (rng.standard_normal(int(rng.integers(1, 200))) * 10.0 ** rng.uniform(0, 9))
        acc = np.clip(acc, -2**31, 2**31 - 1).astype(np.int32)
        cases.append(grad_range_case(acc, mode))
        cases.append(requant_grad_case(acc, F32(10.0 ** rng.uniform(-12, 0)), b, mode,
                                       in_place=bool(i & 1)))
        cases.append(requant_grad_case(acc, F32(rng.uniform(1e-6, 1e-3)), b, mode,
                                       r=int(rng.integers(-5, 2**40)), want_stat=bool(i & 2)))
        n = int(rng.integers(1, 100))
        cases.append(add_grads_case(random_grad(rng, n), F32(10.0 ** rng.uniform(-6, 0)),
                                    random_grad(rng, n), F32(10.0 ** rng.uniform(-6, 0)), b, mode,
                                    alias=i % 3))
    cases.append(quant_f32_case(np.zeros(5, np.float32), 8, "max"))
    cases.append(softmax_case([127, -128, 0], F32(1.0), 0, 1, 8, "max"))      # p[label] ~ 0
    cases.append(softmax_case([100, -128, -128, -128], F32(0.5), 0, 0, 8, "max"))  # p = 1
    cases.append(softmax_case([5], F32(0.1), 0, 0, 8, "mean*4"))             # one class: g = 0
    r2 = np.random.default_rng(seed + 27)   # own stream: the other cases stay as they were
    cases.append(mse_case(r2.integers(-128, 128, 640), r2.integers(-128, 128, 640), F32(0.013),
                          6, "max/2", in_place=True))
    cases.append(mse_case([3, -7, 0], [3, -7, 0], F32(0.5), 8, "max"))   # perfect: g = 0, loss 0
    cases.append(mse_case([127], [-128], F32(2.0), 8, "mean*3"))
    cases.append(requant_grad_case(np.zeros(7, np.int32), F32(0.25), 8, "max"))
    cases.append(requant_grad_case(np.array([-2**31, 2**31 - 1, 5], np.int32), F32(1e-3), 8,
                                   "mean*64"))
    cases.append(add_grads_case(random_grad(rng, 9), F32(0.0), random_grad(rng, 9), F32(0.0), 8,
                                "max"))
    cases.append(add_grads_case(random_grad(rng, 9), F32(1e-44), random_grad(rng, 9), F32(1e-45),
                                8, "max", alias=1))
    cases.append(add_grads_case(random_grad(rng, 9), F32(3e-38), random_grad(rng, 9), F32(1e-39),
                                8, "max/2"))
    # elementwise
    cases.append(prescale_case(random_grad(rng, (13, 11)), rng.uniform(0.001, 0.05, 11)))
    y = rng.integers(-128, 128, 77).astype(np.int8)
    for lo, hi, b0 in [(-128, 127, 0), (0, 127, 3), (-5, 90, 13), (10, 10, 7)]:
        cases.append(mask_pack_case(y, lo, hi, b0, rng.integers(0, 256, 12)))
        cases.append(grad_mask_case(random_grad(rng, 70), rng.integers(0, 256, 12), b0))
    cases.append(avgpool_grad_case(random_grad(rng, 24), F32(0.0123), 3, 5))
    # convolutions
    shapes = [  # (op, h, w, ci, co, k, stride, pad)
        ("conv2d", 7, 6, 3, 5, 3, 2, 1), ("conv2d", 5, 5, 4, 3, 3, 1, 1),
        ("conv2d", 6, 7, 2, 4, 2, 3, 0), ("conv2d", 4, 4, 3, 2, 5, 1, 2),
        ("conv2d_1x1", 5, 6, 13, 7, 1, 1, 0), ("conv2d_1x1", 7, 5, 8, 35, 1, 2, 0),
        ("conv2d_1x1", 4, 4, 19, 36, 1, 1, 0), ("conv2d_1x1", 3, 3, 3, 1, 1, 2, 0),
        ("dwconv", 7, 7, 6, 6, 3, 1, 1), ("dwconv", 8, 7, 5, 5, 3, 2, 1),
        ("dwconv", 9, 9, 3, 3, 5, 2, 2), ("dwconv", 6, 6, 4, 4, 7, 1, 3),
    ]
    if small:
        shapes = shapes[::2] + [shapes[5], shapes[6]]
    for j, (op, h, w, ci, co, k, s, p) in enumerate(shapes):
        cases.append(conv_grad_in_case(op, h=h, w=w, ci=ci, co=co, k=k, stride=s, pad=p, rng=rng,
                                       bands="random" if j % 2 else None))
        rounding = rg.ROUNDINGS[j % 3]
        regime = ["typical", "small", "typical", "huge", "tiny", "typical"][j % 6]
        cases.append(conv_grad_w_case(op, h=h, w=w, ci=ci, co=co, k=k, stride=s, pad=p, rng=rng,
                                      kk=[None, 1, 2, 3][j % 4], rounding=rounding, regime=regime))
    cases.append(conv_grad_w_case("conv2d_1x1", h=4, w=5, ci=9, co=6, k=1, rng=rng,
                                  regime="invalid"))
    cases.append(conv_grad_w_case("conv2d_1x1", h=4, w=5, ci=9, co=6, k=1, rng=rng, kk=0))
    for ci, co, batch in [(17, 10, 1), (64, 12, 3), (9, 35, 2)]:
        cases.append(fc_grad_in_case(ci=ci, co=co, batch=batch, rng=rng))
        for rounding in rg.ROUNDINGS:
            cases.append(fc_grad_w_case(ci=ci, co=co, batch=batch, rng=rng, rounding=rounding,
                                        kk=int(rng.integers(1, co + 1))))
    cases.append(fc_grad_w_case(ci=8, co=4, batch=2, rng=rng, regime="invalid"))
    for j, regime in enumerate(["typical", "small", "huge", "invalid", "tiny"]):
        cases.append(bias_case(pixels=int(rng.integers(1, 50)), c=int(rng.integers(1, 20)), rng=rng,
                               regime=regime, qas_off=bool(j & 1)))
    # QAS off (plain factors)
    cases.append(conv_grad_w_case("conv2d_1x1", h=5, w=4, ci=10, co=9, k=1, rng=rng, kk=7,
                                  qas_off=True))
    cases.append(conv_grad_w_case("dwconv", h=6, w=6, ci=9, co=9, k=3, pad=1, rng=rng,
                                  rounding="nearest", qas_off=True))
    cases.append(fc_grad_w_case(ci=21, co=5, batch=1, rng=rng, regime="small", qas_off=True))
    # scale factor helpers
    fr = np.stack([rng.uniform(1e-4, 1.0, n_vec // 4), rng.uniform(1e-6, 1e-1, n_vec // 4),
                   rng.uniform(1e-3, 1.0, n_vec // 4), rng.uniform(1e-4, 0.1, n_vec // 4)], 1)
    fr = np.concatenate([fr, tc_special_factor_rows()])
    cases.append(factors_case(fr))
    # max pool backward: ties on purpose (saturated inputs), overlapping windows, padding
    mp = np.random.default_rng(seed + 1)
    for h, w, c, k, st, pad in [(4, 4, 3, 2, 2, 0), (7, 5, 6, 3, 2, 1), (6, 6, 4, 3, 1, 1)]:
        x = mp.integers(-128, 128, (h, w, c)).astype(np.int8)
        if k == 3:
            x = mp.choice(np.array([-128, 0, 0, 5, 127], np.int8), (h, w, c))
        ho, wo = (h + 2 * pad - k) // st + 1, (w + 2 * pad - k) // st + 1
        cases.append(maxpool_grad_case(x, random_grad(mp, (ho, wo, c)), k, st, pad))
    ap = np.random.default_rng(seed + 2)
    for h, w, c, k, st, pad in [(4, 4, 3, (2, 2), 2, 0), (7, 5, 6, (3, 3), 2, 1),
                                (6, 6, 4, (3, 3), 1, 1), (9, 7, 3, (3, 2), (2, 1), (1, 0))]:
        (sh, sw), (ph, pw) = hw(st), hw(pad)
        ho, wo = (h + 2 * ph - k[0]) // sh + 1, (w + 2 * pw - k[1]) // sw + 1
        cases.append(avg_pool_grad_case(h, w, random_grad(ap, (ho, wo, c)), k, st, pad))
    cases += grad_in_two_pass_cases(seed)
    return apply_splits(cases, seed)


def per_axis_and_se_cases(seed: int = 4242) -> list[Case]:
    """Kernel, stride and padding differing per axis on non-square maps for the generic
    conv and the depthwise input gradients and weight updates (bands, channel counts
    around the DSP groups of 4 and chunks of 32, a third with split weights) and the max
    pool backward; the backward kernels of squeeze-excite and concat (tt_lut_grad_s8,
    tt_mul_grad_s8, tt_mul_gate_grad_s8, tt_concat_grad_s8)."""
    rng = np.random.default_rng([seed, 0xA815])
    cases: list[Case] = []
    # (op, h, w, ci, co, k_h, k_w, stride_h, stride_w, pad_h, pad_w)
    shapes = [("conv2d", 9, 5, 3, 4, 3, 1, 1, 1, 1, 0), ("conv2d", 7, 6, 5, 3, 2, 3, 1, 2, 1, 1),
              ("conv2d", 11, 6, 1, 5, 10, 4, 2, 2, 5, 1), ("conv2d", 5, 8, 4, 2, 1, 3, 2, 1, 0, 1),
              ("dwconv", 9, 5, 6, 6, 3, 5, 2, 1, 1, 2), ("dwconv", 7, 9, 9, 9, 3, 3, 1, 2, 1, 0),
              ("dwconv", 6, 7, 5, 5, 1, 3, 1, 2, 0, 1), ("dwconv", 8, 5, 13, 13, 5, 3, 1, 1, 2, 1),
              ("dwconv", 5, 4, 35, 35, 3, 3, 2, 1, 0, 1)]
    for j, (op, h, w, ci, co, kh, kw, sh, sw, ph, pw) in enumerate(shapes):
        geo = dict(h=h, w=w, ci=ci, co=co, k=kh, kw=kw, stride=sh, pad=ph, stride_w=sw, pad_w=pw,
                   rng=rng)
        cases.append(conv_grad_in_case(op, **geo, bands="random" if j % 2 else None))
        cases.append(conv_grad_w_case(op, **geo, kk=[None, 1, 2, 5][j % 4],
                                      rounding=rg.ROUNDINGS[j % 3],
                                      regime=["typical", "small", "typical"][j % 3]))
    for h, w, c, kh, kw, sh, sw, ph, pw in [(6, 7, 3, 2, 3, 2, 1, 0, 1), (7, 4, 5, 3, 1, 2, 1, 1, 0)]:
        x = rng.choice(np.array([-128, 0, 0, 5, 127], np.int8), (h, w, c))
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        cases.append(maxpool_grad_case(x, random_grad(rng, (ho, wo, c)), kh, sh, ph, kw, sw, pw))
    for n in (1, 3, 4, 17, 256):
        cases.append(lut_grad_case(n, rng))
    for pixels, c in [(1, 1), (5, 3), (9, 16), (16, 7)]:
        cases.append(mul_grad_case(pixels, c, True, rng))
        cases.append(mul_grad_case(pixels, c, False, rng))
        cases.append(mul_gate_grad_case(pixels, c, rng))
    for pixels, out_c, c0, c in [(1, 1, 0, 1), (6, 7, 0, 3), (6, 7, 3, 4), (5, 16, 5, 9)]:
        cases.append(concat_grad_case(pixels, out_c, c0, c, rng))
    return apply_splits(cases, seed)


def fastpath_cases(seed: int = 31) -> list[Case]:
    """Edges of the faster backward paths: requant_grad with factors in [1/2, 1) (total
    32) and above (total < 32), prescale channels far below the largest weight scale
    (total > 32), masks from a byte boundary with bytes of ones, zeros and mixed, bias
    sums over more than 256 pixels (the int16 lanes are flushed)."""
    rng = np.random.default_rng([seed, 0xB3D])
    cases: list[Case] = []
    for amax, n in [(200, 37), (100, 8), (254, 9), (2**31 - 1, 21), (3000, 64)]:
        acc = rng.integers(-amax, amax + 1, n).astype(np.int32)
        acc[0] = amax
        for mode in ("max", "max/4", "mean*3"):
            cases.append(requant_grad_case(acc, F32(1e-4), 8, mode))
        cases.append(requant_grad_case(acc, F32(1e-4), 5, "max", in_place=True))
    # max |v| raised late, and by -2^31 (which ends the range scan), groups of 4 and a tail
    for n, at, v in [(23, 5, -2**31), (30, 27, -(2**20)), (41, 36, 2**31 - 1)]:
        acc = rng.integers(-1000, 1001, n).astype(np.int32)
        acc[at] = v
        cases.append(requant_grad_case(acc, F32(1e-4), 8, "max"))
    ws = np.concatenate([[0.05], rng.uniform(1e-6, 0.05, 30), [1e-5, 2e-4, 0.05 / 64, 0.05 / 33]])
    cases.append(prescale_case(random_grad(rng, (7, ws.size)), ws))
    mb = rng.integers(0, 256, 24).astype(np.uint8)
    mb[[1, 5, 6]] = 0xFF
    mb[[2, 7]] = 0
    for n, b0 in [(150, 0), (64, 8), (77, 16), (5, 0), (60, 4)]:
        cases.append(grad_mask_case(random_grad(rng, n), mb, b0))
    cases.append(bias_case(pixels=300, c=13, rng=rng, name="bias 300x13 (lane flush)"))
    cases.append(bias_case(pixels=600, c=8, rng=rng, kk=6, name="bias 600x8 k=6"))
    # depthwise input gradient, taps summed in registers (stride 1 along the columns, even
    # channels): full 3x3 / 5x5 / 7x7 and partial runs, a leftover channel pair, chunks of
    # 32, row and column strides, bands, split weights (odd channels take the tap path)
    dw = [conv_grad_in_case("dwconv", h=7, w=7, ci=38, co=38, k=5, pad=2, rng=rng,
                            bands="random"),
          conv_grad_in_case("dwconv", h=4, w=4, ci=36, co=36, k=5, pad=2, rng=rng),
          conv_grad_in_case("dwconv", h=9, w=8, ci=12, co=12, k=3, stride=2, pad=1, rng=rng,
                            stride_w=1, pad_w=0),
          conv_grad_in_case("dwconv", h=6, w=7, ci=44, co=44, k=3, pad=0, rng=rng,
                            bands="random"),
          conv_grad_in_case("dwconv", h=5, w=9, ci=6, co=6, k=1, kw=4, pad=0, pad_w=2,
                            rng=rng),
          conv_grad_in_case("dwconv", h=8, w=8, ci=10, co=10, k=3, stride=1, pad=1, rng=rng,
                            stride_w=2),
          conv_grad_in_case("dwconv", h=9, w=9, ci=20, co=20, k=7, stride=2, pad=3, rng=rng,
                            bands="random"),
          conv_grad_in_case("dwconv", h=7, w=7, ci=34, co=34, k=7, pad=3, rng=rng),
          conv_grad_in_case("dwconv", h=4, w=4, ci=8, co=8, k=7, pad=3, rng=rng),
          conv_grad_in_case("dwconv", h=10, w=9, ci=4, co=4, k=3, stride=2, pad=0, rng=rng,
                            stride_w=3, pad_w=1),
          conv_grad_in_case("dwconv", h=9, w=11, ci=14, co=14, k=7, stride=1, pad=3, rng=rng,
                            stride_w=2, pad_w=2)]
    cases += dw + [with_split(dw[0], 17), with_split(dw[3], 32)]
    # stride 2 along both axes (3x3 / 5x5 / 7x7): runs of one column phase, their first
    # and last pixels at every padding, a second chunk of 32, a leftover pair, odd channels
    r2 = np.random.default_rng([seed, 0x52])
    s2 = [conv_grad_in_case("dwconv", h=9, w=9, ci=40, co=40, k=3, stride=2, pad=1, rng=r2,
                            bands="random"),
          conv_grad_in_case("dwconv", h=8, w=11, ci=6, co=6, k=3, stride=2, pad=0, rng=r2),
          conv_grad_in_case("dwconv", h=11, w=10, ci=12, co=12, k=5, stride=2, pad=2, rng=r2,
                            bands="random"),
          conv_grad_in_case("dwconv", h=9, w=12, ci=10, co=10, k=5, stride=2, pad=1, rng=r2),
          conv_grad_in_case("dwconv", h=13, w=12, ci=8, co=8, k=7, stride=2, pad=3, rng=r2,
                            bands="random"),
          conv_grad_in_case("dwconv", h=12, w=11, ci=14, co=14, k=7, stride=2, pad=2, rng=r2),
          conv_grad_in_case("dwconv", h=7, w=9, ci=9, co=9, k=3, stride=2, pad=1, rng=r2)]
    cases += s2 + [with_split(s2[2], 5)]
    # weight updates with factors around 0.05 .. 13 (runs of 8 inputs, every rounding)
    for rnd in ("stochastic", "nearest", "truncate"):
        cases.append(conv_grad_w_case("conv2d_1x1", h=3, w=3, ci=20, co=12, k=1, rng=rng, kk=10,
                                      regime="mid", rounding=rnd))
    cases.append(fc_grad_w_case(ci=24, co=6, batch=3, rng=rng, regime="mid"))
    for n, mode in [(1500, "mean*3"), (700, "max"), (9, "max/2")]:   # add_grads: sums in parts
        q1 = np.full(n, -128, np.int8) if n == 700 else random_grad(rng, n, 127, 0.0)
        cases.append(add_grads_case(q1, F32(3e-3), random_grad(rng, n, 127, 0.0), F32(2.9e-3), 8,
                                    mode))
    return cases


def tc_special_factor_rows() -> np.ndarray:
    return np.array([[1e-30, 1e-30, 1e-30, 1e-30], [1e30, 1e30, 1.0, 1e-30], [0.1, 0.2, 0.3, 0.0],
                     [1.0, 1.0, 1e-40, 1e-5], [0.5, 2**-100, 2**-20, 2**-30]], np.float32)


def perf_cases(seed: int = 7) -> list[Case]:
    """Layer shapes of a trained last block (for instructions per MAC on the board)."""
    rng = np.random.default_rng(seed)
    return [
        conv_grad_in_case("conv2d_1x1", h=8, w=8, ci=48, co=96, k=1, rng=rng, sparsity=0.0,
                          name="perf 1x1 grad_in 8x8 96->48"),
        conv_grad_w_case("conv2d_1x1", h=8, w=8, ci=48, co=96, k=1, rng=rng, kk=24,
                         name="perf 1x1 grad_w 8x8 48->96 k=24"),
        conv_grad_w_case("conv2d_1x1", h=8, w=8, ci=96, co=32, k=1, rng=rng, kk=32,
                         rounding="nearest", name="perf 1x1 grad_w 8x8 96->32 nearest"),
        fc_grad_in_case(ci=160, co=10, batch=1, rng=rng, name="perf fc grad_in 160<-10"),
        fc_grad_w_case(ci=160, co=10, batch=1, rng=rng, name="perf fc grad_w 160->10 b1"),
        fc_grad_w_case(ci=160, co=10, batch=8, rng=rng, name="perf fc grad_w 160->10 b8"),
        conv_grad_in_case("dwconv", h=8, w=8, ci=96, co=96, k=3, stride=1, pad=1, rng=rng,
                          sparsity=0.0, name="perf dw grad_in 8x8x96 3x3"),
        conv_grad_w_case("dwconv", h=8, w=8, ci=96, co=96, k=3, stride=1, pad=1, rng=rng,
                         name="perf dw grad_w 8x8x96 3x3"),
    ]
