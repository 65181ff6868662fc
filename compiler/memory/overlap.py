"""How far a streaming step's output may overlap its own input in the arena.

A fused block (``tt_block_s8``, runtime_c/include/tt_block.h) processes its output rows
in increasing order, in groups of ``rows`` (tt_block_rows): for the group ``[y0, y1)`` it
first reads a band of input rows (through the expand conv, or the depthwise conv
directly), then writes output rows ``[y0, y1)``, then (with a residual) reads input rows
``[y0, y1)`` again for the add. Input rows below the lowest row any
later iteration reads are dead, so the output may start *below* the input's end and
trail the rows still being read: with the output at ``out = in + lag`` (bytes, usually
negative), the output rows ``[y0, y1)`` of an iteration -- the bytes up to ``out + y1 *
out_row`` -- must end at or below ``in + lo * in_row``, where ``lo`` is the lowest input
row read by that iteration or any later one. :func:`block_lag` is the largest such ``lag``.

An unfused convolution (tt_conv2d_s8, tt_conv2d_1x1_s8, tt_dwconv_wrapper_s8) is called
band by band instead (:func:`conv_band` rows per call; tt_kernels.h: "Band (patch)
execution"), the calls in increasing row order: a call may read its input rows and
write its output rows in any order, so the output rows of a call must end below the
lowest input row that call reads (:func:`conv_lag`); within one call, what the kernel
reads and what it writes then never overlap.

Assumptions about the fused block kernel (tt_block_s8.c; a bit-exact run of a block with the
overlapped placement, tests/test_memory_overlap.py, fails if one breaks):
  * an iteration reads no input row outside those :func:`_rows_read` lists (the
    spatial kernels read the rows ``tt_band_in_rows`` reports, tt_kernels.h), and the
    expand conv's rows are computed once each, kept in a band of ``k_h`` rows;
  * an iteration writes its own output rows only, after its band reads.
"""
from __future__ import annotations

from compiler.ir.qmath import hw


def _in_rows(attrs: dict, in_h: int, y0: int, y1: int) -> tuple[int, int]:
    """Input rows [r0, r1) that output rows [y0, y1) of a conv read, clipped to [0, in_h)
    (``tt_band_in_rows``: the vertical stride, leading pad and kernel height)."""
    stride, pad, k = hw(attrs["stride"])[0], hw(attrs["pad"])[0], attrs["kernel"][0]
    r0 = max(0, y0 * stride - pad)
    r1 = min(in_h, (y1 - 1) * stride - pad + k)
    return r0, max(r0, r1)


def _rows_read(g, block: dict) -> list[tuple[int, int, int | None]]:
    """Per iteration of a fused block -- a group of ``block["rows"]`` output rows ``[y0,
    y1)`` (tt_block_rows; 1 by default) -- the lowest input row the iteration reads (None:
    it reads none), following tt_block_s8's band bookkeeping."""
    pw1, dw, add = block["pw1"], block["dw"], block["add"]
    dw_in_h = g.tensors[dw.inputs[0]].shape[1]
    in_h = g.tensors[block["input"]].shape[1]
    out_h = g.tensors[dw.output].shape[1]
    rows = max(1, int(block.get("rows", 1)))
    groups: list[tuple[int, int, int | None]] = []
    b0 = nb = 0                     # band holds expanded rows [b0, b0 + nb)
    for y in range(0, out_h, rows):
        y1 = min(y + rows, out_h)
        r0, r1 = _in_rows(dw.attrs, dw_in_h, y, y1)
        lo = None
        if pw1 is not None:
            if r0 >= b0 + nb:
                b0, nb = r0, 0
            elif r0 > b0:
                nb -= r0 - b0
                b0 = r0
            if b0 + nb < r1:
                a, b = _in_rows(pw1.attrs, in_h, b0 + nb, r1)
                lo = a if b > a else None
                nb = r1 - b0
        elif r1 > r0:
            lo = r0
        if add is not None:         # the add reads input rows [y, y1) after the writes
            lo = y if lo is None else min(lo, y)
        groups.append((y, y1, lo))
    return groups


def block_lag(g, block: dict) -> int | None:
    """The largest ``out - in`` offset (bytes) at which the fused block's output may
    overlap its input (None: no row constraint, any placement works)."""
    xin = g.tensors[block["input"]]
    xout = g.tensors[block["output"]]
    in_row = xin.shape[2] * xin.shape[3]
    out_row = xout.shape[2] * xout.shape[3]
    lag = None
    later: int | None = None        # lowest input row read by this iteration or a later one
    for _, y1, lo in reversed(_rows_read(g, block)):
        if lo is not None:
            later = lo if later is None else min(later, lo)
        if later is None:
            continue                # no input read from here on: these rows may go anywhere
        d = later * in_row - y1 * out_row   # the iteration's output rows end below `later`
        lag = d if lag is None else min(lag, d)
    return lag


#: most calls an unfused convolution is split into when its output overlaps its input
CONV_CALLS = 8


def conv_band(out_h: int) -> int:
    """Output rows per call of an unfused convolution written over its input."""
    return max(1, -(-out_h // CONV_CALLS))


def conv_lag(g, node, band: int) -> int:
    """The largest ``out - in`` offset (bytes) at which an unfused convolution run in
    calls of ``band`` output rows may overlap its input."""
    xin, xout = g.tensors[node.inputs[0]], g.tensors[node.output]
    in_h, out_h = xin.shape[1], xout.shape[1]
    in_row = xin.shape[2] * xin.shape[3]
    out_row = xout.shape[2] * xout.shape[3]
    lag = None
    for y0 in range(0, out_h, band):
        y1 = min(y0 + band, out_h)
        r0, _ = _in_rows(node.attrs, in_h, y0, y1)   # later calls read rows >= r0
        d = r0 * in_row - y1 * out_row
        lag = d if lag is None else min(lag, d)
    return lag
