"""Shape of the generated C (its numerics are the model and training-step tests'): every
line fits in 100 columns, the provenance line names the model hash, gradient scales
are used through named slots, and arena pointers only through the A()/AT() accessors."""
import copy
import re

import pytest
import specgen

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.codegen import generate as codegen
from compiler.codegen.cformat import WIDTH
from compiler.frontend import models
from compiler.memory import schedule as memplan
from compiler.memory import training
from compiler.sparse import heads


def _generate(g, out, trainable=None, cfg=None):
    g = copy.deepcopy(g)
    if trainable is None:
        codegen.generate(g, out, memplan.plan(g))
    else:
        prog = ad.build_program(g, trainable)
        codegen.generate(g, out, training.plan_training(g, prog), program=prog, config=cfg)
    return g, {p.name: p.read_text() for p in out.iterdir() if p.suffix in (".c", ".h")}


def _cases():
    g = heads.with_input_size(heads.replace_head(models.load("mbv2-w0.35"), 10), 64)
    r = specgen.random_graph(3, hw=12, n_blocks=3)
    return [("mcunet-5fps forward", models.load("mcunet-5fps"), None),
            ("mbv2-w0.35 3 blocks half channels", g, ad.last_blocks(g, 3, ratio=0.5)),
            ("random whole model", r, ad.whole_model(r))]


@pytest.mark.parametrize("case", range(3), ids=["forward", "sparse", "whole"])
def test_generated_c_shape(case, tmp_path):
    name, g, trainable = _cases()[case]
    g, files = _generate(g, tmp_path, trainable, tr.TrainConfig(lr=0.01))
    for fname, text in files.items():
        long = [(i, len(line)) for i, line in enumerate(text.splitlines(), 1) if len(line) > WIDTH]
        assert not long, f"{name} {fname}: lines longer than {WIDTH}: {long[:5]}"
        assert g.sha256() in text.split("*/")[0], f"{fname}: provenance line"
    model_c = files["tt_model.c"]
    body = model_c.split("#define A(off) AT(int8_t, off)", 1)[1]
    assert "tt_arena +" not in body, "arena pointers must go through A() / AT()"
    if trainable is not None:
        assert re.search(r"tt_gscale\[GS_\w+\]", body)
        assert not re.search(r"(?<!float )tt_gscale\[\d+\]", body), "scale slots are named"
