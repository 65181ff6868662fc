"""Training parts of the template context: the backward steps as C statements, the
training configuration defaults, mask packing and frozen-prefix feature caching.

Input: the int8 graph, its :class:`compiler.autodiff.program.TrainingProgram`, the
training memory plan (:func:`compiler.memory.training.plan_training`) and the
:class:`compiler.autodiff.trainer.TrainConfig` defaults. Output: extra context for
``templates/model.c.j2`` (the same file as the forward pass, so parameter structs are
shared).
"""
from __future__ import annotations

import numpy as np

from compiler.autodiff import program as ad
from compiler.codegen.cformat import c_ident, wrap_values
from compiler.ir.graph import Graph, Node
from compiler.kernels import backward as KB
from compiler.kernels.backward import f32_literal
from compiler.memory import schedule as memplan
from compiler.memory.training import feature_tensors, root
from compiler.ref import grad_ops as rgo


class TrainCtx:
    """Builds the training parts of the template context."""

    def __init__(self, g: Graph, plan: memplan.Plan, program: ad.TrainingProgram, ctx, config):
        self.g, self.plan, self.program, self.ctx, self.config = g, plan, program, ctx, config
        self.F = len(plan.steps)
        roots = sorted({root(program, b) for b in program.buffers})
        self.scale_index = {r: i for i, r in enumerate(roots)}
        self.scale_names = {r: "GS_" + c_ident(r) for r in roots}   # named scale slots
        self.ram_params: set[tuple[str, str]] = set()   # (node, "weight" | "bias")
        self.floats: list[dict] = []
        self.ints: list[dict] = []

    def G(self, name: str, ctype: str = "int8_t") -> str:
        off = self.plan.extra_offsets[f"grad:{root(self.program, name)}"]
        return f"A({off})" if ctype == "int8_t" else f"AT({ctype}, {off})"

    def S(self, name: str) -> str:
        return f"tt_gscale[{self.scale_names[root(self.program, name)]}]"

    def scratch(self, i: int) -> str:
        key = f"bscratch:{i}"
        return f"A({self.plan.extra_offsets[key]})" if key in self.plan.extra_offsets else "NULL"

    def A(self, tensor: str) -> str:
        return f"A({self.plan.offset(tensor)})"

    def float_array(self, name: str, values) -> str:
        if name not in {f["name"] for f in self.floats}:
            vals = wrap_values([f32_literal(v) for v in np.asarray(values, np.float32).ravel()])
            self.floats.append({"name": name, "size": len(np.ravel(values)), "body": vals})
        return name

    def int_array(self, name: str, values) -> str:
        if name not in {f["name"] for f in self.ints}:
            vals = wrap_values([str(int(v)) for v in np.asarray(values).ravel()])
            self.ints.append({"name": name, "size": len(np.ravel(values)), "body": vals})
        return name

    def mask_packs(self) -> dict[int, list[str]]:
        """forward step index -> C statements packing, after that step, the clamp masks of
        its output."""
        out: dict[int, list[str]] = {}
        at = {st.output: i for i, st in enumerate(self.plan.steps)}
        for s in self.program.steps:
            if isinstance(s, ad.Mask):
                i = at[s.y]
                n = int(np.prod(self.g.tensors[s.y].shape))
                off = self.plan.extra_offsets[f"mask:{s.y}"]
                stmt = (f"tt_clamp_mask_pack_s8(A({self.plan.offset(s.y)}), {n}, {s.act_min}, "
                        f"{s.act_max}, AT(uint8_t, {off}), 0)")
                if stmt not in out.setdefault(i, []):
                    out[i].append(stmt)
        return out

    def lowp_packs(self) -> dict[int, list[str]]:
        """forward step index -> C statements packing, *before* that step runs, the
        low-precision saves (conv inputs kept at 2..7 bits for the weight gradient): before
        the step after their producer, or before the first step a training pass runs (the
        frozen prefix may be skipped: its outputs come from the feature cache). Never after
        a step that reads them: that step may write its output over its dying input
        (compiler.memory.overlap)."""
        out: dict[int, list[str]] = {}
        at = {st.output: i for i, st in enumerate(self.plan.steps)}
        start = feature_tensors(self.g, self.program, self.plan)[0]
        for key, t in self.program.saved.items():
            if t.kind == "lowp" and t.used_by:
                s = self.program.steps[t.used_by[0]]
                i = max(at[t.tensor] + 1 if t.tensor in at else 0, start)
                assert i < len(self.plan.steps), f"{t.tensor}: saved but read by no forward step"
                n = int(np.prod(self.g.tensors[t.tensor].shape))
                off = self.plan.extra_offsets[f"lowp:{key}"]
                out.setdefault(i, []).append(
                    f"tt_act_lowp_pack_s8({self.A(t.tensor)}, {n}, {s.x_lo}, {s.x_bits}, "
                    f"AT(uint8_t, {off}))")
        return out

    def sgd(self, s, n: Node, grad: str, k: int) -> str:
        ws = self.float_array(f"ws_{n.name.replace('.', '_')}", n.params["w_scales"])
        lr = "lr" if n.name in {h.name for h in self.g.classifier_nodes()} else "lr_body"
        return (f"&(tt_sgd_params){{.lr = tt_train_cfg.{lr}, .s_gy = " + self.S(grad)
                + f", .s_x = {f32_literal(self.g.tensors[n.inputs[0]].scale)}, .s_w = {ws}, .k = {k}, "
                f".rounding = tt_train_cfg.rounding, .key = tt_update_key(tt_train_cfg.seed, "
                f"tt_train_step_count, {s.layer_id}), .qas_off = tt_train_cfg.qas_off}}")

    def root(self, name: str) -> str:
        """The buffer whose storage ``name`` shares (itself when not an alias)."""
        return root(self.program, name)

    def mask(self, tensor: str) -> str:
        """C pointer to the packed clamp mask of forward tensor ``tensor``."""
        return f"AT(const uint8_t, {self.plan.extra_offsets[f'mask:{tensor}']})"

    def trains(self, n: Node, key: str) -> str:
        """Mark ``n``'s ``key`` ("weight" | "bias") array as trained (RAM, not flash);
        returns the C name prefix of its parameter arrays."""
        self.ram_params.add((n.name, key))
        return self.ctx.params(n)

    def call(self, i: int, s: ad.Step) -> list[str]:
        return KB.emitter_for(s).call(self, i, s)

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
        if getattr(cfg, "backward_w_bits", 8) != 8:
            raise ValueError(f"backward_w_bits={cfg.backward_w_bits}: a reference-only study "
                             "setting; the firmware's input gradients read the 8-bit weights")

        def rng(mode):
            kind, k = rgo._parse_mode(mode)
            return {"shift": 0, "mean": 1, "shift3": 2}[kind], k
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
        extra = {}
        if self.program.loss == "mse":
            tin = self.program.steps[0].target_of_input
            extra["mse"] = {"target_of_input": tin is not None, "y_zero": self.program.steps[0].z_y,
                            **(dict(zip(("x_zero", "mult", "shift"), tin)) if tin else {})}
        return {**extra, "training": True, "bsteps": bsteps, "head_cut": head_cut,
                "mask_packs": self.mask_packs(), "lowp_packs": self.lowp_packs(),
                "plan_str": plan_str,
                **self.features(),
                "n_scales": len(self.scale_index), "train_floats": self.floats,
                "scale_slots": [{"name": self.scale_names[r], "index": i, "buffer": r}
                                for r, i in self.scale_index.items()],
                "train_ints": self.ints,
                "cfg": {"lr": f32_literal(cfg.lr),
                        "lr_body": f32_literal(cfg.lr if cfg.lr_body is None else cfg.lr_body),
                        "bits": cfg.bits, "range_kind": kind, "range_k": k,
                        "loss_kind": lkind, "loss_k": lk,
                        "rounding": ["stochastic", "nearest", "truncate"].index(cfg.rounding),
                        "seed": int(cfg.seed) & 0xFFFFFFFF, "qas_off": int(not cfg.qas)}}
