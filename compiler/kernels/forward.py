"""Forward emitters: one object per forward step kind, the one place that knows its C kernel.

Each emitter says which IR ops it runs (``ops``), the kernel it calls for a node
(:meth:`ForwardEmitter.kernel`), the kernel's scratch as a C constant expression over
the runtime's own ``TT_*_SCRATCH_BYTES`` macros (:meth:`ForwardEmitter.scratch_expr`,
evaluated by :func:`compiler.kernels.sizes.c_sizes` for the memory plan and re-checked
in the generated C with ``_Static_assert``), whether its output may share its input's
storage (``in_place``), and the C statement of a step (:meth:`ForwardEmitter.call`).

``call`` receives the code generator's context ``ctx`` (:class:`compiler.codegen.
generate.ModelCtx`): ``ctx.A(tensor)`` is the arena pointer of a tensor,
``ctx.scratch(i)`` the scratch pointer of step ``i``, ``ctx.conv(node)`` /
``ctx.fc(node)`` / ``ctx.add(node)`` register the node's parameter struct and return
its C name. An op without an emitter fails with :class:`UnsupportedOpError` naming the
op, the node and its source, before any code is written.
"""
from __future__ import annotations

import numpy as np

from compiler.ir.errors import UnsupportedOpError
from compiler.ir.graph import Graph, Node
from compiler.ir.ops import requantizes
from compiler.ir.qmath import hw, pad_end_hw
from compiler.kernels.sizes import c_sizes


def c_geometry(stride, pad) -> str:
    """The geometry fields of a ``tt_conv_params`` / ``tt_pool_params`` literal:
    ``.stride = S, .pad = P`` (rows, and columns when square), plus ``.stride_w``,
    ``.pad_w`` when they differ per axis (see ``TT_STRIDE_W`` in tt_kernels.h)."""
    (sh, sw), (ph, pw) = hw(stride), hw(pad)
    s = f".stride = {sh}, .pad = {ph}"
    return s if (sh, ph) == (sw, pw) else f"{s}, .stride_w = {sw}, .pad_w = {pw}"


def is_square(attrs) -> bool:
    """Same stride and pad on both axes, and on both sides of each (the 1x1 and depthwise
    fast paths and the fused blocks need it). A node whose trailing pads differ
    (``pad_end``) still runs the plain kernels: they take the leading pads and the output
    size and treat every tap outside the input as padding."""
    (sh, sw), (ph, pw) = hw(attrs["stride"]), hw(attrs["pad"])
    return sh == sw and ph == pw and pad_end_hw(attrs) == (ph, pw)


class ForwardEmitter:
    kind = ""                 # step kind in the schedule (compiler.memory.schedule.Step.kind)
    ops: tuple[str, ...] = ()
    in_place: str | None = None   # None | "always" | "operand_dies"

    def kernel(self, node: Node) -> str:
        raise NotImplementedError

    def scratch_expr(self, g: Graph, node: Node) -> str | None:
        """C constant expression of the kernel's scratch bytes (None: no scratch)."""
        return None

    def call(self, ctx, i: int, step) -> tuple[str, list[str]]:
        """(C statement of step ``i``, compile-time checks ``"a >= b"`` on its scratch)."""
        raise NotImplementedError


#: bytes of unpacked weights (plus one output row) a packed layer's chunk may take
PACKED_CHUNK_BYTES = 4096


def is_packed(node: Node) -> bool:
    """The layer's weights are stored at 4 bits (``weight_codebook``, see
    :mod:`compiler.quantize.codebook`): its kernel is the packed wrapper (tt_packed.h)."""
    return "weight_codebook" in node.params


def packed_rows(node: Node) -> int:
    """Output rows per int8 kernel call of a packed conv: the node's ``weight_rows``
    attribute (:func:`compiler.target.weight_bits.apply`: more than one for a layer that
    runs alone, not in a fused block), else 1."""
    return max(1, int(node.attrs.get("weight_rows") or 1))


def packed_chunk(g: Graph, node: Node) -> int:
    """Output channels a packed conv / fc unpacks at a time: the node's ``weight_chunk``
    attribute when set (:func:`compiler.target.weight_bits.fit_arena`), else as many as
    fit in PACKED_CHUNK_BYTES with their output row, even, at least 2 (all when fewer)."""
    w = node.params["weight"]
    if node.attrs.get("weight_chunk"):
        return min(w.shape[0], int(node.attrs["weight_chunk"]))
    co, k = w.shape[0], int(w.size // max(1, w.shape[0]))
    ow = g.tensors[node.output].shape[2] if node.op == "conv2d" else 0
    ch = max(2, (PACKED_CHUNK_BYTES // (k + ow)) & ~1)
    return min(co, ch)


def dw_map_rows(k: int) -> int:
    """Input-row slots of the depthwise whole-map layout (tt_kernels.h TT_DW_MAP_ROWS)."""
    return 10 if k == 3 else 14


def dw_map_ok(g: Graph, node: Node) -> bool:
    """A depthwise layer whose kernel runs every row of the layer in the whole-map layout
    (``tt_conv_params.dw_map``, tt_kernels.h) when its scratch has room for it: 3x3, 5x5
    or 7x7 at stride 1 or 2, square geometry, all input rows of the layer (padding
    included) in ``dw_map_rows(k)`` slots, out_w a multiple of 4, the full int8 output
    range (what the kernel checks before taking that path). The memory plan gives such
    a layer its scratch only where the arena does not grow
    (:mod:`compiler.memory.schedule`; for 5x5 / 7x7 small maps it is the ring's)."""
    if node.op != "conv2d" or node.conv_kind != "depthwise" or is_packed(node):
        return False
    k = tuple(node.attrs["kernel"])
    if k not in ((3, 3), (5, 5), (7, 7)) or not is_square(node.attrs):
        return False
    s = hw(node.attrs["stride"])[0]
    _, ho, wo, _ = g.tensors[node.output].shape
    return (s in (1, 2) and (ho - 1) * s + k[0] <= dw_map_rows(k[0]) and wo % 4 == 0
            and node.attrs["act_min"] <= -128 and node.attrs["act_max"] >= 127)


def dw_map_scratch_expr(g: Graph, node: Node) -> str:
    """Scratch of a depthwise layer in the whole-map layout."""
    w = g.tensors[node.inputs[0]].shape[2]
    kh, kw = node.attrs["kernel"]
    return f"TT_DW_MAP_SCRATCH_BYTES({w}, {kh}, {kw}, {hw(node.attrs['pad'])[0]})"


class Conv(ForwardEmitter):
    """conv2d: pointwise (1x1, stride 1 or 2), depthwise (through the runtime's
    ``tt_dwconv_wrapper_s8``, the one place that picks a depthwise variant: 3x3 s1 / s2
    fast paths or the general kernel), and any other kxk convolution."""
    kind, ops = "conv", ("conv2d",)

    def kernel(self, node: Node) -> str:
        kh, kw = node.attrs["kernel"]
        kind = node.conv_kind
        packed = "_packed" if is_packed(node) else ""
        if kind == "depthwise":
            return "tt_dwconv_packed_s8" if packed else "tt_dwconv_wrapper_s8"
        if kind == "grouped":
            raise UnsupportedOpError("conv2d", node.name, f"grouped convolution (groups="
                                     f"{node.attrs['groups']}) has no C kernel", node.source)
        if kind == "pointwise" and hw(node.attrs["stride"]) in ((1, 1), (2, 2)):
            return f"tt_conv2d_1x1{packed}_s8"
        return f"tt_conv2d{packed}_s8"

    def scratch_expr(self, g: Graph, node: Node) -> str:
        kernel = self.kernel(node)
        kh, kw = node.attrs["kernel"]
        x = g.tensors[node.inputs[0]].shape
        if is_packed(node):
            pad, ow = max(hw(node.attrs["pad"])), g.tensors[node.output].shape[2]
            ch, r = packed_chunk(g, node), packed_rows(node)
            if kernel == "tt_dwconv_packed_s8":
                return f"TT_DWCONV_PACKED_S8_SCRATCH_BYTES({x[3]}, {x[2]}, {kh}, {kw}, {pad})"
            if kernel == "tt_conv2d_1x1_packed_s8":
                return f"TT_CONV2D_1X1_PACKED_S8_SCRATCH_BYTES({x[3]}, {ow}, {ch}, {r})"
            return f"TT_CONV2D_PACKED_S8_SCRATCH_BYTES({kh}, {kw}, {x[3]}, {ow}, {ch}, {r})"
        if kernel == "tt_dwconv_wrapper_s8":
            return f"TT_DWCONV_WRAPPER_S8_SCRATCH_BYTES({x[2]}, {kh}, {kw}, {max(hw(node.attrs['pad']))})"
        if kernel == "tt_conv2d_1x1_s8":
            return f"TT_CONV2D_1X1_S8_SCRATCH_BYTES({x[3]})"
        return f"TT_CONV2D_S8_SCRATCH_BYTES({kh}, {kw}, {x[3]}, {node.params['weight'].shape[0]})"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        cid = ctx.conv(n)
        ho = ctx.g.tensors[n.output].shape[1]
        if step.dw_map:     # the whole-map layout: the plan gave it the scratch
            ctx.dw_map(n)
            checks = [f"{step.scratch} >= {dw_map_scratch_expr(ctx.g, n)}"]
        else:
            checks = [f"{step.scratch} >= {self.scratch_expr(ctx.g, n)}"]
        if ctx.plan.writes_over_input(i):  # in calls of step.band rows, in row order
            b = step.band
            return (f"for (int32_t y = 0; y < {ho}; y += {b}) {step.kernel}(&{cid}, "
                    f"{ctx.A(n.inputs[0])}, 0, {ctx.A(n.output)}, 0, y, y + {b} < {ho} ? y + {b} : "
                    f"{ho}, {ctx.scratch(i)})"), checks
        return (f"{step.kernel}(&{cid}, {ctx.A(n.inputs[0])}, 0, {ctx.A(n.output)}, 0, 0, {ho}, "
                f"{ctx.scratch(i)})"), checks


class FullyConnected(ForwardEmitter):
    kind, ops = "fc", ("fully_connected",)

    def kernel(self, node):
        return "tt_fc_packed_s8" if is_packed(node) else "tt_fc_s8"

    def scratch_expr(self, g, node):
        if is_packed(node):
            return (f"TT_FC_PACKED_S8_SCRATCH_BYTES({node.params['weight'].shape[1]}, "
                    f"{packed_chunk(g, node)})")
        return f"TT_FC_S8_SCRATCH_BYTES({node.params['weight'].shape[1]})"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        fid = ctx.fc(n)
        checks = [f"{step.scratch} >= {self.scratch_expr(ctx.g, n)}"]
        return (f"{self.kernel(n)}(&{fid}, {ctx.A(n.inputs[0])}, {ctx.A(n.output)}, 1, "
                f"{ctx.scratch(i)})"), checks


class Add(ForwardEmitter):
    kind, ops, in_place = "add", ("add",), "operand_dies"

    def kernel(self, node):
        return "tt_add_s8"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        aid = ctx.add(n)
        return (f"tt_add_s8(&{aid}, {ctx.A(n.inputs[0])}, {ctx.A(n.inputs[1])}, "
                f"{ctx.A(n.output)}, {ctx.g.tensors[n.output].numel})"), []


class GlobalAvgPool(ForwardEmitter):
    """global_avgpool; with its own output parameters (mult, shift) the requantizing kernel."""
    kind, ops = "avgpool", ("global_avgpool",)

    def kernel(self, node):
        return "tt_avgpool_global_requant_s8" if requantizes(node) else "tt_avgpool_global_s8"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        x, y = ctx.g.tensors[n.inputs[0]], ctx.g.tensors[n.output]
        _, h, w, c = x.shape
        if requantizes(n):
            (m,), (s,) = n.attrs["mult"], n.attrs["shift"]
            return (f"tt_avgpool_global_requant_s8({ctx.A(n.inputs[0])}, {h}, {w}, {c}, "
                    f"{x.zero_point}, {y.zero_point}, {int(m)}, {int(s)}, {ctx.A(n.output)})"), []
        return (f"tt_avgpool_global_s8({ctx.A(n.inputs[0])}, {h}, {w}, {c}, "
                f"{ctx.A(n.output)})"), []


class AvgPool(ForwardEmitter):
    """avg_pool (kernel, stride, pad per axis, count_include_pad); requantizing when the
    node has mult / shift (flash tables, one per divisor)."""
    kind, ops = "avg_pool", ("avg_pool",)

    def kernel(self, node):
        return "tt_avgpool_s8"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        xt, yt = ctx.g.tensors[n.inputs[0]], ctx.g.tensors[n.output]
        x, y = xt.shape, yt.shape
        kh, kw = n.attrs["kernel"]
        m = s = "NULL"
        k = 0
        if requantizes(n):
            m = ctx.table(n, "mult", "int32_t", np.asarray(n.attrs["mult"], np.int32))
            s = ctx.table(n, "shift", "int32_t", np.asarray(n.attrs["shift"], np.int32))
            k = len(n.attrs["mult"])
        p = (f"&(tt_avgpool_params){{.pool = {{.in_h = {x[1]}, .in_w = {x[2]}, .c = {x[3]}, "
             f".out_h = {y[1]}, .out_w = {y[2]}, .k_h = {kh}, .k_w = {kw}, "
             f"{c_geometry(n.attrs['stride'], n.attrs['pad'])}}}, .in_zero = {xt.zero_point}, "
             f".out_zero = {yt.zero_point}, .count_include_pad = {int(bool(n.attrs['count_include_pad']))}, "
             f".n_mult = {k}, .mult = {m}, .shift = {s}}}")
        return f"tt_avgpool_s8({p}, {ctx.A(n.inputs[0])}, {ctx.A(n.output)})", []


class MaxPool(ForwardEmitter):
    kind, ops = "maxpool", ("max_pool",)

    def kernel(self, node):
        return "tt_maxpool_s8"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        x, y = ctx.g.tensors[n.inputs[0]].shape, ctx.g.tensors[n.output].shape
        kh, kw = n.attrs["kernel"]
        p = (f"&(tt_pool_params){{.in_h = {x[1]}, .in_w = {x[2]}, .c = {x[3]}, .out_h = {y[1]}, "
             f".out_w = {y[2]}, .k_h = {kh}, .k_w = {kw}, "
             f"{c_geometry(n.attrs['stride'], n.attrs['pad'])}}}")
        return f"tt_maxpool_s8({p}, {ctx.A(n.inputs[0])}, {ctx.A(n.output)})", []


class Concat(ForwardEmitter):
    """concat along the channels: one tt_concat_input per operand (compound literals)."""
    kind, ops = "concat", ("concat",)

    def kernel(self, node):
        return "tt_concat_s8"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        g = ctx.g
        y = g.tensors[n.output]
        ins = ", ".join(
            f"{{{ctx.A(t)}, {g.tensors[t].shape[-1]}, {g.tensors[t].zero_point}, {int(m)}, {int(s)}}}"
            for t, m, s in zip(n.inputs, n.attrs["in_mult"], n.attrs["in_shift"]))
        return (f"tt_concat_s8((const tt_concat_input[]){{{ins}}}, {len(n.inputs)}, "
                f"{y.numel // y.shape[-1]}, {y.zero_point}, {ctx.A(n.output)})"), []


class Mul(ForwardEmitter):
    """mul: same shapes, or a per-channel [1, 1, C] second operand broadcast over H x W."""
    kind, ops = "mul", ("mul",)   # not in place: the operand that dies may be the gate

    def kernel(self, node):
        return "tt_mul_s8"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        t = ctx.g.tensors
        a, b, y = t[n.inputs[0]], t[n.inputs[1]], t[n.output]
        c = y.shape[-1]
        p = (f"&(tt_mul_params){{.za = {a.zero_point}, .zb = {b.zero_point}, .zo = {y.zero_point}, "
             f".mult = {int(n.attrs['mult'])}, .shift = {int(n.attrs['shift'])}, "
             f".act_min = {int(n.attrs['act_min'])}, .act_max = {int(n.attrs['act_max'])}}}")
        return (f"tt_mul_s8({p}, {ctx.A(n.inputs[0])}, {ctx.A(n.inputs[1])}, {ctx.A(n.output)}, "
                f"{y.numel // c}, {c}, {int(b.numel != y.numel)})"), []


class Lut(ForwardEmitter):
    """sigmoid / hardsigmoid / hardswish: the node's 256-entry table (flash)."""
    kind, ops, in_place = "lut", ("sigmoid", "hardsigmoid", "hardswish"), "operand_dies"

    def kernel(self, node):
        return "tt_lut_s8"

    def call(self, ctx, i, step):
        n = step.nodes[0]
        tab = ctx.table(n, "lut", "int8_t", n.params["table"])
        return (f"tt_lut_s8({tab}, {ctx.A(n.inputs[0])}, {ctx.A(n.output)}, "
                f"{ctx.g.tensors[n.output].numel})"), []


class Flatten(ForwardEmitter):
    kind, ops, in_place = "flatten", ("flatten",), "always"

    def kernel(self, node):
        return "(in place)"

    def call(self, ctx, i, step):
        return "(void)0 /* flatten: in place */", []


class Block(ForwardEmitter):
    """A fused inverted-residual block ``[expand] -> depthwise -> pointwise2 [-> add]``
    run row by row by ``tt_block_s8`` (see :mod:`compiler.memory.schedule`); its
    sub-kernels are the :class:`Conv` / :class:`Add` emitters' kernels."""
    kind = "block"

    def kernel(self, node=None):
        return "tt_block_s8"

    def call(self, ctx, i, step):
        b = step.block
        pw1 = ctx.conv(b["pw1"]) if b["pw1"] is not None else None
        dw, pw2 = ctx.conv(b["dw"]), ctx.conv(b["pw2"])
        add = ctx.add(b["add"]) if b["add"] is not None else None
        bid = ctx.block(step.name, {
            "pw1": f"&{pw1}" if pw1 else "NULL",
            "pw1_kernel": CONV.kernel(b["pw1"]) if pw1 else "NULL", "dw": dw,
            "dw_kernel": CONV.kernel(b["dw"]), "pw2": pw2,
            "add": f"&{add}" if add else "NULL",
            "add_in_first": int(b["add"] is not None and b["add"].inputs[0] == b["input"]),
            "prep1": b["prep1"], "prep2": b["prep2"], "rows": b["rows"],
            "pw2_kernel": CONV.kernel(b["pw2"]) if is_packed(b["pw2"]) else ""})
        base = ctx.plan.scratch_offsets[i]
        band = ctx.A_at(base) if b["band_bytes"] else "NULL"
        row = ctx.A_at(base + b["band_bytes"])
        ks = ctx.A_at(base + b["band_bytes"] + b["row_bytes"])
        checks = [f"{b['kernel_scratch']} >= {CONV.scratch_expr(ctx.g, n)}"
                  for n in (b["pw1"], b["dw"], b["pw2"]) if n is not None]
        checks += [f"{b[f'prep{j}']} == {prep_expr(ctx.g, b[f'pw{j}'])}"
                   for j in (1, 2) if b[f"prep{j}"]]
        return (f"tt_block_s8(&{bid}, {ctx.A(b['input'])}, {ctx.A(step.output)}, {band}, {row}, "
                f"{ks})"), checks


def prep_expr(g: Graph, n: Node) -> str:
    """C constant expression of the bytes of conv ``n`` prepared by a fused block."""
    kh, kw = n.attrs["kernel"]
    return f"TT_BLOCK_PREP_BYTES({kh * kw * g.tensors[n.inputs[0]].shape[3]}, {n.params['weight'].shape[0]})"


CONV = Conv()
BLOCK = Block()
EMITTERS: tuple[ForwardEmitter, ...] = (CONV, FullyConnected(), Add(), GlobalAvgPool(), MaxPool(),
                                        Concat(), Mul(), Lut(), Flatten(), AvgPool())
BY_OP: dict[str, ForwardEmitter] = {op: e for e in EMITTERS for op in e.ops}
BY_KIND: dict[str, ForwardEmitter] = {e.kind: e for e in EMITTERS + (BLOCK,)}


def emitter_for(node: Node) -> ForwardEmitter:
    """The forward emitter of ``node`` (UnsupportedOpError when its op has none)."""
    try:
        return BY_OP[node.op]
    except KeyError:
        raise UnsupportedOpError(node.op, node.name, "no C kernel for this op in the forward "
                                 "pass (int8 graphs only)", node.source) from None


def scratch(g: Graph, node: Node) -> int:
    """Scratch bytes of the forward kernel of ``node``."""
    e = emitter_for(node).scratch_expr(g, node)
    return c_sizes([e])[0] if e else 0


def prefetch(g: Graph) -> None:
    """Evaluate the scratch sizes of every kernel of ``g`` in one C compilation."""
    exprs = []
    for n in g.nodes:
        e = BY_OP.get(n.op)
        if e is not None and n.conv_kind != "grouped":
            x = e.scratch_expr(g, n)
            if x:
                exprs.append(x)
    c_sizes(exprs)
