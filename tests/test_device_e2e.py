"""The device application (runtime_c/apps/device) end to end over the serial protocol:
predict-then-train, the history buffer with frozen-prefix features, settings, reset and
weight download; every prediction and the final weights equal the reference replay
(compiler.autodiff.device_replay). On QEMU: the demo pipeline on a spotlight-shifted MNIST stream,
where adapting on the device must beat the frozen model clearly."""
import copy
import json
import re

import numpy as np
import pytest
import specgen

from compiler.autodiff import device_replay as device_sim
from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.ref import augment as aug
from compiler.target import checkpoint as ck
from compiler.target import firmware
from compiler.target import runner as R
from host import protocol as P


def _client(url):
    import serial
    port = serial.serial_for_url(url, timeout=30)
    return port, P.Client(port, timeout=30)


@pytest.mark.parametrize("history,epochs,every", [(0, 1, 1), (4, 2, 1), (3, 1, 2)])
def test_device_app_host_matches_reference_replay(tmp_path, history, epochs, every):
    g = specgen.random_graph(4, hw=10, n_blocks=2, classes=5)
    prog = ad.build_program(g, ad.last_blocks(g, 1))
    cfg = tr.TrainConfig(lr=0.05, seed=9)
    rep = firmware.build(copy.deepcopy(g), "host", tmp_path, program=prog, config=cfg,
                         app=firmware.DEVICE_APP, defines={"TT_HISTORY_MAX": 8}, quiet=True)
    h_text = (tmp_path / "tt_model.h").read_text()
    feat = int(re.search(r"#define TT_MODEL_FEATURE_BYTES (\d+)", h_text).group(1))
    assert 0 < feat < 10 * 10 * 3, "precondition: the app stores features, not inputs"
    rng = np.random.default_rng(history)
    n = 24
    imgs = rng.integers(0, 256, (n, 7, 7, 3), dtype=np.uint8)     # device resizes to 10x10
    labels = [int(v) for v in rng.integers(0, 5, n)]
    labels[5] = None                                              # one unlabelled sample
    no_train = [i == 7 for i in range(n)]                         # one predict-only sample
    with R.HostSerial(rep["elf"], timeout=120) as h:
        port, c = _client(h.url)
        info = c.check_model(rep["sha256"])
        assert (info.in_h, info.in_w, info.in_c, info.num_classes) == (10, 10, 3, 5)
        c.set("history", history)
        c.set("epochs", epochs)
        c.set("train_every", every)
        with pytest.raises(P.DeviceError):
            c.set("history", 999)                                 # beyond TT_HISTORY_MAX
        with pytest.raises(P.DeviceError, match="augment: history stores features") as e:
            c.set("augment", 1)                                   # nothing raw to augment
        assert e.value.code == P.ERR_VALUE and c.get("augment") == 0
        if every == 2:                  # gradient bits and range function set at run time
            assert c.get("range") == "max"
            c.set("bits", 5)
            c.set("range", "3*max/4")
            for bad in ("max/3", "mean*0", "mean*65", "3*max/4 "):
                with pytest.raises(P.DeviceError):
                    c.set("range", bad)
            assert c.get("range") == "3*max/4" and c.get("loss_range") == "max"
            cfg = tr.TrainConfig(lr=0.05, seed=9, bits=5, range_mode="3*max/4", loss_range_mode="max")
        dev = [c.sample(im, lab, train=not nt, bilinear=True)
               for im, lab, nt in zip(imgs, labels, no_train)]
        blob = c.download()
        c.reset(weights=True, history=True)
        assert c.download() != blob or not any(r.trained for r in dev)
        c.exit(0)
        port.close()
    seen = [P.resize_u8(im, 10, 10, 3, mode=P.RESIZE_BILINEAR) for im in imgs]
    gr = copy.deepcopy(g)
    sim = device_sim.replay(gr, prog, tr.TrainState(cfg), seen, labels, no_train,
                            device_sim.DeviceSettings(history, epochs, every))
    assert [r.pred for r in dev] == sim.preds
    assert [bool(r.trained) for r in dev] == sim.trained
    assert any(sim.trained)
    got = firmware.split_trained(gr, rep, blob)
    for (node, param), v in got.items():
        np.testing.assert_array_equal(v, gr.node(node).params[param], err_msg=f"{node}.{param}")


@pytest.mark.parametrize("history,epochs,shift", [(1, 1, None), (3, 2, 5)])
def test_device_app_history_of_inputs_matches_reference_replay(tmp_path, history, epochs, shift):
    """Features not smaller than the input: the history buffer stores the input itself, and
    it must be the sample's input, not the arena bytes the forward pass has reused by then
    (regression: this graph's arena puts the input at offset 0, which a later forward step
    overwrites; the rounds then trained on garbage and diverged from the replay).
    Then, after a RESET, the same stream with augment on (the default shift, or
    augment_shift): the replay reproduces every shift and mirror; the checkpoint image
    holds both settings and gives them back; a state block of version 1 means no
    augmentation."""
    g = specgen.random_graph(11, hw=16, n_blocks=2, classes=10)
    prog = ad.build_program(g, ad.last_blocks(g, 1))
    cfg = tr.TrainConfig(lr=0.005, seed=3)
    rep = firmware.build(copy.deepcopy(g), "host", tmp_path, program=prog, config=cfg,
                         app=firmware.DEVICE_APP, defines={"TT_HISTORY_MAX": 8}, quiet=True)
    h_text = (tmp_path / "tt_model.h").read_text()
    feat = int(re.search(r"#define TT_MODEL_FEATURE_BYTES (\d+)", h_text).group(1))
    assert feat >= 16 * 16 * 3, "precondition: the app stores inputs, not features"
    rng = np.random.default_rng(0)
    n = 24
    imgs = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    want_shift = aug.default_shift(16, 16) if shift is None else shift
    with R.HostSerial(rep["elf"], timeout=120, flash=tmp_path / "flash.bin") as h:
        port, c = _client(h.url)
        c.check_model(rep["sha256"])
        c.set("history", history)
        c.set("epochs", epochs)
        dev = [c.sample(im, lab) for im, lab in zip(imgs, labels)]
        blob = c.download()
        c.reset(weights=True, history=True)
        assert (c.get("augment"), c.get("augment_shift")) == (0, aug.default_shift(16, 16))
        with pytest.raises(P.DeviceError, match="out of range"):
            c.set("augment_shift", aug.max_shift(16, 16) + 1)
        c.set("augment", 1)
        if shift is not None:
            c.set("augment_shift", shift)
        assert (c.get("augment"), c.get("augment_shift")) == (1, want_shift)
        dev_aug = [c.sample(im, lab) for im, lab in zip(imgs, labels)]
        blob_aug = c.download()
        image = c.download(P.BLOB_CHECKPOINT)
        c.set("augment", 0)
        c.set("augment_shift", 0)
        c.upload(image, blob=P.BLOB_CHECKPOINT)
        assert (c.get("augment"), c.get("augment_shift")) == (1, want_shift)
        c.upload(_state_version_1(image), blob=P.BLOB_CHECKPOINT)
        assert (c.get("augment"), c.get("augment_shift")) == (0, aug.default_shift(16, 16))
        c.exit(0)
        port.close()
    cp = ck.parse(image)
    assert (cp.state["version"], cp.state["augment"], cp.state["augment_shift"]) == (2, 1, want_shift)
    for run, blob_run, s in ((dev, blob, device_sim.DeviceSettings(history, epochs, 1)),
                             (dev_aug, blob_aug, device_sim.DeviceSettings(history, epochs, 1,
                                                                           augment=True,
                                                                           augment_shift=shift))):
        gr = copy.deepcopy(g)
        sim = device_sim.replay(gr, prog, tr.TrainState(cfg), list(imgs), labels, None, s)
        assert [r.pred for r in run] == sim.preds, s
        assert [bool(r.trained) for r in run] == sim.trained
        got = firmware.split_trained(gr, rep, blob_run)
        assert got
        for (node, param), v in got.items():
            np.testing.assert_array_equal(v, gr.node(node).params[param],
                                          err_msg=f"{node}.{param} {s}")
    assert blob_aug != blob, "augmentation changed nothing the stream trained"


def _state_version_1(image: bytes) -> bytes:
    """The checkpoint image as older firmware wrote it: state version 1, words 14-15 zero."""
    head, payload = bytearray(image[:ck.HEADER.size]), bytearray(image[ck.HEADER.size:])
    payload[0:4] = (1).to_bytes(4, "little")
    payload[56:64] = bytes(8)
    head[-4:] = ck.crc(bytes(head), bytes(payload)).to_bytes(4, "little")
    return bytes(head + payload)


@pytest.mark.qemu
def test_demo_on_qemu_adapts_and_matches_reference(tmp_path, capsys):
    """make demo, shortened: the pinned sparse-update plan for the pre-trained model, the
    three passes on QEMU, the bit-exact replay of the sparse pass, the last line."""
    from host import demo
    status = demo.main(["--limit", "200", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "predictions identical (200/200)" in out and "final trained arrays identical" in out
    s = json.loads((tmp_path / "stream" / "summary.json").read_text())["passes"]
    frozen, head, plan = (s[m]["accuracy"] for m in ("frozen", "head", "plan"))
    assert head > frozen and plan > frozen, (frozen, head, plan)
    assert out.strip().splitlines()[-1] == (f"frozen {frozen:.1f}% -> head only {head:.1f}% -> "
                                            f"sparse plan {plan:.1f}% (n=200)")
    assert (tmp_path / "stream" / "accuracy.png").stat().st_size > 10_000
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["linked"]["ram"] <= 256 * 1024


def test_demo_stale_plan_is_a_clear_error(tmp_path, capsys):
    """A pinned plan made for another model: one error line naming the fix, nothing built."""
    from compiler.sparse import plan as sparse
    from host import demo
    plan = sparse.load(demo.pinned_plan("mcunet-5fps", 80))
    plan.meta["model_sha256"] = "0" * 64
    sparse.save(plan, tmp_path / "stale.json")
    status = demo.main(["--plan", str(tmp_path / "stale.json"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and "is stale" in err and "make demo-plan" in err
    assert not (tmp_path / "o" / "firmware").exists()
