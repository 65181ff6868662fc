"""The memory report of a training build lists the backward steps too (issue: the table
showed only the forward steps, so its peak was not the training step's)."""
import pytest

from compiler.autodiff import program as ad
from compiler.frontend import models
from compiler.kernels import backward as KB
from compiler.memory import training as memtrain
from compiler.target import firmware


@pytest.mark.parametrize("model,layers", [("mbv2-w0.35", 2), ("mcunet-5fps", 3)])
def test_training_table_has_every_backward_step_and_the_real_peak(model, layers):
    g = models.load(model)
    prog = ad.build_program(g, ad.last_layers(g, layers))
    plan = memtrain.plan_training(g, prog)
    rows = memtrain.table(plan)
    fwd = [r for r in rows if r["phase"] == "forward"]
    bwd = [r for r in rows if r["phase"] == "backward"]
    assert len(fwd) == len(plan.steps)
    coded = [s for s in prog.steps if KB.emitter_for(s).kernel(g, s) is not None]
    assert [r["kernel"] for r in bwd] == [KB.emitter_for(s).kernel(g, s) for s in coded]
    assert {r["name"] for r in bwd} == {s.node for s in coded}
    peak = [r for r in rows if r["peak"]]
    assert len(peak) == 1
    assert peak[0]["live_bytes"] == max(plan.live_all) <= plan.arena_bytes
    rep = {"layers": rows, "ram_budget_bytes": 256 * 1024, "arena_bytes": plan.arena_bytes,
           "stack_bytes": 8192, "flash_budget_bytes": 1 << 20, "param_bytes": 0}
    text = firmware.format_report(rep)
    assert "-- forward" in text and "-- backward" in text
    assert text.count("<- peak") == 1
    assert any(r["kernel"] in text for r in bwd)
