"""Which C kernel runs each forward node, and how much scratch it needs.

The scratch formulas mirror the ``TT_*_SCRATCH_BYTES`` macros of
``runtime_c/include/tt_kernels.h``; the generated C re-checks every planned size
against those macros with ``_Static_assert``, so a drift fails the firmware build.
"""
from __future__ import annotations

from .errors import UnsupportedOpError
from .ir import Graph, Node


def _r4(n: int) -> int:
    return (n + 3) & ~3


def conv_kernel(node: Node) -> str:
    kh, kw = node.attrs["kernel"]
    if node.is_depthwise:
        if kh == kw == 3 and node.attrs["stride"] in (1, 2):
            return f"tt_dwconv_3x3_s{node.attrs['stride']}_s8"
        return "tt_dwconv_s8"
    if node.attrs["groups"] != 1:
        raise UnsupportedOpError("conv2d", node.name, f"grouped convolution (groups="
                                 f"{node.attrs['groups']}) has no C kernel", node.source)
    if kh == kw == 1 and node.attrs["pad"] == 0 and node.attrs["stride"] in (1, 2):
        return "tt_conv2d_1x1_s8"
    return "tt_conv2d_s8"


def conv_scratch(g: Graph, node: Node) -> int:
    kernel = conv_kernel(node)
    kh, kw = node.attrs["kernel"]
    x = g.tensors[node.inputs[0]].shape
    co = node.params["weight"].shape[0]
    if kernel.startswith("tt_dwconv"):
        in_w, pad = x[2], node.attrs["pad"]
        row_words = (in_w + 2 * pad + 1) // 2 + 4
        return 4 * ((4 * kh + 1) * row_words + 4 * (kh * (kw + 1) + 4))
    if kernel == "tt_conv2d_1x1_s8":
        return 4 * _r4(x[3])
    return 4 * _r4(kh * kw * x[3]) + 16 * co


def fc_scratch(g: Graph, node: Node) -> int:
    return 2 * _r4(node.params["weight"].shape[1])


def scratch_macro(g: Graph, node: Node) -> str:
    """The C constant expression for the same scratch size (for _Static_assert)."""
    kernel = conv_kernel(node) if node.op == "conv2d" else "tt_fc_s8"
    if node.op == "fully_connected":
        return f"TT_FC_S8_SCRATCH_BYTES({node.params['weight'].shape[1]})"
    kh, kw = node.attrs["kernel"]
    x = g.tensors[node.inputs[0]].shape
    if kernel.startswith("tt_dwconv"):
        return f"TT_DWCONV_S8_SCRATCH_BYTES({x[2]}, {kh}, {kw}, {node.attrs['pad']})"
    if kernel == "tt_conv2d_1x1_s8":
        return f"TT_CONV2D_1X1_S8_SCRATCH_BYTES({x[3]})"
    return f"TT_CONV2D_S8_SCRATCH_BYTES({kh}, {kw}, {x[3]}, {node.params['weight'].shape[0]})"
