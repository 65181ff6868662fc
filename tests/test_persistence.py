"""What the device app learns survives a reset: flash checkpoints (two slots, CRC, newest
valid wins) on the host build's and QEMU's NOR model kept in a file, a power cut at every
flash operation of a SAVE (host.powercut), checkpoint files (--save-to / --restore-from,
refused for another model), and a stream that notices a board reset or a lost line and
resumes with final weights equal to the reference replay of the uninterrupted stream."""
import copy
import os
import re
import signal
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import serial
import specgen

from compiler.autodiff import device_replay as device_sim
from compiler.autodiff import program as ad
from compiler.autodiff import trainer as tr
from compiler.target import checkpoint as ck
from compiler.target import firmware
from compiler.target import runner as R
from host import powercut, stream
from host import protocol as P

CFG = dict(lr=0.05, seed=9)


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    """A small learning model's device firmware for the host board, and its graph."""
    d = tmp_path_factory.mktemp("persist")
    g = specgen.random_graph(4, hw=10, n_blocks=2, classes=5)
    prog = ad.build_program(g, ad.last_blocks(g, 1))
    rep = firmware.build(copy.deepcopy(g), "host", d / "fw", program=prog, config=tr.TrainConfig(**CFG),
                         app=firmware.DEVICE_APP, defines={"TT_HISTORY_MAX": 8}, quiet=True)
    return SimpleNamespace(g=g, prog=prog, rep=rep, exe=rep["elf"], dir=d)


def _client(url):
    port = serial.serial_for_url(url, timeout=30)
    return port, P.Client(port, timeout=30)


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 10, 10, 3), dtype=np.uint8), [int(v) for v in rng.integers(0, 5, n)]


@pytest.mark.parametrize("board", ["host", pytest.param("qemu-mps2-an500", marks=pytest.mark.qemu)])
def test_checkpoint_survives_reboot(fw, tmp_path, board):
    if board == "host":
        exe = fw.exe
    else:
        exe = firmware.build(copy.deepcopy(fw.g), board, tmp_path / "fw", program=fw.prog,
                             config=tr.TrainConfig(**CFG), app=firmware.DEVICE_APP,
                             defines={"TT_HISTORY_MAX": 8}, quiet=True)["elf"]
    Board = R.HostSerial if board == "host" else R.QemuSerial
    flash = tmp_path / "flash.bin"
    imgs, labels = _images(20)
    with Board(exe, timeout=120, flash=flash) as h:
        port, c = _client(h.url)
        info = c.hello()
        assert "compiled-in" in info.status
        for cap in (P.MSG_SAVE, P.MSG_RESTORE, P.MSG_UPLOAD_BEGIN, P.MSG_DOWNLOAD):
            assert info.supports(cap)
        with pytest.raises(P.DeviceError, match="no checkpoint"):
            c.restore()
        c.set("autosave", 0)
        c.set("augment_shift", 3)                           # a setting the state block keeps
        with pytest.raises(P.DeviceError, match="augment: history stores features"):
            c.set("augment", 1)                             # this firmware stores features
        for im, lab in zip(imgs[:10], labels[:10]):
            c.sample(im, lab)
        assert c.save() == 1
        saved, image = c.download(), c.download(P.BLOB_CHECKPOINT)
        step = c.get("step")
        for im, lab in zip(imgs[10:], labels[10:]):
            c.sample(im, lab)
        assert c.download() != saved
        h.power_off()                                       # no EXIT: the power goes
        port.close()
    cp = ck.parse(image)
    assert cp.model_hash == fw.rep["sha256"] and cp.arrays == saved and cp.state["resume_at"] == 10
    assert (cp.state["augment"], cp.state["augment_shift"]) == (0, 3)
    with Board(exe, timeout=120, flash=flash) as h:
        port, c = _client(h.url)
        info = c.hello()
        assert info.status == "booted from checkpoint 1 (resume at sample 10)"
        assert c.download() == saved and c.get("step") == step and c.get("resume_at") == 10
        assert (c.get("augment"), c.get("augment_shift")) == (0, 3)
        assert c.download(P.BLOB_CHECKPOINT)[ck.HEADER.size:] == image[ck.HEADER.size:]
        for im, lab in zip(imgs[10:], labels[10:]):
            c.sample(im, lab)
        assert c.save() == 2 and c.restore() == 2
        c.reset(weights=True, history=True, checkpoints=True)     # factory state
        with pytest.raises(P.DeviceError, match="no checkpoint"):
            c.restore()
        c.upload(image, blob=P.BLOB_CHECKPOINT)             # a checkpoint file goes back in
        assert c.download() == saved and c.get("resume_at") == 10
        c.exit(0)
        port.close()


def test_checkpoint_upload_refuses_other_model_and_damage(fw, tmp_path):
    g2 = specgen.random_graph(5, hw=10, n_blocks=2, classes=5)
    rep2 = firmware.build(copy.deepcopy(g2), "host", tmp_path / "fw2",
                          program=ad.build_program(g2, ad.last_blocks(g2, 1)),
                          config=tr.TrainConfig(**CFG), app=firmware.DEVICE_APP, quiet=True)
    with R.HostSerial(rep2["elf"], timeout=60) as h:
        port, c = _client(h.url)
        other = c.download(P.BLOB_CHECKPOINT)
        c.exit(0)
        port.close()
    with R.HostSerial(fw.exe, timeout=60, flash=tmp_path / "f.bin") as h:
        port, c = _client(h.url)
        mine = c.download(P.BLOB_CHECKPOINT)
        before = c.download()
        with pytest.raises(P.DeviceError):
            c.upload(other, blob=P.BLOB_CHECKPOINT)         # another model: size or hash
        bad = bytearray(mine)
        bad[-1] ^= 1
        with pytest.raises(P.DeviceError):
            c.upload(bytes(bad), blob=P.BLOB_CHECKPOINT)    # its crc no longer matches
        with pytest.raises(P.DeviceError):
            c.upload(mine, blob=P.BLOB_WEIGHTS)             # only checkpoints go in
        assert c.download() == before
        with pytest.raises(P.DeviceError, match="no checkpoint"):
            c.restore()                                     # nothing half-written is live
        c.exit(0)
        port.close()
    with pytest.raises(ck.CheckpointError, match="CRC"):
        ck.parse(bytes(bad))


def test_power_cut_at_every_flash_operation(fw, tmp_path):
    """Every erase and program operation of a SAVE, cut before it and half way through it:
    the board boots with the previous or the new checkpoint, exactly."""
    r = powercut.run(fw.exe, tmp_path, k=2, progress=False, log=lambda *_: None)
    assert r["operations"] >= 3                             # erase(s), payload, header
    assert r["cases"] == 2 * r["operations"] + 1
    assert r["recovered"] == r["cases"], r["failures"]
    assert r["new"] >= 1 and r["old"] >= 2 * r["operations"]


def test_power_cut_demo_plan():
    """The acceptance run: the demo plan's 54 KB of trained arrays (host.powercut)."""
    status = powercut.main(["--no-progress", "--samples", "1"])
    assert status == 0


# ---- the stream resumes ------------------------------------------------------------------
COMMON = ["--dataset", "digits", "--classes", "5", "--limit", "300", "--history", "3",
          "--autosave", "10", "--no-progress", "--timeout", "5"]


def _replay(fw, args_list):
    """Reference replay of the uninterrupted stream: the trained arrays it ends with."""
    args = stream.parse_args(args_list + ["--port", "unused"])
    ds = stream.load_dataset(args)
    info = SimpleNamespace(num_classes=5, in_c=3, in_h=10, in_w=10, max_payload=12296)
    plan = stream.make_plan(args, ds, info)
    seen = [P.resize_u8(plan.image(i), 10, 10, 3, mode=P.RESIZE_BILINEAR) for i in plan.order]
    labels = [int(plan.ds.y[i]) for i in plan.order]
    g = copy.deepcopy(fw.g)
    sim = device_sim.replay(g, fw.prog, tr.TrainState(tr.TrainConfig(**CFG)), seen, labels,
                            [False] * len(seen), device_sim.DeviceSettings(3, 1, 1))
    assert any(sim.trained)
    return g


def _assert_trained_equal(fw, g, blob):
    for (node, param), v in firmware.split_trained(g, fw.rep, blob).items():
        np.testing.assert_array_equal(v, g.node(node).params[param], err_msg=f"{node}.{param}")


def _when_rows(csv_path, n, action):
    def run():
        while True:
            time.sleep(0.005)
            try:
                if len(csv_path.read_text().splitlines()) > n:
                    break
            except FileNotFoundError:
                pass
        action()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _board_pids(exe):
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and open(f"/proc/{pid}/cmdline", "rb").read().startswith(str(exe).encode()):
                yield int(pid)
        except OSError:
            pass


def test_stream_resumes_after_the_board_is_killed(fw, tmp_path, capsys):
    out = tmp_path / "s"
    killer = _when_rows(out / "stream.csv", 120, lambda: [os.kill(p, signal.SIGKILL)
                                                          for p in _board_pids(fw.exe)])
    status = stream.main(COMMON + ["--boot", f"host:{fw.exe}", "--out", str(out),
                                   "--download", str(out / "w.bin")])
    killer.join(5)
    text = capsys.readouterr()
    assert status == 0, text.err
    assert "resuming at sample" in text.err
    rows = (out / "stream.csv").read_text().splitlines()
    assert any("resumed here after" in r for r in rows)
    _assert_trained_equal(fw, _replay(fw, COMMON), (out / "w.bin").read_bytes())


def test_stream_resumes_after_a_reboot_behind_the_open_port(fw, tmp_path, capsys):
    out = tmp_path / "s"
    with R.HostSerial(fw.exe, timeout=120, flash=tmp_path / "flash.bin") as h:
        reboot = _when_rows(out / "stream.csv", 150, lambda: os.kill(h._p.pid, signal.SIGUSR1))
        status = stream.main(COMMON + ["--port", h.url, "--out", str(out),
                                       "--download", str(out / "w.bin")])
        reboot.join(5)
        port, c = _client(h.url)
        c.exit(0)
        port.close()
    text = capsys.readouterr()
    assert status == 0, text.err
    assert "sample counter went back" in text.err and "reloaded checkpoint" in text.out
    _assert_trained_equal(fw, _replay(fw, COMMON), (out / "w.bin").read_bytes())


def test_stream_says_when_the_board_has_trained_and_resume_continues(fw, tmp_path, capsys):
    flash = tmp_path / "flash.bin"
    half = [a if a != "300" else "150" for a in COMMON]
    out = tmp_path / "s"
    assert stream.main(half + ["--boot", f"host:{fw.exe}", "--flash", str(flash), "--out", str(out),
                               "--save"]) == 0
    capsys.readouterr()
    status = stream.main(COMMON + ["--boot", f"host:{fw.exe}", "--flash", str(flash), "--out", str(out),
                                   "--resume", "--download", str(out / "w.bin"),
                                   "--save-to", str(out / "state.ckpt")])
    text = capsys.readouterr()
    assert status == 0, text.err
    assert "booted from checkpoint" in text.out and "continuing at sample 150" in text.out
    _assert_trained_equal(fw, _replay(fw, COMMON), (out / "w.bin").read_bytes())
    assert ck.parse((out / "state.ckpt").read_bytes()).state["resume_at"] == 300
    # without --resume, the run says that the board has trained before it starts
    stream.main(half + ["--boot", f"host:{fw.exe}", "--flash", str(flash), "--out", str(out)])
    assert re.search(r"has already trained on \d+ samples: booted from checkpoint",
                     capsys.readouterr().err)


def test_ctrl_c_twice_keeps_the_outputs_and_says_how_to_resume(fw, tmp_path):
    import subprocess
    import sys
    out = tmp_path / "s"
    p = subprocess.Popen([sys.executable, "-m", "host.stream", "--boot", f"host:{fw.exe}",
                          "--dataset", "digits", "--classes", "5", "--repeat", "50", "--autosave", "20",
                          "--out", str(out), "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # Ctrl-C as in a terminal, whatever this test process inherited
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600      # a readiness wait (a loaded machine is slow)
    while True:
        try:
            if len((out / "stream.csv").read_text().splitlines()) > 60:
                break
        except FileNotFoundError:
            pass
        assert p.poll() is None and time.monotonic() < deadline, "the stream stopped or stalled"
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)                            # impatient: a second Ctrl-C
    stdout, stderr = p.communicate(timeout=60)
    rows = len((out / "stream.csv").read_text().splitlines()) - 1
    assert p.returncode == stream.EXIT_INTERRUPTED, (rows, stderr, stdout[-2000:])
    assert "Traceback" not in stderr
    for name in ("stream.csv", "summary.json", "accuracy.png"):
        assert (out / name).exists(), name
    resume = [line for line in stdout.splitlines() if line.startswith("to resume: ")]
    assert resume and resume[0].endswith("--resume")
    assert stdout.strip().splitlines()[-1].endswith("incomplete)")


def test_without_checkpoints_info_says_so(tmp_path):
    g = specgen.random_graph(4, hw=10, n_blocks=2, classes=5)
    rep = firmware.build(copy.deepcopy(g), "host", tmp_path / "fw",
                         program=ad.build_program(g, ad.last_blocks(g, 1)),
                         config=tr.TrainConfig(**CFG), app=firmware.DEVICE_APP, checkpoint=False, quiet=True)
    assert "checkpoint" not in rep
    with R.HostSerial(rep["elf"], timeout=60) as h:
        port, c = _client(h.url)
        info = c.hello()
        for cap in (P.MSG_SAVE, P.MSG_RESTORE, P.MSG_UPLOAD_BEGIN):
            assert not info.supports(cap)                   # INFO says only what it can do
        assert "without checkpoints" in info.status
        with pytest.raises(P.DeviceError):
            c.set("autosave", 10)
        c.exit(0)
        port.close()


def test_stream_refuses_unwritable_outputs_before_streaming(fw, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for opt in ("--download", "--save-to"):
        status = stream.main(COMMON + ["--boot", f"host:{fw.exe}", "--out", str(tmp_path / "o"),
                                       opt, str(blocker / "w.bin")])
        err = capsys.readouterr().err
        assert status == stream.EXIT_USAGE and f"cannot write {opt}" in err
        assert not (tmp_path / "o" / "stream.csv").exists()


def test_build_refuses_a_checkpoint_larger_than_a_flash_slot(tmp_path):
    """The whole mcunet-5fps trained at 1/1 is far beyond a 96 KB slot: a clear error with
    the figures, unless checkpoints are turned off."""
    from compiler.frontend import models
    from compiler.sparse import heads
    g = heads.replace_head(models.load("mcunet-5fps"), 10, init="seeded", seed=0)
    g = heads.with_input_size(g, 48)
    prog = ad.build_program(g, ad.last_blocks(g, 1))
    with pytest.raises(firmware.BudgetError, match=r"a checkpoint of this plan needs [\d,]+ bytes .* holds 98,304"):
        firmware.build(g, "host", tmp_path / "fw", program=prog, config=tr.TrainConfig(**CFG),
                       app=firmware.DEVICE_APP, quiet=True)


def test_stream_verify_replays_any_firmware_on_the_reference(fw, tmp_path, capsys):
    """--verify BUILD_DIR: the board's predictions and trained arrays against the reference
    replay of the pass, from what the build saved; a tampered model is caught."""
    args = COMMON[:4] + ["--limit", "120", "--history", "3", "--no-progress", "--reset"]
    status = stream.main(args + ["--boot", f"host:{fw.exe}", "--out", str(tmp_path / "a"),
                                 "--verify", str(fw.dir / "fw")])
    out = capsys.readouterr().out
    assert status == 0
    assert "verify: adapting pass: predictions identical (120/120); trained arrays identical" in out
    from compiler.ir import graph_io
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("training.json", "report.json"):
        (bad / f).write_text((fw.dir / "fw" / f).read_text())
    g = graph_io.load(fw.dir / "fw" / "train_model.json")
    w = g.node("classifier").params["weight"]
    w.flat[0] = -w.flat[0] if w.flat[0] else 5
    graph_io.save(g, bad / "train_model.json")
    status = stream.main(args + ["--boot", f"host:{fw.exe}", "--out", str(tmp_path / "b"),
                                 "--verify", str(bad)])
    out = capsys.readouterr().out
    assert status == stream.EXIT_DEVICE and "DIFFER" in out
