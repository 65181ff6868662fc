"""Bad input to ``python -m compiler``: every kind gets one ``error: <input>: <what was
expected>`` line on stderr (or argparse's usage line + its ``error:`` line for an option
value) and exit status 2, never a traceback -- for every file the compiler reads (model
.json/.npz and .onnx, plan .json, images, ``plan --data npz:`` files), every numeric
option of every command and every plan field.

The CLI runs in a subprocess on a small random model saved beside the test (no firmware is
built); the full matrix of option values runs in-process (:func:`compiler.cli.main.main`)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import specgen

from compiler.cli import args as A
from compiler.cli import main as cli
from compiler.ir import graph_io
from compiler.sparse import plan as sparse

PROG = "python -m compiler"


# ----------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small int8 model (.json + .npz), a plan made for it, an image, and bad files."""
    d = tmp_path_factory.mktemp("bad_input")
    g = specgen.random_graph(2, hw=12, n_blocks=2, classes=5)
    model = graph_io.save(g, d / "model.json")
    plan = {"format": sparse.FORMAT, "model": g.name, "model_sha256": g.sha256(),
            "input_size": 12, "classes": 5, "head_init": "zero", "app": "device",
            "bias_layers": 1, "weights": {}, "channels": {}}
    (d / "plan.json").write_text(json.dumps(plan))
    from PIL import Image
    Image.fromarray(np.full((20, 24, 3), 99, np.uint8)).save(d / "img.png")
    (d / "empty").write_bytes(b"")
    (d / "text.txt").write_text("not an image, not a model\n")
    (d / "adir.json").mkdir()
    (d / "adir.onnx").mkdir()
    (d / "adir.png").mkdir()
    (d / "afile").write_text("x")
    return {"dir": d, "model": model, "plan": d / "plan.json", "image": d / "img.png",
            "plan_dict": plan, "graph": g}


def _cli(*args, cwd=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _message(returncode: int, stderr: str) -> str:
    """The one error line of a failed command (status 2, no traceback): ``error: ...``
    alone, or argparse's usage lines followed by ``<prog> <cmd>: error: ...``."""
    err = stderr.strip()
    assert returncode == 2, (returncode, err[-2000:])
    assert "Traceback" not in err, err
    lines = err.splitlines()
    if lines and lines[0].startswith("usage:"):
        errors = [ln for ln in lines if ": error: " in ln]
        assert len(errors) == 1 and lines[-1] == errors[0] and lines[-1].startswith(PROG), err
        return lines[-1]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def one_error(p, *needles) -> str:
    msg = _message(p.returncode, p.stderr)
    for n in needles:
        assert str(n) in msg, (n, msg)
    return msg


def one_error_in_process(capsys, argv, *needles) -> str:
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as e:            # argparse
        status = e.code
    msg = _message(status, capsys.readouterr().err)
    for n in needles:
        assert str(n) in msg, (n, msg)
    return msg


# ----------------------------------------------------------------------------- options

#: (command, option, bad values): every numeric / path option of every command
BAD_OPTIONS = [
    ("build", "--lr", ["nan", "inf", "-1", "0", "100", "1.5", "abc"]),
    ("build", "--lr-body", ["nan", "-inf", "-1", "2", "x"]),
    ("build", "--history", ["-1", "256", "nan", "4.5"]),
    ("build", "--weight-bits", ["5", "0", "4:", "x", "16"]),
    ("run", "--weight-bits", ["2", "4:", "nan"]),
    ("inq", "--steps", ["50,75", "0,100", "75,50,100", "x", "50,150"]),
    ("inq", "--holdout", ["0.95", "-0.1", "nan", "x"]),
    ("inq", "--out", ["model.onnx", "x"]),
    ("inq", "--bits", ["1", "6", "x"]),
    ("inq", "--epochs", ["-1", "x", "1.5"]),
    ("inq", "--lr", ["nan", "0", "-1", "x"]),
    ("inq", "--batch", ["0", "-2", "x"]),
    ("inq", "--seed", ["-1", "x"]),
    ("build", "--train", ["last:0", "last", "whole:2", "bias:x", "all", "", "last:2+"]),
    ("run", "--top", ["0", "-1", "nan", "inf"]),
    ("plan", "--budget", ["nan", "inf", "-inf", "-5", "0", "0KB", "12XB", "lots", ""]),
    ("plan", "--size", ["0", "-1", "nan", "100000"]),
    ("plan", "--classes", ["1", "0", "-3", "nan"]),
    ("plan", "--train", ["0", "-1", "inf"]),
    ("plan", "--test", ["0", "nan"]),
    ("plan", "--epochs", ["0", "-2"]),
    ("plan", "--lr", ["0", "nan", "inf", "2", "-0.1"]),
    ("plan", "--lr-body", ["-1", "nan", "1.01"]),
    ("plan", "--remeasure", ["-1", "nan"]),
    ("plan", "--history", ["-1", "256"]),
    ("plan", "--ratios", ["1/3", "x", "0", "1/0", ""]),
    ("plan", "--bias-step", ["0", "-1"]),
    ("plan", "--bias-depth", ["-1", "2.5", "nan", "x"]),
    ("plan", "--min-gain", ["nan", "inf", "-1"]),
    ("plan", "--generations", ["0", "-1"]),
    ("plan", "--jobs", ["0", "-4"]),
    ("plan", "--seed", ["-1", str(2 ** 32), "x"]),
    ("import", "--samples", ["0", "-1", "nan", "inf"]),
    ("inspect", "--samples", ["0", "-1", "nan"]),
    ("build", "--samples", ["0", "-1", "nan"]),
    ("run", "--samples", ["0", "inf"]),
    ("plan", "--samples", ["0", "-1"]),
]


def _argv(files, command: str) -> list:
    m = files["model"]
    return {"inspect": ["inspect", m], "build": ["build", m, "--plan", files["plan"]],
            "run": ["run", m, "--image", files["image"]],
            "plan": ["plan", m, "--data", "digits"],
            "import": ["import", "m.py:make", "-o", str(files["dir"] / "m.json")],
            "inq": ["inq", "m.py:make", "--data", "digits", "--out", str(files["dir"] / "m.pt2")]}[command]


@pytest.mark.parametrize("command, option, values", BAD_OPTIONS,
                         ids=[f"{c}{o}" for c, o, _ in BAD_OPTIONS])
def test_bad_option_values_in_process(files, capsys, command, option, values):
    for v in values:       # --opt=value: argparse would take "-inf" for an option name
        one_error_in_process(capsys, _argv(files, command) + [f"{option}={v}"],
                             f"argument {option}:", "expected")


@pytest.mark.parametrize("command, option, value", [
    ("build", "--lr", "100"), ("build", "--lr", "0"), ("build", "--lr", "-1"),
    ("build", "--lr-body", "nan"), ("build", "--history", "-1"), ("run", "--top", "0"),
    ("plan", "--budget", "nan"), ("plan", "--budget", "12XB"), ("plan", "--classes", "1"),
    ("plan", "--train", "0"), ("plan", "--size", "inf"), ("plan", "--jobs", "0"),
])
def test_bad_option_values(files, command, option, value):
    """The same through the entry point (a subprocess), as a user meets it."""
    one_error(_cli(*_argv(files, command), option, value), f"argument {option}:", "expected")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_typed_option_uses_a_shared_validator():
    """No option of any command is a bare int / float (they take nan, inf, -1 ...): each
    uses a validator of compiler.cli.args, and each such option is in BAD_OPTIONS."""
    shared = {getattr(A, n) for n in dir(A) if callable(getattr(A, n))}
    listed = {(c, o) for c, o, _ in BAD_OPTIONS}
    paths = {A.writable_dir, A.writable_file, A.writable_dir_or_empty}
    for name, p in _parsers().items():
        for a in p._actions:
            if a.type is None:
                continue
            opt = a.option_strings[-1] if a.option_strings else a.dest
            assert a.type in shared, f"{name} {opt}: type={a.type!r}, use compiler.cli.args"
            if a.type not in paths:
                assert (name, opt) in listed, f"{name} {opt}: add it to BAD_OPTIONS"


def test_help_documents_any_model():
    assert "--any-model" in _parsers()["build"].format_help()


# ----------------------------------------------------------------------------- output paths

@pytest.mark.parametrize("command, option, target, needle", [
    ("plan", "--out", "afile/plan.json", "is not a folder"),
    ("plan", "--out", "afile/sub/plan.json", "is not a folder"),
    ("plan", "--out", "adir.json", "is a folder"),
    ("plan", "--cache", "afile", "is not a folder"),
    ("build", "--out", "afile/fw", "is not a folder"),
    ("build", "--out", "afile", "is not a folder"),
])
def test_unwritable_output_is_refused_before_any_work(files, command, option, target, needle):
    p = _cli(*_argv(files, command), option, files["dir"] / target, "--quiet"
             if command == "plan" else "--json")
    one_error(p, f"argument {option}:", target, needle, "expected a writable")


# ----------------------------------------------------------------------------- model files

def _bad_models(d: Path, files) -> dict[str, tuple[Path, str]]:
    """kind -> (model argument, what the message must say)."""
    good = files["model"]
    out = {}

    def pair(name, json_bytes=None, npz_bytes=None):
        j = d / f"{name}.json"
        j.write_bytes(good.read_bytes() if json_bytes is None else json_bytes)
        npz = good.with_suffix(".npz").read_bytes()
        j.with_suffix(".npz").write_bytes(npz if npz_bytes is None else npz_bytes)
        return j

    npz = good.with_suffix(".npz").read_bytes()
    crc = bytearray(npz)
    crc[len(npz) // 3:len(npz) // 3 + 64] = bytes(64)
    out["missing json"] = (d / "nope.json", "not found")
    out["missing onnx"] = (d / "nope.onnx", "not found")
    out["directory json"] = (files["dir"] / "adir.json", "is a directory")
    out["directory onnx"] = (files["dir"] / "adir.onnx", "is a directory")
    out["empty json"] = (pair("empty_json", b""), "empty")
    out["truncated json"] = (pair("trunc_json", good.read_bytes()[:300]), "cannot read")
    out["json list"] = (pair("list_json", b"[1, 2]"), "must be an object")
    out["missing npz"] = (d / "no_npz.json", "model arrays not found")
    (d / "no_npz.json").write_bytes(good.read_bytes())
    out["empty npz"] = (pair("empty_npz", npz_bytes=b""), ".npz")
    out["truncated npz"] = (pair("trunc_npz", npz_bytes=npz[:len(npz) // 2]), ".npz")
    out["bad crc npz"] = (pair("crc_npz", npz_bytes=bytes(crc)), ".npz")
    out["garbage npz"] = (pair("junk_npz", npz_bytes=b"not a zip" * 20), ".npz")
    (d / "empty.onnx").write_bytes(b"")
    out["empty onnx"] = (d / "empty.onnx", "empty")
    (d / "junk.onnx").write_bytes(b"\x07garbage\xff" * 30)
    out["garbage onnx"] = (d / "junk.onnx", "junk.onnx")
    from onnx import helper
    (d / "nodes0.onnx").write_bytes(helper.make_model(helper.make_graph([], "g", [], []))
                                    .SerializeToString())
    out["onnx without nodes"] = (d / "nodes0.onnx", "no nodes")
    return out


MODEL_KINDS = ["missing json", "missing onnx", "directory json", "directory onnx", "empty json",
               "truncated json", "json list", "missing npz", "empty npz", "truncated npz",
               "bad crc npz", "garbage npz", "empty onnx", "garbage onnx", "onnx without nodes"]


@pytest.fixture(scope="module")
def bad_models(files, tmp_path_factory):
    return _bad_models(tmp_path_factory.mktemp("bad_models"), files)


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("command", ["inspect", "build"])
def test_bad_model_file(files, bad_models, command, kind):
    path, needle = bad_models[kind]
    args = ["inspect", path] if command == "inspect" else \
        ["build", path, "--board", "host", "--out", files["dir"] / "fw"]
    msg = one_error(_cli(*args), needle)
    assert path.name in msg or path.with_suffix(".npz").name in msg, msg
    assert not (files["dir"] / "fw").exists()


@pytest.mark.parametrize("kind", ["empty onnx", "truncated npz", "onnx without nodes"])
@pytest.mark.parametrize("command", ["run", "plan", "build --plan"])
def test_bad_model_file_other_commands(files, bad_models, command, kind):
    path, needle = bad_models[kind]
    args = {"run": ["run", path, "--image", files["image"]],
            "plan": ["plan", path, "--data", "digits", "--quiet"],
            "build --plan": ["build", path, "--plan", files["plan"]]}[command]
    one_error(_cli(*args), needle)


def test_float_model_is_refused_by_int8_commands(files, tmp_path):
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((2, 12), np.float32), "w")
    g = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"], name="flat"),
                           helper.make_node("Gemm", ["f", "w"], ["y"], name="fc", transB=1)],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    path = tmp_path / "float.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
                     .SerializeToString())
    for args in (["run", path, "--image", files["image"]], ["plan", path, "--data", "digits"],
                 ["build", path, "--out", tmp_path / "fw"]):
        one_error(_cli(*args), "float.onnx", "a float model", "expected an int8 model")


# ----------------------------------------------------------------------------- images

@pytest.mark.parametrize("image, needle", [
    ("nope.png", "image file not found"),
    ("adir.png", "is a directory"),
    ("text.txt", "cannot read as an image"),
    ("empty", "cannot read as an image"),
    ("no-such-photo", "not a photo bundled with scikit-image"),
    ("download_all", "not a photo bundled with scikit-image"),
])
def test_bad_image(files, image, needle):
    arg = files["dir"] / image if "." in image or image == "empty" else image
    one_error(_cli("run", files["model"], "--image", files["image"], "--image", arg),
              Path(str(arg)).name, needle)


# ----------------------------------------------------------------------------- plan --data

@pytest.mark.parametrize("kind, needle", [
    ("missing", "not found"), ("directory", "is a directory"), ("empty", "cannot read"),
    ("truncated", "cannot read"), ("garbage", "cannot read"), ("wrong arrays", "needs arrays"),
    ("one class", "expected at least 2 classes"), ("folder missing", "not found"),
])
def test_bad_plan_data(files, tmp_path, kind, needle):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((8, 12, 12, 3), np.uint8), y=np.arange(8) % 2)
    f = tmp_path / "data.npz"
    if kind == "directory":
        f.mkdir()
    elif kind == "empty":
        f.write_bytes(b"")
    elif kind == "truncated":
        f.write_bytes(good.read_bytes()[:200])
    elif kind == "garbage":
        f.write_bytes(b"garbage" * 40)
    elif kind == "wrong arrays":
        np.savez(f, images=np.zeros((2, 3, 3), np.uint8))
    elif kind == "one class":
        np.savez(f, x=np.zeros((8, 12, 12, 3), np.uint8), y=np.zeros(8, int))
    spec = f"folder:{tmp_path / 'none'}" if kind == "folder missing" else f"npz:{f}"
    one_error(_cli("plan", files["model"], "--data", spec, "--train", "2", "--test", "2",
                   "--quiet", "--cache", "", "--out", tmp_path / "p.json"), needle)
    assert not (tmp_path / "p.json").exists()


def test_plan_classes_fewer_than_the_labels(files, tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((40, 12, 12, 3), np.uint8), y=np.arange(40) % 10)
    one_error(_cli("plan", files["model"], "--data", f"npz:{tmp_path / 'd.npz'}", "--classes", "3",
                   "--train", "20", "--test", "20", "--quiet", "--cache", "",
                   "--out", tmp_path / "p.json"),
              "--classes 3", "labels up to 9", "expected at least 10 classes")


# ----------------------------------------------------------------------------- plan files

def _plan_variants(plan: dict) -> dict[str, tuple[object, str]]:
    """kind -> (file content: a dict / list is JSON, bytes are written as they are, None is
    no file; what the message must say)."""
    def w(**kw):
        return {**plan, **kw}
    nosha = {k: v for k, v in plan.items() if k != "model_sha256"}
    return {
        "missing file": (None, "plan file not found"),
        "empty file": (b"", "empty"),
        "not json": (b"{nope", "not valid JSON"),
        "binary": (b"\xff\xfe\x00garbage", "plan"),
        "json list": ([1, 2], "not a plan object"),
        "json string": ("plan", "not a plan object"),
        "wrong format": (w(format="tt-sparse-plan/0"), "not a sparse-update plan"),
        "classes 0": (w(classes=0), "classes: expected an integer >= 2, got 0"),
        "classes true": (w(classes=True), "classes: expected an integer >= 2"),
        "input_size abc": (w(input_size="abc"), 'input_size: expected an integer in 1..512, got "abc"'),
        "input_size huge": (w(input_size=100000), "input_size: expected an integer in 1..512"),
        "bias_layers str": (w(bias_layers="3"), "bias_layers: expected an integer >= 0"),
        "bias_layers -1": (w(bias_layers=-1), "bias_layers: expected an integer >= 0"),
        "weights list": (w(weights=[1]), "weights: expected an object"),
        "weights ratio": (w(weights={"a": "1/3"}), "weights.a: bad channel ratio"),
        "channels": (w(channels={"a": [0, 0, 5]}), "channels.a: expected a permutation"),
        "channels type": (w(channels=[0]), "channels: expected an object"),
        "head_init": (w(head_init="random"), 'head_init: expected "zero" or "keep"'),
        "app": (w(app="demo"), 'app: expected "device" or "train-test"'),
        "model_sha256 short": (w(model_sha256="abc"), "model_sha256: expected the model's sha256"),
        "model_sha256 int": (w(model_sha256=12), "model_sha256: expected"),
        "model name": (w(model=3), "model: expected a string"),
        "budget_bytes": (w(budget_bytes=-1), "budget_bytes: expected an integer >= 1"),
        "training type": (w(training=[1]), "training: expected an object"),
        "training.lr 0": (w(training={"lr": 0}), "training.lr: expected a learning rate in (0, 1], got 0"),
        "training.lr 100": (w(training={"lr": 100}), "training.lr: expected a learning rate in (0, 1]"),
        "training.lr str": (w(training={"lr": "fast"}), "training.lr: expected a learning rate"),
        "training.lr_body": (w(training={"lr": 0.1, "lr_body": -1}), "training.lr_body: expected"),
        "training.history": (w(training={"history": 300}), "training.history: expected an integer in 0..255"),
        "analysis_settings.lr": (w(analysis_settings={"lr": 5}), "analysis_settings.lr: expected"),
        "no model_sha256": (nosha, "model_sha256: expected the sha256 of the model"),
        "other model": (w(model_sha256="0" * 64), "was made for model"),
    }


PLAN_KINDS = list(_plan_variants({}))


@pytest.mark.parametrize("kind", PLAN_KINDS)
def test_bad_plan_file(files, tmp_path, kind):
    content, needle = _plan_variants(files["plan_dict"])[kind]
    f = tmp_path / "plan.json"
    if isinstance(content, bytes):
        f.write_bytes(content)
    elif content is not None:
        f.write_text(json.dumps(content))
    msg = one_error(_cli("build", files["model"], "--plan", f, "--board", "host",
                         "--out", tmp_path / "fw"), needle)
    assert str(f) in msg, msg                     # names the plan file
    assert not (tmp_path / "fw").exists()


def test_plan_directory(files):
    one_error(_cli("build", files["model"], "--plan", files["dir"]), str(files["dir"]),
              "is a directory")


@pytest.mark.parametrize("kind", [k for k in PLAN_KINDS
                                  if k not in ("missing file", "no model_sha256", "other model")])
def test_plan_schema_in_one_place(files, tmp_path, kind):
    """compiler.sparse.plan.load checks the whole schema: the CLI errors above come from it."""
    content, needle = _plan_variants(files["plan_dict"])[kind]
    f = tmp_path / "plan.json"
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(json.dumps(content))
    with pytest.raises(sparse.PlanError) as e:
        sparse.load(f)
    assert needle in str(e.value) or kind == "binary", str(e.value)


def test_plan_without_sha_builds_only_with_any_model(files, tmp_path):
    """--any-model lets a plan without model_sha256 through (to the next check: here the
    plan trains more layers than the model has)."""
    plan = {k: v for k, v in files["plan_dict"].items() if k != "model_sha256"}
    f = tmp_path / "plan.json"
    f.write_text(json.dumps({**plan, "bias_layers": 99}))
    one_error(_cli("build", files["model"], "--plan", f), "model_sha256", "--any-model")
    msg = one_error(_cli("build", files["model"], "--plan", f, "--any-model"), "conv layers")
    assert "model_sha256" not in msg and str(f) in msg


def test_options_that_need_a_plan(files):
    for opt in (["--lr", "0.1"], ["--any-model"], ["--history", "4"]):
        one_error(_cli("build", files["model"], *opt), "give a --plan")


# ----------------------------------------------------------------------------- plan settings

def test_learning_rates_and_history_from_the_plan(files):
    """Plan values: lr 0 is not 'missing' (refused at load); a plan lr is used; the CLI's
    override it; lr_body 0 is kept (the classifier alone learns)."""
    from compiler.target import from_plan
    plan = sparse.SparsePlan.from_dict({**files["plan_dict"],
                                        "training": {"lr": 0.02, "lr_body": 0.0, "history": 0}})
    prog = None            # passed through to firmware.build as it is
    kw = from_plan.plan_firmware_kwargs(plan, prog)
    assert kw["config"].lr == 0.02 and kw["config"].lr_body == 0.0
    assert kw["defines"] == {"TT_HISTORY_MAX": 0}
    kw = from_plan.plan_firmware_kwargs(plan, prog, lr=0.5, lr_body=0.25, history=7)
    assert (kw["config"].lr, kw["config"].lr_body, kw["defines"]) == (0.5, 0.25, {"TT_HISTORY_MAX": 7})
    for bad in (dict(lr=0), dict(lr=100), dict(lr=-1), dict(lr=float("nan")), dict(lr_body=-1),
                dict(lr_body=2), dict(history=256), dict(history=-1)):
        with pytest.raises(from_plan.CompilerError):
            from_plan.plan_firmware_kwargs(plan, prog, **bad)
    # no training section: analysis_settings' lr, then the default
    p2 = sparse.SparsePlan.from_dict({**files["plan_dict"], "analysis_settings": {"lr": 0.004}})
    assert from_plan.plan_firmware_kwargs(p2, prog)["config"].lr == 0.004
    p3 = sparse.SparsePlan.from_dict(files["plan_dict"])
    assert from_plan.plan_firmware_kwargs(p3, prog, app="train-test")["config"].lr == \
        from_plan.DEFAULT_LR


def test_device_history_defaults_to_what_the_budget_affords(files):
    from compiler.target import from_plan
    g = sparse.apply(files["graph"], sparse.SparsePlan.from_dict(files["plan_dict"]))
    plan = sparse.SparsePlan.from_dict(files["plan_dict"])           # no training.history
    n, note = from_plan.device_history(plan, g, budget=256 * 1024)
    assert n == from_plan.DEVICE_HISTORY_DEFAULT and "the plan does not say" in note
    kw = from_plan.plan_firmware_kwargs(plan, None, g=g, budget=256 * 1024)
    assert kw["defines"] == {"TT_HISTORY_MAX": from_plan.DEVICE_HISTORY_DEFAULT}
    tight = sparse.SparsePlan.from_dict({**files["plan_dict"], "budget_bytes": 4096})
    n, note = from_plan.device_history(tight, g, budget=256 * 1024)
    assert n == 0 and "leaves no room" in note and "SET history is refused" in note
    m0 = sparse.memory(g, plan, reserve=sparse.app_reserve(g, "device"))["total"]
    item = sparse.memory(g, plan, reserve=sparse.app_reserve(g, "device"), history=1)["history"]
    some = sparse.SparsePlan.from_dict({**files["plan_dict"], "budget_bytes": m0 + 3 * item + 5})
    assert from_plan.device_history(some, g, budget=256 * 1024)[0] == 3
    said = sparse.SparsePlan.from_dict({**files["plan_dict"], "training": {"history": 0}})
    n, note = from_plan.device_history(said, g, budget=256 * 1024)
    assert n == 0 and "as the plan says" in note and "refused" in note
    assert from_plan.device_history(said, g, history=5, budget=256 * 1024)[0] == 5
