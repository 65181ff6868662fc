"""The package structure holds: stages import only lower stages, no import cycles between
modules, the compiler never imports ``host``, no ``sys.path`` edits outside ``bench/``,
and ruff is clean."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import STAGES, paths

REPO = paths.REPO
COMPILER = REPO / "compiler"


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute module names imported by ``path`` (any depth, also inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.append((mod, node.lineno))
            for a in node.names:  # `from compiler.x import y` may import module y
                out.append((f"{mod}.{a.name}", node.lineno))
    return out


def _compiler_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in COMPILER.rglob("*.py")}


def _stage(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "compiler" and parts[1] in STAGES else None


def test_stage_order_is_respected():
    bad = []
    for mod, path in _compiler_modules().items():
        me = _stage(mod)
        if me is None:
            continue
        for imp, line in _imports(path):
            other = _stage(imp)
            if other is not None and STAGES.index(other) > STAGES.index(me):
                bad.append(f"{path.relative_to(REPO)}:{line}: stage {me!r} imports {imp} "
                           f"(stage {other!r} is higher)")
    assert not bad, "\n".join(sorted(set(bad)))


def test_every_stage_says_what_it_owns():
    for stage in STAGES:
        init = COMPILER / stage / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.split()) >= 25, f"{init.relative_to(REPO)} needs a docstring " \
            "saying what the stage owns and what it may import"


def test_compiler_never_imports_host():
    bad = [f"{p.relative_to(REPO)}:{line}: imports {imp}" for mod, p in _compiler_modules().items()
           for imp, line in _imports(p) if imp == "host" or imp.startswith("host.")]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    mods = _compiler_modules()
    graph = {m: sorted({i for i, _ in _imports(p) if i in mods and i != m}) for m, p in mods.items()}
    # a package's __init__ is imported by its submodules implicitly; only explicit edges count
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in graph[m]:
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_sys_path_edits_outside_bench():
    bad = []
    for d in ("compiler", "host", "tests", "boards"):
        for p in (REPO / d).rglob("*.py"):
            for i, line in enumerate(p.read_text().splitlines(), 1):
                if "sys.path" in line and not line.lstrip().startswith("#") and p != Path(__file__):
                    bad.append(f"{p.relative_to(REPO)}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: it is in requirements.txt (make setup)")
    p = subprocess.run([ruff, "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_console_scripts_work_from_another_directory(tmp_path):
    """``pip install -e .`` (done by ``make setup``) installed ``tinytrain`` and
    ``tinytrain-stream``; they run from any directory."""
    bindir = str(Path(sys.executable).parent)
    tt = shutil.which("tinytrain", path=bindir)
    st = shutil.which("tinytrain-stream", path=bindir)
    assert tt and st, "console scripts missing: run `pip install -e .` (make setup does)"
    p = subprocess.run([tt, "inspect", "mcunet-5fps", "--summary"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "mcunet-5fps" in p.stdout and "22.45M" in p.stdout
    p = subprocess.run([tt, "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("usage: tinytrain"), p.stdout
    p = subprocess.run([st, "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0 and "usage:" in p.stdout, p.stderr
