"""``python -m compiler`` command line."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from compiler import paths
from compiler.cli import main as cli
from compiler.frontend import models

ROOT = paths.REPO
HAVE_MODELS = (models.models_dir() / "mcunet-5fps.json").is_file()
needs_models = pytest.mark.skipif(not HAVE_MODELS, reason="real models not found")

# backbone MACs in millions (classifier excluded), as quoted in the paper
PAPER_MACS = {"mbv2-w0.35": 16.6, "proxyless-w0.3": 18.6, "mcunet-5fps": 22.5}


@needs_models
@pytest.mark.parametrize("name", models.REAL_MODELS)
def test_inspect_real_models(name, capsys):
    assert cli.main(["inspect", name]) == 0
    out = capsys.readouterr().out
    assert "first_conv" in out and "classifier" in out and "1x128x128x3" in out
    m = re.search(r"MACs backbone:\s+[\d,]+ \(([\d.]+)M", out)
    assert m and abs(float(m.group(1)) - PAPER_MACS[name]) <= 0.1, out[-400:]
    assert re.search(r"parameters:\s+[\d,]+", out)


@needs_models
def test_inspect_json_and_json_path(capsys):
    path = models.resolve("mbv2-w0.35")
    assert cli.main(["inspect", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["name"] == "mbv2-w0.35" and s["dtype"] == "int8"
    assert s["backbone_macs"] + s["classifier_macs"] == s["macs"] == sum(n["macs"] for n in s["nodes"])
    assert s["nodes"][0]["shape"] == [1, 64, 64, 16]


def test_inspect_onnx_file(tmp_path, capsys):
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    fc = numpy_helper.from_array(np.ones((2, 4), np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="head", transB=1)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w, fc])
    path = tmp_path / "tiny.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "float" in out and "conv" in out and f"{8 * 8 * 4 * 27 + 8:,}" in out


def test_errors_exit_2_with_message(capsys):
    assert cli.main(["inspect", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'no-such-model'")


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=120)


def test_module_entry_point_and_help():
    r = _run("--help")
    assert r.returncode == 0 and "inspect" in r.stdout
    r = _run("inspect", "--help")
    assert r.returncode == 0 and "TT_MODELS_DIR" in r.stdout and "--json" in r.stdout
    r = _run()
    assert r.returncode == 2 and "COMMAND" in r.stderr


@needs_models
def test_models_dir_env_override(tmp_path):
    env = dict(os.environ, TT_MODELS_DIR=str(tmp_path))
    r = _run("inspect", "mcunet-5fps", "--summary", env=env)
    assert r.returncode == 2 and str(tmp_path) in r.stderr
    for ext in (".json", ".npz"):
        (tmp_path / f"mcunet-5fps{ext}").write_bytes(models.resolve("mcunet-5fps").with_suffix(ext).read_bytes())
    r = _run("inspect", "mcunet-5fps", "--summary", env=env)
    assert r.returncode == 0 and "22.45M" in r.stdout
