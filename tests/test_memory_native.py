"""The native arena placer (compiler/memory/first_fit.c via compiler.memory.native_fit)
places every buffer exactly where the Python placement does: on random buffer sets with
random overlap chains, and on the training and inference plans of the three real models."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.frontend import models
from compiler.memory import native_fit
from compiler.memory import schedule as memplan
from compiler.sparse import contrib
from compiler.sparse import plan as sparse

pytestmark = pytest.mark.skipif(not native_fit.available(), reason="no host C compiler")


def _python_only(monkeypatch):
    monkeypatch.setattr(native_fit, "_function", lambda: None)


@st.composite
def buffer_sets(draw):
    n = draw(st.integers(1, 40))
    items = []
    for i in range(n):
        first = draw(st.integers(-1, 30))
        items.append((f"b{i}", draw(st.integers(1, 4096)), first,
                      first + draw(st.integers(0, 12))))
    lags, used_src, used_dst = {}, set(), set()
    for _ in range(draw(st.integers(0, n))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        # a pair links an earlier buffer to a later one (as a step's input to its
        # output), so chains never close on themselves
        if a >= b or a in used_src or b in used_dst:
            continue
        size_b = items[b][1]
        lags[(f"b{a}", f"b{b}")] = draw(st.integers(-size_b, items[a][1]))
        used_src.add(a)
        used_dst.add(b)
    blocks = frozenset(d for (_, d) in lags if draw(st.booleans()))
    return items, lags, blocks


@settings(max_examples=150, deadline=None)
@given(case=buffer_sets())
def test_native_placement_equals_python(case):
    items, lags, blocks = case
    native = memplan._place(items, lags, blocks)
    with pytest.MonkeyPatch.context() as mp:
        _python_only(mp)
        python = memplan._place(items, lags, blocks)
    assert native == python


@pytest.mark.parametrize("name", ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"])
def test_native_placement_of_real_models(name, monkeypatch):
    g = sparse.prepare(models.load(name), classes=10)
    body = sparse.body_layers(g)
    plans = [contrib.config_plan(("weight", body[-6], "1/4", 12)), sparse.SparsePlan(len(body) // 2)]

    def figures():
        mm = sparse.MemoryModel(g, 8192, sparse.app_reserve(g, "device"))
        infer = memplan.plan(g, "auto")
        return ([mm(p) for p in plans], infer.arena_bytes,
                {t: infer.offset(t) for t in infer.buffers}, infer.scratch_offsets)
    native = figures()
    _python_only(monkeypatch)
    assert not native_fit.available()
    assert figures() == native


def test_without_a_compiler_the_python_placement_runs(monkeypatch, capsys):
    items = [("a", 64, 0, 1), ("b", 32, 1, 2), ("c", 48, 2, 3)]
    want = memplan._place(items, {("a", "b"): 16})
    monkeypatch.setattr(native_fit.LIB, "_lib", [])

    def no_cc():
        raise RuntimeError("cc: not found")
    monkeypatch.setattr(native_fit.LIB, "build", no_cc)
    assert not native_fit.available()
    assert "native arena placer is unavailable (cc: not found)" in capsys.readouterr().err
    assert memplan._place(items, {("a", "b"): 16}) == want
    monkeypatch.setattr(native_fit.LIB, "_lib", [])
    monkeypatch.setenv("TT_NATIVE_FIT", "0")
    assert not native_fit.available()
