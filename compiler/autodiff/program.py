"""Compile-time autodiff: int8 forward graph + trainable set -> training program.

:func:`build_program` walks an int8 :class:`~compiler.ir.graph.Graph` backwards and emits an
explicit, ordered list of backward **steps** (dataclasses below). Every step kind maps
onto one function (or one fixed chain of functions) of :mod:`compiler.ref.grad_ops`,
and so onto one C kernel; :mod:`compiler.autodiff.trainer` executes the steps with those
functions, the C code generator emits one call per step.

Backward rules
    :data:`RULES` is the single table ``op -> rule``. A rule receives the builder, the
    node and the name of the (already masked) gradient of the node's output, emits its
    steps and returns the gradient buffer of each input (``None`` where no gradient is
    needed). Entries: ``conv2d`` (kxk, depthwise, pointwise, grouped),
    ``fully_connected``, ``add``, ``concat``, ``global_avgpool``, ``max_pool``, ``avg_pool``,
    ``flatten``, ``mul``, ``sigmoid`` / ``hardsigmoid`` / ``hardswish``, plus two pseudo ops:
    ``clamp`` (the requant clamp / folded ReLU of every conv, fc and add output; not
    applied to the logits unless ``mask_logits``, see :func:`build_program`) and
    ``softmax_xent`` / ``mse`` (the loss on the single graph output, chosen by
    :func:`build_program`'s ``loss``). A node on the gradient path
    whose op has no rule raises :class:`NoBackwardRuleError` (naming op, node, source)
    before any step is emitted for the model; ops in the frozen prefix need no rule.

Trainable set
    ``{node name -> LayerTrain(train_weight, ratio, train_bias)}`` over the conv2d /
    fully_connected nodes; ``ratio`` in {1/8, 1/4, 1/2, 1} trains the contiguous slice
    of the first ``k = max(1, floor(Co * ratio))`` output channels (channels are
    permuted offline so the chosen ones come first). Biases always train all Co
    channels (they are cheap). Helpers: :func:`whole_model`, :func:`last_layers`,
    :func:`last_blocks`, :func:`bias_only`.

Dead-code elimination
    A tensor gets a gradient only if a trainable node lies on or upstream of it (so no
    input gradient below the lowest layer that needs one); frozen weights get no update
    step; frozen nodes downstream of trained ones only propagate gradients.

Order
    Reverse topological order of the forward nodes. At a node: the output gradient is
    complete (all consumers done; forks were summed by :class:`AccumulateGrads` as soon
    as the second contribution arrived), then ``Mask``, then the input gradient
    (``Prescale``, ``ConvGradInput``/``FcGradInput``, ``RequantGrad``) computed with the
    weights *before* this step's update, then ``ConvUpdate``/``FcUpdate`` and
    ``BiasUpdate`` of this node, after which its output gradient is dead.

Gradient buffers
    Every gradient value is a named buffer (:class:`GradBuffer`: dtype, per-sample
    shape, bytes) with one runtime float32 scale (real gradient = scale * value; for the
    int16 / int32 buffers the scale of the integer values). Names: ``g:<tensor>`` (loss
    gradient), ``g:<tensor>@<consumer node>`` (one consumer's contribution to the
    gradient of a forward tensor), ``g:<tensor>#sum<i>`` (accumulated at a fork),
    ``g:<tensor>#masked`` (out-of-place mask), ``t:<node>`` (int16 prescaled),
    ``acc:<tensor>@<node>`` (int32 input-gradient accumulator). ``alias_of`` marks a
    buffer that shares the storage of another one (flatten, add): it costs no bytes.

Saved forward tensors (:class:`SavedTensor`)
    ``activation``: int8 input of a layer whose weights train (1 byte / element);
    ``mask``: clamp mask of a node output on the gradient path (1 bit / element, bytes
    rounded up; ``covered`` when the same tensor is saved whole anyway);
    ``logits``: the int8 graph output read by the loss; ``lowp``: the input of a conv
    whose weights train at ``LayerTrain.x_bits`` < 8 (``grad_ops.lowp_bytes``, packed
    right after the forward step producing it). (The int8 input of a lookup-table
    function and the operands of a mul are saved as ``activation`` too.)

Layer ids (PRNG streams of stochastic rounding, ``update_key(seed, step, layer_id)``)
    the index of the node among the graph's conv2d / fully_connected nodes in
    topological order (0 = first conv), whatever the trainable set
    (:func:`layer_ids`). They change only if the forward graph's layers change.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Callable, ClassVar

import numpy as np

from compiler.ir.errors import CompilerError, UnsupportedOpError
from compiler.ir.graph import Graph, Node
from compiler.ir.ops import pool_counts_vary
from compiler.ir.qmath import quantize_multiplier
from compiler.ref import grad_ops as rgo

RATIOS = (Fraction(1, 8), Fraction(1, 4), Fraction(1, 2), Fraction(1, 1))
ITEMSIZE = {"int8": 1, "int16": 2, "int32": 4, "float32": 4}


class NoBackwardRuleError(UnsupportedOpError):
    """A node on the gradient path uses an op that has no entry in :data:`RULES`."""

    def __init__(self, op: str, node: str, source: str | None = None):
        super().__init__(op, node, f"no backward rule for op {op!r} (compiler.autodiff.program.RULES); "
                         "the node lies on the gradient path of the trainable set", source)


class TrainPlanError(CompilerError):
    """The trainable set does not fit the graph (unknown node, bad ratio, nothing to train)."""


# ----------------------------------------------------------------------------- trainable set

@dataclass(frozen=True)
class LayerTrain:
    """What trains in one conv2d / fully_connected node."""

    train_weight: bool = True
    ratio: Fraction = Fraction(1)
    train_bias: bool = True
    x_bits: int = 8                    # bits of the input saved for the weight gradient

    def __post_init__(self):
        r = Fraction(self.ratio).limit_denominator(64)
        if r not in RATIOS:
            raise TrainPlanError(f"channel ratio must be one of 1/8, 1/4, 1/2, 1; got {self.ratio}")
        object.__setattr__(self, "ratio", r)
        if not (isinstance(self.x_bits, int) and 2 <= self.x_bits <= 8):
            raise TrainPlanError(f"saved input bits must be an integer in 2..8; got {self.x_bits!r}")


def channels_of_ratio(co: int, ratio) -> int:
    """Number of leading output channels trained at ``ratio``: max(1, floor(co * ratio))."""
    r = Fraction(ratio)
    return max(1, co * r.numerator // r.denominator)


def layer_ids(g: Graph) -> dict[str, int]:
    """Stable per-layer ids: index among conv2d / fully_connected nodes, topological order."""
    return {n.name: i for i, n in enumerate(n for n in g.nodes if n.traits.has_params)}


def param_nodes(g: Graph) -> list[Node]:
    return [n for n in g.nodes if n.traits.has_params]


def normalize_trainable(g: Graph, trainable) -> dict[str, LayerTrain]:
    """Accept ``{name: LayerTrain | (train_weight, ratio, train_bias) | dict}``; check node
    names and ops; drop entries that train nothing."""
    out: dict[str, LayerTrain] = {}
    names = {n.name: n for n in g.nodes}
    for name, spec in dict(trainable).items():
        if name not in names:
            raise TrainPlanError(f"trainable set names node {name!r}, which is not in graph {g.name!r}")
        if not names[name].traits.has_params:
            raise TrainPlanError(f"node {name!r} is a {names[name].op}: only conv2d / "
                                 "fully_connected nodes have parameters to train")
        if isinstance(spec, LayerTrain):
            lt = spec
        elif isinstance(spec, dict):
            lt = LayerTrain(**spec)
        else:
            lt = LayerTrain(*spec)
        if lt.train_weight or lt.train_bias:
            out[name] = lt
    return out


def whole_model(g: Graph, ratio=1, bias: bool = True) -> dict[str, LayerTrain]:
    """Every conv / fc layer trains its weights (at ``ratio``) and bias."""
    return {n.name: LayerTrain(True, ratio, bias) for n in param_nodes(g)}


def last_layers(g: Graph, k: int, ratio=1, bias: bool = True) -> dict[str, LayerTrain]:
    """The last ``k`` conv / fc layers (topological order) train weights and bias."""
    nodes = param_nodes(g)
    return {n.name: LayerTrain(True, ratio, bias) for n in nodes[max(0, len(nodes) - k):]}


def blocks(g: Graph) -> list[tuple[str, list[str]]]:
    """Blocks of the graph: conv / fc nodes grouped by their name without the last
    dotted component (``blocks.13.depthwise`` -> ``blocks.13``), in topological order.
    Undotted names (``first_conv``, ``feature_mix``, ``classifier``) are not blocks."""
    out: list[tuple[str, list[str]]] = []
    for n in param_nodes(g):
        if "." not in n.name:
            continue
        prefix = n.name.rsplit(".", 1)[0]
        if out and out[-1][0] == prefix:
            out[-1][1].append(n.name)
        else:
            out.append((prefix, [n.name]))
    return out


def last_blocks(g: Graph, k: int, ratio=1, bias: bool = True) -> dict[str, LayerTrain]:
    """The head (every conv / fc node after the last block: feature mix, classifier)
    plus the conv layers of the last ``k`` blocks (see :func:`blocks`)."""
    bl = blocks(g)
    names = [name for _, ns in bl[max(0, len(bl) - k):] for name in ns] if k > 0 else []
    pn = param_nodes(g)
    last_block_node = max((i for i, n in enumerate(pn) if any(n.name in ns for _, ns in bl)),
                          default=-1)
    names += [n.name for n in pn[last_block_node + 1:]]
    return {name: LayerTrain(True, ratio, bias) for name in names}


def bias_only(g: Graph, k: int | None = None) -> dict[str, LayerTrain]:
    """Biases of the last ``k`` conv / fc layers (all when None), no weights."""
    nodes = param_nodes(g)
    k = len(nodes) if k is None else k
    return {n.name: LayerTrain(False, 1, True) for n in nodes[max(0, len(nodes) - k):]}


# ----------------------------------------------------------------------------- program data

@dataclass
class GradBuffer:
    """A gradient-side buffer. ``shape`` is per sample (batch 1). Aliases cost no bytes."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    tensor: str | None = None          # forward tensor this is (part of) the gradient of
    alias_of: str | None = None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return 0 if self.alias_of else self.numel * ITEMSIZE[self.dtype]


@dataclass
class SavedTensor:
    """A forward tensor (or its clamp mask) kept for the backward pass."""

    tensor: str
    kind: str                          # "activation" | "mask" | "logits" | "lowp"
    shape: tuple[int, ...]
    nbytes: int
    used_by: list[int] = field(default_factory=list)   # step indices
    covered: bool = False              # mask whose tensor is saved whole anyway


@dataclass(kw_only=True)
class Step:
    """Base of all backward steps. ``index`` is the position in the program; ``node`` the
    forward node the step belongs to. ``READS``/``WRITES`` name the fields holding
    gradient-buffer names; ``SAVED`` the fields holding keys of ``TrainingProgram.saved``
    (the forward tensor name; ``<tensor>#mask`` for a mask)."""

    kind: ClassVar[str] = ""
    ref: ClassVar[str] = ""            # ref_grad_ops function(s) the step executes
    READS: ClassVar[tuple[str, ...]] = ()
    WRITES: ClassVar[tuple[str, ...]] = ()
    SAVED: ClassVar[tuple[str, ...]] = ()
    index: int = -1
    node: str

    def reads(self) -> list[str]:
        return [v for f in self.READS for v in _names(getattr(self, f))]

    def writes(self) -> list[str]:
        return [v for f in self.WRITES for v in _names(getattr(self, f))]

    def saved_keys(self) -> list[str]:
        return [getattr(self, f) for f in self.SAVED]

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "ref": self.ref}
        for f in fields(self):
            d[f.name] = _jsonable(getattr(self, f.name))
        return d


def _names(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [x for x in v if x is not None]
    return [v]


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, Fraction):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


@dataclass(kw_only=True)
class LossGrad(Step):
    """``softmax_xent_grad(logits, s_y, z_y, label)`` then ``quantize_grad_f32(g, bits,
    mode)``: int8 gradient of the real logits [1, C] and its scale; the float32 loss."""

    kind: ClassVar[str] = "loss_grad"
    ref: ClassVar[str] = "softmax_xent_grad + quantize_grad_f32"
    WRITES: ClassVar = ("out",)
    SAVED: ClassVar = ("logits",)
    logits: str
    out: str
    n_classes: int
    s_y: float
    z_y: int


@dataclass(kw_only=True)
class MseGrad(Step):
    """``mse_grad(y, t, s_y)`` then ``quantize_grad_f32(g, bits, mode)``: int8 gradient of
    the real output [1, N] against the int8 target ``t`` (the output's quantization) and
    its scale; the float32 loss. ``target_of_input`` = (x_zero, mult, shift) when the
    output has the input's size (an autoencoder): the default target is then
    ``mse_target(x, x_zero, mult, shift, z_y)``; None: the caller gives the target."""

    kind: ClassVar[str] = "mse_grad"
    ref: ClassVar[str] = "mse_grad + quantize_grad_f32"
    WRITES: ClassVar = ("out",)
    SAVED: ClassVar = ("logits",)
    logits: str
    out: str
    n: int
    s_y: float
    z_y: int
    target_of_input: tuple | None = None


@dataclass(kw_only=True)
class Mask(Step):
    """``out = grad * clamp_mask(y, act_min, act_max)`` with ``y`` the node's int8 forward
    output (saved as 1 bit / element). Scale unchanged. In place when ``out == grad``;
    out of place when ``grad`` is shared with another pending gradient (add)."""

    kind: ClassVar[str] = "mask"
    ref: ClassVar[str] = "clamp_mask"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("out",)
    SAVED: ClassVar = ("saved",)
    grad: str
    out: str
    y: str                             # forward output tensor the mask is taken from
    saved: str                         # key in TrainingProgram.saved ("<y>#mask")
    act_min: int
    act_max: int
    mask_bytes: int


@dataclass(kw_only=True)
class Prescale(Step):
    """``out = prescale(grad, mult, shift)``: int8 output gradient -> int16, per output
    channel ``s_w[c] / max(s_w) * 2**PRESCALE_BITS`` (compile-time Q31 mult/shift from
    ``prescale_params``). Scale of ``out``: ``input_grad_scale(scale(grad), w_smax)``.
    A C kernel may fuse this into the following input-gradient kernel."""

    kind: ClassVar[str] = "prescale"
    ref: ClassVar[str] = "prescale"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("out",)
    grad: str
    out: str
    mult: np.ndarray
    shift: np.ndarray
    w_smax: float
    two_pass_rows: int = 0             # > 0: recomputed band by band by the RequantGrad


@dataclass(kw_only=True)
class ConvGradInput(Step):
    """``out = conv_grad_input(src, weight, in_hw, stride, pad, groups)``: transposed
    convolution of the int16 prescaled gradient with the node's int8 OHWI weights (as
    before this step's update) -> int32 [1, H, W, Ci]; ``out`` has ``src``'s scale."""

    kind: ClassVar[str] = "conv_grad_input"
    ref: ClassVar[str] = "conv_grad_input"
    READS: ClassVar = ("src",)
    WRITES: ClassVar = ("out",)
    src: str
    out: str
    in_shape: tuple[int, int, int]     # H, W, Ci
    out_shape: tuple[int, int, int]    # Ho, Wo, Co
    kernel: tuple[int, int]
    stride: int | tuple[int, int]   # per axis: compiler.ir.qmath.hw
    pad: int | tuple[int, int]
    groups: int
    depthwise: bool
    two_pass_rows: int = 0             # > 0: fused into the next RequantGrad (see there)


@dataclass(kw_only=True)
class FcGradInput(Step):
    """``out = fc_grad_input(src, weight)``: int16 [1, Co] x int8 [Co, Ci] -> int32 [1, Ci];
    ``out`` has ``src``'s scale."""

    kind: ClassVar[str] = "fc_grad_input"
    ref: ClassVar[str] = "fc_grad_input"
    READS: ClassVar = ("src",)
    WRITES: ClassVar = ("out",)
    src: str
    out: str
    in_features: int
    out_features: int


@dataclass(kw_only=True)
class RequantGrad(Step):
    """``out, scale = requant_grad(acc, scale(acc), bits, mode)``: int32 accumulator ->
    int8 gradient of forward tensor ``tensor`` with a scale from its own range."""

    kind: ClassVar[str] = "requant_grad"
    ref: ClassVar[str] = "requant_grad"
    READS: ClassVar = ("acc",)
    WRITES: ClassVar = ("out",)
    acc: str
    out: str
    tensor: str
    # > 0 (set by compiler.memory.two_pass, never by the builder): the C code computes the
    # ConvGradInput before this step and this requantization in one two-pass kernel,
    # ``two_pass_rows`` gx rows at a time, so ``acc`` never exists on the device (same
    # values: the reference executes the two steps as they are)
    two_pass_rows: int = 0
    two_pass_prescale: bool = False    # ... from the int8 gradient (no int16 tensor either)


@dataclass(kw_only=True)
class AvgpoolGrad(Step):
    """``out, scale = avgpool_grad_input(grad, scale(grad), hw)``: broadcast the [1, C]
    gradient over H x W, scale / (H*W). (A C kernel may read it broadcast instead.)"""

    kind: ClassVar[str] = "avgpool_grad"
    ref: ClassVar[str] = "avgpool_grad_input"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("out",)
    grad: str
    out: str
    hw: tuple[int, int]
    channels: int


@dataclass(kw_only=True)
class MaxPoolGrad(Step):
    """``out = max_pool_grad_acc(grad, x, kernel, stride, pad)``: each output gradient
    to the first maximum of its window in the saved input ``x``, overlapping windows
    summed (int32, the scale of ``grad``); a RequantGrad makes it int8."""

    kind: ClassVar[str] = "max_pool_grad"
    ref: ClassVar[str] = "max_pool_grad_acc"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("out",)
    SAVED: ClassVar = ("x",)
    grad: str
    out: str
    x: str
    kernel: tuple[int, int]
    stride: int | tuple[int, int]   # per axis: compiler.ir.qmath.hw
    pad: int | tuple[int, int]
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]


@dataclass(kw_only=True)
class AvgPoolWindowGrad(Step):
    """``out = avg_pool_grad_acc(grad, in_hw, kernel, stride, pad)``, scale ``scale(grad)
    / (kh * kw)``: each output gradient to every tap of its window inside the map,
    overlapping windows summed (int32); a RequantGrad makes it int8. Every window has
    the divisor kh * kw (the rule refuses windows whose counts vary)."""

    kind: ClassVar[str] = "avg_pool_grad"
    ref: ClassVar[str] = "avg_pool_grad_acc"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("out",)
    grad: str
    out: str
    kernel: tuple[int, int]
    stride: int | tuple[int, int]   # per axis: compiler.ir.qmath.hw
    pad: int | tuple[int, int]
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]


@dataclass(kw_only=True)
class AddSplit(Step):
    """Gradient of ``y = a + b``: both inputs receive the (masked) output gradient
    unchanged. No computation: ``outs[i]`` (None when input i needs no gradient) are
    aliases of ``grad``."""

    kind: ClassVar[str] = "add_split"
    ref: ClassVar[str] = "(alias)"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("outs",)
    grad: str
    outs: tuple


@dataclass(kw_only=True)
class ConcatSplit(Step):
    """Gradient of ``y = concat(x_0, ..., x_k)`` (channels): ``outs[i] =
    concat_grad_split(grad, offsets[i], channels[i])`` (None when input i needs no
    gradient), each with the scale of ``grad``."""

    kind: ClassVar[str] = "concat_split"
    ref: ClassVar[str] = "concat_grad_split"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("outs",)
    grad: str
    outs: tuple
    offsets: tuple
    channels: tuple
    pixels: int
    out_channels: int


@dataclass(kw_only=True)
class LutGrad(Step):
    """Gradient of an elementwise function by table (sigmoid / hardsigmoid / hardswish):
    ``out = lut_grad_acc(grad, x, table)`` with the compile-time int16 derivative table
    (``lut_grad_table``) indexed by the saved int8 input ``x`` (int32, scale
    ``scale(grad) * d_scale``); a RequantGrad makes it int8."""

    kind: ClassVar[str] = "lut_grad"
    ref: ClassVar[str] = "lut_grad_acc"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("out",)
    SAVED: ClassVar = ("x",)
    grad: str
    out: str
    x: str
    table: np.ndarray
    d_scale: float


@dataclass(kw_only=True)
class MulGrad(Step):
    """Gradient of ``y = a * b`` w.r.t. one operand: ``out = mul_grad_acc(grad, other,
    other_zero)`` with the saved int8 ``other`` operand (``bcast``: a per-channel gate
    broadcast over the pixels), int32 with scale ``scale(grad) * other_scale``; a
    RequantGrad makes it int8."""

    kind: ClassVar[str] = "mul_grad"
    ref: ClassVar[str] = "mul_grad_acc"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("out",)
    SAVED: ClassVar = ("other",)
    grad: str
    out: str
    other: str
    other_zero: int
    other_scale: float
    pixels: int
    channels: int
    bcast: bool = False                # other is [1, 1, C] over the grad's pixels


@dataclass(kw_only=True)
class MulGateGrad(MulGrad):
    """Gradient of ``y = a * gate`` w.r.t. the per-channel gate [1, 1, C]: ``out =
    mul_gate_grad_acc(grad, a, a_zero)`` (``other`` is the saved feature map ``a``),
    summed over the pixels, int32 with scale ``scale(grad) * other_scale``."""

    kind: ClassVar[str] = "mul_gate_grad"
    ref: ClassVar[str] = "mul_gate_grad_acc"


@dataclass(kw_only=True)
class Reshape(Step):
    """Gradient of ``flatten``: same values and scale, new shape. ``out`` aliases ``grad``."""

    kind: ClassVar[str] = "reshape"
    ref: ClassVar[str] = "(alias)"
    READS: ClassVar = ("grad",)
    WRITES: ClassVar = ("out",)
    grad: str
    out: str
    shape: tuple[int, ...]


@dataclass(kw_only=True)
class AccumulateGrads(Step):
    """``out, scale = add_grads(a, scale(a), b, scale(b), bits, mode)``: the gradient of a
    forward tensor read by several nodes (e.g. a residual block input) is the sum of the
    contributions. ``node`` is the tensor's producer (or the tensor for graph inputs)."""

    kind: ClassVar[str] = "accumulate_grads"
    ref: ClassVar[str] = "add_grads"
    READS: ClassVar = ("a", "b")
    WRITES: ClassVar = ("out",)
    tensor: str
    a: str
    b: str
    out: str


@dataclass(kw_only=True)
class ConvUpdate(Step):
    """Weight gradient fused with the in-place update of the first ``k`` output channels:
    ``A = conv_grad_weight_acc(grad, x, x_zero, kernel, stride, pad, groups, k)`` (int32
    [k, kh, kw, Ci/groups]); ``f = weight_factors(lr, scale(grad), x_scale, w_scales[:k])``
    (QAS; ``weight_factors_plain`` with QAS off); ``w = sgd_update_weights(w, A, f,
    rounding, update_key(seed, step, layer_id))``. ``acc_bytes`` is the size of the
    whole accumulator; a fused C kernel can update weight by weight instead."""

    kind: ClassVar[str] = "conv_update"
    ref: ClassVar[str] = "conv_grad_weight_acc + weight_factors + sgd_update_weights"
    READS: ClassVar = ("grad",)
    SAVED: ClassVar = ("x",)
    layer_id: int
    grad: str
    x: str
    x_zero: int
    x_scale: float
    k: int
    out_channels: int
    kernel: tuple[int, int]
    stride: int | tuple[int, int]   # per axis: compiler.ir.qmath.hw
    pad: int | tuple[int, int]
    groups: int
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    acc_shape: tuple[int, ...]
    acc_bytes: int
    param_bytes: int                   # trained weight slice (must live in RAM)
    # x_bits < 8: ``x`` is saved at that precision (grad_ops.lowp_activation with the
    # lower bound x_lo; saved key ``<x>#b<bits>``, kind "lowp") and the weight gradient
    # reads the values it restores
    x_bits: int = 8
    x_lo: int = -128

    def saved_keys(self) -> list[str]:
        return [self.x if self.x_bits == 8 else f"{self.x}#b{self.x_bits}"]


@dataclass(kw_only=True)
class FcUpdate(Step):
    """As :class:`ConvUpdate` for a fully-connected layer: ``A = fc_grad_weight_acc(grad,
    x, x_zero, k)`` (int32 [k, Ci]), then ``weight_factors`` and ``sgd_update_weights``."""

    kind: ClassVar[str] = "fc_update"
    ref: ClassVar[str] = "fc_grad_weight_acc + weight_factors + sgd_update_weights"
    READS: ClassVar = ("grad",)
    SAVED: ClassVar = ("x",)
    layer_id: int
    grad: str
    x: str
    x_zero: int
    x_scale: float
    k: int
    out_channels: int
    in_features: int
    acc_shape: tuple[int, ...]
    acc_bytes: int
    param_bytes: int


@dataclass(kw_only=True)
class BiasUpdate(Step):
    """``gb = bias_grad_acc(grad, k)``; ``f = bias_factors(lr, scale(grad), x_scale,
    w_scales[:k])`` (``bias_factors_plain`` with QAS off); ``b = sgd_update_bias(b, gb, f)``
    (nearest rounding, saturating). ``k`` = all output channels."""

    kind: ClassVar[str] = "bias_update"
    ref: ClassVar[str] = "bias_grad_acc + bias_factors + sgd_update_bias"
    READS: ClassVar = ("grad",)
    layer_id: int
    grad: str
    x_scale: float
    k: int
    param_bytes: int


STEP_KINDS: dict[str, type[Step]] = {c.kind: c for c in (
    LossGrad, Mask, Prescale, ConvGradInput, FcGradInput, RequantGrad, AvgpoolGrad, MaxPoolGrad,
    AvgPoolWindowGrad, MseGrad,
    AddSplit, Reshape, AccumulateGrads, ConvUpdate, FcUpdate, BiasUpdate, LutGrad, MulGrad, MulGateGrad)}


def root(program: "TrainingProgram", name: str) -> str:
    """The gradient buffer whose storage ``name`` shares (itself when not an alias)."""
    b = program.buffers[name]
    while b.alias_of is not None:
        b = program.buffers[b.alias_of]
    return b.name


@dataclass
class TrainingProgram:
    """The backward pass of one training step, ready to execute or to generate C from.

    ``steps`` run in order after the forward pass; ``buffers`` describes every gradient
    buffer they name; ``saved`` the forward tensors the forward pass must keep;
    ``frozen_nodes`` the forward nodes whose outputs never change during training (their
    outputs at ``boundary`` can be cached per sample); ``trainable`` the normalized set;
    ``grad_of[t]`` the buffer holding the complete gradient of forward tensor ``t`` (sum
    over its consumers, before the mask of its producer's clamp); ``input_grads[node]``
    the buffer of the node's contribution to the gradient of each input (None: none)."""

    graph_name: str
    graph_hash: str
    steps: list[Step]
    buffers: dict[str, GradBuffer]
    saved: dict[str, SavedTensor]
    trainable: dict[str, LayerTrain]
    layer_ids: dict[str, int]
    frozen_nodes: list[str]
    boundary: list[str]
    logits: str
    grad_of: dict[str, str] = field(default_factory=dict)
    input_grads: dict[str, list] = field(default_factory=dict)
    loss: str = "softmax_xent"         # the loss rule (LOSSES): softmax_xent or mse
    def updates(self) -> list[Step]:
        return [s for s in self.steps if isinstance(s, (ConvUpdate, FcUpdate, BiasUpdate))]

    def saved_bytes(self) -> int:
        return sum(s.nbytes for s in self.saved.values() if not s.covered)

    def param_bytes(self) -> int:
        """Bytes of trained parameters (weight slices and biases, which must be in RAM)."""
        return sum(s.param_bytes for s in self.updates())

    def summary(self) -> str:
        lines = [f"training program for {self.graph_name}: {len(self.steps)} steps, "
                 f"{len(self.updates())} updates, saved {self.saved_bytes()} B, "
                 f"trained params {self.param_bytes()} B"]
        for s in self.steps:
            io = ", ".join(s.reads() + s.saved_keys()) + " -> " + ", ".join(s.writes())
            extra = f" k={s.k}" if hasattr(s, "k") else ""
            lines.append(f"  {s.index:3d} {s.kind:17s} {s.node:28s} {io}{extra}")
        for t in self.saved.values():
            lines.append(f"  saved {t.kind:10s} {t.tensor:28s} {t.nbytes:7d} B"
                         + (" (covered)" if t.covered else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "graph": self.graph_name, "graph_hash": self.graph_hash,
            "steps": [s.to_dict() for s in self.steps],
            "buffers": {k: {"dtype": b.dtype, "shape": list(b.shape), "tensor": b.tensor,
                            "alias_of": b.alias_of, "nbytes": b.nbytes}
                        for k, b in self.buffers.items()},
            "saved": {k: {"kind": t.kind, "shape": list(t.shape), "nbytes": t.nbytes,
                          "used_by": t.used_by, "covered": t.covered}
                      for k, t in self.saved.items()},
            "trainable": {k: {"train_weight": v.train_weight, "ratio": str(v.ratio),
                              "train_bias": v.train_bias} for k, v in self.trainable.items()},
            "layer_ids": self.layer_ids, "frozen_nodes": self.frozen_nodes,
            "boundary": self.boundary, "logits": self.logits, "grad_of": self.grad_of,
            "input_grads": self.input_grads,
        }


def lowp_floor(g: Graph, tensor: str) -> int:
    """Lower bound of a tensor's int8 values: its producer's activation clamp (a ReLU's
    zero point, so zero stays exact at any precision), else -128."""
    p = g.producer(tensor)
    lo = int(p.attrs.get("act_min", -128)) if p is not None else -128
    return max(-128, min(127, lo))


# ----------------------------------------------------------------------------- builder

class Builder:
    """State of one :func:`build_program` run; the rules call its methods."""

    def __init__(self, g: Graph, trainable: dict[str, LayerTrain]):
        self.g = g
        self.trainable = trainable
        self.ids = layer_ids(g)
        self.steps: list[Step] = []
        self.buffers: dict[str, GradBuffer] = {}
        self.saved_: dict[str, SavedTensor] = {}
        self.pending: dict[str, str] = {}      # forward tensor -> gradient buffer so far
        self.n_sums: dict[str, int] = {}
        self.shared: set[str] = set()          # buffers aliased by another pending gradient
        self.need = self._need_grad()

    def _need_grad(self) -> dict[str, bool]:
        need = {t: False for t in self.g.tensors}
        for n in self.g.nodes:
            need[n.output] = n.name in self.trainable or any(need[t] for t in n.inputs)
        return need

    # -- helpers for rules --------------------------------------------------------
    def shape(self, tensor: str) -> tuple[int, ...]:
        return tuple(self.g.tensors[tensor].shape)

    def buffer(self, name: str, dtype: str, shape, tensor: str | None = None,
               alias_of: str | None = None) -> str:
        if name in self.buffers:
            raise AssertionError(f"gradient buffer {name!r} defined twice")
        self.buffers[name] = GradBuffer(name, dtype, tuple(int(d) for d in shape), tensor, alias_of)
        return name

    def emit(self, step: Step) -> Step:
        step.index = len(self.steps)
        self.steps.append(step)
        for t in step.saved_keys():
            self.saved_[t].used_by.append(step.index)
        return step

    def save(self, tensor: str, kind: str, bits: int = 8) -> str:
        key = {"mask": f"{tensor}#mask", "lowp": f"{tensor}#b{bits}"}.get(kind, tensor)
        if key not in self.saved_:
            shape = self.shape(tensor)
            numel = int(np.prod(shape))
            nbytes = ((numel + 7) // 8 if kind == "mask" else
                      rgo.lowp_bytes(numel, bits) if kind == "lowp" else numel)
            self.saved_[key] = SavedTensor(tensor, kind, shape, nbytes)
        return key

    def contribute(self, tensor: str, grad: str) -> None:
        """Add one consumer's gradient contribution to forward tensor ``tensor``."""
        prev = self.pending.get(tensor)
        if prev is None:
            self.pending[tensor] = grad
            return
        i = self.n_sums.get(tensor, 0)
        self.n_sums[tensor] = i + 1
        out = self.buffer(f"g:{tensor}#sum{i}", "int8", self.shape(tensor), tensor)
        prod = self.g.producer(tensor)
        self.emit(AccumulateGrads(node=prod.name if prod else tensor, tensor=tensor, a=prev,
                                  b=grad, out=out))
        self.pending[tensor] = out

    def updates(self, node: Node, gy: str) -> None:
        """Emit the weight / bias updates of ``node`` (if trainable) from its output gradient."""
        lt = self.trainable.get(node.name)
        if lt is None:
            return
        x = node.inputs[0]
        xt = self.g.tensors[x]
        w = node.params["weight"]
        co = w.shape[0]
        lid = self.ids[node.name]
        if lt.train_weight:
            k = channels_of_ratio(co, lt.ratio)
            acc_shape = (k,) + tuple(w.shape[1:])
            acc_numel = int(np.prod(acc_shape))
            common = dict(node=node.name, layer_id=lid, grad=gy, x=x if lt.x_bits < 8 else self.save(x, "activation"),
                          x_zero=int(xt.zero_point), x_scale=float(xt.scale), k=k, out_channels=co,
                          acc_shape=acc_shape, acc_bytes=4 * acc_numel, param_bytes=acc_numel)
            if node.op == "conv2d":
                a = node.attrs
                low = {}
                if lt.x_bits < 8:
                    self.save(x, "lowp", lt.x_bits)
                    low = dict(x_bits=lt.x_bits, x_lo=lowp_floor(self.g, x))
                self.emit(ConvUpdate(**common, kernel=tuple(a["kernel"]), stride=a["stride"],
                                     pad=a["pad"], groups=a["groups"], **low,
                                     in_shape=self.shape(x)[1:], out_shape=self.shape(node.output)[1:]))
            else:
                if lt.x_bits < 8:
                    raise TrainPlanError(f"{node.name}: a low-precision saved input applies to "
                                         "conv2d layers only")
                self.emit(FcUpdate(**common, in_features=int(w.shape[1])))
        if lt.train_bias:
            self.emit(BiasUpdate(node=node.name, layer_id=lid, grad=gy, x_scale=float(xt.scale),
                                 k=co, param_bytes=4 * co))

    def input_grad(self, node: Node, gy: str) -> str:
        """Prescale + ConvGradInput / FcGradInput + RequantGrad for input 0 of ``node``."""
        x = node.inputs[0]
        w = node.params["weight"]
        mult, shift, smax = rgo.prescale_params(node.params["w_scales"])
        t = self.buffer(f"t:{node.name}", "int16", self.shape(node.output), node.output)
        self.emit(Prescale(node=node.name, grad=gy, out=t, mult=mult, shift=shift,
                           w_smax=float(np.float32(smax))))
        acc = self.buffer(f"acc:{x}@{node.name}", "int32", self.shape(x), x)
        if node.op == "conv2d":
            a = node.attrs
            self.emit(ConvGradInput(node=node.name, src=t, out=acc, in_shape=self.shape(x)[1:],
                                    out_shape=self.shape(node.output)[1:], kernel=tuple(a["kernel"]),
                                    stride=a["stride"], pad=a["pad"], groups=a["groups"],
                                    depthwise=node.is_depthwise))
        else:
            self.emit(FcGradInput(node=node.name, src=t, out=acc, in_features=int(w.shape[1]),
                                  out_features=int(w.shape[0])))
        gx = self.buffer(f"g:{x}@{node.name}", "int8", self.shape(x), x)
        self.emit(RequantGrad(node=node.name, acc=acc, out=gx, tensor=x))
        return gx


# ----------------------------------------------------------------------------- the rules

Rule = Callable[[Builder, Node, str], list]


def _rule_param_layer(b: Builder, node: Node, gy: str) -> list:
    """conv2d (kxk, depthwise, pointwise, grouped) and fully_connected: input gradient
    (if needed) with the pre-update weights, then the fused updates."""
    x = node.inputs[0]
    gx = b.input_grad(node, gy) if b.need[x] else None
    b.updates(node, gy)
    return [gx]


def _rule_add(b: Builder, node: Node, gy: str) -> list:
    outs = []
    for i, t in enumerate(node.inputs):
        if b.need[t]:
            outs.append(b.buffer(f"g:{t}@{node.name}" + (f"#{i}" if node.inputs.count(t) > 1 else ""),
                                 "int8", b.shape(t), t, alias_of=gy))
        else:
            outs.append(None)
    if all(o is not None for o in outs):
        b.shared.update(outs)
    if any(o is not None for o in outs):
        b.emit(AddSplit(node=node.name, grad=gy, outs=tuple(outs)))
    return outs


def _rule_concat(b: Builder, node: Node, gy: str) -> list:
    outs, offsets, channels = [], [], []
    c0 = 0
    for i, t in enumerate(node.inputs):
        c = b.shape(t)[-1]
        outs.append(b.buffer(f"g:{t}@{node.name}#{i}", "int8", b.shape(t), t) if b.need[t] else None)
        offsets.append(c0)
        channels.append(c)
        c0 += c
    if any(o is not None for o in outs):
        y = b.shape(node.output)
        b.emit(ConcatSplit(node=node.name, grad=gy, outs=tuple(outs), offsets=tuple(offsets),
                           channels=tuple(channels), pixels=int(np.prod(y[1:-1])),
                           out_channels=int(y[-1])))
    return outs


def _rule_global_avgpool(b: Builder, node: Node, gy: str) -> list:
    x = node.inputs[0]
    if not b.need[x]:
        return [None]
    _, h, w, c = b.shape(x)
    out = b.buffer(f"g:{x}@{node.name}", "int8", b.shape(x), x)
    b.emit(AvgpoolGrad(node=node.name, grad=gy, out=out, hw=(h, w), channels=c))
    return [out]


def _rule_max_pool(b: Builder, node: Node, gy: str) -> list:
    x = node.inputs[0]
    if not b.need[x]:
        return [None]
    a = node.attrs
    acc = b.buffer(f"acc:{x}@{node.name}", "int32", b.shape(x), x)
    b.emit(MaxPoolGrad(node=node.name, grad=gy, out=acc, x=b.save(x, "activation"),
                       kernel=tuple(a["kernel"]), stride=a["stride"], pad=a["pad"],
                       in_shape=b.shape(x)[1:], out_shape=b.shape(node.output)[1:]))
    gx = b.buffer(f"g:{x}@{node.name}", "int8", b.shape(x), x)
    b.emit(RequantGrad(node=node.name, acc=acc, out=gx, tensor=x))
    return [gx]


def _rule_flatten(b: Builder, node: Node, gy: str) -> list:
    x = node.inputs[0]
    if not b.need[x]:
        return [None]
    out = b.buffer(f"g:{x}@{node.name}", "int8", b.shape(x), x, alias_of=gy)
    if gy in b.shared:
        b.shared.add(out)
    b.emit(Reshape(node=node.name, grad=gy, out=out, shape=b.shape(x)))
    return [out]


def _rule_lut(b: Builder, node: Node, gy: str) -> list:
    """sigmoid / hardsigmoid / hardswish: the derivative at the saved int8 input (the
    input, not the output, is saved: hardswish is not a function of its output)."""
    x = node.inputs[0]
    if not b.need[x]:
        return [None]
    xt, yt = b.g.tensors[x], b.g.tensors[node.output]
    table, d_scale = rgo.lut_grad_table(node, xt.scale, xt.zero_point, yt.scale, yt.zero_point)
    acc = b.buffer(f"acc:{x}@{node.name}", "int32", b.shape(x), x)
    b.emit(LutGrad(node=node.name, grad=gy, out=acc, x=b.save(x, "activation"), table=table,
                   d_scale=float(d_scale)))
    gx = b.buffer(f"g:{x}@{node.name}", "int8", b.shape(x), x)
    b.emit(RequantGrad(node=node.name, acc=acc, out=gx, tensor=x))
    return [gx]


def _rule_mul(b: Builder, node: Node, gy: str) -> list:
    """y = a * b (b the same shape, or a per-channel gate): each operand's gradient is the
    output gradient times the other saved operand (summed over H x W for the gate)."""
    y = b.shape(node.output)
    c = int(y[-1])
    pixels = int(np.prod(y[:-1]))
    gate = int(np.prod(b.shape(node.inputs[1]))) != int(np.prod(y))
    outs = []
    for i, t in enumerate(node.inputs):
        if not b.need[t]:
            outs.append(None)
            continue
        other = node.inputs[1 - i]
        ot = b.g.tensors[other]
        acc = b.buffer(f"acc:{t}@{node.name}#{i}", "int32", b.shape(t), t)
        step = MulGateGrad if gate and i == 1 else MulGrad
        b.emit(step(node=node.name, grad=gy, out=acc, other=b.save(other, "activation"),
                    other_zero=int(ot.zero_point), other_scale=float(ot.scale), pixels=pixels,
                    channels=c, bcast=gate and i == 0))
        gx = b.buffer(f"g:{t}@{node.name}#{i}", "int8", b.shape(t), t)
        b.emit(RequantGrad(node=node.name, acc=acc, out=gx, tensor=t))
        outs.append(gx)
    return outs


def _rule_clamp(b: Builder, node: Node, gy: str) -> str:
    """The requant clamp (folded ReLU / ReLU6 / int8 saturation) of a conv, fc or add:
    zero the gradient where the saved forward output sits at act_min or act_max."""
    y = node.output
    out = gy
    if gy in b.shared:
        out = b.buffer(f"g:{y}#masked", "int8", b.shape(y), y)
    key = b.save(y, "mask")
    b.emit(Mask(node=node.name, grad=gy, out=out, y=y, saved=key, act_min=int(node.attrs["act_min"]),
                act_max=int(node.attrs["act_max"]), mask_bytes=b.saved_[key].nbytes))
    return out


def _rule_softmax_xent(b: Builder, node: Node, logits: str) -> str:
    """Loss on the graph output: int8 gradient of the real logits."""
    t = b.g.tensors[logits]
    out = b.buffer(f"g:{logits}", "int8", t.shape, logits)
    b.save(logits, "logits")
    b.emit(LossGrad(node=node.name, logits=logits, out=out, n_classes=int(t.shape[-1]),
                    s_y=float(t.scale), z_y=int(t.zero_point)))
    return out


def _rule_avg_pool(b: Builder, node: Node, gy: str) -> list:
    x = node.inputs[0]
    if not b.need[x]:
        return [None]
    if pool_counts_vary(node):
        raise UnsupportedOpError("avg_pool", node.name, "training through an average pool "
                                 "whose padded taps are left out of the count "
                                 "(count_include_pad=False with padding): its windows have "
                                 "different divisors", node.source)
    a = node.attrs
    acc = b.buffer(f"acc:{x}@{node.name}", "int32", b.shape(x), x)
    b.emit(AvgPoolWindowGrad(node=node.name, grad=gy, out=acc, kernel=tuple(a["kernel"]),
                             stride=a["stride"], pad=a["pad"], in_shape=b.shape(x)[1:],
                             out_shape=b.shape(node.output)[1:]))
    gx = b.buffer(f"g:{x}@{node.name}", "int8", b.shape(x), x)
    b.emit(RequantGrad(node=node.name, acc=acc, out=gx, tensor=x))
    return [gx]


def _rule_mse(b: Builder, node: Node, logits: str) -> str:
    """MSE loss on the graph output against an int8 target with its quantization."""
    t = b.g.tensors[logits]
    x = b.g.tensors[b.g.inputs[0]]
    out = b.buffer(f"g:{logits}", "int8", t.shape, logits)
    b.save(logits, "logits")
    tin = None
    if x.numel == t.numel:   # an autoencoder: the target can be its own input
        m, sh = quantize_multiplier(float(x.scale) / float(t.scale))
        tin = (int(x.zero_point), int(m), int(sh))
    b.emit(MseGrad(node=node.name, logits=logits, out=out, n=int(t.numel), s_y=float(t.scale),
                   z_y=int(t.zero_point), target_of_input=tin))
    return out


#: THE backward rules table: op -> rule. Pseudo ops: "clamp" (applied to the output
#: gradient of every conv2d / fully_connected / add first) and "softmax_xent" (loss).
RULES: dict[str, Callable] = {
    "conv2d": _rule_param_layer,
    "fully_connected": _rule_param_layer,
    "add": _rule_add,
    "concat": _rule_concat,
    "global_avgpool": _rule_global_avgpool,
    "max_pool": _rule_max_pool,
    "avg_pool": _rule_avg_pool,
    "flatten": _rule_flatten,
    "mul": _rule_mul,
    "sigmoid": _rule_lut,
    "hardsigmoid": _rule_lut,
    "hardswish": _rule_lut,
    "clamp": _rule_clamp,
    "softmax_xent": _rule_softmax_xent,
    "mse": _rule_mse,
}
#: the loss rules of RULES (build_program's ``loss``)
LOSSES = ("softmax_xent", "mse")


def build_program(g: Graph, trainable, *, mask_logits: bool = False,
                  loss: str = "softmax_xent") -> TrainingProgram:
    """int8 forward graph + trainable set -> :class:`TrainingProgram` (see module doc).

    ``mask_logits``: apply the clamp rule to the classifier's own output clamp too. Off by
    default: the loss gradient passes the logits' int8 saturation straight through, as if
    the logits were unclamped. With the mask, a logit saturated at +127 gets no gradient
    on *any* sample, so it can never come back down; on MNIST with a zero-initialised
    head this froze every class at +127 within a few hundred steps.

    ``loss``: "softmax_xent" (a classifier, labels) or "mse" (regression / autoencoder:
    mean squared error against an int8 target; see :class:`MseGrad`)."""
    if loss not in LOSSES:
        raise TrainPlanError(f"{g.name}: unknown loss {loss!r} (one of {', '.join(LOSSES)})")
    if not g.is_int8:
        raise TrainPlanError(f"{g.name}: build_program needs an int8 graph (quantize first)")
    if len(g.outputs) != 1:
        raise TrainPlanError(f"{g.name}: training needs exactly one graph output (the logits), "
                             f"got {len(g.outputs)}")
    spec = normalize_trainable(g, trainable)
    b = Builder(g, spec)
    logits = g.outputs[0]
    if not b.need[logits]:
        raise TrainPlanError(f"{g.name}: the trainable set trains nothing")
    # check every rule on the gradient path before emitting anything
    head = g.producer(logits)
    if loss not in RULES:
        raise NoBackwardRuleError(loss, head.name, head.source)
    for n in g.nodes:
        if not b.need[n.output]:
            continue
        for op in (n.op, "clamp") if n.traits.clamps else (n.op,):
            if op not in RULES:
                raise NoBackwardRuleError(op, n.name, n.source)
    b.contribute(logits, RULES[loss](b, head, logits))
    grad_of: dict[str, str] = {}
    input_grads: dict[str, list] = {}
    for node in reversed(g.nodes):
        if not b.need[node.output]:
            continue
        gy = b.pending.pop(node.output, None)
        if gy is None:  # output does not reach the loss
            continue
        grad_of[node.output] = gy
        if node.traits.clamps and (mask_logits or node.output != logits):
            gy = RULES["clamp"](b, node, gy)
        grads = list(RULES[node.op](b, node, gy))
        input_grads[node.name] = grads
        for t, gx in zip(node.inputs, grads):
            if gx is not None:
                b.contribute(t, gx)
    # masks of tensors that are saved whole anyway cost nothing extra
    for key, s in b.saved_.items():
        if s.kind == "mask" and s.tensor in b.saved_:
            s.covered = True
    frozen = [n.name for n in g.nodes if not b.need[n.output]]
    frozen_set = set(frozen)
    live = [n for n in g.nodes if n.name not in frozen_set]
    produced_by_frozen = set(g.inputs) | {g.node(n).output for n in frozen}
    boundary = []
    for n in live:
        for t in n.inputs:
            if t in produced_by_frozen and t not in boundary:
                boundary.append(t)
    return TrainingProgram(g.name, g.sha256(), b.steps, b.buffers, b.saved_, spec, b.ids,
                           frozen, boundary, logits, grad_of, input_grads, loss)
