"""Your own model straight into every command: ``.pt2`` torch.export programs imported
like the module they came from; ``inspect``, ``build``, ``run`` and ``plan`` taking
``FILE.py:FACTORY`` / ``.pt2`` / float ``.onnx`` with the options of ``import``; 1-D
(Conv1d) and flat inputs calibrated on ``npz:`` float arrays; ``--channel-order bgr``
applied identically by the device's pixel path and the reference."""
import copy
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from compiler import paths
from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.frontend import user_model as U
from compiler.ir.errors import CompilerError, UnsupportedOpError
from compiler.ref import executor as reference
from compiler.ref import inputs
from compiler.target import firmware
from compiler.target import runner as R
from host import protocol as P

NETS = '''
import torch, torch.nn as nn, torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 2 * 2, 16), nn.ReLU(),
                                        nn.Linear(16, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + x)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8),
                                  nn.ReLU6())
        self.block = Block(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.block(self.stem(x))), 1))


class KWS(nn.Module):      # keyword-spotting-like: Conv1d over time, global pooling, FC
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(10, 16, 5, stride=2, padding=2)
        self.bn1 = nn.BatchNorm1d(16)
        self.conv2 = nn.Conv1d(16, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(16, 6)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def _eval(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def lenet():
    torch.manual_seed(0)
    return _eval(LeNet())


def resnet():
    torch.manual_seed(1)
    return _eval(ResNet())


def kws():
    torch.manual_seed(2)
    return _eval(KWS())


def mlp():
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(20, 12), nn.ReLU(), nn.Linear(12, 3)).eval()
'''


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    d = tmp_path_factory.mktemp("nets")
    (d / "nets.py").write_text(NETS)
    return d


def _cli(cwd, *argv):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(paths.REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    p = subprocess.run([sys.executable, "-m", "compiler", *map(str, argv)], cwd=cwd,
                       capture_output=True, text=True, env=env)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def _ok(cwd, *argv) -> str:
    p = _cli(cwd, *argv)
    assert p.returncode == 0, f"{argv}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def _int8_inputs(g, n=6, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, (n,) + g.tensors[g.inputs[0]].shape[1:]
                                                ).astype(np.int8)


# ------------------------------------------------------------------------------- .pt2

@pytest.mark.parametrize("factory,shape", [("lenet", (1, 12, 12)), ("resnet", (3, 12, 12))])
def test_pt2_imports_as_the_module_it_came_from(nets, factory, shape):
    """An exported program imports to the same int8 graph (same nodes, named after the
    same modules, same int8 outputs on the reference) as the FILE.py:FACTORY import of the
    module, with the same calibration; its input shape comes from the program."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("nets_pt2", nets / "nets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pt2 = nets / f"{factory}.pt2"
    torch.export.save(torch.export.export(getattr(mod, factory)(), (torch.zeros((1,) + shape),)),
                      str(pt2))
    a = U.import_model(f"{nets / 'nets.py'}:{factory}", input_shape=shape, calibrate="digits",
                       samples=32)
    b = U.import_model(str(pt2), calibrate="digits", samples=32)
    assert [(n.name, n.op, n.inputs) for n in a.nodes] == [(n.name, n.op, n.inputs) for n in b.nodes]
    assert a.sha256() == b.sha256()
    x = _int8_inputs(a)
    np.testing.assert_array_equal(reference.run(a, x), reference.run(b, x))
    assert re.search(r"module 'features.0' at nets.py:\d+|module 'stem.0' at nets.py:\d+",
                     b.nodes[0].source)
    with pytest.raises(CompilerError, match="exported for input"):
        U.import_model(str(pt2), input_shape=(shape[0], 16, 16), calibrate="digits", samples=8)


def test_pt2_unsupported_op_names_op_and_line(tmp_path):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return torch.tanh(self.conv(x))
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(M().eval(), (torch.zeros(1, 1, 8, 8),)), str(path))
    with pytest.raises(UnsupportedOpError, match=r"'aten.tanh' at node 'tanh' \(module <top> at "
                                                 r"test_user_model_cli.py:\d+\): operator not "
                                                 r"supported; supported operators: .*conv2d"):
        U.import_model(str(path), calibrate="digits", samples=4)


# ------------------------------------------------------------------ every command, every source

def _main(capsys, cwd, monkeypatch, *argv) -> tuple[int, str, str]:
    """The CLI in this process (for the expected outputs; the commands under test run in a
    subprocess)."""
    from compiler.cli import main as cli
    capsys.readouterr()
    monkeypatch.chdir(cwd)
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_command_takes_a_pytorch_source(nets, tmp_path, capsys, monkeypatch):
    """inspect, run and build take FILE.py:FACTORY with the import options (in a
    subprocess) and give what they give for the imported .json."""
    src = f"{nets / 'nets.py'}:lenet"
    opts = ["--input-shape", "1,12,12", "--calibrate", "digits", "--samples", "32",
            "--mean", "0.5", "--std", "0.25"]
    assert _main(capsys, tmp_path, monkeypatch, "import", src, *opts, "-o", "lenet.json")[0] == 0
    rc, ins, _ = _main(capsys, tmp_path, monkeypatch, "inspect", "lenet.json", "--summary")
    assert re.search(r"sha256: +(\w+)", _ok(tmp_path, "inspect", src, *opts, "--summary")).group(1) \
        == re.search(r"sha256: +(\w+)", ins).group(1)

    def top5(text):
        line = next(ln for ln in text.splitlines() if ln.startswith("coffee: top-5"))
        return re.findall(r"(\d+) \((-?\d+)\)", line.split("  (")[0])
    want = top5(_main(capsys, tmp_path, monkeypatch, "run", "lenet.json", "--image", "coffee")[1])
    assert len(want) == 5 and top5(_ok(tmp_path, "run", src, *opts, "--image", "coffee")) == want
    out = _ok(tmp_path, "build", src, *opts, "--board", "host")
    assert (tmp_path / "build" / "host" / "nets-lenet" / "firmware.elf").is_file(), out
    # a float source without --calibrate: one line, before any work
    rc, _, err = _main(capsys, tmp_path, monkeypatch, "build", src, "--input-shape", "1,12,12")
    assert rc == 2 and err.count("\n") == 1 and "`build` expected an int8 model; give --calibrate" in err
    rc, _, err = _main(capsys, tmp_path, monkeypatch, "run", "lenet.json", "--calibrate", "digits",
                       "--image", "coffee")
    assert rc == 2 and "--calibrate apply to a model source" in err
    # inspect shows a float source's float graph
    assert "(float32, 10 nodes)" in _main(capsys, tmp_path, monkeypatch, "inspect", src,
                                          "--input-shape", "1,12,12", "--summary")[1]
    # a float .onnx of the same module: the same options, the same int8 model
    import importlib.util
    spec = importlib.util.spec_from_file_location("nets_onnx", nets / "nets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.onnx.export(mod.lenet(), torch.zeros(1, 1, 12, 12), str(tmp_path / "lenet.onnx"),
                      dynamo=False)
    rc, out, _ = _main(capsys, tmp_path, monkeypatch, "inspect", "lenet.onnx", *opts[2:],
                       "--summary")
    assert rc == 0 and "int8, 7 nodes" in out
    rc, _, err = _main(capsys, tmp_path, monkeypatch, "run", "lenet.onnx", "--image", "coffee")
    assert rc == 2 and "`run` expected an int8 model; give --calibrate" in err


def test_plan_suggests_import_then_build(nets, tmp_path, capsys, monkeypatch):
    src = f"{nets / 'nets.py'}:lenet"
    opts = ["--input-shape", "1,12,12", "--calibrate", "digits", "--samples", "16"]
    from compiler.frontend import datasets as D
    ds = D.load("digits")
    keep = ds.y < 2      # two classes: a quick search that beats chance
    np.savez(tmp_path / "two.npz", x=ds.x[keep], y=ds.y[keep])
    out = _ok(tmp_path, "plan", src, *opts, "--data", "npz:two.npz", "--train", "100",
              "--test", "60", "--lr", "0.05", "--epochs", "2",
              "--generations", "2", "--remeasure", "0", "--ratios", "1", "--min-gain", "100",
              "--jobs", "1", "--cache", "", "--quiet", "--budget", "200KB")
    # made without --history: the plan counts no history buffer, says so, and the build
    # gives the device app none
    assert "history buffer: 0 samples (online SGD; the RAM above counts none" in out
    import json
    assert json.loads((tmp_path / "plan.json").read_text())["training"]["history"] == 0
    line = next(ln for ln in out.splitlines() if "build it with:" in ln)
    cmd = line.split("build it with: ", 1)[1]
    imp, build = cmd.split(" && ")
    assert imp.startswith("python -m compiler import ") and "--samples 16" in imp
    assert build.startswith("python -m compiler build nets-lenet.json --plan plan.json")
    import shlex
    assert _main(capsys, tmp_path, monkeypatch, *shlex.split(imp)[3:])[0] == 0
    rest = shlex.split(build)[3:]
    rest[rest.index("--board") + 1] = "host"
    rc, built, err = _main(capsys, tmp_path, monkeypatch, *rest, "--out", "fw")
    assert rc == 0, err
    assert (tmp_path / "fw" / "firmware.elf").is_file()
    assert "history buffer: 0 samples, as the plan says" in built


# ------------------------------------------------------------------------ 1-D and flat inputs

@pytest.mark.parametrize("factory,shape", [("kws", (10, 49)), ("mlp", (20,))])
def test_one_d_and_flat_models_from_the_cli(nets, tmp_path, capsys, monkeypatch, factory, shape):
    """--input-shape C,L (Conv1d) or F (flat), calibrated on an npz of float inputs taken
    as they are; the int8 graph runs on the reference and builds."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", x=rng.normal(size=(40,) + shape).astype(np.float32))
    src = f"{nets / 'nets.py'}:{factory}"
    opts = ["--input-shape", ",".join(map(str, shape)), "--calibrate", "npz:cal.npz",
            "--samples", "32"]
    assert _main(capsys, tmp_path, monkeypatch, "import", src, *opts, "-o", "m.json")[0] == 0
    from compiler.frontend import models
    g = models.load(tmp_path / "m.json")
    assert g.is_int8
    want = (1, 1, shape[1], shape[0]) if len(shape) == 2 else (1, shape[0])
    assert g.tensors[g.inputs[0]].shape == want
    y = np.asarray(reference.run(g, _int8_inputs(g)))
    assert y.shape[0] == 6 and len(np.unique(y, axis=0)) > 1
    _ok(tmp_path, "build", src, *opts, "--board", "host", "--out", "fw")
    assert (tmp_path / "fw" / "firmware.elf").is_file()
    with pytest.raises(CompilerError, match="1-D input .* npz:FILE .*image data sets do not apply"):
        U.import_model(src, input_shape=shape, calibrate="digits")
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 3), np.float32))
    with pytest.raises(CompilerError, match=r"x is float32 \(4, 3\), expected"):
        U.import_model(src, input_shape=shape, calibrate=f"npz:{tmp_path / 'bad.npz'}")


# ------------------------------------------------------------------------------ channel order

class _BGRNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.body(x), 1))


def _bgr_source(tmp_path):
    (tmp_path / "bgrnet.py").write_text(
        "import torch\nfrom test_user_model_cli import _BGRNet\n"
        "def make():\n    torch.manual_seed(5)\n    return _BGRNet()\n")
    return f"{tmp_path / 'bgrnet.py'}:make"


def test_bgr_model_sees_reversed_channels_on_device_and_reference(tmp_path):
    """A model imported with --channel-order bgr: the host sends RGB images, the device
    app (host build) computes exactly the reference's logits (channel c of the input from
    image channel 2 - c, through the per-channel tables), and the input differs from the
    rgb import's."""
    src = _bgr_source(tmp_path)
    kw = dict(input_shape=(3, 8, 8), calibrate="digits", samples=32, mean=[0.4, 0.5, 0.6],
              std=[0.2, 0.25, 0.3])
    g = U.import_model(src, channel_order="bgr", **kw)
    rgb = U.import_model(src, **kw)
    assert g.metadata["input_preprocess"]["channel_order"] == "bgr"
    rng = np.random.default_rng(4)
    imgs = rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    x = inputs.model_inputs(g, imgs)
    lut = inputs.pixel_lut(g)[0]
    np.testing.assert_array_equal(x[..., 0], lut[0][imgs[..., 2]])
    assert not np.array_equal(x, inputs.model_inputs(rgb, imgs))
    want = np.asarray(reference.run(g, x))
    assert not np.array_equal(want, reference.run(g, inputs.apply_lut(lut, imgs)))
    prog = ad.build_program(g, ad.last_layers(g, 1))
    rep = firmware.build(copy.deepcopy(g), "host", tmp_path / "fw", program=prog,
                         config=tr.TrainConfig(lr=0.05, seed=1), app=firmware.DEVICE_APP,
                         quiet=True)
    assert "#define TT_MODEL_INPUT_BGR 1" in (tmp_path / "fw" / "tt_model.h").read_text()
    import serial
    with R.HostSerial(rep["elf"], timeout=60) as h:
        port = serial.serial_for_url(h.url, timeout=30)
        c = P.Client(port, timeout=30)
        dev = [c.sample(im, None, logits=True, train=False) for im in imgs]
        c.exit(0)
        port.close()
    got = np.stack([np.asarray(r.logits_q, np.int8) for r in dev])
    np.testing.assert_array_equal(got, want.reshape(len(imgs), -1))
    assert [r.pred for r in dev] == [int(v) for v in np.argmax(want.astype(np.int32), axis=1)]


# --------------------------------------------------------------------------- stream figures

def test_stream_names_its_units_and_prints_the_build_reports_ram(tmp_path):
    """host.stream labels the board counter by board (QEMU counts instructions, the host
    build ns, a real board clock cycles) and prints the build report's RAM, the figure
    `build` printed for the same firmware."""
    from compiler.target.firmware import format_report
    from host import stream
    assert [stream.cost_unit(b) for b in ("qemu-mps2-an500", "host", "stm32f746")] == \
        ["instructions", "ns", "cycles"]
    r = stream.PassResult("adapting", unit="instructions")
    r.correct, r.cycles_predict, r.cycles_train, r.trained_flags = [1], [1200], [0], [0]
    assert "predict 1200 instructions" in r.line() and r.summary()["cycles_unit"] == "instructions"
    rep = {"arena_bytes": 3000, "stack_bytes": 8192, "ram_param_bytes": 500,
           "ram_budget_bytes": 256 * 1024, "linked": {"ram": 14000, "flash": 9000},
           "param_bytes": 4000, "flash_budget_bytes": 1024 * 1024, "layers": []}
    (tmp_path / "report.json").write_text(__import__("json").dumps(rep))
    (tmp_path / "firmware.elf").write_bytes(b"")
    built = re.search(r"RAM .*?(\d+\.\d) KB of 256 KB", format_report(rep)).group(1)
    info = P.Info(1, 0xFFFF, 16, 16, 16, 16, 3, 4, 11692, 256 * 1024, 0, 0, 0, 0, "h", "x", "")
    args = type("A", (), {"boot": f"qemu:{tmp_path / 'firmware.elf'}", "expect_report": None,
                          "verify": None})()
    text = stream._ram_text(info, args)
    assert f"RAM {built} KB of 256 KB (build report" in text, text
    args.boot, args.verify = None, str(tmp_path)
    assert f"RAM {built} KB of 256 KB (build report" in stream._ram_text(info, args)
    args.verify = None
    assert "as the device reports" in stream._ram_text(info, args)


# ---------------------------------------------------------------------------- Python API

def test_readme_python_example_runs_as_written(tmp_path):
    """The README's "In Python" example, as written, next to its mymodel.py; what it prints
    is what the saved model and the build report say."""
    import json

    from compiler.frontend import models
    text = (paths.REPO / "README.md").read_text()
    (tmp_path / "mymodel.py").write_text(
        re.search(r"<!-- example: mymodel.py -->\n```python\n(.*?)```", text, re.S).group(1))
    (tmp_path / "example.py").write_text(
        re.search(r"<!-- example: python -->\n```python\n(.*?)```", text, re.S).group(1))
    env = dict(os.environ, PYTHONPATH=str(paths.REPO))
    p = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                       text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    first, built = p.stdout.strip().splitlines()
    preds, shape = first.rsplit(" (", 1)
    assert shape == "8, 10)" and len(re.findall(r"\d+", preds)) == 8
    g = models.load(tmp_path / "lenet.json")
    from compiler import api
    ds = __import__("compiler.frontend.datasets", fromlist=["load"]).load("mnist")
    assert preds == str(api.run(g, ds.x[:8]).predictions)
    folder, ram = built.split()[:2]
    rep = json.loads((tmp_path / folder / "report.json").read_text())
    assert int(ram) == rep["linked"]["ram"] and (tmp_path / folder / "firmware.elf").is_file()
