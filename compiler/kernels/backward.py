"""Backward emitters: one object per backward step class of the training program.

Each emitter names its runtime kernel (runtime_c/include/tt_train_kernels.h), gives its
scratch as a C expression over the kernel's ``*_scratch_bytes()`` companion (the memory
plan evaluates it with :func:`compiler.kernels.sizes.c_sizes`) and writes the step's C
statements (:meth:`BackwardEmitter.call`). The table :data:`BY_STEP` maps step class ->
emitter; a step class without an emitter fails loudly.

=================  ==========================================================
loss_grad          tt_softmax_xent_grad_s8
mse_grad           tt_mse_grad_s8 (target: tt_train_target, filled by the caller)
mask               tt_grad_mask_s8 (after a copy when out of place)
prescale           tt_grad_prescale_s16 (none when a two-pass kernel prescales band by band)
conv_grad_input    tt_conv2d_1x1_grad_in_s16 / tt_dwconv_grad_in_s16 / tt_conv2d_grad_in_s16
                   (none when two-pass: the requant_grad step after it computes it)
fc_grad_input      tt_fc_grad_in_s16
requant_grad       tt_requant_grad_s8, or tt_conv_grad_in_two_pass_s8 (two_pass_rows > 0)
avgpool_grad       tt_avgpool_grad_s8
max_pool_grad      tt_maxpool_grad_s8
avg_pool_grad      tt_avgpool_window_grad_s8
add_split/reshape  (aliases: no code)
concat_split       tt_concat_grad_s8 (one call per input that needs a gradient)
lut_grad           tt_lut_grad_s8 (the node's int16 derivative table, flash)
mul_grad           tt_mul_grad_s8
mul_gate_grad      tt_mul_gate_grad_s8 (the per-channel gate of a broadcast mul)
accumulate_grads   tt_add_grads_s8
conv_update        tt_conv2d_1x1_grad_w_update_s8 / tt_dwconv_... / tt_conv2d_...
                   (x_bits < 8: after tt_act_lowp_unpack_s8 of the packed input)
fc_update          tt_fc_grad_w_update_s8
bias_update        tt_bias_grad_update_s32
=================  ==========================================================

``call`` receives the training context ``tc`` (:class:`compiler.codegen.train_step.
TrainCtx`): ``tc.G(buffer, ctype)`` / ``tc.S(buffer)`` are a gradient buffer's arena
pointer and its scale slot, ``tc.A(tensor)`` a forward tensor's arena pointer,
``tc.scratch(i)`` the step's scratch, ``tc.mask(tensor)`` a clamp mask's pointer,
``tc.ctx`` the model context (parameter structs, see :mod:`compiler.kernels.forward`),
``tc.sgd(...)`` the update parameters, ``tc.int_array`` / ``tc.float_array`` constant
tables, ``tc.trains(node, "weight" | "bias")`` marks a parameter array as RAM.
"""
from __future__ import annotations

import numpy as np

from compiler.autodiff import program as ad
from compiler.ir.errors import UnsupportedOpError
from compiler.ir.graph import Graph, Node
from compiler.kernels.forward import c_geometry, is_square

CFG = "tt_train_cfg.bits, tt_train_cfg.range"


def f32_literal(x) -> str:
    """Exact C literal of a float32 value (hexadecimal float)."""
    v = float(np.float32(x))
    if v == 0:
        return "0.0f"
    mant, exp = v.hex().split("p")
    return f"{mant.rstrip('0')}p{exp}f"      # e.g. 0x1.8p-3f (trailing zero digits dropped)


def conv_literal(g: Graph, n: Node) -> str:
    x, y = g.tensors[n.inputs[0]], g.tensors[n.output]
    kh, kw = n.attrs["kernel"]
    return ("&(tt_conv_params){"
            f".in_h = {x.shape[1]}, .in_w = {x.shape[2]}, .in_c = {x.shape[3]}, "
            f".out_h = {y.shape[1]}, .out_w = {y.shape[2]}, .out_c = {y.shape[3]}, "
            f".k_h = {kh}, .k_w = {kw}, {c_geometry(n.attrs['stride'], n.attrs['pad'])}, "
            f".in_zero = {x.zero_point}, .out_zero = {y.zero_point}, "
            f".act_min = {int(n.attrs['act_min'])}, .act_max = {int(n.attrs['act_max'])}}}")


def fc_literal(g: Graph, n: Node) -> str:
    w = n.params["weight"]
    x, y = g.tensors[n.inputs[0]], g.tensors[n.output]
    return ("&(tt_fc_params){"
            f".in_c = {w.shape[1]}, .out_c = {w.shape[0]}, .in_zero = {x.zero_point}, "
            f".out_zero = {y.zero_point}, .act_min = {int(n.attrs['act_min'])}, "
            f".act_max = {int(n.attrs['act_max'])}}}")


def _node(g: Graph, s: ad.Step) -> Node | None:
    return g.node(s.node) if s.node in {m.name for m in g.nodes} else None


def _numel(shape) -> int:
    return int(np.prod(shape))


class BackwardEmitter:
    step: type = ad.Step

    def kernel(self, g: Graph, s) -> str | None:
        """The runtime kernel of step ``s`` (None: no code)."""
        return None

    def scratch_expr(self, g: Graph, s) -> str | None:
        """C expression of the step's scratch bytes (None: no scratch)."""
        return None

    def call(self, tc, i: int, s) -> list[str]:
        """The C statements of backward step ``i``."""
        return []


class LossGradE(BackwardEmitter):
    step = ad.LossGrad

    def kernel(self, g, s):
        return "tt_softmax_xent_grad_s8"

    def scratch_expr(self, g, s):
        return f"tt_softmax_xent_grad_s8_scratch_bytes({s.n_classes})"

    def call(self, tc, i, s):
        return [f"rc |= tt_softmax_xent_grad_s8({tc.A(s.logits)}, {s.n_classes}, {f32_literal(s.s_y)}, "
                f"{s.z_y}, label, tt_train_cfg.bits, tt_train_cfg.loss_range, {tc.G(s.out)}, "
                f"&{tc.S(s.out)}, &tt_train_loss, {tc.scratch(i)})"]


class MseGradE(BackwardEmitter):
    step = ad.MseGrad

    def kernel(self, g, s):
        return "tt_mse_grad_s8"

    def scratch_expr(self, g, s):
        return f"tt_mse_grad_s8_scratch_bytes({s.n})"

    def call(self, tc, i, s):
        return [f"rc |= tt_mse_grad_s8({tc.A(s.logits)}, tt_train_target, {s.n}, {f32_literal(s.s_y)}, "
                f"tt_train_cfg.bits, tt_train_cfg.loss_range, {tc.G(s.out)}, &{tc.S(s.out)}, "
                f"&tt_train_loss, {tc.scratch(i)})"]


class MaskE(BackwardEmitter):
    step = ad.Mask

    def kernel(self, g, s):
        return "tt_grad_mask_s8"

    def call(self, tc, i, s):
        numel = _numel(tc.g.tensors[s.y].shape)
        out = []
        if tc.root(s.out) != tc.root(s.grad):
            out.append(f"memcpy({tc.G(s.out)}, {tc.G(s.grad)}, {numel})")
            out.append(f"{tc.S(s.out)} = {tc.S(s.grad)}")
        out.append(f"tt_grad_mask_s8({tc.G(s.out)}, {numel}, {tc.mask(s.y)}, 0)")
        return out


class PrescaleE(BackwardEmitter):
    step = ad.Prescale

    def kernel(self, g, s):
        return None if s.two_pass_rows else "tt_grad_prescale_s16"

    def tables(self, tc, s) -> tuple[str, str]:
        return (tc.int_array(f"pm_{s.node.replace('.', '_')}", s.mult),
                tc.int_array(f"ps_{s.node.replace('.', '_')}", s.shift))

    def call(self, tc, i, s):
        shape = tc.program.buffers[s.out].shape
        c = shape[-1]
        pixels = _numel(shape) // c
        pm, ps = self.tables(tc, s)
        factor = np.float32(np.float32(s.w_smax) / np.float32(16.0))
        scale = f"{tc.S(s.out)} = {tc.S(s.grad)} * {f32_literal(factor)}"
        if s.two_pass_rows:         # prescaled band by band by the two-pass kernel
            return [scale]
        return [f"tt_grad_prescale_s16({tc.G(s.grad)}, {pixels}, {c}, {pm}, {ps}, "
                f"{tc.G(s.out, 'int16_t')})", scale]


class ConvGradInputE(BackwardEmitter):
    step = ad.ConvGradInput

    def band_kernel(self, g, s):
        """The kernel computing the input gradient (also a band of it)."""
        n = g.node(s.node)
        kind = n.conv_kind
        if kind == "depthwise":
            return "tt_dwconv_grad_in_s16"
        if kind == "pointwise" and is_square(n.attrs):
            return "tt_conv2d_1x1_grad_in_s16"
        return "tt_conv2d_grad_in_s16"

    def kernel(self, g, s):
        return None if s.two_pass_rows else self.band_kernel(g, s)

    def scratch_expr(self, g, s):
        if s.two_pass_rows:
            return None
        return f"{self.kernel(g, s)}_scratch_bytes({conv_literal(g, g.node(s.node))})"

    def call(self, tc, i, s):
        if s.two_pass_rows:         # computed by the RequantGrad step after it
            return []
        cid = tc.ctx.conv(tc.g.node(s.node))
        return [f"{self.kernel(tc.g, s)}(&{cid}, {tc.G(s.src, 'int16_t')}, 0, "
                f"{tc.G(s.out, 'int32_t')}, 0, 0, {s.in_shape[0]}, {tc.scratch(i)})",
                f"{tc.S(s.out)} = {tc.S(s.src)}"]


class FcGradInputE(BackwardEmitter):
    step = ad.FcGradInput

    def kernel(self, g, s):
        return "tt_fc_grad_in_s16"

    def scratch_expr(self, g, s):
        return f"tt_fc_grad_in_s16_scratch_bytes({fc_literal(g, g.node(s.node))})"

    def call(self, tc, i, s):
        fid = tc.ctx.fc_id(tc.g.node(s.node))
        return [f"tt_fc_grad_in_s16(&{fid}, {tc.G(s.src, 'int16_t')}, {tc.G(s.out, 'int32_t')}, "
                f"1, {tc.scratch(i)})", f"{tc.S(s.out)} = {tc.S(s.src)}"]


class RequantGradE(BackwardEmitter):
    step = ad.RequantGrad

    def kernel(self, g, s):
        return "tt_conv_grad_in_two_pass_s8" if s.two_pass_rows else "tt_requant_grad_s8"

    def scratch_expr(self, g, s):
        if not s.two_pass_rows:
            return None
        lit = conv_literal(g, g.node(s.node))
        band = ConvGradInputE().band_kernel(g, s)
        return (f"tt_conv_grad_in_two_pass_s8_scratch_bytes({lit}, {s.two_pass_rows}, "
                f"{int(s.two_pass_prescale)}, {band}_scratch_bytes({lit}))")

    def call(self, tc, i, s):
        if s.two_pass_rows:
            c = tc.program.steps[i - 1]
            cid = tc.ctx.conv(tc.g.node(s.node))
            if s.two_pass_prescale:
                pre = tc.program.steps[i - 2]
                pm, ps = PrescaleE().tables(tc, pre)
                src = f"NULL, {tc.G(pre.grad)}, {pm}, {ps}"
            else:
                src = f"{tc.G(c.src, 'int16_t')}, NULL, NULL, NULL"
            return [f"rc |= tt_conv_grad_in_two_pass_s8({ConvGradInputE().band_kernel(tc.g, c)}, "
                    f"&{cid}, {src}, {tc.S(c.src)}, {s.two_pass_rows}, {CFG}, "
                    f"{tc.G(s.out)}, &{tc.S(s.out)}, {tc.scratch(i)})"]
        numel = tc.program.buffers[s.acc].numel
        return [f"rc |= tt_requant_grad_s8({tc.G(s.acc, 'int32_t')}, {numel}, {tc.S(s.acc)}, "
                f"{CFG}, NULL, {tc.G(s.out)}, &{tc.S(s.out)}, NULL)"]


class AvgpoolGradE(BackwardEmitter):
    step = ad.AvgpoolGrad

    def kernel(self, g, s):
        return "tt_avgpool_grad_s8"

    def call(self, tc, i, s):
        return [f"tt_avgpool_grad_s8({tc.G(s.grad)}, {tc.S(s.grad)}, {s.hw[0]}, {s.hw[1]}, "
                f"{s.channels}, {tc.G(s.out)}, &{tc.S(s.out)})"]


class MaxPoolGradE(BackwardEmitter):
    step = ad.MaxPoolGrad

    def kernel(self, g, s):
        return "tt_maxpool_grad_s8"

    def call(self, tc, i, s):
        (h, w, c), (ho, wo, _) = s.in_shape, s.out_shape
        p = (f"&(tt_pool_params){{.in_h = {h}, .in_w = {w}, .c = {c}, .out_h = {ho}, "
             f".out_w = {wo}, .k_h = {s.kernel[0]}, .k_w = {s.kernel[1]}, "
             f"{c_geometry(s.stride, s.pad)}}}")
        return [f"tt_maxpool_grad_s8({p}, {tc.A(s.x)}, {tc.G(s.grad)}, {tc.G(s.out, 'int32_t')})",
                f"{tc.S(s.out)} = {tc.S(s.grad)}"]


class AvgPoolWindowGradE(BackwardEmitter):
    step = ad.AvgPoolWindowGrad

    def kernel(self, g, s):
        return "tt_avgpool_window_grad_s8"

    def call(self, tc, i, s):
        (h, w, c), (ho, wo, _) = s.in_shape, s.out_shape
        kh, kw = s.kernel
        p = (f"&(tt_pool_params){{.in_h = {h}, .in_w = {w}, .c = {c}, .out_h = {ho}, "
             f".out_w = {wo}, .k_h = {kh}, .k_w = {kw}, {c_geometry(s.stride, s.pad)}}}")
        return [f"tt_avgpool_window_grad_s8({p}, {tc.G(s.grad)}, {tc.G(s.out, 'int32_t')})",
                f"{tc.S(s.out)} = {tc.S(s.grad)} / (float){kh * kw}"]


class ConcatSplitE(BackwardEmitter):
    step = ad.ConcatSplit

    def kernel(self, g, s):
        return "tt_concat_grad_s8"

    def call(self, tc, i, s):
        lines = []
        for o, c0, c in zip(s.outs, s.offsets, s.channels):
            if o is not None:
                lines += [f"tt_concat_grad_s8({tc.G(s.grad)}, {s.pixels}, {s.out_channels}, {c0}, "
                          f"{c}, {tc.G(o)})", f"{tc.S(o)} = {tc.S(s.grad)}"]
        return lines


class LutGradE(BackwardEmitter):
    step = ad.LutGrad

    def kernel(self, g, s):
        return "tt_lut_grad_s8"

    def call(self, tc, i, s):
        tab = tc.ctx.table(tc.g.node(s.node), "dlut", "int16_t", s.table)
        numel = tc.program.buffers[s.out].numel
        return [f"tt_lut_grad_s8({tab}, {tc.A(s.x)}, {tc.G(s.grad)}, {tc.G(s.out, 'int32_t')}, "
                f"{numel})",
                f"{tc.S(s.out)} = {tc.S(s.grad)} * {f32_literal(s.d_scale)}"]


class MulGradE(BackwardEmitter):
    step = ad.MulGrad

    def kernel(self, g, s):
        return "tt_mul_gate_grad_s8" if isinstance(s, ad.MulGateGrad) else "tt_mul_grad_s8"

    def call(self, tc, i, s):
        if isinstance(s, ad.MulGateGrad):
            call = (f"tt_mul_gate_grad_s8({tc.G(s.grad)}, {tc.A(s.other)}, {s.other_zero}, "
                    f"{s.pixels}, {s.channels}, {tc.G(s.out, 'int32_t')})")
        else:
            call = (f"tt_mul_grad_s8({tc.G(s.grad)}, {tc.A(s.other)}, {s.other_zero}, {s.pixels}, "
                    f"{s.channels}, {int(s.bcast)}, {tc.G(s.out, 'int32_t')})")
        return [call, f"{tc.S(s.out)} = {tc.S(s.grad)} * {f32_literal(s.other_scale)}"]


class AliasE(BackwardEmitter):
    """add_split / reshape: the output aliases the input's storage; no code."""


class AccumulateGradsE(BackwardEmitter):
    step = ad.AccumulateGrads

    def kernel(self, g, s):
        return "tt_add_grads_s8"

    def scratch_expr(self, g, s):
        return f"tt_add_grads_s8_scratch_bytes({_numel(g.tensors[s.tensor].shape)})"

    def call(self, tc, i, s):
        numel = _numel(tc.g.tensors[s.tensor].shape)
        return [f"rc |= tt_add_grads_s8({tc.G(s.a)}, {tc.S(s.a)}, {tc.G(s.b)}, {tc.S(s.b)}, "
                f"{numel}, {CFG}, {tc.G(s.out)}, &{tc.S(s.out)}, {tc.scratch(i)})"]


class ConvUpdateE(BackwardEmitter):
    step = ad.ConvUpdate

    def kernel(self, g, s):
        n = g.node(s.node)
        kind = n.conv_kind
        if kind == "depthwise":
            return "tt_dwconv_grad_w_update_s8"
        if kind == "pointwise" and is_square(n.attrs):
            return "tt_conv2d_1x1_grad_w_update_s8"
        if kind == "grouped":
            raise UnsupportedOpError("conv2d", n.name, "training a grouped convolution has no C "
                                     "kernel", n.source)
        return "tt_conv2d_grad_w_update_s8"

    def scratch_expr(self, g, s):
        e = f"{self.kernel(g, s)}_scratch_bytes({conv_literal(g, g.node(s.node))})"
        return e if s.x_bits == 8 else f"{lowp_x_bytes(g, s)} + {e}"

    def call(self, tc, i, s):
        n = tc.g.node(s.node)
        cid = tc.ctx.conv(n)
        arr = tc.trains(n, "weight")
        x, scratch, out = tc.A(s.x), tc.scratch(i), []
        if s.x_bits < 8:    # restore the saved input into the front of the scratch
            off = tc.plan.extra_offsets[f"bscratch:{i}"]
            packed = tc.plan.extra_offsets[f"lowp:{s.saved_keys()[0]}"]
            x, scratch = f"A({off})", f"A({off + lowp_x_bytes(tc.g, s)})"
            out.append(f"rc |= tt_act_lowp_unpack_s8(AT(const uint8_t, {packed}), "
                       f"{_numel(tc.g.tensors[s.x].shape)}, {s.x_lo}, {s.x_bits}, {x})")
        return out + [f"rc |= {self.kernel(tc.g, s)}(&{cid}, {tc.G(s.grad)}, {x}, "
                      f"(int8_t *){arr}_w, {tc.sgd(s, n, s.grad, s.k)}, {scratch})"]


def lowp_x_bytes(g: Graph, s) -> int:
    """Scratch bytes a low-precision saved input is restored into (8-byte aligned)."""
    return (_numel(g.tensors[s.x].shape) + 7) // 8 * 8


class FcUpdateE(BackwardEmitter):
    step = ad.FcUpdate

    def kernel(self, g, s):
        return "tt_fc_grad_w_update_s8"

    def scratch_expr(self, g, s):
        return f"tt_fc_grad_w_update_s8_scratch_bytes({fc_literal(g, g.node(s.node))}, 1)"

    def call(self, tc, i, s):
        n = tc.g.node(s.node)
        fid = tc.ctx.fc_id(n)
        arr = tc.trains(n, "weight")
        return [f"rc |= tt_fc_grad_w_update_s8(&{fid}, {tc.G(s.grad)}, {tc.A(s.x)}, 1, "
                f"(int8_t *){arr}_w, {tc.sgd(s, n, s.grad, s.k)}, {tc.scratch(i)})"]


class BiasUpdateE(BackwardEmitter):
    step = ad.BiasUpdate

    def kernel(self, g, s):
        return "tt_bias_grad_update_s32"

    def call(self, tc, i, s):
        n = tc.g.node(s.node)
        arr = tc.trains(n, "bias")
        shape = tc.g.tensors[n.output].shape
        c = shape[-1]
        pixels = _numel(shape) // c
        return [f"rc |= tt_bias_grad_update_s32({tc.G(s.grad)}, {pixels}, {c}, "
                f"{tc.sgd(s, n, s.grad, s.k)}, (int32_t *){arr}_b)"]


BY_STEP: dict[type, BackwardEmitter] = {
    ad.LossGrad: LossGradE(), ad.Mask: MaskE(), ad.Prescale: PrescaleE(),
    ad.ConvGradInput: ConvGradInputE(), ad.FcGradInput: FcGradInputE(),
    ad.RequantGrad: RequantGradE(), ad.AvgpoolGrad: AvgpoolGradE(), ad.MaxPoolGrad: MaxPoolGradE(),
    ad.AddSplit: AliasE(), ad.Reshape: AliasE(), ad.AccumulateGrads: AccumulateGradsE(),
    ad.ConcatSplit: ConcatSplitE(), ad.LutGrad: LutGradE(), ad.MulGrad: MulGradE(),
    ad.MulGateGrad: MulGradE(),
    ad.AvgPoolWindowGrad: AvgPoolWindowGradE(),
    ad.ConvUpdate: ConvUpdateE(), ad.FcUpdate: FcUpdateE(), ad.BiasUpdate: BiasUpdateE(),
    ad.MseGrad: MseGradE(),
}


def emitter_for(s: ad.Step) -> BackwardEmitter:
    """The emitter of backward step ``s`` (AssertionError naming the kind when missing)."""
    try:
        return BY_STEP[type(s)]
    except KeyError:
        raise AssertionError(f"no C emitter for backward step kind {s.kind!r} "
                             f"({type(s).__name__}): add one to compiler.kernels.backward") from None


def step_scratch_expr(g: Graph, s: ad.Step) -> str | None:
    """C expression of a backward step's scratch bytes (None: no scratch)."""
    return emitter_for(s).scratch_expr(g, s)
