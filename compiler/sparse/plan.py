"""Sparse-update plans: what trains on the device, and what it costs in SRAM.

A :class:`SparsePlan` says

- ``bias_layers``: the biases of the last ``k`` conv layers below the classifier train;
- ``weights``: ``{conv node: ratio}``: these layers also train the weights of their first
  ``k = max(1, floor(Co * ratio))`` output channels, ratio in {1/8, 1/4, 1/2, 1}, and
  their biases;
- ``channels``: ``{conv node: permutation}`` applied offline (:mod:`compiler.sparse.permute`)
  so that the channels chosen for training are the contiguous first-k slice; the
  network function is unchanged;
- the classifier (a new head for the user's classes, or with ``head_init: keep`` the
  model's own trained classifier) always trains in full.

Plans are JSON files (:func:`save` / :func:`load`, format :data:`FORMAT`) that a person
can read, edit and pin: ``python -m compiler plan`` writes one, ``build --plan`` reads
it. The file also records the model it was made for (name and sha256 of the *base*
model, input size, classes of the new head), the budget, the predicted memory and the
predicted accuracy gain, so a stale or hand-broken plan fails with a clear message.

Memory model (:func:`memory`): the compiler's own plan of the training step
(:func:`compiler.memory.training.plan_training`): one arena for forward activations, saved
tensors, masks, gradients and kernel scratch, plus the trained parameters that must sit
in RAM, the board's stack and a small reserve for the runtime's own variables. This is
the figure the firmware build checks and the linker map confirms.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from compiler.autodiff import program as ad
from compiler.ir.errors import CompilerError
from compiler.ir.graph import Graph

FORMAT = "tt-sparse-plan/1"
#: RAM the runtime needs beyond arena + trained parameters + stack (gradient scales,
#: step counter, serial state of the test app); the linked figure is checked against
#: the budget again at build time.
RUNTIME_RESERVE = 1024
#: the largest model input size a plan may ask for (3 x 512 x 512 bytes is already three
#: times the RAM of the boards)
INPUT_SIZE_MAX = 512
#: the largest history buffer (samples) the device app takes (its labels are uint8)
HISTORY_MAX = 255


class PlanError(CompilerError):
    """A plan file that does not fit the model or is malformed (the message says why)."""


def _ratio(v) -> Fraction:
    try:
        r = Fraction(str(v)).limit_denominator(64)
    except (ValueError, ZeroDivisionError) as e:
        raise PlanError(f"bad channel ratio {v!r}: use 1/8, 1/4, 1/2 or 1") from e
    if r not in ad.RATIOS:
        raise PlanError(f"bad channel ratio {v!r}: use 1/8, 1/4, 1/2 or 1")
    return r


@dataclass
class SparsePlan:
    bias_layers: int = 0
    weights: dict[str, Fraction] = field(default_factory=dict)
    channels: dict[str, list[int]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.weights = {k: _ratio(v) for k, v in self.weights.items()}
        if int(self.bias_layers) < 0:
            raise PlanError(f"bias_layers must be >= 0, got {self.bias_layers}")
        self.bias_layers = int(self.bias_layers)

    def key(self) -> tuple:
        k = (self.bias_layers, tuple(sorted((k, str(v)) for k, v in self.weights.items())))
        bits = self.meta.get("save_bits")   # low-bit saves change the memory
        return k + (tuple(sorted((n, int(b)) for n, b in bits.items())),) if bits else k

    def trainable(self, g: Graph) -> dict[str, ad.LayerTrain]:
        """The trainable set of :mod:`compiler.autodiff.program` for ``g`` (a prepared graph)."""
        body = body_layers(g)
        names = {n for n in body}
        unknown = sorted(set(self.weights) - names)
        if unknown:
            raise PlanError(f"plan trains weights of {unknown}, which are not conv layers of "
                            f"{g.name} below the classifier (choose from: {', '.join(body)})")
        if self.bias_layers > len(body):
            raise PlanError(f"plan trains the biases of the last {self.bias_layers} layers but "
                            f"{g.name} has {len(body)} conv layers below the classifier")
        out: dict[str, ad.LayerTrain] = {}
        for name in body[len(body) - self.bias_layers:] if self.bias_layers else []:
            out[name] = ad.LayerTrain(False, 1, True)
        bits = self.meta.get("save_bits") or {}
        for name, r in self.weights.items():
            out[name] = ad.LayerTrain(True, r, True, int(bits.get(name, 8)))
        odd = sorted(set(bits) - set(self.weights))
        if odd:
            raise PlanError(f"save_bits names {odd}, whose weights the plan does not train")
        out[head(g)] = ad.LayerTrain(True, 1, True)
        return out

    def describe(self, g: Graph | None = None) -> str:
        parts = [f"biases of the last {self.bias_layers} layers" if self.bias_layers else "no biases"]
        for name, r in sorted(self.weights.items(), key=lambda kv: _order(g, kv[0])):
            parts.append(f"{name} weights {r}")
        return "head + " + ", ".join(parts)

    # -- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plan first (what a person edits), then what it was made for and predicts, then
        the analysis behind it and the channel permutations."""
        first = ("model", "model_sha256", "input_size", "classes", "head_init", "app", "plan")
        last = ("analysis",)
        meta = {k: v for k, v in self.meta.items() if k != "format"}
        return {"format": FORMAT, **{k: meta[k] for k in first if k in meta},
                "bias_layers": self.bias_layers,
                "weights": {k: str(v) for k, v in self.weights.items()},
                **{k: v for k, v in meta.items() if k not in first + last},
                **{k: meta[k] for k in last if k in meta},
                "channels": {k: [int(i) for i in v] for k, v in self.channels.items()}}

    @classmethod
    def from_dict(cls, d: dict, where: str = "plan") -> "SparsePlan":
        """The plan of a JSON object (``where`` names it in errors: the file). Checks the
        whole schema (:func:`validate`) first."""
        validate(d, where)
        meta = {k: v for k, v in d.items() if k not in ("bias_layers", "weights", "channels")}
        return cls(int(d.get("bias_layers") or 0), dict(d.get("weights") or {}),
                   {k: list(map(int, v)) for k, v in (d.get("channels") or {}).items()}, meta)


# ----------------------------------------------------------------------------- schema

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_in(lo, hi=None):
    return (f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}",
            lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi))


def _one_of(*values):
    return (" or ".join(json.dumps(v) for v in values), lambda v: v in values)


_STR = ("a string", lambda v: isinstance(v, str))
_OBJ = ("an object", lambda v: isinstance(v, dict))
_LR = ("a learning rate in (0, 1]", lambda v: _is_num(v) and 0 < v <= 1)
_LR_BODY = ("a learning rate in [0, 1]", lambda v: _is_num(v) and 0 <= v <= 1)
_SHA = ("the model's sha256 as 64 hexadecimal digits (as `python -m compiler inspect` prints it)",
        lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v))

#: the top-level fields of a plan file: (what is expected, check). A field that is absent
#: or null takes its default; fields not listed are kept as they are.
PLAN_FIELDS = {
    "model": _STR,
    "model_sha256": _SHA,
    "input_size": _int_in(1, INPUT_SIZE_MAX),
    "classes": _int_in(2),
    "head_init": _one_of("zero", "keep"),
    "head_seed": _int_in(0),
    "app": _one_of("device", "train-test"),
    "plan": _STR,
    "bias_layers": _int_in(0),
    "weights": ("an object {conv layer name: channel ratio 1/8, 1/4, 1/2 or 1}", lambda v: isinstance(v, dict)),
    "channels": ("an object {conv layer name: permutation of its output channels}",
                 lambda v: isinstance(v, dict)),
    "save_bits": ("an object {conv layer name: bits 2..8 of the input it saves for its "
                  "weight gradient}", lambda v: isinstance(v, dict) and all(
                      _is_int(b) and 2 <= b <= 8 for b in v.values())),
    "board": _STR,
    "data": _STR,
    "made_by": _STR,
    "training": ("an object {lr, lr_body, history}", lambda v: isinstance(v, dict)),
    "analysis_settings": _OBJ,
    "budget_bytes": _int_in(1),
    "predicted": _OBJ,
    "measured": _OBJ,
    "analysis": _OBJ,
}
#: the fields of ``training`` (what the firmware built from the plan starts with)
TRAINING_FIELDS = {"lr": _LR, "lr_body": _LR_BODY, "history": _int_in(0, HISTORY_MAX),
                   "loss": _one_of("softmax_xent", "mse")}   # build_program's loss


def _bad(where: str, field: str, expected: str, v) -> PlanError:
    try:
        got = json.dumps(v)
    except (TypeError, ValueError):
        got = repr(v)
    if len(got) > 60:
        got = got[:57] + "..."
    return PlanError(f"{where}: {field}: expected {expected}, got {got}")


def validate(d, where: str = "plan") -> None:
    """Check a plan's JSON object against the schema (:data:`PLAN_FIELDS`,
    :data:`TRAINING_FIELDS`, the format tag, the channel ratios and permutations); the
    first problem raises :class:`PlanError` ``<where>: <field>: expected ..., got ...``."""
    if not isinstance(d, dict):
        raise PlanError(f"{where}: expected a plan object, holds a JSON {type(d).__name__} "
                        "(not a plan object)")
    if d.get("format") != FORMAT:
        raise PlanError(f"{where}: not a sparse-update plan (format {d.get('format')!r}, "
                        f"expected {FORMAT!r})")
    for k, (expected, ok) in PLAN_FIELDS.items():
        if d.get(k) is not None and not ok(d[k]):
            raise _bad(where, k, expected, d[k])
    for k, v in (d.get("weights") or {}).items():
        try:
            _ratio(v)
        except PlanError:
            raise PlanError(f"{where}: weights.{k}: bad channel ratio {v!r}: expected 1/8, 1/4, "
                            "1/2 or 1") from None
    for k, v in (d.get("channels") or {}).items():
        if not (isinstance(v, list) and all(_is_int(i) for i in v)
                and sorted(v) == list(range(len(v)))):
            raise _bad(where, f"channels.{k}", "a permutation of 0..N-1 (a list of integers)", v)
    for k, (expected, ok) in TRAINING_FIELDS.items():
        v = (d.get("training") or {}).get(k)
        if v is not None and not ok(v):
            raise _bad(where, f"training.{k}", expected, v)
    settings = d.get("analysis_settings") or {}
    for k, (expected, ok) in (("lr", _LR), ("lr_body", _LR_BODY)):
        if settings.get(k) is not None and not ok(settings[k]):
            raise _bad(where, f"analysis_settings.{k}", expected, settings[k])


def _order(g: Graph | None, name: str) -> int:
    if g is None:
        return 0
    ids = ad.layer_ids(g)
    return ids.get(name, 0)


def head(g: Graph) -> str:
    """Name of the classifier (:func:`compiler.sparse.heads.classifier_node`)."""
    from compiler.sparse.heads import classifier_node
    return classifier_node(g).name


def body_layers(g: Graph) -> list[str]:
    """conv / fc layers below the classifier, topological order."""
    h = head(g)
    return [n.name for n in ad.param_nodes(g) if n.name != h]


def save(plan: SparsePlan, path) -> None:
    Path(path).write_text(json.dumps(plan.to_dict(), indent=1) + "\n")


def load(path) -> SparsePlan:
    """Read and check a plan file: a missing, unreadable or non-JSON file, or one that
    breaks the schema (:func:`validate`), raises :class:`PlanError` naming the file and,
    where it is one, the field."""
    p = Path(path)
    if not p.exists():
        raise PlanError(f"{p}: plan file not found (make one with `python -m compiler plan`)")
    if p.is_dir():
        raise PlanError(f"{p}: is a directory, expected a plan file (.json)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(f"{p}: cannot read the plan file: {e}") from None
    if not text.strip():
        raise PlanError(f"{p}: the plan file is empty, expected a plan (JSON object)")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanError(f"{p}: plan file is not valid JSON: {e}") from None
    return SparsePlan.from_dict(d, str(p))


# ----------------------------------------------------------------------------- graph

def prepare(base: Graph, *, input_size: int | None = None, classes: int | None = None,
            head_init: str = "zero", seed: int = 0) -> Graph:
    """The graph a plan is made for: ``base`` with a new ``classes``-way head (when it
    differs from the base's classes) at ``input_size`` (when given)."""
    from compiler.sparse import heads
    g = base
    if classes is not None and int(g.tensors[g.outputs[0]].shape[-1]) != int(classes):
        g = heads.replace_head(g, int(classes), init=head_init, seed=seed)
    if input_size is not None and tuple(g.tensors[g.inputs[0]].shape[1:3]) != (input_size, input_size):
        g = heads.with_input_size(g, int(input_size))
    return g


def apply(base: Graph, plan: SparsePlan) -> Graph:
    """Prepared graph for ``plan`` (head, input size, channel permutations), after
    checking the plan was made for ``base``."""
    from compiler.sparse import permute
    want = plan.meta.get("model_sha256")
    if want and want != base.sha256():
        raise PlanError(f"plan was made for model {plan.meta.get('model', '?')} with sha256 "
                        f"{want[:12]}..., but this model {base.name} has {base.sha256()[:12]}...; "
                        "make a new plan (`python -m compiler plan`) or pass the right model")
    head_init = plan.meta.get("head_init", "zero")
    classes = plan.meta.get("classes")
    if head_init == "keep":
        own = int(base.tensors[base.outputs[0]].shape[-1])
        if classes is not None and int(classes) != own:
            raise PlanError(f"plan keeps the model's classifier ({classes} classes) but "
                            f"{base.name} has {own}")
        classes = None
    try:
        g = prepare(base, input_size=plan.meta.get("input_size"), classes=classes,
                    head_init=head_init, seed=int(plan.meta.get("head_seed", 0)))
    except (ValueError, TypeError) as e:
        raise PlanError(f"plan's model settings cannot be applied: {e}") from e
    for name, perm in plan.channels.items():
        try:
            g = permute.permute_output_channels(g, name, perm)
        except (ValueError, KeyError, CompilerError) as e:
            raise PlanError(f"plan's channel order for {name!r} cannot be applied: {e}") from e
    return g


# ----------------------------------------------------------------------------- memory

APPS = ("device", "train-test")


def app_reserve(g: Graph, app: str) -> int:
    """RAM the firmware application needs besides the training step: ``train-test`` (the
    bit-exactness test loop, samples go straight into the arena) only
    :data:`RUNTIME_RESERVE`; ``device`` (the serial streaming app) also the protocol loop's
    state (frame buffers; ``tt_device_state_bytes()``): it resizes a received image
    straight into the model input's arena bytes. Its history buffer is counted by
    :func:`memory` (``history``)."""
    if app == "train-test":
        return RUNTIME_RESERVE
    if app == "device":
        from compiler.kernels.sizes import c_sizes
        proto = c_sizes(["tt_device_state_bytes()"])[0]
        return RUNTIME_RESERVE + proto
    raise PlanError(f"unknown app {app!r}; choose one of {', '.join(APPS)}")


def memory(g: Graph, plan: SparsePlan | dict, *, stack: int = 8192, reorder: bool = True,
           fuse: str = "auto", reserve: int = RUNTIME_RESERVE, history: int = 0,
           loss: str | None = None) -> dict:
    """Predicted RAM of the training step: ``{"arena", "params", "stack", "runtime",
    "history", "total"}`` in bytes (``runtime`` = ``reserve``, see :func:`app_reserve`;
    ``history``: the device app's buffer of ``history`` samples, each stored as the frozen
    prefix's features when smaller than the input, plus its label). ``plan`` is a
    :class:`SparsePlan` or a trainable set. ``reorder=False``: the conventional order
    (every gradient applied after the backward pass), for comparison. ``loss``: the
    program's loss (default: the plan's ``training.loss``, else softmax_xent); an mse
    program's output is as large as its input, so its output-sized buffers are counted
    (``target``: the step's target and output, the device app's copies of a sample's
    target and output; the train-test app needs two fewer) and each history sample also
    keeps its target (in ``history``)."""
    from compiler.memory import training as train_codegen
    trainable = plan.trainable(g) if isinstance(plan, SparsePlan) else plan
    if loss is None and isinstance(plan, SparsePlan):
        loss = (plan.meta.get("training") or {}).get("loss")
    prog = ad.build_program(g, trainable, loss=loss or "softmax_xent")
    p = train_codegen.plan_training(g, prog, fuse, reorder=reorder)
    params = prog.param_bytes()
    hist = int(history) * (train_codegen.history_item_bytes(g, prog, p) + 1) if history else 0
    target = 0
    if prog.loss == "mse":
        out = int(g.tensors[g.outputs[0]].numel)
        target = 4 * out
        hist += int(history) * out
    return {"arena": p.arena_bytes, "params": params, "stack": stack, "runtime": reserve,
            "history": hist, "target": target,
            "total": p.arena_bytes + params + stack + reserve + hist + target}


class MemoryModel:
    """Memoised :func:`memory` of plans on one prepared graph."""

    def __init__(self, g: Graph, stack: int = 8192, reserve: int = RUNTIME_RESERVE,
                 history: int = 0, loss: str = "softmax_xent"):
        self.g, self.stack, self.reserve, self.history = g, stack, reserve, history
        self.loss = loss
        self.cache: dict[tuple, dict] = {}

    def __call__(self, plan: SparsePlan) -> dict:
        k = plan.key()
        if k not in self.cache:
            self.cache[k] = memory(self.g, plan, stack=self.stack, reserve=self.reserve,
                                   history=self.history, loss=self.loss)
        return self.cache[k]

    def total(self, plan: SparsePlan) -> int:
        return self(plan)["total"]


def parse_bytes(text: str) -> int:
    """'256KB', '256 KiB', '0.25MB', '262144' -> bytes (KB = 1024 bytes). Anything else
    (garbage, nan, inf, a size below one byte) raises :class:`CompilerError`."""
    s = str(text).strip().upper().replace(" ", "").replace("IB", "B")
    mult = 1
    for suffix, m in (("KB", 1024), ("MB", 1024 * 1024), ("K", 1024), ("M", 1024 * 1024), ("B", 1)):
        if s.endswith(suffix):
            s, mult = s[:-len(suffix)], m
            break
    expected = "expected a memory size > 0 such as 256KB, 200000 or 0.25MB"
    try:
        v = float(s) * mult
    except ValueError:
        raise CompilerError(f"cannot read memory size {text!r}: {expected}") from None
    if not math.isfinite(v) or v < 1:
        raise CompilerError(f"memory size {text!r}: {expected}")
    return int(v)
