"""Generate the C sources of a model's forward pass from an int8 graph and its plan.

Outputs in ``out_dir``: ``tt_model.h`` (shapes, qparams, arena size, budget asserts),
``tt_model.c`` (parameter structs and the forward function: one kernel call per step
at compile-time arena offsets), ``tt_model_weights.c`` (parameters, const, in flash)
and ``report.json`` (the memory plan). Templates live in ``templates/``; arithmetic
lives in the runtime kernels, never in generated code.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import numpy as np

from . import kernel_table as K
from . import memplan
from .ir import Graph, Node

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates"


def _cid(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return s if not s[0].isdigit() else "_" + s


def _c_array(name: str, ctype: str, values: np.ndarray, per_line: int = 24) -> dict:
    flat = np.asarray(values).ravel()
    items = [str(int(v)) for v in flat]
    lines = ["    " + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
    return {"name": name, "ctype": ctype, "size": max(1, len(items)),
            "nbytes": max(1, len(items)) * np.dtype(np.asarray(values).dtype).itemsize,
            "body": "\n".join(lines) if lines else "    0"}


class _Ctx:
    def __init__(self, g: Graph, plan: memplan.Plan):
        self.g, self.plan = g, plan
        self.arrays: list[dict] = []
        self.convs: list[dict] = []
        self.fcs: list[dict] = []
        self.adds: list[dict] = []
        self.blocks: list[dict] = []
        self.done: dict[str, str] = {}
        self.splits: dict[str, int] = {}   # node -> trained channels k < out_c (split weights)

    def split_fields(self, n: Node) -> str:
        k = self.splits.get(n.name)
        return f".w_tail = p_{_cid(n.name)}_wt, .w_split = {k}," if k is not None else ""

    def params(self, n: Node) -> str:
        """Register the node's parameter arrays. A layer whose first k output channels
        train (``self.splits[name] = k``) gets its weights in two arrays: ``_w`` with
        channels [0, k) (RAM) and ``_wt`` with the rest (flash)."""
        arr = "p_" + _cid(n.name)
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
        self.convs.append({
            "id": cid, "name": n.name, "arr": self.params(n),
            "in_h": x.shape[1], "in_w": x.shape[2], "in_c": x.shape[3],
            "out_h": y.shape[1], "out_w": y.shape[2], "out_c": y.shape[3],
            "k_h": kh, "k_w": kw, "stride": n.attrs["stride"], "pad": n.attrs["pad"],
            "in_zero": x.zero_point, "out_zero": y.zero_point,
            "act_min": int(n.attrs["act_min"]), "act_max": int(n.attrs["act_max"]),
            "split": self.split_fields(n)})
        self.done[n.name] = cid
        return cid

    def fc_id(self, n: Node) -> str:
        return self.fc(n)

    def fc(self, n: Node) -> str:
        if n.name in self.done:
            return self.done[n.name]
        x = self.g.tensors[n.inputs[0]]
        y = self.g.tensors[n.output]
        fid = "f_" + _cid(n.name)
        w = n.params["weight"]
        self.fcs.append({"id": fid, "name": n.name, "arr": self.params(n),
                         "in_c": w.shape[1], "out_c": w.shape[0], "in_zero": x.zero_point,
                         "out_zero": y.zero_point, "act_min": int(n.attrs["act_min"]),
                         "act_max": int(n.attrs["act_max"]), "split": self.split_fields(n)})
        self.done[n.name] = fid
        return fid

    def add(self, n: Node) -> str:
        aid = "a_" + _cid(n.name)
        p = n.add_params()
        self.adds.append({"id": aid, "name": n.name, "z1": p.z1, "z2": p.z2, "zo": p.zo,
                          "m1": p.m1, "s1": p.s1, "m2": p.m2, "s2": p.s2, "mo": p.mo,
                          "so": p.so, "act_min": int(n.attrs["act_min"]),
                          "act_max": int(n.attrs["act_max"])})
        return aid


def _step_call(ctx: _Ctx, i: int, s: memplan.Step) -> tuple[str, list[str]]:
    g, p = ctx.g, ctx.plan
    off = p.offset
    sc = f"tt_arena + {p.scratch_offsets[i]}" if s.scratch else "NULL"
    checks: list[str] = []
    if s.kind == "conv":
        n = s.nodes[0]
        cid = ctx.conv(n)
        ho = g.tensors[n.output].shape[1]
        checks.append(f"{s.scratch} >= {K.scratch_macro(g, n)}")
        return (f"{s.kernel}(&{cid}, A({off(n.inputs[0])}), 0, A({off(n.output)}), 0, 0, {ho}, "
                f"{sc})"), checks
    if s.kind == "fc":
        n = s.nodes[0]
        fid = ctx.fc(n)
        checks.append(f"{s.scratch} >= {K.scratch_macro(g, n)}")
        return f"tt_fc_s8(&{fid}, A({off(n.inputs[0])}), A({off(n.output)}), 1, {sc})", checks
    if s.kind == "add":
        n = s.nodes[0]
        aid = ctx.add(n)
        return (f"tt_add_s8(&{aid}, A({off(n.inputs[0])}), A({off(n.inputs[1])}), "
                f"A({off(n.output)}), {g.tensors[n.output].numel})"), checks
    if s.kind == "avgpool":
        n = s.nodes[0]
        _, h, w, c = g.tensors[n.inputs[0]].shape
        return f"tt_avgpool_global_s8(A({off(n.inputs[0])}), {h}, {w}, {c}, A({off(n.output)}))", checks
    if s.kind == "flatten":
        return "(void)0 /* flatten: in place */", checks
    if s.kind == "block":
        b = s.block
        pw1 = ctx.conv(b["pw1"]) if b["pw1"] is not None else None
        dw, pw2 = ctx.conv(b["dw"]), ctx.conv(b["pw2"])
        add = ctx.add(b["add"]) if b["add"] is not None else None
        bid = "b_" + _cid(s.name)
        ctx.blocks.append({"id": bid, "pw1": f"&{pw1}" if pw1 else "NULL",
                           "pw1_kernel": K.conv_kernel(b["pw1"]) if pw1 else "NULL", "dw": dw,
                           "dw_kernel": K.conv_kernel(b["dw"]), "pw2": pw2,
                           "add": f"&{add}" if add else "NULL",
                           "add_in_first": int(b["add"] is not None
                                               and b["add"].inputs[0] == b["input"])})
        base = p.scratch_offsets[i]
        band = f"A({base})" if b["band_bytes"] else "NULL"
        row = f"A({base + b['band_bytes']})"
        ks = f"tt_arena + {base + b['band_bytes'] + b['row_bytes']}"
        for n in (b["pw1"], b["dw"], b["pw2"]):
            if n is not None:
                checks.append(f"{b['kernel_scratch']} >= {K.scratch_macro(g, n)}")
        return (f"tt_block_s8(&{bid}, A({off(b['input'])}), A({off(s.output)}), {band}, {row}, "
                f"{ks})"), checks
    raise AssertionError(s.kind)


def split_weights_supported() -> bool:
    """The kernels read a layer's weights from two arrays (trained slice + frozen tail)."""
    return "w_split" in (REPO / "runtime_c" / "include" / "tt_kernels.h").read_text()


def pixel_lut(g: Graph) -> tuple[np.ndarray, str]:
    """uint8 pixel -> int8 model input: ``pixel - 128`` for the real models, otherwise
    the input tensor's quantization of ``pixel / 255``."""
    from . import reference
    if "pixel - 128" in str(g.metadata.get("input_preprocess", "")):
        return (np.arange(256) - 128).astype(np.int8), "pixel - 128"
    x = g.tensors[g.inputs[0]]
    lut = reference.quantize_input(g, (np.arange(256, dtype=np.float64) / 255.0))
    return lut.astype(np.int8), f"quantize(pixel / 255, scale {x.scale:.6g}, zero {x.zero_point})"


def generate(g: Graph, out_dir, plan: memplan.Plan | None = None, board: dict | None = None,
             program=None, config=None) -> dict:
    """Write the model's C sources and report.json into ``out_dir``; return the report.

    With a training ``program`` (compiler.autodiff) the plan must come from
    :func:`compiler.train_codegen.plan_training`; the sources then also contain
    ``tt_model_train_step()``, with ``config`` (compiler.train.TrainConfig) as defaults."""
    plan = plan or memplan.plan(g)
    board = board or {"name": "qemu-mps2-an500", "ram_kb": 256, "flash_kb": 1024, "stack": 8192}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = _Ctx(g, plan)
    if program is not None and split_weights_supported():
        from .autodiff import ConvUpdate, FcUpdate
        for st in program.steps:
            if isinstance(st, (ConvUpdate, FcUpdate)) and st.k < st.out_channels:
                ctx.splits[st.node] = st.k
    steps = []
    for i, s in enumerate(plan.steps):
        call, checks = _step_call(ctx, i, s)
        steps.append({"index": i, "name": s.name, "call": call, "checks": checks,
                      "out_shape": "x".join(map(str, g.tensors[s.output].shape[1:])),
                      "live": plan.live_bytes[i]})
    train_ctx = {"training": False, "mask_packs": {}}
    ram_nodes: set[str] = set()
    if program is not None:
        from . import train_codegen
        from .train import TrainConfig
        tc = train_codegen.TrainCtx(g, plan, program, ctx, config or TrainConfig())
        train_ctx = tc.context()
        ram_nodes = tc.ram_params
    ram_arrays = {"p_" + _cid(n) + ("_w" if key == "weight" else "_b") for n, key in ram_nodes}
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
    common = {"model_name": g.name, "sha": sha, "steps": steps, "arrays": ctx.arrays,
              "convs": ctx.convs, "fcs": ctx.fcs, "adds": ctx.adds, "blocks": ctx.blocks,
              "arena_bytes": plan.arena_bytes, "fuse": plan.fuse, "peak_step": plan.peak_step,
              "in_shape": xin.shape, "input_bytes": xin.numel, "input_scale": xin.scale,
              "input_zero": xin.zero_point, "output_bytes": yout.numel,
              "output_scale": yout.scale, "output_zero": yout.zero_point,
              "input_offset": plan.offset(g.inputs[0]),
              "output_offset": plan.offset(g.outputs[0]),
              "ram_kb": board["ram_kb"], "stack_bytes": board["stack"],
              "pixel_lut": ", ".join(str(int(v)) for v in lut), "input_rule": rule, **train_ctx}
    # model.c first: rendering it registers the parameter arrays
    model_c = env.get_template("model.c.j2").render(**common)
    (out_dir / "tt_model.c").write_text(model_c)
    (out_dir / "tt_model.h").write_text(env.get_template("model.h.j2").render(**common))
    (out_dir / "tt_model_weights.c").write_text(env.get_template("weights.c.j2").render(**common))
    flash_params = sum(int(np.asarray(n.params[k]).nbytes) for n in g.nodes
                       for k in ("weight", "bias", "mult", "shift") if k in n.params)
    ram_params = sum(a["nbytes"] for a in ctx.arrays if not a["const"])
    report = {"model": g.name, "sha256": sha, "board": board["name"], "fuse": plan.fuse,
              "arena_bytes": plan.arena_bytes, "stack_bytes": board["stack"],
              "ram_budget_bytes": board["ram_kb"] * 1024,
              "flash_budget_bytes": board["flash_kb"] * 1024,
              "param_bytes": flash_params, "ram_param_bytes": ram_params, "macs": g.macs(),
              "training": program is not None, "trained_arrays": trained_arrays,
              "peak_step": plan.peak_step, "layers": memplan.table(plan)}
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report
