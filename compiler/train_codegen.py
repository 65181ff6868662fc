"""Code generation of the on-device training step (forward with saves + backward).

Input: the int8 graph, its :class:`compiler.autodiff.TrainingProgram`, and the
:class:`compiler.train.TrainConfig` defaults. Output: extra template context for
``templates/model.c.j2`` (the same file as the forward pass, so parameter structs are
shared) and the memory plan of the whole step.

Memory: one arena over one timeline -- forward steps ``0..F-1``, then backward step
``i`` at ``F + i``. Forward tensors the backward reads (saved activations, logits) live
until their last backward use; clamp masks (1 bit / element) are packed right after the
forward step that produces their tensor; gradient buffers live from their first write
to their last read (aliases share storage); every backward kernel's scratch lives only
during its step. Trained weights and biases live in RAM (``.data``), outside the arena.

Each backward step kind maps to one runtime kernel (runtime_c/include/tt_train_kernels.h):

=================  ==========================================================
loss_grad          tt_softmax_xent_grad_s8
mask               tt_grad_mask_s8 (after a copy when out of place)
prescale           tt_grad_prescale_s16
conv_grad_input    tt_conv2d_1x1_grad_in_s16 / tt_dwconv_grad_in_s16 / tt_conv2d_grad_in_s16
fc_grad_input      tt_fc_grad_in_s16
requant_grad       tt_requant_grad_s8
avgpool_grad       tt_avgpool_grad_s8
add_split/reshape  (aliases: no code)
accumulate_grads   tt_add_grads_s8
conv_update        tt_conv2d_1x1_grad_w_update_s8 / tt_dwconv_... / tt_conv2d_...
fc_update          tt_fc_grad_w_update_s8
bias_update        tt_bias_grad_update_s32
=================  ==========================================================
"""
from __future__ import annotations

import numpy as np

from . import autodiff as ad
from . import kernel_table as K
from . import memplan
from .ir import Graph, Node

ALIGN = memplan.ALIGN


def _f32(x) -> str:
    """Exact C literal of a float32 value (hexadecimal float)."""
    v = float(np.float32(x))
    return f"{v.hex()}f" if v != 0 else "0.0f"


def _root(program: ad.TrainingProgram, name: str) -> str:
    b = program.buffers[name]
    while b.alias_of is not None:
        b = program.buffers[b.alias_of]
    return b.name


def _conv_literal(g: Graph, n: Node) -> str:
    x, y = g.tensors[n.inputs[0]], g.tensors[n.output]
    kh, kw = n.attrs["kernel"]
    return ("&(tt_conv_params){"
            f".in_h = {x.shape[1]}, .in_w = {x.shape[2]}, .in_c = {x.shape[3]}, "
            f".out_h = {y.shape[1]}, .out_w = {y.shape[2]}, .out_c = {y.shape[3]}, "
            f".k_h = {kh}, .k_w = {kw}, .stride = {n.attrs['stride']}, .pad = {n.attrs['pad']}, "
            f".in_zero = {x.zero_point}, .out_zero = {y.zero_point}, "
            f".act_min = {int(n.attrs['act_min'])}, .act_max = {int(n.attrs['act_max'])}}}")


def _fc_literal(g: Graph, n: Node) -> str:
    w = n.params["weight"]
    x, y = g.tensors[n.inputs[0]], g.tensors[n.output]
    return ("&(tt_fc_params){"
            f".in_c = {w.shape[1]}, .out_c = {w.shape[0]}, .in_zero = {x.zero_point}, "
            f".out_zero = {y.zero_point}, .act_min = {int(n.attrs['act_min'])}, "
            f".act_max = {int(n.attrs['act_max'])}}}")


def grad_in_kernel(n: Node) -> str:
    if n.is_depthwise:
        return "tt_dwconv_grad_in_s16"
    if tuple(n.attrs["kernel"]) == (1, 1) and n.attrs["pad"] == 0:
        return "tt_conv2d_1x1_grad_in_s16"
    return "tt_conv2d_grad_in_s16"


def update_kernel(n: Node) -> str:
    if n.op == "fully_connected":
        return "tt_fc_grad_w_update_s8"
    if n.is_depthwise:
        return "tt_dwconv_grad_w_update_s8"
    if tuple(n.attrs["kernel"]) == (1, 1) and n.attrs["pad"] == 0:
        return "tt_conv2d_1x1_grad_w_update_s8"
    if n.attrs["groups"] != 1:
        raise K.UnsupportedOpError("conv2d", n.name, "training a grouped convolution has no C "
                                   "kernel", n.source)
    return "tt_conv2d_grad_w_update_s8"


def step_scratch_expr(g: Graph, s: ad.Step) -> str | None:
    """C expression of a backward step's scratch bytes (None: no scratch)."""
    n = g.node(s.node) if s.node in {m.name for m in g.nodes} else None
    if isinstance(s, ad.LossGrad):
        return f"tt_softmax_xent_grad_s8_scratch_bytes({s.n_classes})"
    if isinstance(s, ad.ConvGradInput):
        return f"{grad_in_kernel(n)}_scratch_bytes({_conv_literal(g, n)})"
    if isinstance(s, ad.FcGradInput):
        return f"tt_fc_grad_in_s16_scratch_bytes({_fc_literal(g, n)})"
    if isinstance(s, ad.ConvUpdate):
        return f"{update_kernel(n)}_scratch_bytes({_conv_literal(g, n)})"
    if isinstance(s, ad.FcUpdate):
        return f"tt_fc_grad_w_update_s8_scratch_bytes({_fc_literal(g, n)}, 1)"
    if isinstance(s, ad.AccumulateGrads):
        numel = int(np.prod(g.tensors[s.tensor].shape))
        return f"tt_add_grads_s8_scratch_bytes({numel})"
    return None


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_training(g: Graph, program: ad.TrainingProgram, fuse: str = "auto",
                  reorder: bool = True) -> memplan.Plan:
    """One arena for the forward pass with saves and the backward program.

    ``reorder=False`` plans the conventional order instead, for comparison only (no code
    is generated from it): every weight / bias gradient is computed during the backward
    pass but applied after it, so each int32 gradient buffer lives from its step to the
    end of the step list (the generated code fuses each update right after its gradient,
    and the gradient never leaves the kernel's scratch)."""
    keep = {s.node for s in program.steps}
    for t in program.saved.values():
        p = g.producer(t.tensor)
        if p is not None:
            keep.add(p.name)
    fsteps = memplan.schedule(g, fuse, frozenset(keep))
    F = len(fsteps)
    produced_at = {t: 0 for t in g.inputs}
    for i, st in enumerate(fsteps):
        produced_at[st.output] = i
    extend: dict[str, int] = {}
    extra: list[tuple[str, int, int, int]] = []
    for key, t in program.saved.items():
        if not t.used_by:
            continue
        last = F + max(t.used_by)
        if t.kind == "mask":
            extra.append((f"mask:{t.tensor}", _align(t.nbytes), produced_at[t.tensor], last))
        else:
            extend[t.tensor] = max(extend.get(t.tensor, 0), last)
    # the device app copies the frozen prefix's features out of the arena after a forward
    # pass (tt_model_save_features): they must outlive it, even when no backward step
    # reads them (the boundary layer trains its bias only)
    for t in stores_features(g, program, fsteps):
        extend[t] = max(extend.get(t, 0), F - 1)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, s in enumerate(program.steps):
        for b in s.writes():
            r = _root(program, b)
            first.setdefault(r, F + i)
            last[r] = max(last.get(r, F + i), F + i)
        for b in s.reads():
            r = _root(program, b)
            last[r] = max(last.get(r, F + i), F + i)
            first.setdefault(r, F + i)
    for r in first:
        extra.append((f"grad:{r}", _align(program.buffers[r].nbytes), first[r], last[r]))
    if not reorder:
        end = F + len(program.steps) - 1
        for i, s in enumerate(program.steps):
            if isinstance(s, (ad.ConvUpdate, ad.FcUpdate)):
                extra.append((f"wgrad:{i}", _align(s.acc_bytes), F + i, end))
            elif isinstance(s, ad.BiasUpdate):
                extra.append((f"wgrad:{i}", _align(4 * s.k), F + i, end))
    exprs = [(i, step_scratch_expr(g, s)) for i, s in enumerate(program.steps)]
    sizes = K.c_sizes([e for _, e in exprs if e])
    it = iter(sizes)
    for i, e in exprs:
        if e:
            extra.append((f"bscratch:{i}", _align(next(it)), F + i, F + i))
    p = memplan.plan(g, fuse, frozenset(keep), extend, extra)
    assert len(p.steps) == F
    p.program = program
    return p


def feature_tensors(g, program, plan) -> tuple[int, list[str]]:
    """(index of the first forward step that is not frozen, the tensors produced before it
    that later steps read): what a history buffer stores per sample instead of the input.
    ``plan``: a memory plan or its list of forward steps."""
    frozen = set(program.frozen_nodes)
    steps = plan if isinstance(plan, list) else plan.steps
    start = next((i for i, st in enumerate(steps) if any(n.name not in frozen for n in st.nodes)),
                 len(steps))
    produced_before = set(g.inputs) | {st.output for st in steps[:start]}
    needed: list[str] = []
    for st in steps[start:]:
        for t in st.inputs:
            if t in produced_before and t not in needed:
                needed.append(t)
    return start, needed


def history_item_bytes(g, program, plan) -> int:
    """Bytes one history-buffer entry takes on the device (runtime_c/apps/device/main.c:
    the frozen-prefix features when they are smaller than the input, else the input)."""
    needed = stores_features(g, program, plan)
    if needed:
        return sum(int(np.prod(g.tensors[t].shape)) for t in needed)
    return int(np.prod(g.tensors[g.inputs[0]].shape))


def stores_features(g, program, steps) -> list[str]:
    """The feature tensors a history buffer stores instead of the input (empty when the
    input itself is stored: the features would not be smaller)."""
    _, needed = feature_tensors(g, program, steps)
    feat = sum(int(np.prod(g.tensors[t].shape)) for t in needed)
    inp = int(np.prod(g.tensors[g.inputs[0]].shape))
    return needed if 0 < feat < inp else []


class TrainCtx:
    """Builds the training parts of the template context."""

    def __init__(self, g: Graph, plan: memplan.Plan, program: ad.TrainingProgram, ctx, config):
        self.g, self.plan, self.program, self.ctx, self.config = g, plan, program, ctx, config
        self.F = len(plan.steps)
        roots = sorted({_root(program, b) for b in program.buffers})
        self.scale_index = {r: i for i, r in enumerate(roots)}
        self.ram_params: set[tuple[str, str]] = set()   # (node, "weight" | "bias")
        self.floats: list[dict] = []
        self.ints: list[dict] = []

    def G(self, name: str, ctype: str = "int8_t") -> str:
        off = self.plan.extra_offsets[f"grad:{_root(self.program, name)}"]
        return f"(({ctype} *)(tt_arena + {off}))"

    def S(self, name: str) -> str:
        return f"tt_gscale[{self.scale_index[_root(self.program, name)]}]"

    def scratch(self, i: int) -> str:
        key = f"bscratch:{i}"
        return f"(tt_arena + {self.plan.extra_offsets[key]})" if key in self.plan.extra_offsets else "NULL"

    def A(self, tensor: str) -> str:
        return f"A({self.plan.offset(tensor)})"

    def float_array(self, name: str, values) -> str:
        if name not in {f["name"] for f in self.floats}:
            vals = ", ".join(_f32(v) for v in np.asarray(values, np.float32).ravel())
            self.floats.append({"name": name, "size": len(np.ravel(values)), "body": vals})
        return name

    def int_array(self, name: str, values) -> str:
        if name not in {f["name"] for f in self.ints}:
            vals = ", ".join(str(int(v)) for v in np.asarray(values).ravel())
            self.ints.append({"name": name, "size": len(np.ravel(values)), "body": vals})
        return name

    def mask_packs(self) -> dict[int, list[str]]:
        """forward step index -> C statements packing the clamp masks of its output."""
        out: dict[int, list[str]] = {}
        at = {st.output: i for i, st in enumerate(self.plan.steps)}
        for s in self.program.steps:
            if isinstance(s, ad.Mask):
                i = at[s.y]
                n = int(np.prod(self.g.tensors[s.y].shape))
                off = self.plan.extra_offsets[f"mask:{s.y}"]
                stmt = (f"tt_clamp_mask_pack_s8(A({self.plan.offset(s.y)}), {n}, {s.act_min}, "
                        f"{s.act_max}, (uint8_t *)(tt_arena + {off}), 0)")
                if stmt not in out.setdefault(i, []):
                    out[i].append(stmt)
        return out

    def sgd(self, s, n: Node, grad: str, k: int) -> str:
        ws = self.float_array(f"ws_{n.name.replace('.', '_')}", n.params["w_scales"])
        lr = "lr" if n.name in {h.name for h in self.g.classifier_nodes()} else "lr_body"
        return (f"&(tt_sgd_params){{.lr = tt_train_cfg.{lr}, .s_gy = " + self.S(grad)
                + f", .s_x = {_f32(self.g.tensors[n.inputs[0]].scale)}, .s_w = {ws}, .k = {k}, "
                f".rounding = tt_train_cfg.rounding, .key = tt_update_key(tt_train_cfg.seed, "
                f"tt_train_step_count, {s.layer_id}), .qas_off = tt_train_cfg.qas_off}}")

    def call(self, i: int, s: ad.Step) -> list[str]:
        g = self.g
        n = g.node(s.node) if s.node in {m.name for m in g.nodes} else None
        sc = self.scratch(i)
        cfg = "tt_train_cfg.bits, tt_train_cfg.range"
        if isinstance(s, ad.LossGrad):
            return [f"rc |= tt_softmax_xent_grad_s8({self.A(s.logits)}, {s.n_classes}, {_f32(s.s_y)}, "
                    f"{s.z_y}, label, tt_train_cfg.bits, tt_train_cfg.loss_range, {self.G(s.out)}, "
                    f"&{self.S(s.out)}, &tt_train_loss, {sc})"]
        if isinstance(s, ad.Mask):
            numel = int(np.prod(g.tensors[s.y].shape))
            off = self.plan.extra_offsets[f"mask:{s.y}"]
            out = []
            if _root(self.program, s.out) != _root(self.program, s.grad):
                out.append(f"memcpy({self.G(s.out)}, {self.G(s.grad)}, {numel})")
                out.append(f"{self.S(s.out)} = {self.S(s.grad)}")
            out.append(f"tt_grad_mask_s8({self.G(s.out)}, {numel}, (const uint8_t *)(tt_arena + {off}), 0)")
            return out
        if isinstance(s, ad.Prescale):
            shape = self.program.buffers[s.out].shape
            c = shape[-1]
            pixels = int(np.prod(shape)) // c
            pm = self.int_array(f"pm_{s.node.replace('.', '_')}", s.mult)
            ps = self.int_array(f"ps_{s.node.replace('.', '_')}", s.shift)
            factor = np.float32(np.float32(s.w_smax) / np.float32(16.0))
            return [f"tt_grad_prescale_s16({self.G(s.grad)}, {pixels}, {c}, {pm}, {ps}, "
                    f"{self.G(s.out, 'int16_t')})",
                    f"{self.S(s.out)} = {self.S(s.grad)} * {_f32(factor)}"]
        if isinstance(s, ad.ConvGradInput):
            cid = self.ctx.conv(n)
            return [f"{grad_in_kernel(n)}(&{cid}, {self.G(s.src, 'int16_t')}, 0, "
                    f"{self.G(s.out, 'int32_t')}, 0, 0, {s.in_shape[0]}, {sc})",
                    f"{self.S(s.out)} = {self.S(s.src)}"]
        if isinstance(s, ad.FcGradInput):
            fid = self.ctx.fc_id(n)
            return [f"tt_fc_grad_in_s16(&{fid}, {self.G(s.src, 'int16_t')}, {self.G(s.out, 'int32_t')}, "
                    f"1, {sc})", f"{self.S(s.out)} = {self.S(s.src)}"]
        if isinstance(s, ad.RequantGrad):
            numel = self.program.buffers[s.acc].numel
            return [f"rc |= tt_requant_grad_s8({self.G(s.acc, 'int32_t')}, {numel}, {self.S(s.acc)}, "
                    f"{cfg}, NULL, {self.G(s.out)}, &{self.S(s.out)}, NULL)"]
        if isinstance(s, ad.AvgpoolGrad):
            return [f"tt_avgpool_grad_s8({self.G(s.grad)}, {self.S(s.grad)}, {s.hw[0]}, {s.hw[1]}, "
                    f"{s.channels}, {self.G(s.out)}, &{self.S(s.out)})"]
        if isinstance(s, (ad.AddSplit, ad.Reshape)):
            return []
        if isinstance(s, ad.AccumulateGrads):
            numel = int(np.prod(g.tensors[s.tensor].shape))
            return [f"rc |= tt_add_grads_s8({self.G(s.a)}, {self.S(s.a)}, {self.G(s.b)}, {self.S(s.b)}, "
                    f"{numel}, {cfg}, {self.G(s.out)}, &{self.S(s.out)}, {sc})"]
        if isinstance(s, ad.ConvUpdate):
            cid = self.ctx.conv(n)
            self.ram_params.add((n.name, "weight"))
            arr = self.ctx.params(n)
            return [f"rc |= {update_kernel(n)}(&{cid}, {self.G(s.grad)}, {self.A(s.x)}, "
                    f"(int8_t *){arr}_w, {self.sgd(s, n, s.grad, s.k)}, {sc})"]
        if isinstance(s, ad.FcUpdate):
            fid = self.ctx.fc_id(n)
            self.ram_params.add((n.name, "weight"))
            arr = self.ctx.params(n)
            return [f"rc |= tt_fc_grad_w_update_s8(&{fid}, {self.G(s.grad)}, {self.A(s.x)}, 1, "
                    f"(int8_t *){arr}_w, {self.sgd(s, n, s.grad, s.k)}, {sc})"]
        if isinstance(s, ad.BiasUpdate):
            self.ram_params.add((n.name, "bias"))
            arr = self.ctx.params(n)
            shape = g.tensors[n.output].shape
            c = shape[-1]
            pixels = int(np.prod(shape)) // c
            return [f"rc |= tt_bias_grad_update_s32({self.G(s.grad)}, {pixels}, {c}, "
                    f"{self.sgd(s, n, s.grad, s.k)}, (int32_t *){arr}_b)"]
        raise AssertionError(f"no C code for backward step kind {s.kind!r}")

    def features(self) -> dict:
        """Feature caching of the frozen prefix: the forward steps before ``start`` never
        change during training, so a sample can be stored as the tensors they produce
        that later steps read (usually far smaller than the raw input)."""
        start, needed = feature_tensors(self.g, self.program, self.plan)
        feats, pos = [], 0
        for t in needed:
            n = int(np.prod(self.g.tensors[t].shape))
            feats.append({"tensor": t, "offset": self.plan.offset(t), "bytes": n, "pos": pos})
            pos += n
        return {"feature_start": start, "features": feats, "feature_bytes": pos}

    def context(self) -> dict:
        bsteps = []
        for i, s in enumerate(self.program.steps):
            bsteps.append({"index": i, "kind": s.kind, "node": s.node, "stmts": self.call(i, s)})
        # lr_body == 0 (the classifier alone learns): every update below the classifier is
        # a no-op, so the steps after the classifier's own updates are skipped (same result,
        # bit for bit; a head-only pass then costs what a head-only program costs)
        heads = {h.name for h in self.g.classifier_nodes()}
        upd = (ad.ConvUpdate, ad.FcUpdate, ad.BiasUpdate)
        steps = self.program.steps
        last_head = max((i for i, s in enumerate(steps) if isinstance(s, upd) and s.node in heads),
                        default=None)
        head_cut = (last_head is not None
                    and all(not (isinstance(s, upd) and s.node in heads) for s in steps[last_head + 1:])
                    and any(isinstance(s, upd) for s in steps[last_head + 1:]))
        if head_cut:
            bsteps[last_head]["stmts"].append("if (tt_train_cfg.lr_body == 0.0f) goto body_done")
        cfg = self.config

        def rng(mode):
            return (0, {"max": 0, "max/2": 1, "max/4": 2}[mode]) if not mode.startswith("mean*") \
                else (1, int(mode[5:]))
        kind, k = rng(cfg.range_mode)
        lkind, lk = rng(getattr(cfg, "loss_range_mode", None) or cfg.range_mode)
        parts = []
        for name, lt in self.program.trainable.items():
            what = (["w" + ("" if lt.ratio == 1 else f" {lt.ratio}")] if lt.train_weight else []) + \
                (["b"] if lt.train_bias else [])
            parts.append(f"{name}({'+'.join(what)})")
        plan_str = (f"{len(parts)} layers: " + " ".join(parts))
        if len(plan_str) > 160:
            plan_str = plan_str[:157] + "..."
        return {"training": True, "bsteps": bsteps, "head_cut": head_cut,
                "mask_packs": self.mask_packs(),
                "plan_str": plan_str,
                **self.features(),
                "n_scales": len(self.scale_index), "train_floats": self.floats,
                "train_ints": self.ints,
                "cfg": {"lr": _f32(cfg.lr),
                        "lr_body": _f32(cfg.lr if cfg.lr_body is None else cfg.lr_body),
                        "bits": cfg.bits, "range_kind": kind, "range_k": k,
                        "loss_kind": lkind, "loss_k": lk,
                        "rounding": ["stochastic", "nearest", "truncate"].index(cfg.rounding),
                        "seed": int(cfg.seed) & 0xFFFFFFFF, "qas_off": int(not cfg.qas)}}
