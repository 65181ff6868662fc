"""Sizes the C runtime defines, evaluated by the C compiler itself.

The scratch-size macros (``TT_*_SCRATCH_BYTES``) and ``*_scratch_bytes()`` functions of
``runtime_c/include`` are the single source of truth for how much scratch a kernel
needs: :func:`c_sizes` compiles and runs a small host program to evaluate them, and the
generated C re-checks every planned size against the same macros with
``_Static_assert``.
"""
from __future__ import annotations

from pathlib import Path

from compiler import paths

_CACHE: dict[str, int] = {}
_TAGS: dict[tuple, str] = {}  # (path, mtime, size) of every runtime file -> content tag


def _runtime_tag() -> str:
    """Content tag of the runtime's sources. The tree is walked and stat'ed at most once
    per second (a plan search asks for sizes thousands of times); the files are hashed
    only when one of them changed."""
    import hashlib
    import time

    now = time.monotonic()
    if _LAST and now - _LAST[0] < 1.0:
        return _LAST[1]
    files = (sorted(paths.RUNTIME_INCLUDE.glob("*.h")) + paths.runtime_private_headers()
             + paths.runtime_sources())
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    tag = _TAGS.get(stamp)
    if tag is None:
        h = hashlib.sha256()
        for f in files:
            h.update(str(f.relative_to(paths.RUNTIME)).encode() + f.read_bytes())
        tag = _TAGS[stamp] = h.hexdigest()[:16]
    _LAST[:] = [now, tag]
    return tag


_LAST: list = []  # [monotonic time, tag] of the last walk


def _runtime_archive(tag: str, incs: list[str]) -> Path:
    """The runtime and the host board files compiled once per runtime content tag into
    a static archive (build/.sizes/<tag>/libtt_sizes.a), so that evaluating new sizes
    compiles only a small ``main``. Built in a private folder and renamed into place:
    processes building it at the same time never see half an archive."""
    import os
    import shutil
    import subprocess
    import tempfile

    lib = paths.BUILD / ".sizes" / tag / "libtt_sizes.a"
    if lib.exists():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    srcs = [*paths.runtime_sources(), paths.BOARDS / "host" / "board.c",
            paths.BOARDS / "common" / "nor_model.c"]
    with tempfile.TemporaryDirectory(dir=lib.parent) as td:
        objs = []
        for i, f in enumerate(srcs):
            o = Path(td) / f"{i:03d}_{f.stem}.o"
            p = subprocess.run(["cc", "-std=c99", "-O0", *incs, "-c", str(f), "-o", str(o)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"cannot evaluate kernel scratch sizes ({f.name}):\n"
                                   + p.stderr[-3000:])
            objs.append(str(o))
        tmp = Path(td) / "lib.a"
        subprocess.run(["ar", "rcs", str(tmp), *objs], check=True, capture_output=True)
        os.replace(tmp, lib)
    for old in lib.parent.parent.iterdir():      # archives of older runtime contents
        if old.name != tag and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return lib


def c_sizes(exprs: list[str]) -> list[int]:
    """Values of C expressions over the runtime (the scratch-size macros and the
    ``*_scratch_bytes()`` functions, with compound-literal parameter structs), computed
    by compiling and running a small host program against runtime_c (linked with the
    runtime compiled once, :func:`_runtime_archive`): the C headers are the single source
    of truth. Cached in memory and on disk (build/.scratch-cache.json), keyed by the
    runtime's content."""
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    inc = paths.RUNTIME_INCLUDE
    tag = _runtime_tag()
    disk = paths.BUILD / ".scratch-cache.json"
    if not _CACHE and disk.exists():
        try:
            _CACHE.update(json.loads(disk.read_text()))
        except ValueError:
            pass
    missing = sorted({e for e in exprs if f"{tag}:{e}" not in _CACHE})
    if missing:
        needs_link = any("_bytes(" in e for e in missing)
        src = ('#include <stdio.h>\n#include "tt_kernels.h"\n#include "tt_proto.h"\n#include "tt_block.h"\n'
               + ('#include "tt_train_kernels.h"\n' if (inc / "tt_train_kernels.h").exists() else "")
               + ('#include "tt_packed.h"\n' if (inc / "tt_packed.h").exists() else "")
               + "int main(void) {\n")
        src += "".join(f'    printf("%lu\\n", (unsigned long)({e}));\n' for e in missing)
        src += "    return 0;\n}\n"
        private = paths.runtime_private_headers()
        with tempfile.TemporaryDirectory() as td:
            c, exe = Path(td) / "sizes.c", Path(td) / "sizes"
            c.write_text(src)
            incs = [f"-I{d}" for d in [inc, paths.BOARDS / "common"] + sorted({p.parent for p in private})]
            cmd = ["cc", "-std=c99", "-O0", *incs, str(c)]
            if needs_link:  # the runtime + the host board (for runtime files that talk to it)
                cmd.append(str(_runtime_archive(tag, incs)))
            p = subprocess.run(cmd + ["-o", str(exe), "-lm"], capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError("cannot evaluate kernel scratch sizes:\n" + p.stderr[-3000:])
            vals = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
        for e, v in zip(missing, vals):
            _CACHE[f"{tag}:{e}"] = int(v)
        disk.parent.mkdir(parents=True, exist_ok=True)
        disk.write_text(json.dumps(_CACHE))
    return [_CACHE[f"{tag}:{e}"] for e in exprs]
