"""Kernel test cases shared by the host tests, the QEMU tests and the kernel benchmark.

A case is one call pattern of one C kernel (runtime_c/include/tt_kernels.h) with its
inputs and its golden output, which always comes from compiler.ref.ops. Cases are
serialised into the binary stream read by tests/c/kernel_driver.c (the format is
described there); the same stream is piped to the host driver or compiled into the
firmware for QEMU (the machinery both kernel drivers share: tests/driver_cases.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler import paths
from compiler.ir.qmath import quantize_multiplier
from compiler.ref import ops as ref_ops
from tests import driver_cases as dc

REPO = paths.REPO
DRIVER_C = REPO / "tests" / "c" / "kernel_driver.c"
KERNEL_SRCS = dc.kernel_sources(
    "tt_add_s8", "tt_avgpool_global_s8", "tt_conv2d_1x1_s8", "tt_conv2d_s8", "tt_dwconv_s8",
    "tt_dwconv_3x3_s1_s8", "tt_dwconv_3x3_s2_s8", "tt_dwconv_wrapper_s8", "tt_fc_s8",
    "tt_requantize_s8", "tt_maxpool_s8", "tt_concat_s8", "tt_mul_s8", "tt_lut_s8",
    "tt_avgpool_global_requant_s8", "tt_avgpool_s8",
    "tt_kernels_dsp")
INCLUDE = dc.INCLUDE

OPS = {"conv2d": 1, "conv2d_1x1": 2, "dwconv": 3, "dwconv_3x3_s1": 4, "dwconv_3x3_s2": 5,
       "fc": 6, "add": 7, "avgpool": 8, "requantize": 9, "dwconv_wrapper": 10,
       "maxpool": 11, "concat": 12, "mul": 13, "lut": 14,
       "avgpool_requant": 40, "avg_pool": 41}
RQ_FLAG = 0x100   # kernel_driver.c OP_RQ_FLAG
MAP_FLAG = 0x200  # kernel_driver.c OP_MAP_FLAG (depthwise 3x3: tt_conv_params.dw_map)
CONV_OPS = ("conv2d", "conv2d_1x1", "dwconv", "dwconv_3x3_s1", "dwconv_3x3_s2", "dwconv_wrapper")
RQ_OPS = (*CONV_OPS, "fc")
STATUS = dc.STATUS

INT32_MAX = 2**31 - 1
MAX_PRODUCT = 255 * 128  # |x - x_zero| * |w|


@dataclass
class Case:
    op: str
    params: list[int]            # op-specific ints (order of kernel_driver.c)
    arrays: list[np.ndarray]     # op-specific order
    expected: np.ndarray         # int8, flat
    bands: list[tuple[int, int]] = field(default_factory=list)
    name: str = ""
    macs: int = 0
    # split weights (tt_kernels.h w_tail / w_split; conv family and fc only): None -> not
    # split; s >= 0 -> channels [0, s) at w, the rest at w_tail (s >= out_c: all at w);
    # -1 -> w_tail NULL with a nonzero w_split (ignored). Same golden output in every case.
    split: int | None = None
    # precomputed requantization records (tt_kernels.h rq; conv family and fc):
    # int16 [out_c] sent after the other arrays, or None (the kernel plans per call)
    rq: np.ndarray | None = None
    # depthwise 3x3 only: run with tt_conv_params.dw_map = 1 (the whole-map scratch)
    dw_map: bool = False

    def describe(self) -> str:
        sp = "" if self.split is None else f" split={self.split}"
        sp += "" if self.rq is None else " rq"
        sp += " map" if self.dw_map else ""
        return f"{self.name or self.op} params={self.params} bands={self.bands}{sp}"


# ---- encoding ----------------------------------------------------------------------

_i32 = dc.i32


def _arr(a: np.ndarray) -> bytes:
    return dc.arr_bytes(np.ascontiguousarray(a).tobytes())


def encode(cases: list[Case]) -> bytes:
    out = [_i32(len(cases))]
    for c in cases:
        params = c.params if c.split is None else [*c.params, c.split]
        op = OPS[c.op] | (RQ_FLAG if c.rq is not None else 0) | (MAP_FLAG if c.dw_map else 0)
        out.append(_i32(op, len(params), *params, len(c.bands)))
        for y0, y1 in c.bands:
            out.append(_i32(y0, y1))
        out.extend(_arr(a) for a in c.arrays)
        if c.rq is not None:
            out.append(_arr(np.asarray(c.rq, dtype=np.int16)))
    return b"".join(out)


def encode_expected(cases: list[Case]) -> bytes:
    return dc.encode_expected((c.expected.astype(np.int8).tobytes(), []) for c in cases)


@dataclass
class Result:
    status: int
    cycles: int
    out: np.ndarray | None


def _int8_results(raw: list[dc.Result]) -> list[Result]:
    return [Result(r.status, r.cycles, None if r.out is None else np.frombuffer(r.out, np.int8).copy())
            for r in raw]


def decode_results(data: bytes, n: int) -> list[Result]:
    return _int8_results(dc.decode_results(data, n))


def check_results(cases: list[Case], results: list[Result], label: str = "") -> list[str]:
    """Human-readable failures (empty when every case is bit-exact)."""
    errs = []
    if len(results) != len(cases):
        errs.append(f"{label}: driver returned {len(results)} results for {len(cases)} cases")
    for i, (c, r) in enumerate(zip(cases, results)):
        if r.status:
            errs.append(f"{label} case {i} {c.describe()}: {STATUS.get(r.status, r.status)}")
            continue
        exp = c.expected.ravel()
        if r.out.shape != exp.shape:
            errs.append(f"{label} case {i} {c.describe()}: {r.out.size} bytes, expected {exp.size}")
            continue
        bad = np.flatnonzero(r.out != exp)
        if bad.size:
            j = bad[0]
            errs.append(f"{label} case {i} {c.describe()}: {bad.size} mismatches, first at "
                        f"{j}: got {r.out[j]} expected {exp[j]}")
    return errs


# ---- host driver -------------------------------------------------------------------

HOST_VARIANTS = dc.HOST_VARIANTS


def build_host_driver(out_dir: Path, variant: str) -> Path:
    """Compile the kernels and the stdin/stdout driver with the host gcc."""
    return dc.build_host_driver(out_dir, variant, DRIVER_C, KERNEL_SRCS)


def run_host_driver(exe: Path, cases: list[Case], timeout: float = 120) -> list[Result]:
    return _int8_results(dc.run_host_driver(exe, encode(cases), len(cases), timeout))


# ---- firmware ----------------------------------------------------------------------

def write_cases_header(cases: list[Case], path: Path) -> Path:
    """C header with the case stream and the expected outputs (TT_DRIVER_EMBEDDED)."""
    return dc.write_cases_header(path, encode(cases), encode_expected(cases), "tests/kernel_cases.py")


def parse_firmware_output(text: str, n: int | None = None) -> list[tuple[int, int, int, int, int, int]]:
    """K lines of the embedded driver: (case, status, first_bad, got, expected, cycles)."""
    return dc.parse_firmware_output(text)


def run_firmware(cases: list[Case], out_dir: Path, portable: bool, timeout: float = 300):
    """The cases compiled into the embedded driver, run on QEMU (Arm DSP or portable
    kernels): (the run, its UART text, its K rows)."""
    header = write_cases_header(cases, out_dir / "gen" / "kernel_cases_data.h")
    elf = dc.build_firmware(DRIVER_C, KERNEL_SRCS, header, out_dir, portable)
    return dc.run_firmware(elf, timeout)


# ---- case construction -------------------------------------------------------------

def choose_requant(acc: np.ndarray, rng: np.random.Generator, regime: str):
    """Per-channel (mult, shift) for int32 accumulators acc[..., C].

    regime: "typical" -> outputs spread over the int8 range; "extreme" -> any shift in
    [-31, 30] (mostly saturating or all-zero outputs); "mixed" -> per channel either."""
    c = acc.shape[-1]
    a = acc.reshape(-1, c).astype(np.float64)
    spread = np.maximum(a.std(axis=0), 1.0)
    mult = np.zeros(c, np.int64)
    shift = np.zeros(c, np.int64)
    for k in range(c):
        kind = regime if regime != "mixed" else rng.choice(["typical", "extreme", "edge"])
        if kind == "typical":
            real = rng.uniform(10.0, 80.0) / spread[k]
            m, s = quantize_multiplier(real)
            if m == 0:
                m, s = 1 << 30, -31
        elif kind == "edge":  # shifts around the fast-path boundaries
            s = int(rng.choice([-1, 0, 1, 2, 5, -2, -22, -23, -24, -29, -30, -31]))
            m = int(rng.integers(1 << 30, 1 << 31))
        else:
            s = int(rng.integers(-31, 31))
            m = int(rng.integers(1 << 30, 1 << 31))
        if rng.random() < 0.05:
            m = int(rng.choice([1 << 30, (1 << 31) - 1]))
        mult[k], shift[k] = m, s
    return mult.astype(np.int32), shift.astype(np.int32)


def random_bias(rng, n: int, k: int, regime: str) -> np.ndarray:
    """Bias such that |bias| + k * 255 * 128 stays an int32 (the kernels' contract)."""
    lim = INT32_MAX - k * MAX_PRODUCT - 1
    if regime == "extreme" and rng.random() < 0.5:
        b = rng.integers(-lim, lim + 1, n)
    else:
        b = rng.integers(-(k * 2000) - 1000, k * 2000 + 1000, n)
    return b.astype(np.int32)


def add_dead_channels(rng, wt: np.ndarray, bias: np.ndarray, regime: str) -> np.ndarray:
    """Near-dead output channels as quantizers produce them: all-zero (or tiny) weights
    with a bias saturated near +-2^31 (the accumulator still fits in int32). Returns the
    channel indices (requantized with tiny multipliers by dead_requant)."""
    if regime not in ("mixed", "dead") or rng.random() < 0.4:
        return np.zeros(0, np.int64)
    co = wt.shape[0]
    idx = np.flatnonzero(rng.random(co) < 0.3)
    for c in idx:
        w = wt[c].reshape(-1)
        w[:] = 0
        if rng.random() < 0.5:  # a few tiny weights
            nz = rng.choice(w.size, size=min(w.size, int(rng.integers(1, 4))), replace=False)
            w[nz] = rng.integers(-2, 3, nz.size)
        room = int(np.abs(w.astype(np.int64)).sum()) * 255
        bias[c] = int(rng.choice([-1, 1])) * (INT32_MAX - room - int(rng.integers(0, 1000)))
    return idx


def dead_requant(rng, idx, mult, shift):
    for c in idx:
        shift[c] = int(rng.choice([-31, -29, -25, -22, -18, -10]))
        mult[c] = int(rng.integers(1 << 30, 1 << 31))


def random_act(rng) -> tuple[int, int]:
    r = rng.random()
    if r < 0.5:
        return -128, 127
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    if r < 0.75:
        return lo, 127
    return lo, hi


def random_bands(rng, ho: int, max_bands: int = 6) -> list[tuple[int, int]]:
    n = int(rng.integers(1, min(max_bands, ho) + 1))
    cuts = sorted(rng.choice(np.arange(1, ho), size=n - 1, replace=False).tolist()) if n > 1 else []
    edges = [0, *cuts, ho]
    return list(zip(edges[:-1], edges[1:]))


def conv_case(op: str, *, h: int, w: int, ci: int, co: int, k: int, stride: int, pad: int,
              seed: int, regime: str = "typical", act: tuple[int, int] | None = None,
              bands: list[tuple[int, int]] | str | None = None, x_zero: int | None = None,
              y_zero: int | None = None, kw: int | None = None, stride_w: int | None = None,
              pad_w: int | None = None, pad_end: tuple[int, int] | None = None,
              name: str = "") -> Case:
    """A conv-family case. op in CONV_OPS; depthwise ops use co = ci. ``stride_w`` /
    ``pad_w``: the columns' geometry when it differs from the rows' (per axis: the
    params gain stride_w, pad_w, see tests/c/kernel_driver.c). ``pad_end``: (bottom,
    right) padding when it differs from the leading pads (the kernel only sees it
    through out_h / out_w)."""
    rng = np.random.default_rng(seed)
    kh, kw = k, (kw or k)
    dw = op.startswith("dwconv")
    if dw:
        co = ci
    x = rng.integers(-128, 128, (1, h, w, ci), dtype=np.int64).astype(np.int8)
    wshape = (co, kh, kw, 1 if dw else ci)
    wt = rng.integers(-127, 128, wshape).astype(np.int8)
    if rng.random() < 0.1:
        wt[rng.random(wshape) < 0.1] = -128  # outside the contract range, still exact
    xz = int(rng.integers(-128, 128)) if x_zero is None else x_zero
    yz = int(rng.integers(-128, 128)) if y_zero is None else y_zero
    kk = kh * kw * (1 if dw else ci)
    bias = random_bias(rng, co, kk, regime)
    dead = add_dead_channels(rng, wt, bias, regime)
    groups = ci if dw else 1
    per_axis = stride_w is not None or pad_w is not None
    sw = stride if stride_w is None else stride_w
    pw = pad if pad_w is None else pad_w
    geo_s, geo_p = ((stride, sw), (pad, pw)) if per_axis else (stride, pad)
    acc = ref_ops.conv_acc(x, wt, bias, xz, geo_s, geo_p, groups, pad_end)
    mult, shift = choose_requant(acc, rng, regime)
    dead_requant(rng, dead, mult, shift)
    lo, hi = act if act is not None else random_act(rng)
    y = ref_ops.conv2d(x, wt, bias, xz, yz, mult, shift, stride=geo_s, pad=geo_p,
                       groups=groups, act_min=lo, act_max=hi, pad_end=pad_end)
    ho, wo = y.shape[1], y.shape[2]
    if bands == "random":
        bands = random_bands(rng, ho)
    elif bands == "rows":  # one output row per call, as the fused block runs a layer
        bands = [(y, y + 1) for y in range(ho)]
    params = [h, w, ci, ho, wo, co, kh, kw, stride, pad, xz, yz, lo, hi]
    geo = f"s{stride} p{pad}"
    if per_axis:
        params += [sw, pw]
        geo = f"s{stride}x{sw} p{pad}x{pw}"
    if pad_end is not None:
        geo += f" end{pad_end[0]}x{pad_end[1]}"
    return Case(op, params, [x, wt, bias, mult, shift], y.ravel(), list(bands or []),
                name or f"{op} {h}x{w}x{ci}->{co} k{kh}x{kw} {geo}",
                macs=ho * wo * co * kk)


def fc_case(*, ci: int, co: int, batch: int, seed: int, regime: str = "typical",
            act=None, name: str = "") -> Case:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (batch, ci)).astype(np.int8)
    wt = rng.integers(-127, 128, (co, ci)).astype(np.int8)
    xz, yz = (int(v) for v in rng.integers(-128, 128, 2))
    bias = random_bias(rng, co, ci, regime)
    acc = ref_ops.conv_acc(x.reshape(batch, 1, 1, ci), wt[:, None, None, :], bias, xz, 1, 0, 1)
    mult, shift = choose_requant(acc, rng, regime)
    lo, hi = act if act is not None else random_act(rng)
    y = ref_ops.fully_connected(x, wt, bias, xz, yz, mult, shift, act_min=lo, act_max=hi)
    return Case("fc", [ci, co, xz, yz, lo, hi, batch], [x, wt, bias, mult, shift], y.ravel(),
                name=name or f"fc {ci}->{co} x{batch}", macs=batch * ci * co)


def add_case(*, n: int, seed: int, regime: str = "typical", act=None, name: str = "") -> Case:
    rng = np.random.default_rng(seed)
    x1 = rng.integers(-128, 128, n).astype(np.int8)
    x2 = rng.integers(-128, 128, n).astype(np.int8)
    z1, z2, zo = (int(v) for v in rng.integers(-128, 128, 3))
    if regime == "typical":
        s1, s2 = rng.uniform(0.005, 0.1, 2)
        so = (s1 + s2) * rng.uniform(0.5, 2.0)
        p = ref_ops.AddParams.from_scales(s1, z1, s2, z2, so, zo)
    else:  # any valid multipliers: s1, s2 <= 0 (contract), any output multiplier
        m1, m2, mo = (int(v) for v in rng.integers(1 << 30, 1 << 31, 3))
        s1, s2 = (int(v) for v in rng.integers(-31, 1, 2))
        so = int(rng.integers(-31, 31))
        p = ref_ops.AddParams(z1, z2, zo, m1, s1, m2, s2, mo, so)
    lo, hi = act if act is not None else random_act(rng)
    y = ref_ops.add(x1, x2, p, act_min=lo, act_max=hi)
    params = [p.z1, p.z2, p.zo, p.m1, p.s1, p.m2, p.s2, p.mo, p.so, lo, hi, n]
    return Case("add", params, [x1, x2], y.ravel(), name=name or f"add {n}", macs=n)


def avgpool_case(*, h: int, w: int, c: int, seed: int, name: str = "") -> Case:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)
    if rng.random() < 0.3:  # saturated inputs: exact halves (ties) are common
        x = rng.choice(np.array([-128, 127, -1, 0, 1], np.int8), (1, h, w, c))
    y = ref_ops.global_avgpool(x)
    return Case("avgpool", [h, w, c], [x], y.ravel(), name=name or f"avgpool {h}x{w}x{c}",
                macs=h * w * c)


def _pool_input(rng, h: int, w: int, c: int) -> np.ndarray:
    x = rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)
    if rng.random() < 0.3:  # saturated inputs: exact halves (ties) are common
        x = rng.choice(np.array([-128, 127, -1, 0, 1], np.int8), (1, h, w, c))
    return x


def _pool_qparams(rng, divisors: list[int]) -> tuple[int, int, list[int], list[int]]:
    """Random input / output zero points and one multiplier of s_in / (d * s_out) per
    divisor d (output scales from 4x finer to 4x coarser than the input's)."""
    zi, zo = (int(v) for v in rng.integers(-128, 128, 2))
    ratio = float(2.0 ** rng.uniform(-2, 2))
    ms = [quantize_multiplier(ratio / d) for d in divisors]
    return zi, zo, [m for m, _ in ms], [e for _, e in ms]


def avgpool_requant_case(*, h: int, w: int, c: int, seed: int, name: str = "") -> Case:
    """tt_avgpool_global_requant_s8 against compiler.ref.ops.global_avgpool_requant."""
    rng = np.random.default_rng(seed)
    x = _pool_input(rng, h, w, c)
    zi, zo, (m,), (sh,) = _pool_qparams(rng, [h * w])
    y = ref_ops.global_avgpool_requant(x, zi, zo, m, sh)
    return Case("avgpool_requant", [h, w, c, zi, zo, m, sh], [x], y.ravel(),
                name=name or f"avgpool_requant {h}x{w}x{c}", macs=h * w * c)


def avg_pool_case(*, h: int, w: int, c: int, kh: int, kw: int, stride, pad, count_include_pad: bool,
                  requant: bool, seed: int, name: str = "") -> Case:
    """tt_avgpool_s8 against compiler.ref.ops.avg_pool (``stride``, ``pad``: an int or per
    axis; ``requant``: the output has its own scale and zero point)."""
    from compiler.ir.qmath import hw
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    rng = np.random.default_rng(seed)
    x = _pool_input(rng, h, w, c)
    varies = not count_include_pad and (ph, pw) != (0, 0)
    zi, zo, m, e = _pool_qparams(rng, list(range(1, kh * kw + 1)) if varies else [kh * kw])
    if not requant:
        zo, m, e = zi, None, None
    y = ref_ops.avg_pool(x, kh, kw, (sh, sw), (ph, pw), count_include_pad, zi, zo, m, e)
    _, ho, wo, _ = y.shape
    n = len(m) if requant else 0
    tables = [np.asarray(m if requant else [0], np.int32), np.asarray(e if requant else [0], np.int32)]
    return Case("avg_pool", [h, w, c, ho, wo, kh, kw, sh, sw, ph, pw, zi, zo, int(count_include_pad), n],
                [x] + tables, y.ravel(),
                name=name or (f"avg_pool {h}x{w}x{c} k{kh}x{kw} s{sh},{sw} p{ph},{pw} "
                              f"cip={int(count_include_pad)} requant={int(requant)}"),
                macs=ho * wo * c * kh * kw)


def maxpool_case(*, h: int, w: int, c: int, kh: int, kw: int, stride: int, pad: int, seed: int,
                 stride_w: int | None = None, pad_w: int | None = None,
                 pad_end: tuple[int, int] | None = None, name: str = "") -> Case:
    """tt_maxpool_s8 against compiler.ref.ops.max_pool (saturated inputs: many ties);
    ``stride_w`` / ``pad_w``: per-axis columns (params gain stride_w, pad_w);
    ``pad_end``: (bottom, right) padding when it differs (seen through out_h / out_w)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)
    if rng.random() < 0.3:
        x = rng.choice(np.array([-128, 127, -1, 0, 1], np.int8), (1, h, w, c))
    per_axis = stride_w is not None or pad_w is not None
    sw = stride if stride_w is None else stride_w
    pw = pad if pad_w is None else pad_w
    y = ref_ops.max_pool(x, kh, kw, (stride, sw) if per_axis else stride,
                         (pad, pw) if per_axis else pad, pad_end)
    _, ho, wo, _ = y.shape
    params = [h, w, c, ho, wo, kh, kw, stride, pad] + ([sw, pw] if per_axis else [])
    geo = f"s{stride}x{sw} p{pad}x{pw}" if per_axis else f"s{stride} p{pad}"
    if pad_end is not None:
        geo += f" end{pad_end[0]}x{pad_end[1]}"
    return Case("maxpool", params, [x], y.ravel(),
                name=name or f"maxpool {h}x{w}x{c} k{kh}x{kw} {geo}", macs=ho * wo * c * kh * kw)


def concat_case(*, pixels: int, channels: list[int], seed: int, name: str = "") -> Case:
    """tt_concat_s8 against compiler.ref.ops.concat: random scales around the output's
    (up and down: saturation included), some inputs with the output's own parameters
    (the copy path)."""
    rng = np.random.default_rng(seed)
    s_out, z_out = float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    xs, zs, ms, ss = [], [], [], []
    for c in channels:
        xs.append(rng.integers(-128, 128, (1, pixels, c)).astype(np.int8))
        if rng.random() < 0.3:
            z, s = z_out, s_out
        else:
            z, s = int(rng.integers(-128, 128)), s_out * float(np.exp(rng.uniform(-3, 3)))
        m, sh = quantize_multiplier(s / s_out)
        zs.append(z), ms.append(m), ss.append(sh)
    y = ref_ops.concat(xs, zs, ms, ss, z_out)
    params = [len(channels), pixels, z_out] + [v for i, c in enumerate(channels)
                                                for v in (c, zs[i], ms[i], ss[i])]
    return Case("concat", params, xs, y.ravel(),
                name=name or f"concat {pixels}px {'+'.join(map(str, channels))}", macs=y.size)


def mul_case(*, pixels: int, c: int, bcast: bool, seed: int, name: str = "") -> Case:
    """tt_mul_s8 against compiler.ref.ops.mul (TFLite MUL), b broadcast per channel or not."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (1, pixels, c)).astype(np.int8)
    b = rng.integers(-128, 128, (1, 1 if bcast else pixels, c)).astype(np.int8)
    za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
    m, sh = quantize_multiplier(float(np.exp(rng.uniform(-12, 0))))
    lo, hi = random_act(rng)
    y = ref_ops.mul(a, b, za, zb, zo, m, sh, lo, hi)
    return Case("mul", [za, zb, zo, m, sh, lo, hi, pixels, c, int(bcast)], [a, b], y.ravel(),
                name=name or f"mul {pixels}x{c}{' bcast' if bcast else ''}", macs=y.size)


def mul_edge_cases(seed: int = 77) -> list[Case]:
    """tt_mul_s8 at the edges of its requantization: multipliers from 2^-40 to 2^14 (the
    DSP build's fast plan and its portable fallback on both sides), the largest
    products (|a - za| = |b - zb| = 255), full-range and clamped outputs."""
    rng = np.random.default_rng([seed, 0x3A1])
    out = []
    for i, e in enumerate(range(-40, 15, 3)):
        m, sh = quantize_multiplier(float(2.0 ** (e + rng.uniform(0, 1))))
        pixels, c, bcast = int(rng.integers(1, 9)), int(rng.integers(1, 11)), bool(i % 2)
        a = rng.choice(np.array([-128, 127, 0, 1, -1], np.int8), (1, pixels, c))
        b = rng.choice(np.array([-128, 127, 3, -7], np.int8), (1, 1 if bcast else pixels, c))
        za, zb = (127, -128) if i % 3 else (-128, 127)
        zo = int(rng.integers(-128, 128))
        lo, hi = (-128, 127) if i % 4 else random_act(rng)
        y = ref_ops.mul(a, b, za, zb, zo, m, sh, lo, hi)
        out.append(Case("mul", [za, zb, zo, m, sh, lo, hi, pixels, c, int(bcast)], [a, b], y.ravel(),
                        name=f"mul edge 2^{e} {pixels}x{c}{' bcast' if bcast else ''}",
                        macs=y.size))
    return out


def concat_edge_cases(seed: int = 78) -> list[Case]:
    """tt_concat_s8's requantizing path from tiny to large multipliers (2^-40 .. 2^22: the
    DSP build's fast plan and its portable fallback), extreme zero points, saturation."""
    rng = np.random.default_rng([seed, 0xCA7])
    out = []
    for i, e in enumerate(range(-40, 23, 4)):
        pixels, z_out = int(rng.integers(1, 7)), int(rng.integers(-128, 128))
        chans = [int(rng.integers(1, 6)) for _ in range(2)]
        xs = [rng.choice(np.array([-128, 127, 0, 1, -1, 64], np.int8), (1, pixels, c)) for c in chans]
        zs = [127 if i % 2 else -128, int(rng.integers(-128, 128))]
        ms, ss = zip(*(quantize_multiplier(float(2.0 ** (e + rng.uniform(0, 1)))) for _ in chans))
        y = ref_ops.concat(xs, zs, ms, ss, z_out)
        params = [len(chans), pixels, z_out] + [v for j, c in enumerate(chans)
                                                 for v in (c, zs[j], int(ms[j]), int(ss[j]))]
        out.append(Case("concat", params, xs, y.ravel(), name=f"concat edge 2^{e} {pixels}px",
                        macs=y.size))
    return out


def lut_case(*, n: int, seed: int, name: str = "") -> Case:
    """tt_lut_s8 against compiler.ref.ops.lut (a random table: every entry reachable)."""
    rng = np.random.default_rng(seed)
    table = rng.integers(-128, 128, 256).astype(np.int8)
    x = rng.integers(-128, 128, n).astype(np.int8)
    return Case("lut", [n], [table, x], ref_ops.lut(x, table).ravel(), name=name or f"lut {n}", macs=n)


def requantize_case(*, rows: int, c: int, seed: int, regime: str = "mixed", name: str = "") -> Case:
    rng = np.random.default_rng(seed)
    acc = rng.integers(-(2**31), 2**31, (rows, c), dtype=np.int64)
    if rng.random() < 0.5:
        acc = rng.integers(-50000, 50000, (rows, c), dtype=np.int64)
    acc = acc.astype(np.int32)
    mult, shift = choose_requant(acc, rng, regime)
    zero = int(rng.integers(-128, 128))
    lo, hi = random_act(rng)
    from compiler.ir.qmath import clamp_s8, requantize
    y = clamp_s8(requantize(acc, mult, shift) + zero, lo, hi)
    return Case("requantize", [rows, c, zero, lo, hi], [acc, mult, shift], y.ravel(),
                name=name or f"requantize {rows}x{c}", macs=rows * c)


# ---- split weights --------------------------------------------------------------------

WEIGHT_OPS = (*CONV_OPS, "fc")


def out_channels(c: Case) -> int:
    return c.params[1] if c.op == "fc" else c.params[5]


def pick_split(rng: np.random.Generator, co: int) -> int:
    """A split point for co output channels: mostly inside (0 < s < co, odd and even,
    crossing the kernels' channel pairs / groups of 4), sometimes the edges 0 (all at
    w_tail) and co (all at w), or -1 (w_tail NULL)."""
    r = rng.random()
    if r < 0.6 and co >= 2:
        return int(rng.integers(1, co))
    if r < 0.75:
        return 0
    if r < 0.9:
        return co
    return -1


def with_split(c: Case, split: int) -> Case:
    """A copy of a weight-reading case with its weights split (same golden output)."""
    assert c.op in WEIGHT_OPS
    return Case(c.op, c.params, c.arrays, c.expected, c.bands, c.name, c.macs, split)


def apply_splits(cases: list[Case], seed: int, every: int = 3) -> list[Case]:
    """Splits the weights of every `every`-th weight-reading case in place (a fraction,
    so the suites keep their size and run time; the others keep the unsplit path)."""
    rng = np.random.default_rng([seed, 0x5117])
    n = 0
    for c in cases:
        if c.op in WEIGHT_OPS:
            if n % every == every - 1:
                c.split = pick_split(rng, out_channels(c))
            n += 1
    return cases


def records_of(c: Case) -> np.ndarray | None:
    """The precomputed requantization records of a conv-family or fc case, as the
    compiler makes them for a frozen layer (compiler.kernels.rq_records), or None when
    some channel has no plan a record holds."""
    from compiler.kernels.rq_records import layer_records
    if c.op not in RQ_OPS:
        return None
    in_zero, out_zero = (c.params[2], c.params[3]) if c.op == "fc" else (c.params[10], c.params[11])
    _, w, bias, mult, shift = c.arrays[:5]
    return layer_records(w, bias, mult, shift, out_zero, in_zero,
                         depthwise=c.op.startswith("dwconv"))


def apply_rq(cases: list[Case], every: int = 2) -> list[Case]:
    """Gives every `every`-th conv-family / fc case its precomputed records, in place,
    where the layer has them (the others keep the per-call plans)."""
    n = 0
    for c in cases:
        if c.op in RQ_OPS:
            if n % every == every - 1:
                c.rq = records_of(c)
            n += 1
    return cases


def split_edge_cases(seed: int = 5) -> list[Case]:
    """Every weight-reading entry point with the edges of the split (0, 1, out_c - 1,
    out_c, beyond out_c, NULL tail) and splits inside the DSP kernels' channel pairs / groups of 4 /
    chunks (shapes chosen to reach the hand-written loops and the channel tails)."""
    rng = np.random.default_rng(seed)
    def s() -> int:
        return int(rng.integers(0, 2**31))
    full = (-128, 127)
    base = [
        conv_case("conv2d", h=7, w=6, ci=3, co=9, k=3, stride=2, pad=1, seed=s(), act=full),
        conv_case("conv2d", h=5, w=5, ci=5, co=7, k=3, stride=1, pad=1, seed=s(), regime="mixed",
                  bands="random"),
        conv_case("conv2d_1x1", h=4, w=5, ci=16, co=11, k=1, stride=1, pad=0, seed=s(), act=full),
        conv_case("conv2d_1x1", h=5, w=4, ci=24, co=9, k=1, stride=2, pad=0, seed=s(),
                  bands="random"),
        conv_case("conv2d_1x1", h=3, w=3, ci=8, co=40, k=1, stride=1, pad=0, seed=s(), act=full),
        conv_case("dwconv_3x3_s1", h=6, w=9, ci=11, co=11, k=3, stride=1, pad=1, seed=s(),
                  act=full, bands="random"),
        conv_case("dwconv_3x3_s2", h=7, w=8, ci=10, co=10, k=3, stride=2, pad=1, seed=s(),
                  act=full),
        conv_case("dwconv", h=7, w=8, ci=9, co=9, k=5, stride=1, pad=2, seed=s(), act=full),
        conv_case("dwconv", h=9, w=9, ci=6, co=6, k=7, stride=2, pad=3, seed=s(), act=full),
        conv_case("dwconv", h=5, w=6, ci=7, co=7, k=2, stride=1, pad=1, seed=s()),
        fc_case(ci=37, co=9, batch=2, seed=s()),
        fc_case(ci=16, co=5, batch=1, seed=s(), act=full),
    ]
    out = []
    for c in base:
        co = out_channels(c)
        for sp in sorted({0, 1, co // 2, co - 1, co, co + 3, -1, int(rng.integers(1, co))}):
            out.append(with_split(c, sp))
    # the depthwise dispatcher passes the split through to each variant it runs (its own
    # generator, so the cases above keep their seeds)
    rw = np.random.default_rng([seed, 0xD3C0])
    for k, st, pad, ci in [(3, 1, 1, 11), (3, 2, 0, 10), (5, 2, 2, 9), (3, 3, 1, 6)]:
        c = conv_case("dwconv_wrapper", h=7, w=9, ci=ci, co=ci, k=k, stride=st, pad=pad,
                      seed=int(rw.integers(0, 2**31)), act=full)
        out += [with_split(c, sp) for sp in sorted({0, 3, 4, 5, ci - 1, ci, ci + 3, -1})]
    return out


def dwconv_wrapper_cases(seed: int = 4321, small: bool = False) -> list[Case]:
    """tt_dwconv_wrapper_s8 on every kind of shape it dispatches: 3x3 at stride 1 / 2
    (the specialised kernels; pads 0, 1, 2), 5x5 and 7x7 at stride 1 / 2 (tt_dwconv_s8's
    unrolled paths; several pads) and shapes only the generic loops take (3x3 stride 3,
    non-square 3x5, 1x1, 2x2, 4x4); full-range (the hand-written row loops) and clamped
    outputs, channel counts around the groups of 4, bands. The golden output comes from
    ref_ops, as for every depthwise case."""
    rng = np.random.default_rng([seed, 0xD3C0])
    shapes = [  # (k_h, k_w, stride, pad)
        (3, 3, 1, 0), (3, 3, 1, 1), (3, 3, 1, 2), (3, 3, 2, 0), (3, 3, 2, 1), (3, 3, 2, 2),
        (5, 5, 1, 2), (5, 5, 1, 0), (5, 5, 2, 2), (5, 5, 2, 1),
        (7, 7, 1, 3), (7, 7, 1, 1), (7, 7, 2, 3), (7, 7, 2, 0),
        (3, 3, 3, 1), (3, 5, 1, 1), (1, 1, 1, 0), (2, 2, 2, 0), (4, 4, 1, 2)]
    chans = [5, 9] if small else [1, 4, 5, 9, 13]
    regimes = ["typical", "mixed", "extreme"]
    out = []
    for i, (kh, kw, st, pad) in enumerate(shapes):
        for j, c in enumerate(chans):
            h0 = max(1, kh - 2 * pad)
            w0 = max(1, kw - 2 * pad, 3 * st + kw - 2 * pad)  # at least 4 output columns
            h, w = int(rng.integers(h0, h0 + 6)), int(rng.integers(w0, w0 + 9))
            act = random_act(rng) if (i + j) % 3 == 0 else (-128, 127)
            out.append(conv_case("dwconv_wrapper", h=h, w=w, ci=c, co=c, k=kh, kw=kw, stride=st,
                                 pad=pad, seed=int(rng.integers(0, 2**31)),
                                 regime=regimes[(i + j) % 3], act=act,
                                 bands="random" if (i + j) % 2 else None))
    # one output row per call (the fused block's pattern): every square fast shape, rows
    # and columns of padding on both sides, odd channel counts, widths off the unroll
    for i, (k, st) in enumerate([(3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (7, 2)]):
        for j, pad in enumerate((k // 2, k // 2 - 1 + 2 * (i % 2))):
            c = (5, 9)[(i + j) % 2]
            h0 = max(1, k - 2 * pad)
            w0 = max(1, 3 * st + k - 2 * pad)
            h, w = int(rng.integers(h0, h0 + 5)), int(rng.integers(w0, w0 + 6))
            out.append(conv_case("dwconv_wrapper", h=h, w=w, ci=c, co=c, k=k, stride=st,
                                 pad=pad, seed=int(rng.integers(0, 2**31)),
                                 regime=regimes[(i + j) % 3],
                                 act=(-128, 127) if j == 0 else random_act(rng), bands="rows"))
    return out


# ---- deterministic suites ------------------------------------------------------------

def sweep_cases(seed: int = 1234, small: bool = False) -> list[Case]:
    """Systematic coverage: every kernel entry point, kernel sizes, strides, pads, channel
    counts around the SIMD widths (tails), both requantization regimes, act clamps and
    bands; a third of the weight-reading cases with split weights (apply_splits).
    ``small`` keeps the data size fit for firmware flash."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []

    def s() -> int:
        return int(rng.integers(0, 2**31))

    chans = [1, 2, 3, 4, 5, 7, 8, 9, 16] if small else [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 24]
    regimes = ["typical", "mixed", "extreme"]
    # depthwise: all specialised shapes and the generic fallbacks
    dw_shapes = [(3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (7, 2), (1, 1), (2, 1), (3, 3), (4, 2)]
    def dims(k: int, pad: int, extra: int = 7) -> tuple[int, int]:
        lo = max(1, k - 2 * pad)
        return int(rng.integers(lo, lo + extra)), int(rng.integers(lo, lo + extra))

    for i, (k, st) in enumerate(dw_shapes):
        for c in chans[::2] if small else chans:
            pad = int(rng.integers(0, k // 2 + 2)) if i % 2 else k // 2
            h, w = dims(k, pad)
            reg = regimes[(i + c) % 3]
            bands = "random" if (c + i) % 2 else None
            cases.append(conv_case("dwconv", h=h, w=w, ci=c, co=c, k=k, stride=st, pad=pad,
                                   seed=s(), regime=reg, bands=bands))
            if (k, st) in ((3, 1), (3, 2)):
                pad = int(rng.integers(0, 3))
                h, w = dims(3, pad)
                cases.append(conv_case(f"dwconv_3x3_s{st}", h=h, w=w, ci=c, co=c, k=3,
                                       stride=st, pad=pad, seed=s(), regime=reg,
                                       bands="random"))
    # pointwise
    for ci in chans:
        for co in ([1, 2, 3, 8] if small else [1, 2, 3, 5, 8, 16]):
            st = 1 if (ci + co) % 3 else 2
            h, w = int(rng.integers(1, 6)), int(rng.integers(1, 7))
            cases.append(conv_case("conv2d_1x1", h=h, w=w, ci=ci, co=co, k=1, stride=st, pad=0,
                                   seed=s(), regime=regimes[(ci * co) % 3],
                                   bands="random" if (ci + co) % 2 else None))
    # generic conv
    for k, st, pad in [(3, 2, 1), (3, 1, 1), (1, 1, 0), (3, 2, 0), (5, 2, 2), (2, 2, 0),
                       (3, 1, 0), (1, 2, 1), (4, 1, 2), (3, 3, 1)]:
        for ci, co in [(3, 16), (1, 1), (3, 5), (4, 3), (5, 8), (8, 2)][: 4 if small else 6]:
            h, w = dims(k, pad, 6)
            cases.append(conv_case("conv2d", h=h, w=w, ci=ci, co=co, k=k, stride=st, pad=pad,
                                   seed=s(), regime=regimes[(ci + co + k) % 3],
                                   bands="random" if (ci + k) % 2 else None))
    cases.append(conv_case("conv2d", h=5, w=4, ci=2, co=3, k=3, kw=1, stride=1, pad=1,
                           seed=s(), bands="random"))
    # fc
    for ci in [1, 3, 4, 7, 8, 13, 64]:
        for co in [1, 2, 5, 10]:
            cases.append(fc_case(ci=ci, co=co, batch=1 + (ci + co) % 3, seed=s(),
                                 regime=regimes[(ci + co) % 3]))
    # add / avgpool / requantize
    for n in [1, 2, 3, 7, 64, 129]:
        for reg in ["typical", "extreme"]:
            cases.append(add_case(n=n, seed=s(), regime=reg))
    for h, w, c in [(1, 1, 1), (2, 2, 3), (4, 4, 8), (7, 7, 5), (3, 5, 16)]:
        cases.append(avgpool_case(h=h, w=w, c=c, seed=s()))
    for rows, c in [(1, 1), (3, 5), (4, 16)]:
        cases.append(requantize_case(rows=rows, c=c, seed=s()))
    # the depthwise dispatcher (last, so the cases above keep their seeds and splits)
    cases += dwconv_wrapper_cases(seed, small)
    for h, w, c, k, st, pad in [(1, 1, 1, 1, 1, 0), (4, 4, 3, 2, 2, 0), (7, 5, 8, 3, 2, 1),
                                (6, 9, 5, 3, 1, 1), (8, 8, 16, 2, 1, 1), (5, 7, 4, 4, 3, 2)]:
        cases.append(maxpool_case(h=h, w=w, c=c, kh=k, kw=k, stride=st, pad=pad, seed=s()))
    for h, w, c in [(1, 1, 1), (2, 3, 4), (7, 7, 5), (3, 5, 16)]:
        cases.append(avgpool_requant_case(h=h, w=w, c=c, seed=s()))
    for i, (h, w, c, kh, kw, st, pad) in enumerate(
            [(1, 1, 1, 1, 1, 1, 0), (4, 4, 3, 2, 2, 2, 0), (7, 5, 8, 3, 3, 2, 1),
             (6, 9, 5, 3, 3, 1, 1), (8, 8, 4, 2, 2, 1, 1), (5, 7, 4, 4, 4, 3, 2),
             (9, 7, 3, 3, 2, (2, 1), (1, 0)), (6, 10, 5, 2, 4, (1, 3), (1, 2))]):
        for cip in (True, False):
            cases.append(avg_pool_case(h=h, w=w, c=c, kh=kh, kw=kw, stride=st, pad=pad,
                                       count_include_pad=cip, requant=bool((i + cip) % 2), seed=s()))
    # add with the tabulated operands (n >= 256): tails of the 4-element loop, full range
    # and clamped outputs
    for n, act in [(256, (-128, 127)), (259, (-128, 127)), (263, (-100, 90)), (1027, None)]:
        for reg in ["typical", "extreme"]:
            cases.append(add_case(n=n, seed=s(), regime=reg, act=act))
    return apply_rq(apply_splits(cases, seed))


def per_axis_cases(seed: int = 4242) -> list[Case]:
    """Kernels, strides and padding that differ per axis on non-square maps (DS-CNN-like
    strips): the generic conv (1x1 with a per-axis stride included), depthwise through
    tt_dwconv_s8 and the dispatcher, max pool; full-range and clamped outputs, bands,
    channel counts around the DSP groups of 4; some with split weights."""
    rng = np.random.default_rng([seed, 0xA815])

    def s() -> int:
        return int(rng.integers(0, 2**31))
    full = (-128, 127)
    out: list[Case] = []
    # (k_h, k_w, stride_h, stride_w, pad_h, pad_w)
    geos = [(3, 1, 1, 1, 1, 0), (1, 3, 1, 2, 0, 1), (10, 4, 2, 2, 5, 1), (3, 5, 2, 1, 1, 2),
            (2, 3, 1, 2, 1, 1), (1, 1, 2, 1, 0, 0), (3, 3, 1, 2, 1, 0), (5, 3, 1, 1, 2, 1)]
    for i, (kh, kw, sh, sw, ph, pw) in enumerate(geos):
        h = int(rng.integers(max(1, kh - 2 * ph), max(1, kh - 2 * ph) + 9))
        w = int(rng.integers(max(1, kw - 2 * pw), max(1, kw - 2 * pw) + 5))
        for op, ci, co in [("conv2d", 3, 5), ("conv2d", 8, 2), ("dwconv", 9, 9),
                           ("dwconv_wrapper", 4, 4), ("dwconv_wrapper", 13, 13)]:
            act = full if (i + ci) % 2 else random_act(rng)
            c = conv_case(op, h=h, w=w, ci=ci, co=co, k=kh, kw=kw, stride=sh, pad=ph,
                          stride_w=sw, pad_w=pw, seed=s(), regime=("typical", "mixed")[i % 2],
                          act=act, bands="random" if (i + co) % 2 else None)
            if (i + ci) % 3 == 0:
                c.split = pick_split(rng, out_channels(c))
            out.append(c)
    for kh, kw, sh, sw, ph, pw in [(2, 3, 2, 1, 0, 1), (3, 1, 2, 1, 1, 0), (1, 2, 1, 2, 0, 1),
                                   (3, 2, 1, 2, 1, 0)]:
        for c in (3, 8):
            out.append(maxpool_case(h=int(rng.integers(kh, kh + 8)), w=int(rng.integers(kw, kw + 5)),
                                    c=c, kh=kh, kw=kw, stride=sh, pad=ph, stride_w=sw, pad_w=pw,
                                    seed=s()))
    return out


def asym_pad_cases(seed: int = 5151) -> list[Case]:
    """Padding that differs between the two sides of an axis (the IR's pad_end: the
    kernels get the leading pads and an output size from both sides): TensorFlow's
    'same' at stride 2 (nothing before, one after), more before than after, bottom only
    (the depthwise DSP ring paths keep running: their out_w is the symmetric one), one
    output more on the right (they keep running too; odd and even out_w), two more
    (they fall back), fewer; conv, depthwise directly and through the dispatcher,
    3x3 / 5x5 / 7x7 at strides 1 and 2, with bands, and max pool."""
    rng = np.random.default_rng([seed, 0xA5])

    def s() -> int:
        return int(rng.integers(0, 2**31))
    full = (-128, 127)
    out: list[Case] = []
    # (k, stride, pad (top = left), pad_end (bottom, right), h, w)
    geos = [(3, 2, 0, (1, 1), 10, 12), (3, 1, 1, (2, 1), 7, 9), (3, 2, 1, (0, 1), 9, 8),
            (5, 2, 1, (2, 1), 11, 9), (5, 1, 2, (3, 2), 6, 7), (7, 2, 2, (3, 3), 12, 10),
            (3, 1, 0, (0, 2), 5, 6), (3, 2, 0, (2, 0), 8, 9), (3, 1, 1, (1, 2), 6, 11),
            (5, 1, 2, (2, 3), 7, 9), (5, 2, 2, (3, 4), 9, 11), (7, 1, 3, (3, 4), 8, 8),
            (3, 2, 1, (1, 0), 7, 9), (5, 2, 2, (1, 1), 8, 12), (3, 2, 0, (1, 1), 9, 14)]
    for i, (k, st, p, pe, h, w) in enumerate(geos):
        ops = [("dwconv_wrapper", 8, 8), ("dwconv", 13, 13), ("conv2d", 5, 6)]
        if k == 3:
            ops.append((f"dwconv_3x3_s{st}", 6, 6))
        for op, ci, co in ops:
            out.append(conv_case(op, h=h, w=w, ci=ci, co=co, k=k, stride=st, pad=p, pad_end=pe,
                                 seed=s(), act=full if (i + ci) % 3 else random_act(rng),
                                 bands="random" if (i + ci) % 2 else None))
    for i, (k, st, p, pe, h, w) in enumerate(geos[::3]):  # one output row per call
        out.append(conv_case("dwconv_wrapper", h=h, w=w, ci=7, co=7, k=k, stride=st, pad=p,
                             pad_end=pe, seed=s(), act=full, bands="rows"))
    out.append(conv_case("conv2d", h=8, w=6, ci=3, co=4, k=3, kw=2, stride=2, stride_w=1, pad=0,
                         pad_w=1, pad_end=(1, 0), seed=s()))
    for kh, kw, st, p, pe, h, w in [(3, 3, 2, 0, (1, 1), 8, 8), (2, 2, 2, 0, (1, 1), 7, 5),
                                    (3, 3, 1, 2, (0, 1), 5, 6), (2, 3, 2, 1, (0, 2), 6, 7)]:
        out.append(maxpool_case(h=h, w=w, c=5, kh=kh, kw=kw, stride=st, pad=p, pad_end=pe,
                                seed=s()))
    return out


def first_conv_cases(seed: int = 3303, n: int = 40) -> list[Case]:
    """3x3 convolutions over 3 input channels (a model's usual first layer, whose DSP path
    widens interior pixel pairs straight from the input, with 4-byte loads that straddle
    kernel rows): strides 1-3 (and a different column stride), pads 0-2 (and
    asymmetric), widths and heights around the runs of interior pairs (odd and even, 1
    and 2 included), even and odd channel counts (an odd chunk leaves the assembly loop),
    full-range and clamped outputs, zero points at the int8 extremes, every
    requantization regime, bands (one row per call included), split weights, records."""
    rng = np.random.default_rng([seed, 0x333])

    def s() -> int:
        return int(rng.integers(0, 2**31))
    full = (-128, 127)
    out: list[Case] = []
    for i in range(n):
        st = int(rng.choice([1, 2, 2, 3]))
        sw = st if i % 5 else int(rng.choice([1, 2, 3]))
        pad = int(rng.choice([0, 1, 1, 2]))
        pw = pad if i % 7 else int(rng.choice([0, 1, 2]))
        lo_h, lo_w = max(1, 3 - 2 * pad), max(1, 3 - 2 * pw)
        h = int(rng.integers(lo_h, lo_h + 12))
        w = int(rng.integers(lo_w, lo_w + 20))
        co = int(rng.choice([2, 4, 16, 16, 1, 3, 5, 9]))
        regime = ("typical", "typical", "mixed", "extreme")[i % 4]
        act = full if i % 3 else random_act(rng)
        zeros = [(None, None), (-128, 0), (127, -128), (0, 127)][i % 4]
        pe = None
        if i % 6 == 5:
            pe = (int(rng.integers(0, pad + 2)), int(rng.integers(0, pw + 2)))
        ho = (h + pad + (pad if pe is None else pe[0]) - 3) // st + 1
        wo = (w + pw + (pw if pe is None else pe[1]) - 3) // sw + 1
        if ho < 1 or wo < 1:
            continue
        bands = [None, "random", "rows"][i % 3]
        c = conv_case("conv2d", h=h, w=w, ci=3, co=co, k=3, stride=st, pad=pad, stride_w=sw,
                      pad_w=pw, pad_end=pe, seed=s(), regime=regime, act=act,
                      x_zero=zeros[0], y_zero=zeros[1], bands=bands,
                      name=f"conv3x3x3 {h}x{w} s{st}/{sw} p{pad}/{pw} pe{pe} co{co}")
        if i % 4 == 3:
            c.split = pick_split(rng, out_channels(c))
        out.append(c)
    return apply_rq(out)


def dw_map_cases(seed: int = 5353, n: int = 64) -> list[Case]:
    """Depthwise 3x3 / 5x5 / 7x7 at strides 1 and 2 with ``dw_map`` set (the whole-map
    layout, in the DSP build): small maps whose rows fit its slots (taken) and some that
    do not, widths that are not a multiple of 4, clamped outputs (the ring then runs in
    the map's scratch), channel counts around the groups of 4, pads from 0 to past k / 2,
    every requantization regime (a channel without a fast plan: the group's direct
    loops), bands of several rows and of one row per call, split weights, records;
    through the 3x3 kernels, tt_dwconv_s8 and the dispatcher."""
    rng = np.random.default_rng([seed, 0x3A9])

    def s() -> int:
        return int(rng.integers(0, 2**31))
    full = (-128, 127)
    out: list[Case] = []
    for i in range(n):
        st = 1 + i % 2
        k = (3, 3, 5, 7)[(i // 2) % 4]
        pad = int(rng.choice([k // 2, k // 2, 0, k // 2 + 1]))
        h = int(rng.integers(max(1, k - 2 * pad), 11 if i % 5 else 20))
        w = int(rng.choice([4, 8, 16, 6, 12, 5, 9, 20])) * (1 if st == 1 else 2)
        w = max(w, k - 2 * pad)
        c = int(rng.choice([4, 8, 16, 3, 5, 13, 24]))
        if k == 3:
            op = f"dwconv_3x3_s{st}" if i % 3 else "dwconv_wrapper"
        else:
            op = "dwconv" if i % 3 else "dwconv_wrapper"
        regime = ("typical", "typical", "mixed", "extreme")[i % 4]
        act = full if i % 4 else random_act(rng)
        bands = [None, "random", "rows", None][i % 4]
        case = conv_case(op, h=h, w=w, ci=c, co=c, k=k, stride=st, pad=pad, seed=s(),
                         regime=regime, act=act, bands=bands,
                         name=f"dw map {op} k{k} {h}x{w}x{c} s{st} p{pad}")
        case.dw_map = True
        if i % 5 == 4:
            case.split = pick_split(rng, out_channels(case))
        out.append(case)
    return apply_rq(out)


def random_cases(seed: int, n: int) -> list[Case]:
    """n random small cases of the spatial kernels and fc (numpy-seeded, for target runs
    where hypothesis cannot drive the firmware): random shapes, strides, pads, zero points,
    act ranges, regimes and bands, biased towards the DSP fast paths (full int8 range,
    typical requantization) so the hand-written loops see many shapes; a third of the
    depthwise ones with the whole-map scratch (dw_map)."""
    rng = np.random.default_rng(seed)
    out: list[Case] = []
    for _ in range(n):
        op = str(rng.choice(["dwconv_3x3_s1", "dwconv_3x3_s2", "dwconv", "conv2d_1x1",
                             "conv2d", "fc"]))
        regime = str(rng.choice(["typical", "typical", "typical", "mixed", "extreme"]))
        act = (-128, 127) if rng.random() < 0.7 else random_act(rng)
        sd = int(rng.integers(0, 2**31))
        if op == "fc":
            out.append(fc_case(ci=int(rng.integers(1, 80)), co=int(rng.integers(1, 24)),
                               batch=int(rng.integers(1, 3)), seed=sd, regime=regime, act=act))
            continue
        if op.startswith("dwconv_3x3"):
            k, stride = 3, int(op[-1])
        elif op == "dwconv":
            k, stride = int(rng.choice([3, 5, 7])), int(rng.integers(1, 3))
        elif op == "conv2d_1x1":
            k, stride = 1, int(rng.integers(1, 3))
        else:
            k, stride = int(rng.choice([1, 2, 3, 5])), int(rng.integers(1, 3))
        pad = 0 if op == "conv2d_1x1" else int(rng.integers(0, k // 2 + 2))
        lo = max(1, k - 2 * pad)
        h, w = int(rng.integers(lo, lo + 10)), int(rng.integers(lo, lo + 14))
        ci = int(rng.integers(1, 40)) if op in ("conv2d_1x1", "conv2d") else int(rng.integers(1, 14))
        co = int(rng.integers(1, 30))
        out.append(conv_case(op, h=h, w=w, ci=ci, co=co, k=k, stride=stride, pad=pad, seed=sd,
                             regime=regime, act=act,
                             bands="random" if rng.random() < 0.5 else None))
        # a third of the depthwise cases with the whole-map scratch (dw_map)
        out[-1].dw_map = op.startswith("dwconv") and rng.random() < 1 / 3
    return apply_rq(apply_splits(out, seed))


def bench_cases(seed: int = 7) -> list[Case]:
    """Typical shapes of mcunet-5fps / mbv2-w0.35 layers (typical requantization, ReLU6-like
    full-range clamp as in those models, one full-tensor call each)."""
    full = (-128, 127)
    relu = (-128, 100)
    mk = conv_case
    return [
        mk("conv2d", h=128, w=128, ci=3, co=16, k=3, stride=2, pad=1, seed=seed, act=full,
           name="conv 3x3 s2 3->16 @128"),
        mk("conv2d_1x1", h=32, w=32, ci=48, co=8, k=1, stride=1, pad=0, seed=seed, act=full,
           name="pw 1x1 48->8 @32"),
        mk("conv2d_1x1", h=32, w=32, ci=8, co=48, k=1, stride=1, pad=0, seed=seed, act=full,
           name="pw 1x1 8->48 @32"),
        mk("conv2d_1x1", h=16, w=16, ci=24, co=120, k=1, stride=1, pad=0, seed=seed, act=full,
           name="pw 1x1 24->120 @16"),
        mk("conv2d_1x1", h=8, w=8, ci=160, co=40, k=1, stride=1, pad=0, seed=seed, act=full,
           name="pw 1x1 160->40 @8"),
        mk("dwconv_3x3_s1", h=32, w=32, ci=48, co=48, k=3, stride=1, pad=1, seed=seed, act=full,
           name="dw 3x3 s1 48ch @32"),
        mk("dwconv_3x3_s1", h=32, w=32, ci=48, co=48, k=3, stride=1, pad=1, seed=seed, act=relu,
           name="dw 3x3 s1 48ch @32 clamp"),
        mk("dwconv_3x3_s1", h=64, w=64, ci=16, co=16, k=3, stride=1, pad=1, seed=seed, act=full,
           name="dw 3x3 s1 16ch @64"),
        mk("dwconv_3x3_s2", h=64, w=64, ci=24, co=24, k=3, stride=2, pad=1, seed=seed, act=full,
           name="dw 3x3 s2 24ch @64"),
        mk("dwconv", h=32, w=32, ci=48, co=48, k=7, stride=2, pad=3, seed=seed, act=full,
           name="dw 7x7 s2 48ch @32"),
        mk("dwconv", h=8, w=8, ci=160, co=160, k=7, stride=1, pad=3, seed=seed, act=full,
           name="dw 7x7 s1 160ch @8"),
        mk("dwconv", h=8, w=8, ci=160, co=160, k=5, stride=1, pad=2, seed=seed, act=full,
           name="dw 5x5 s1 160ch @8"),
        mk("dwconv", h=4, w=4, ci=384, co=384, k=5, stride=1, pad=2, seed=seed, act=full,
           name="dw 5x5 s1 384ch @4"),
        mk("dwconv", h=4, w=4, ci=384, co=384, k=7, stride=1, pad=3, seed=seed, act=full,
           name="dw 7x7 s1 384ch @4"),
        mk("dwconv", h=8, w=8, ci=240, co=240, k=7, stride=2, pad=3, seed=seed, act=full,
           name="dw 7x7 s2 240ch 8->4"),
        mk("dwconv_3x3_s1", h=8, w=8, ci=144, co=144, k=3, stride=1, pad=1, seed=seed,
           act=full, name="dw 3x3 s1 144ch @8"),
        mk("dwconv_3x3_s1", h=4, w=4, ci=576, co=576, k=3, stride=1, pad=1, seed=seed,
           act=full, name="dw 3x3 s1 576ch @4"),
        fc_case(ci=160, co=10, batch=1, seed=seed, act=full, name="fc 160->10"),
        add_case(n=32 * 32 * 16, seed=seed, act=full, name="add 32x32x16"),
        avgpool_case(h=4, w=4, c=160, seed=seed, name="avgpool 4x4x160"),
    ]
