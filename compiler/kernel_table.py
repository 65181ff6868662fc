"""Which C kernel runs each forward node, and how much scratch it needs.

Scratch sizes come from the ``TT_*_SCRATCH_BYTES`` macros of
``runtime_c/include/tt_kernels.h`` themselves (evaluated by the host C compiler, see
:func:`c_sizes`), and the generated C re-checks every planned size against the same
macros with ``_Static_assert``.
"""
from __future__ import annotations

from .errors import UnsupportedOpError
from .ir import Graph, Node


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


def scratch(g: Graph, node: Node) -> int:
    """Scratch bytes of the forward kernel of a conv2d / fully_connected node."""
    return c_sizes([scratch_macro(g, node)])[0]


def prefetch(g: Graph) -> None:
    """Evaluate the scratch sizes of every kernel of ``g`` in one C compilation."""
    c_sizes([scratch_macro(g, n) for n in g.nodes if n.op in ("conv2d", "fully_connected")
             and (n.op != "conv2d" or n.attrs["groups"] in (1, n.params["weight"].shape[0]))])


_CACHE: dict[str, int] = {}


def c_sizes(exprs: list[str]) -> list[int]:
    """Values of C expressions over the runtime (the scratch-size macros and the
    ``*_scratch_bytes()`` functions, with compound-literal parameter structs), computed
    by compiling and running a small host program against runtime_c: the C headers are
    the single source of truth. Cached in memory and on disk
    (build/.scratch-cache.json), keyed by the runtime's content."""
    import hashlib
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    inc = repo / "runtime_c" / "include"
    srcs = sorted((repo / "runtime_c" / "src").glob("*.c"))
    h = hashlib.sha256()
    for f in sorted(inc.glob("*.h")) + sorted((repo / "runtime_c" / "src").glob("*.h")) + srcs:
        h.update(f.name.encode() + f.read_bytes())
    tag = h.hexdigest()[:16]
    disk = repo / "build" / ".scratch-cache.json"
    if not _CACHE and disk.exists():
        try:
            _CACHE.update(json.loads(disk.read_text()))
        except ValueError:
            pass
    missing = sorted({e for e in exprs if f"{tag}:{e}" not in _CACHE})
    if missing:
        needs_link = any("_bytes(" in e for e in missing)
        src = ('#include <stdio.h>\n#include "tt_kernels.h"\n#include "tt_proto.h"\n'
               + ('#include "tt_train_kernels.h"\n' if (inc / "tt_train_kernels.h").exists() else "")
               + "int main(void) {\n")
        src += "".join(f'    printf("%lu\\n", (unsigned long)({e}));\n' for e in missing)
        src += "    return 0;\n}\n"
        with tempfile.TemporaryDirectory() as td:
            c, exe = Path(td) / "sizes.c", Path(td) / "sizes"
            c.write_text(src)
            cmd = ["cc", "-std=c99", "-O0", f"-I{inc}", str(c)]
            if needs_link:  # + the host board, for runtime files that talk to the board
                cmd += [str(f) for f in srcs] + [str(repo / "boards" / "host" / "board.c")]
            p = subprocess.run(cmd + ["-o", str(exe), "-lm"], capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError("cannot evaluate kernel scratch sizes:\n" + p.stderr[-3000:])
            vals = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
        for e, v in zip(missing, vals):
            _CACHE[f"{tag}:{e}"] = int(v)
        disk.parent.mkdir(parents=True, exist_ok=True)
        disk.write_text(json.dumps(_CACHE))
    return [_CACHE[f"{tag}:{e}"] for e in exprs]


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
