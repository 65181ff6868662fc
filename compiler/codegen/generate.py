"""Generate the C sources of a model's forward pass from an int8 graph and its plan.

Outputs in ``out_dir``: ``tt_model.h`` (shapes, qparams, arena size, budget asserts),
``tt_model.c`` (parameter structs and the forward function: one kernel call per step
at compile-time arena offsets), ``tt_model_weights.c`` (parameters, const, in flash)
and ``report.json`` (the memory plan). Templates live in ``templates/``; arithmetic
lives in the runtime kernels, never in generated code.
"""
from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import jinja2
import numpy as np

from compiler import paths
from compiler.codegen.cformat import c_ident, c_string, wrap_stmt, wrap_values
from compiler.ir.graph import Graph, Node
from compiler.kernels import forward as KF
from compiler.kernels import rq_records
from compiler.memory import schedule as memplan
from compiler.memory import training as memtrain
from compiler.ref.inputs import channel_order, pixel_lut

TEMPLATES = paths.TEMPLATES


_cid = c_ident


def _c_array(name: str, ctype: str, values: np.ndarray) -> dict:
    flat = np.asarray(values).ravel()
    items = [str(int(v)) for v in flat]
    return {"name": name, "ctype": ctype, "size": max(1, len(items)),
            "nbytes": max(1, len(items)) * np.dtype(np.asarray(values).dtype).itemsize,
            "body": wrap_values(items) if items else "    0", "section": ""}


class ModelCtx:
    """What the forward emitters (:mod:`compiler.kernels.forward`) and the training
    context write into: parameter arrays and structs, and the arena accessors."""

    def __init__(self, g: Graph, plan: memplan.Plan):
        self.g, self.plan = g, plan
        self.rq_bytes = 0   # flash of the precomputed requantization records
        self.arrays: list[dict] = []
        self.convs: list[dict] = []
        self.fcs: list[dict] = []
        self.adds: list[dict] = []
        self.blocks: list[dict] = []
        self.done: dict[str, str] = {}
        self.splits: dict[str, int] = {}   # node -> trained channels k < out_c (split weights)

    def A(self, tensor: str) -> str:
        """C pointer to ``tensor`` in the arena."""
        return self.A_at(self.plan.offset(tensor))

    def A_at(self, offset: int) -> str:
        """C pointer to arena byte ``offset`` (the one accessor for arena pointers)."""
        return f"A({offset})"

    def scratch(self, i: int) -> str:
        """C pointer to the scratch of forward step ``i`` (NULL when it needs none)."""
        p = self.plan
        return self.A_at(p.scratch_offsets[i]) if p.steps[i].scratch else "NULL"

    def block(self, name: str, fields: dict) -> str:
        """Register a fused block's parameter struct; returns its C name."""
        bid = "b_" + _cid(name)
        self.blocks.append({"id": bid, **fields})
        return bid

    def split_fields(self, n: Node) -> str:
        k = self.splits.get(n.name)
        return f".w_tail = p_{_cid(n.name)}_wt, .w_split = {k}," if k is not None else ""

    def params(self, n: Node) -> str:
        """Register the node's parameter arrays. A layer whose first k output channels
        train (``self.splits[name] = k``) gets its weights in two arrays: ``_w`` with
        channels [0, k) (RAM) and ``_wt`` with the rest (flash)."""
        arr = "p_" + _cid(n.name)
        if KF.is_packed(n):     # 4-bit codes + codebook (tt_packed.h)
            if arr + "_q" not in {a["name"] for a in self.arrays}:
                cb = n.params["weight_codebook"]
                self.arrays.append(_c_array(arr + "_q", "uint8_t", packed_weights(n)))
                self.arrays.append(_c_array(arr + "_cb", "int8_t", cb.astype(np.int8)))
                for sfx, key in (("_b", "bias"), ("_m", "mult"), ("_s", "shift")):
                    self.arrays.append(_c_array(arr + sfx, "int32_t", n.params[key].astype(np.int32)))
            return arr
        if arr + "_w" not in {a["name"] for a in self.arrays}:
            w = n.params["weight"]
            if n.is_depthwise:
                w = w[..., 0]  # [C][kh][kw]
            k = self.splits.get(n.name)
            if k is not None:
                self.arrays.append(_c_array(arr + "_wt", "int8_t", w[k:].astype(np.int8)))
                w = w[:k]
            self.arrays.append(_c_array(arr + "_w", "int8_t", w.astype(np.int8)))
            self.arrays.append(_c_array(arr + "_b", "int32_t", n.params["bias"].astype(np.int32)))
            self.arrays.append(_c_array(arr + "_m", "int32_t", n.params["mult"].astype(np.int32)))
            self.arrays.append(_c_array(arr + "_s", "int32_t", n.params["shift"].astype(np.int32)))
        return arr

    def conv(self, n: Node) -> str:
        if n.name in self.done:
            return self.done[n.name]
        x = self.g.tensors[n.inputs[0]]
        y = self.g.tensors[n.output]
        kh, kw = n.attrs["kernel"]
        cid = "c_" + _cid(n.name)
        packed = KF.is_packed(n)
        self.convs.append({
            "packed": packed, "chunk": KF.packed_chunk(self.g, n) if packed else 0,
            "rows": KF.packed_rows(n) if packed else 0,
            "id": cid, "name": n.name, "arr": self.params(n),
            "in_h": x.shape[1], "in_w": x.shape[2], "in_c": x.shape[3],
            "out_h": y.shape[1], "out_w": y.shape[2], "out_c": y.shape[3],
            "k_h": kh, "k_w": kw, "geometry": KF.c_geometry(n.attrs["stride"], n.attrs["pad"]),
            "in_zero": x.zero_point, "out_zero": y.zero_point,
            "act_min": int(n.attrs["act_min"]), "act_max": int(n.attrs["act_max"]),
            "split": self.split_fields(n), "rq": "", "dw_map": False})
        self.done[n.name] = cid + ".conv" if packed else cid
        return self.done[n.name]

    def dw_map(self, n: Node) -> None:
        """Depthwise ``n`` runs in the whole-map layout (``.dw_map = 1``; the plan gave its
        step the scratch)."""
        for c in self.convs:
            if c["name"] == n.name:
                c["dw_map"] = True

    def fc_id(self, n: Node) -> str:
        return self.fc(n)

    def fc(self, n: Node) -> str:
        if n.name in self.done:
            return self.done[n.name]
        x = self.g.tensors[n.inputs[0]]
        y = self.g.tensors[n.output]
        fid = "f_" + _cid(n.name)
        w = n.params["weight"]
        packed = KF.is_packed(n)
        self.fcs.append({"id": fid, "name": n.name, "arr": self.params(n), "packed": packed,
                         "chunk": KF.packed_chunk(self.g, n) if packed else 0,
                         "in_c": w.shape[1], "out_c": w.shape[0], "in_zero": x.zero_point,
                         "out_zero": y.zero_point, "act_min": int(n.attrs["act_min"]),
                         "act_max": int(n.attrs["act_max"]), "split": self.split_fields(n),
                         "rq": ""})
        self.done[n.name] = fid + ".fc" if packed else fid
        return self.done[n.name]

    def add_rq_records(self, ram_arrays: set[str]) -> None:
        """Precomputed requantization records (compiler.kernels.rq_records) for every
        conv / fc whose bias and weights stay in flash (the layer does not train)."""
        for entry in (*self.convs, *self.fcs):
            arr = entry["arr"]
            if entry["packed"] or {arr + "_b", arr + "_w"} & ram_arrays:
                continue
            recs = rq_records.node_records(self.g, self.g.node(entry["name"]))
            if recs is not None:
                if arr + "_r" not in {a["name"] for a in self.arrays}:
                    self.arrays.append({**_c_array(arr + "_r", "int16_t", recs), "rq": True})
                    self.rq_bytes += int(recs.nbytes)
                entry["rq"] = f".rq = {arr}_r,"

    def table(self, n: Node, key: str, ctype: str, values) -> str:
        """Register a constant array of node ``n`` (flash), e.g. a lookup table; returns
        its C name."""
        name = f"p_{_cid(n.name)}_{key}"
        if name not in {a["name"] for a in self.arrays}:
            self.arrays.append(_c_array(name, ctype, np.asarray(values)))
        return name

    def add(self, n: Node) -> str:
        aid = "a_" + _cid(n.name)
        p = n.add_params()
        self.adds.append({"id": aid, "name": n.name, "z1": p.z1, "z2": p.z2, "zo": p.zo,
                          "m1": p.m1, "s1": p.s1, "m2": p.m2, "s2": p.s2, "mo": p.mo,
                          "so": p.so, "act_min": int(n.attrs["act_min"]),
                          "act_max": int(n.attrs["act_max"])})
        return aid


def packed_weights(n: Node) -> np.ndarray:
    """The 4-bit codes of a packed layer as the kernels read them (tt_packed.h)."""
    from compiler.quantize.codebook import pack_rows
    w = n.params["weight"]
    if n.is_depthwise:
        w = w[..., 0]
    return pack_rows(w, n.params["weight_codebook"])


def flash_param_bytes(g: Graph) -> int:
    """Bytes of the layers' parameters in flash: weights (4-bit codes + codebook for a
    packed layer), bias, multipliers, shifts."""
    total = 0
    for n in g.nodes:
        for k in ("weight", "bias", "mult", "shift"):
            if k not in n.params:
                continue
            if k == "weight" and KF.is_packed(n):
                total += int(packed_weights(n).nbytes) + 16
            else:
                total += int(np.asarray(n.params[k]).nbytes)
    return total


def place_low(arrays: list[dict], ram_arrays: set[str], room: int) -> int:
    """Put constant arrays into the board's room beside the vector table (section
    .rodata.tt_lo, board.mk BOARD_FLASH_LO_KB; ``room`` bytes, 0: none): the precomputed
    requantization records first (small, read on every call), then the largest other
    arrays that still fit. Returns the bytes placed (each array padded to 4)."""
    used = 0
    flash = [a for a in arrays if a["name"] not in ram_arrays]
    order = ([a for a in flash if a.get("rq")]
             + sorted((a for a in flash if not a.get("rq")), key=lambda a: -a["nbytes"]))
    for a in order:
        n = (a["nbytes"] + 3) & ~3
        if used + n <= room:
            a["section"] = ".rodata.tt_lo." + a["name"]
            used += n
    return used


def split_weights_supported() -> bool:
    """The kernels read a layer's weights from two arrays (trained slice + frozen tail)."""
    return "w_split" in (paths.RUNTIME_INCLUDE / "tt_kernels.h").read_text()


def generate(g: Graph, out_dir, plan: memplan.Plan | None = None, board: dict | None = None,
             program=None, config=None, rq_records: bool = True) -> dict:
    """Write the model's C sources and report.json into ``out_dir``; return the report.

    With a training ``program`` (compiler.autodiff.program) the plan must come from
    :func:`compiler.memory.training.plan_training`; the sources then also contain
    ``tt_model_train_step()``, with ``config`` (compiler.autodiff.trainer.TrainConfig) as defaults.
    ``rq_records``: precompute the requantization records of the layers that do not train
    (:mod:`compiler.kernels.rq_records`; 2 bytes of flash per output channel, read by
    the DSP kernels; off for a portable build or when flash is short)."""
    plan = plan or memplan.plan(g)
    board = board or {"name": "qemu-mps2-an500", "ram_kb": 256, "flash_kb": 1024, "stack": 8192}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = ModelCtx(g, plan)
    if program is not None:
        read = {getattr(st, "node", None) for st in program.steps} | set(program.trainable)
        bad = [n.name for n in g.nodes if n.name in read and KF.is_packed(n)]
        if bad:
            from compiler.ir.errors import CompilerError
            raise CompilerError(f"{g.name}: layer {bad[0]} has 4-bit weights (weight_codebook) "
                                "but the training program reads its weights: only frozen "
                                "layers off the gradient path can be packed")
    if program is not None and split_weights_supported():
        from compiler.autodiff.program import ConvUpdate, FcUpdate
        for st in program.steps:
            if isinstance(st, (ConvUpdate, FcUpdate)) and st.k < st.out_channels:
                ctx.splits[st.node] = st.k
    steps = []
    for i, s in enumerate(plan.steps):
        call, checks = KF.BY_KIND[s.kind].call(ctx, i, s)
        steps.append({"index": i, "name": s.name, "call": call, "checks": checks,
                      "out_shape": "x".join(map(str, g.tensors[s.output].shape[1:])),
                      "live": plan.live_bytes[i]})
    train_ctx = {"training": False, "mask_packs": {}, "lowp_packs": {}}
    ram_nodes: set[str] = set()
    if program is not None:
        from compiler.autodiff.trainer import TrainConfig
        from compiler.codegen import train_step
        tc = train_step.TrainCtx(g, plan, program, ctx, config or TrainConfig())
        train_ctx = tc.context()
        ram_nodes = tc.ram_params
    ram_arrays = {"p_" + _cid(n) + ("_w" if key == "weight" else "_b") for n, key in ram_nodes}
    if rq_records:
        ctx.add_rq_records(ram_arrays)
    flash_lo = place_low(ctx.arrays, ram_arrays, board.get("flash_lo_kb", 0) * 1024)
    trained_arrays = []
    by_array = {"p_" + _cid(n.name) + sfx: (n.name, key) for n in g.nodes
                for sfx, key in (("_w", "weight"), ("_b", "bias"))}
    for a in ctx.arrays:
        a["const"] = "" if a["name"] in ram_arrays else "const "
        if not a["const"] and a["name"] in by_array:
            node, key = by_array[a["name"]]
            trained_arrays.append({"node": node, "param": key, "array": a["name"],
                                   "rows": ctx.splits.get(node, g.node(node).params[key].shape[0])
                                   if key == "weight" else g.node(node).params[key].shape[0]})
    xin, yout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    sha = g.sha256()
    lut, rule = pixel_lut(g)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["cwrap"] = wrap_stmt
    env.filters["cstring"] = c_string
    env.filters["cvalues"] = lambda s: wrap_values(s.split(", "))
    common = {"model_name": g.name, "sha": sha, "steps": steps, "arrays": ctx.arrays,
              "convs": ctx.convs, "fcs": ctx.fcs, "adds": ctx.adds, "blocks": ctx.blocks,
              "arena_bytes": plan.arena_bytes, "fuse": plan.fuse, "peak_step": plan.peak_step,
              # a flat input (fully connected models) is a 1 x 1 map of F channels
              "in_shape": xin.shape if len(xin.shape) == 4 else (1, 1, 1, xin.numel),
              "input_bytes": xin.numel, "input_scale": xin.scale,
              "input_zero": xin.zero_point, "output_bytes": yout.numel,
              "output_scale": yout.scale, "output_zero": yout.zero_point,
              "input_offset": plan.offset(g.inputs[0]),
              "output_offset": plan.offset(g.outputs[0]),
              "ram_kb": board["ram_kb"], "stack_bytes": board["stack"],
              "pixel_lut": ", ".join(str(int(v)) for v in lut.reshape(-1)), "pixel_luts": lut.shape[0],
              "input_bgr": int(channel_order(g) == "bgr"),
              "input_rule_lines": textwrap.wrap(rule, 90),
              "packed": any(KF.is_packed(n) for n in g.nodes), **train_ctx}
    # model.c first: rendering it registers the parameter arrays
    model_c = env.get_template("model.c.j2").render(**common)
    if train_ctx.get("training"):
        # identifies the trained state's layout: a checkpoint is restored only into
        # firmware with the same model and the same trained arrays
        layout = [(a["name"], a["nbytes"]) for a in ctx.arrays if not a["const"]]
        common["plan_hash"] = hashlib.sha256(
            json.dumps([layout, train_ctx["plan_str"]]).encode()).hexdigest()[:16]
    (out_dir / "tt_model.c").write_text(model_c)
    (out_dir / "tt_model.h").write_text(env.get_template("model.h.j2").render(**common))
    (out_dir / "tt_model_weights.c").write_text(env.get_template("weights.c.j2").render(**common))
    flash_params = flash_param_bytes(g) + ctx.rq_bytes
    ram_params = sum(a["nbytes"] for a in ctx.arrays if not a["const"])
    report = {"model": g.name, "sha256": sha, "board": board["name"], "fuse": plan.fuse,
              "arena_bytes": plan.arena_bytes, "stack_bytes": board["stack"],
              "ram_budget_bytes": board["ram_kb"] * 1024,
              "flash_budget_bytes": board["flash_kb"] * 1024,
              "param_bytes": flash_params, "ram_param_bytes": ram_params,
              "rq_record_bytes": ctx.rq_bytes, "flash_lo_bytes": flash_lo, "macs": g.macs(),
              "training": program is not None, "trained_arrays": trained_arrays,
              "peak_step": plan.peak_step, "layers": memplan.table(plan)}
    if program is not None:     # the backward steps too: the training step's real peak
        report["layers"] = memtrain.table(plan)
        report["peak_step"] = next(i for i, r in enumerate(report["layers"]) if r["peak"])
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report
