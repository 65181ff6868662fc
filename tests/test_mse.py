"""The mean-squared-error loss (regression / autoencoder): reference, rule, C kernel and
whole training steps bit-exact on the host build and QEMU for the flat-input
autoencoder (the MLPerf Tiny anomaly-detection shape, reduced), and a real learning
check on the reference (the reconstruction error of a fixed distribution goes down)."""
import copy

import numpy as np
import pytest
from test_flat_input import _autoencoder, _int8

from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.ref import grad_ops as rgo
from compiler.target import firmware


@pytest.fixture(scope="module")
def ae():
    return _int8(_autoencoder(), 640)


def _normal(g, n, seed):
    """int8 inputs from one fixed distribution ("normal" machine sound): a smooth mean
    spectrum plus small noise."""
    rng = np.random.default_rng(seed)
    base = 40 * np.sin(np.arange(640) / 25.0)
    return np.clip(base + rng.normal(0, 8, (n, 640)), -128, 127).astype(np.int8).reshape(
        (n,) + g.tensors[g.inputs[0]].shape[1:])


def test_mse_grad_matches_its_definition():
    rng = np.random.default_rng(0)
    y = rng.integers(-128, 128, 50).astype(np.int8)
    t = rng.integers(-128, 128, 50).astype(np.int8)
    g, loss = rgo.mse_grad(y, t, 0.05)
    real = 0.05 * (y.astype(np.float64) - t)
    np.testing.assert_allclose(loss, np.mean(real ** 2), rtol=1e-6)
    np.testing.assert_allclose(g, 2 * real / 50, rtol=1e-6)
    assert g.dtype == np.float32


def test_program_records_the_loss(ae):
    prog = ad.build_program(ae, ad.last_layers(ae, 2), loss="mse")
    assert prog.loss == "mse" and isinstance(prog.steps[0], ad.MseGrad)
    assert prog.steps[0].target_of_input is not None
    assert ad.build_program(ae, ad.last_layers(ae, 2)).loss == "softmax_xent"
    with pytest.raises(ad.TrainPlanError, match="unknown loss 'l1'"):
        ad.build_program(ae, ad.last_layers(ae, 2), loss="l1")


def test_autoencoder_target_is_the_requantized_input(ae):
    prog = ad.build_program(ae, ad.last_layers(ae, 1), loss="mse")
    x = _normal(ae, 1, 0)
    t = tr.mse_target_of(prog, x)
    xi, yo = ae.tensors[ae.inputs[0]], ae.tensors[ae.outputs[0]]
    real = xi.scale * (x.reshape(-1).astype(np.float64) - xi.zero_point)
    want = np.clip(np.round(real / yo.scale) + yo.zero_point, -128, 127)
    assert np.abs(t.astype(np.int64) - want).max() <= 1


def test_reconstruction_error_goes_down_on_the_reference(ae):
    g = copy.deepcopy(ae)
    prog = ad.build_program(g, {**ad.bias_only(g), **ad.last_layers(g, 2)}, loss="mse")
    st = tr.TrainState(config=tr.TrainConfig(lr=0.5))   # stochastic rounding
    test = _normal(g, 16, 99)

    def score():
        feats = tr.prefix_features(g, prog, test)
        ys = tr.forward(g, prog, features=feats)[prog.logits].reshape(len(test), -1)
        return np.mean([rgo.mse_grad(y, tr.mse_target_of(prog, x), prog.steps[0].s_y)[1]
                        for y, x in zip(ys, test)])
    before = score()
    for x in _normal(g, 300, 1):
        tr.train_step(g, prog, st, x)
    after = score()
    assert after < 0.5 * before, (before, after)


def run_mse_both(g, trainable, cfg, board, out, x):
    """Training steps of an mse program on ``board``, bit for bit with the reference trainer
    (outputs, losses, trained parameters). Returns the build report and the board's
    counter per step."""
    prog = ad.build_program(g, trainable, loss="mse")
    rep = firmware.build(copy.deepcopy(g), board, out, program=prog, config=cfg, quiet=True)
    gr = copy.deepcopy(g)
    st = tr.TrainState(config=cfg)
    ref_y, ref_loss = [], []
    for i in range(len(x)):
        r = tr.train_step(gr, prog, st, x[i:i + 1])
        ref_y.append(r.logits)
        ref_loss.append(r.loss)
    nout = int(np.prod(g.tensors[g.outputs[0]].shape))
    y, losses, rcs, cycles, blob = firmware.train_stream(rep["elf"], x, [0] * len(x), nout,
                                                         rep["ram_param_bytes"], board=board)
    assert set(rcs) == {0}
    np.testing.assert_array_equal(y, np.stack(ref_y))
    np.testing.assert_array_equal(np.float32(losses), np.float32(ref_loss))  # bit-exact
    got = firmware.split_trained(gr, rep, blob)
    for (node, param), v in got.items():
        np.testing.assert_array_equal(v, gr.node(node).params[param], err_msg=f"{node}.{param}")
    assert sum(int((v != g.node(n).params[p]).sum()) for (n, p), v in got.items()) > 0
    return rep, cycles


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_autoencoder_trains_bit_exact(board, ae, tmp_path):
    trainable = {**ad.bias_only(ae), **ad.last_layers(ae, 3)}
    cfg = tr.TrainConfig(lr=0.02, lr_body=0.005, seed=3, bits=6, range_mode="max/2",
                         loss_range_mode="max")
    run_mse_both(ae, trainable, cfg, board, tmp_path, _normal(ae, 4, 7))


@pytest.fixture(scope="module")
def cli_fw(ae, tmp_path_factory):
    """The device app for the autoencoder built by `build --loss mse --train bias+last:1`
    (biases everywhere + the output layer; two 128x640 layers would not fit a flash
    checkpoint slot)."""
    from compiler.cli import main as cli
    from compiler.ir import graph_io
    d = tmp_path_factory.mktemp("mse_cli")
    graph_io.save(ae, d / "ae.json")
    assert cli.main(["build", str(d / "ae.json"), "--board", "host", "--loss", "mse", "--train",
                     "bias+last:1", "--lr", "0.5", "--history", "4", "--out", str(d / "fw")]) == 0
    return d


@pytest.mark.parametrize("history,epochs", [(0, 1), (3, 2)])
def test_device_app_streams_flat_samples_and_matches_replay(cli_fw, history, epochs):
    """The device app with an mse autoencoder: unlabelled raw int8 samples (SAMPLE_RAW),
    RESULT carries the anomaly score; scores and trained weights equal the replay of
    what the build recorded (as `host.stream --verify` replays it)."""
    import serial

    from compiler.autodiff import device_replay as device_sim
    from compiler.target import runner as R
    from host import protocol as P
    g, prog, cfg, rep = firmware.load_training(cli_fw / "fw")
    assert prog.loss == "mse" and cfg.lr == np.float32(0.5)
    n = 8
    xs = _normal(g, n, 11).reshape(n, -1)
    no_train = [i == 2 for i in range(n)]
    with R.HostSerial(rep["elf"], timeout=120) as h:
        port = serial.serial_for_url(h.url, timeout=30)
        c = P.Client(port, timeout=30)
        info = c.check_model(rep["sha256"])
        assert info.unsupervised and (info.in_h, info.in_w, info.in_c) == (1, 640, 1)
        c.set("history", history)
        c.set("epochs", epochs)
        with pytest.raises(P.DeviceError, match="without labels"):
            c.sample(xs[0], 3)
        with pytest.raises(P.DeviceError, match="raw sample size"):
            c.sample(xs[0][:100])
        with pytest.raises(P.DeviceError, match="augment: (history stores features|not for an mse)"):
            c.set("augment", 1)                 # an autoencoder learns its inputs as they are
        dev = [c.sample(x, train=not nt) for x, nt in zip(xs, no_train)]
        blob = c.download()
        c.exit(0)
        port.close()
    gr = copy.deepcopy(g)
    with pytest.raises(ValueError, match="augment: not for an mse model"):
        device_sim.replay(gr, prog, tr.TrainState(cfg), xs, [None] * n, no_train,
                          device_sim.DeviceSettings(history, epochs, augment=True))
    sim = device_sim.replay(gr, prog, tr.TrainState(cfg), xs, [None] * n, no_train,
                            device_sim.DeviceSettings(history, epochs))
    assert all(r.score is not None and r.pred == 0 for r in dev)
    np.testing.assert_array_equal(np.float32([r.score for r in dev]), np.float32(sim.scores))
    assert [bool(r.trained) for r in dev] == sim.trained and any(sim.trained)
    got = firmware.split_trained(gr, rep, blob)
    for (node, param), v in got.items():
        np.testing.assert_array_equal(v, gr.node(node).params[param], err_msg=f"{node}.{param}")
    assert sum(int((v != g.node(nd).params[p]).sum()) for (nd, p), v in got.items()) > 0


def test_cli_mse_firmware_and_refusals(cli_fw, capsys):
    import json

    from test_bad_input import one_error_in_process
    out, model = cli_fw / "fw", cli_fw / "ae.json"
    h = (out / "tt_model.h").read_text()
    assert "TT_MODEL_LOSS_MSE" in h and "TT_MODEL_TARGET_OF_INPUT" in h
    assert json.loads((out / "training.json").read_text())["loss"] == "mse"
    capsys.readouterr()
    one_error_in_process(capsys, ["build", model, "--board", "host", "--loss", "mse"], "give --train")
    one_error_in_process(capsys, ["build", model, "--board", "host", "--train", "last:0"], "--train")
    one_error_in_process(capsys, ["plan", model, "--data", "digits", "--loss", "mse"],
                         "plan --loss mse learns to reconstruct flat feature vectors")


def test_a_plan_file_records_the_loss(cli_fw):
    """A plan's training.loss selects the loss of `build --plan` (checked like its other
    training fields)."""
    import json

    from compiler.sparse import plan as sparse
    from compiler.target.from_plan import load_plan_graph
    model = cli_fw / "ae.json"
    from compiler.ir import graph_io
    sha = graph_io.load(model).sha256()
    body = {"format": sparse.FORMAT, "model_sha256": sha, "head_init": "keep", "bias_layers": 5,
            "weights": {}, "training": {"loss": "mse", "lr": 0.5, "history": 2}}
    p = cli_fw / "plan.json"
    p.write_text(json.dumps(body))
    g, prog, _ = load_plan_graph(str(model), str(p))
    assert prog.loss == "mse" and prog.steps[0].target_of_input is not None
    assert g.sha256() == sha
    p.write_text(json.dumps({**body, "training": {"loss": "l2"}}))
    with pytest.raises(sparse.PlanError, match='training.loss: expected "softmax_xent" or "mse"'):
        load_plan_graph(str(model), str(p))
