"""host/stream.py (the streaming CLI), host/shifts.py, compiler/frontend/datasets.py, host/plots.py.

The CLI runs end to end against the protocol test firmware (runtime_c/apps/proto_test,
a small int8 nearest-centroid learner) on the host board (pty) and on QEMU (socket://).
Its predictions are replayed with the numpy model of that learner on the very images the
stream prepares, so the test also checks what was sent (channels, size, shifts) and the
train / no-train flags.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import json
import os
import re
import subprocess
import sys

import harness
import numpy as np
import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from test_protocol_e2e import HASH, QEMU_MAX_PAYLOAD, RUNTIME, LearnerRef

from compiler.frontend import datasets as D
from host import protocol as P
from host import shifts as S
from host import stream

APP = harness.REPO / "runtime_c" / "apps" / "proto_test" / "main.c"
HYP = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
RESULT_RE = re.compile(r"^(?:(frozen|on-device) (\d+\.\d)%)(?: -> (on-device) (\d+\.\d)%)? "
                       r"\(n=(\d+)\)$")


# ---- shifts -----------------------------------------------------------------------------------
def images(max_side=12):
    shape = st.tuples(st.integers(1, max_side), st.integers(1, max_side),
                      st.sampled_from([0, 1, 3])).map(lambda t: t[:2] if t[2] == 0 else t)
    return shape.flatmap(lambda s: hnp.arrays(np.uint8, s))


@settings(max_examples=60, **HYP)
@given(img=images(), radius=st.floats(0, 20), gain=st.floats(0, 8), add=st.floats(-50, 100),
       corner=st.sampled_from(S.CORNERS))
def test_spotlight_changes_exactly_the_spot(img, radius, gain, add, corner):
    out = S.spotlight(img, radius, gain, corner, add)
    assert out.shape == img.shape and out.dtype == np.uint8
    m = S.spotlight_mask(img.shape[0], img.shape[1], radius, corner)
    np.testing.assert_array_equal(out[~m], img[~m])
    np.testing.assert_array_equal(out[m], np.clip(np.rint(img[m] * gain + add), 0, 255))
    # the spot is where it says: the corner pixel is in it, and its size follows radius
    cy = {"ul": 0, "ur": 0, "ll": img.shape[0] - 1, "lr": img.shape[0] - 1}.get(corner)
    if cy is not None:
        cx = 0 if corner in ("ul", "ll") else img.shape[1] - 1
        assert m[cy, cx]
        yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
        assert np.array_equal(m, (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2)
    np.testing.assert_array_equal(S.spotlight(img, radius, gain, corner, add), out)


def test_spotlight_study_setting():
    """radius 32 px, gain 4, upper left on a 32x32 image: a quarter disc brightened 4x."""
    img = np.full((32, 32, 3), 40, np.uint8)
    out = S.ShiftChain.parse("spotlight:radius=32,gain=4,corner=ul")(img)
    assert out[0, 0, 0] == 160 and out[31, 31, 0] == 40 and out[0, 31, 0] == 160
    assert out[22, 22, 0] == 160 and out[23, 23, 0] == 40          # 22*sqrt2 < 32 < 23*sqrt2
    assert (out == 160).mean() == pytest.approx(np.pi / 4, abs=0.05)
    # percent of the side, resolved per image size
    pct = S.ShiftChain.parse("spotlight:50%,2,lr")
    assert np.array_equal(pct(img), S.spotlight(img, 16, 2, "lr"))


@settings(max_examples=60, **HYP)
@given(img=images(), factor=st.floats(0, 4))
def test_brightness(img, factor):
    out = S.brightness(img, factor)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.clip(np.rint(img * factor), 0, 255))
    np.testing.assert_array_equal(S.brightness(img, 1.0), img)


@settings(max_examples=60, **HYP)
@given(img=images(), k=st.integers(-4, 4))
def test_rotation_by_right_angles_is_exact(img, k):
    out = S.rotation(img, 90 * k)
    assert out.shape == img.shape and out.dtype == np.uint8
    if k % 2 == 0 or img.shape[0] == img.shape[1]:
        # counter-clockwise as displayed, like np.rot90
        np.testing.assert_array_equal(out, np.rot90(img, k))


@settings(max_examples=40, **HYP)
@given(img=images(), deg=st.floats(-360, 360), fill=st.integers(0, 255))
def test_rotation_any_angle(img, deg, fill):
    out = S.rotation(img, deg, fill)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(S.rotation(img, deg, fill), out)
    np.testing.assert_array_equal(S.rotation(img, 0.0), img)
    # the centre pixel of an odd-sized image stays put
    h, w = img.shape[:2]
    if h % 2 and w % 2:
        np.testing.assert_array_equal(out[h // 2, w // 2], img[h // 2, w // 2])


def test_rotation_direction_and_fill():
    img = np.zeros((9, 9), np.uint8)
    img[4, 8] = 255                                        # right of the centre
    out = S.rotation(img, 90)
    assert out[0, 4] == 255 and out.sum() == 255          # -> above the centre
    out = S.rotation(np.full((9, 9), 100, np.uint8), 45, fill=7)
    assert out[0, 0] == 7 and out[4, 4] == 100


@settings(max_examples=40, **HYP)
@given(img=images(), std=st.floats(0, 50), seed=st.integers(0, 2**31), index=st.integers(0, 10**6))
def test_noise_is_deterministic_per_seed_and_index(img, std, seed, index):
    chain = S.ShiftChain.parse([f"noise:{std!r}"], seed=seed)
    out = chain(img, index)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(S.ShiftChain.parse([f"noise:std={std!r}"], seed=seed)(img, index), out)
    assert np.abs(out.astype(int) - img).max() <= max(1, 10 * std)


def test_noise_statistics_and_independence():
    img = np.full((64, 64), 128, np.uint8)
    chain = S.ShiftChain.parse("noise:10", seed=3)
    a, b = chain(img, 0), chain(img, 1)
    assert not np.array_equal(a, b)                       # another sample, other noise
    assert abs(a.mean() - 128) < 1 and abs(a.std() - 10) < 0.6
    np.testing.assert_array_equal(S.ShiftChain.parse("noise:0")(img, 5), img)


def test_chain_parsing_and_order():
    chain = S.ShiftChain.parse(["brightness:0.5+rotation:90", "spotlight:radius=2,gain=3,corner=ur,add=1"])
    assert [s.name for s in chain.shifts] == ["brightness", "rotation", "spotlight"]
    img = np.arange(25, dtype=np.uint8).reshape(5, 5) * 5
    expect = S.spotlight(S.rotation(S.brightness(img, 0.5), 90), 2, 3, "ur", 1)
    np.testing.assert_array_equal(chain(img, 0), expect)
    for s in chain.shifts:                                # describe() parses back
        assert S.parse_one(s.describe()) == s
    assert S.parse_one("spotlight:32,4,ul") == S.parse_one("spotlight:radius=32,gain=4,corner=ul")
    assert not S.ShiftChain.parse([]) and S.ShiftChain.parse([]).describe() == "none"


@pytest.mark.parametrize("spec, msg", [
    ("blur:3", "unknown shift 'blur'"),
    ("spotlight:gain=4", "needs radius"),
    ("spotlight:radius=3,corner=middle", "corner"),
    ("spotlight:radius=3,size=2", "unknown parameter 'size'"),
    ("brightness:bright", "not a number"),
    ("brightness:-1", ">= 0"),
    ("noise", "needs std"),
    ("noise:1,2", "unexpected value"),
    ("rotation:10,fill=300", "fill"),
])
def test_shift_errors_are_clear(spec, msg):
    with pytest.raises(S.ShiftError, match=re.escape(msg)):
        S.ShiftChain.parse(spec)


# ---- datasets ---------------------------------------------------------------------------------
def test_builtin_datasets():
    m = D.load("mnist")
    assert m.x.shape == (5000, 28, 28) and m.x.dtype == np.uint8 and m.x.max() == 255
    assert np.array_equal(np.bincount(m.y), [500] * 10) and m.classes == list("0123456789")
    d = D.load("digits")
    assert d.x.shape == (1797, 8, 8) and d.x.dtype == np.uint8 and d.x.max() == 255
    assert set(d.y) == set(range(10)) and d.channels == 1
    four = D.select_classes(d, 4)
    assert set(four.y) == {0, 1, 2, 3} and four.classes == ["0", "1", "2", "3"]
    assert len(four) == (d.y < 4).sum()
    np.testing.assert_array_equal(four.x, d.x[d.y < 4])


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_folder_dataset(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "pets"
    _png(root / "dog" / "a.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    _png(root / "dog" / "b.png", rng.integers(0, 256, (10, 12), dtype=np.uint8))
    _png(root / "cat" / "x.png", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    (root / "cat" / "notes.txt").write_text("not an image")
    _png(root / "emu" / "sub" / "e.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    ds = D.load(f"folder:{root}")
    assert ds.classes == ["cat", "dog", "emu"] and list(ds.y) == [0, 1, 1, 2]
    assert ds.x.shape == (4, 20, 24, 3)          # mixed sizes: resized to the first image's
    ds8 = D.load(f"folder:{root}", size=8)
    assert ds8.x.shape == (4, 8, 8, 3)
    gray = tmp_path / "g"
    for k in range(3):
        _png(gray / f"c{k}" / "i.png", np.full((5, 7), 40 * k, np.uint8))
    g = D.load(f"folder:{gray}")
    assert g.x.shape == (3, 5, 7) and list(g.y) == [0, 1, 2] and g.x[2, 0, 0] == 80


def test_npz_dataset(tmp_path):
    x = np.arange(4 * 6 * 5 * 3, dtype=np.uint8).reshape(4, 6, 5, 3)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([7, 3, 7, 9]))
    ds = D.load(f"npz:{tmp_path / 'd.npz'}")
    assert ds.x.shape == (4, 6, 5, 3) and list(ds.y) == [1, 0, 1, 2] and ds.classes == ["3", "7", "9"]
    two = D.select_classes(ds, 2)
    assert list(two.y) == [1, 0, 1] and two.classes == ["3", "7"]
    np.savez(tmp_path / "g.npz", x=x[..., 0], y=np.array([0, 1, 1, 0]), classes=np.array(["no", "yes"]))
    g = D.load(f"npz:{tmp_path / 'g.npz'}")
    assert g.x.shape == (4, 6, 5) and g.classes == ["no", "yes"]


@pytest.mark.parametrize("spec, msg", [
    ("cifar", "unknown dataset 'cifar'"),
    ("folder:", "give a path"),
    ("folder:{tmp}/none", "not found"),
    ("npz:{tmp}/none.npz", "not found"),
    ("npz:{tmp}/bad.npz", "needs arrays 'x'"),
    ("folder:{tmp}/empty", "one subfolder per class"),
])
def test_dataset_errors(tmp_path, spec, msg):
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 3, 3), np.uint8))
    (tmp_path / "empty").mkdir()
    with pytest.raises(D.DatasetError, match=re.escape(msg)):
        D.load(spec.format(tmp=tmp_path))


def test_channel_conversion_matches_the_device():
    rgb = np.random.default_rng(1).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(D.to_channels(rgb, 1), P.resize_u8(rgb, 5, 4, 1)[:, :, 0])
    g = rgb[:, :, 0]
    np.testing.assert_array_equal(D.to_channels(g, 3), P.resize_u8(g, 5, 4, 3))


# ---- the CLI against the protocol test firmware -----------------------------------------------
@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    d = tmp_path_factory.mktemp("stream_fw")
    jobs = {"host": ("host", {}),
            "qemu": ("qemu-mps2-an500", {"TT_PROTO_MAX_PAYLOAD": QEMU_MAX_PAYLOAD})}
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = {k: ex.submit(harness.build_firmware, b, [APP], d / k, defines=defs,
                             runtime_srcs=RUNTIME) for k, (b, defs) in jobs.items()}
        return {k: f.result() for k, f in futs.items()}


@contextlib.contextmanager
def board(firmware, kind):
    runner = (harness.HostSerial if kind == "host" else harness.QemuSerial)(firmware[kind], timeout=60)
    with runner as r:
        try:
            yield r
        finally:
            if r.result is None and r._p.poll() is None:
                r._p.kill()


def finish(r):
    """The device still serves after the streams: EXIT 7 and check it exits so."""
    port = serial.serial_for_url(r.url, timeout=0.02)
    try:
        P.Client(port).exit(7)
    finally:
        port.close()
    assert r.wait(20).exit_code == 7


def run_cli(capsys, argv):
    status = stream.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_outputs(out_dir, stdout, modes, n):
    """CSV, PNG and JSON exist; the printed result line is what the CSV says."""
    rows = read_csv(out_dir / "stream.csv")
    assert [r["mode"] for r in rows] == [m for m in modes for _ in range(n)]
    last = stdout.strip().splitlines()[-1]
    m = RESULT_RE.match(last)
    assert m, last
    printed = {k: float(v) for k, v in zip(m.group(1, 3), m.group(2, 4)) if k}
    assert set(printed) == {stream.MODES[mo] for mo in modes} and int(m.group(5)) == n
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        assert [int(r["index"]) for r in mine] == list(range(n))
        assert all(int(r["correct"]) == (r["pred"] == r["label"]) for r in mine)
        acc = 100.0 * sum(int(r["correct"]) for r in mine) / n
        assert printed[stream.MODES[mode]] == float(f"{acc:.1f}")
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["result"] == last
    for mode in modes:
        s = summary["passes"][mode]
        assert s["n"] == n and s["complete"]
        # the device's own counters agree with the host's
        assert (s["device_stats"]["labelled"], s["device_stats"]["correct"]) == (n, s["correct"])
    with Image.open(out_dir / "accuracy.png") as im:
        assert im.format == "PNG" and im.size[0] > 400 and im.size[1] > 300
    return rows, summary


def replay(argv, rows, mode, lr_q8=128, every=1):
    """The numpy twin of the learner, on the images the stream prepares."""
    args = stream.parse_args(["--port", "unused"] + [str(a) for a in argv])
    ds = stream.load_dataset(args)
    info = P.Info(1, 0xFFFF, 12296, 1088, 16, 16, 3, 4, 0, 0, 0, 0, 0, 0, HASH, "x", "")
    plan = stream.make_plan(args, ds, info)
    ref = LearnerRef()
    ref.lr_q8, ref.every = lr_q8, every
    mine = [r for r in rows if r["mode"] == mode]
    for r, i in zip(mine, plan.order):
        img = plan.image(i)
        assert int(r["dataset_index"]) == i and int(r["label"]) == plan.ds.y[i]
        assert img.shape[:2] == plan.size
        pred, _q, loss, trained = ref.sample(img, int(plan.ds.y[i]), True, mode != "frozen")
        assert (int(r["pred"]), int(r["trained"])) == (pred, trained), r
        assert float(r["loss"]) == pytest.approx(loss, rel=1e-4, abs=1e-4)
    return plan


def test_cli_compare_on_host_board(firmware, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--dataset", "digits", "--classes", "4", "--limit", 80, "--size", 12, "--rgb",
            "--shift", "spotlight:radius=6,gain=3,corner=ul,add=40+rotation:10", "--shift", "noise:6",
            "--seed", 5, "--lr", 0.25, "--history", 16, "--epochs", 2, "--train-every", 1]
    with board(firmware, "host") as r:
        status, stdout, err = run_cli(capsys, ["--port", r.url, "--compare", "--out", out,
                                               "--expect-hash", HASH.upper(), "--save", *argv])
        assert status == 0, err
        assert "checkpoint 1 on the device" in stdout
        rows, summary = check_outputs(out, stdout, ["frozen", "adapting"], 80)
        finish(r)
    # frozen: never trained (all predictions are class 0 after RESET); adapting: learns
    assert all(x["trained"] == "0" for x in rows[:80]) and all(x["trained"] == "1" for x in rows[80:])
    assert all(x["pred"] == "0" for x in rows[:80])
    acc = {k: v["accuracy"] for k, v in summary["passes"].items()}
    assert acc["adapting"] > acc["frozen"] + 20
    # the device restarts its sample count after each RESET
    assert [int(x["device_index"]) for x in rows] == list(range(1, 81)) * 2
    # unknown settings are skipped with a warning, known ones applied
    assert "'history'" in err and "'epochs'" in err and "skipped" in err
    assert summary["settings"]["lr"] == 0.25 and summary["settings"]["train_every"] == 1
    assert "acc " in err                                     # the progress bar ran
    plan = replay(argv, rows, "frozen")
    replay(argv, rows, "adapting", lr_q8=64)
    assert plan.size == (12, 12) and plan.channels == 3
    assert summary["dataset"]["shift"] == plan.shifts.describe()


@pytest.mark.qemu
def test_cli_on_qemu_over_a_socket(firmware, tmp_path, capsys):
    out = tmp_path / "q"
    argv = ["--dataset", "mnist", "--classes", "4", "--limit", 30, "--gray",
            "--shift", "brightness:0.8", "--seed", 1]
    with board(firmware, "qemu") as r:
        assert r.url.startswith("socket://")
        status, stdout, err = run_cli(capsys, ["--port", r.url, "--out", out, "--reset",
                                               "--no-progress", *argv])
        assert status == 0, err
        rows, summary = check_outputs(out, stdout, ["adapting"], 30)
        assert stdout.strip().splitlines()[-1].startswith("on-device ")
        assert summary["device"]["board"] == "qemu-mps2-an500"
        assert summary["dataset"]["size"] == [16, 16] and summary["dataset"]["channels"] == 1
        # a sample larger than the QEMU build accepts is refused before sending
        status, stdout, err = run_cli(capsys, ["--port", r.url, "--out", out, "--size", 20,
                                               "--rgb", "--no-progress", "--dataset", "mnist",
                                               "--classes", 4])
        assert status == stream.EXIT_USAGE and "1208 bytes" in err and "--size" in err
        finish(r)
    replay(argv, rows, "adapting")
    # --boot qemu:ELF starts the emulated board itself, streams over its socket, ends it
    status, stdout, err = run_cli(capsys, ["--boot", f"qemu:{firmware['qemu']}", "--out", out,
                                           "--frozen", "--no-progress", "--dataset", "mnist",
                                           "--classes", 4, "--limit", 8])
    assert status == 0 and "warning" not in err, err       # the board exited with 0
    check_outputs(out, stdout, ["frozen"], 8)
    assert stdout.startswith("device: qemu-mps2-an500")


def test_cli_boot_frozen_subprocess(firmware, tmp_path):
    """`python -m host.stream --boot host:EXE` starts the board, streams, ends it."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"model": "proto_test", "sha256": HASH}))
    out = tmp_path / "b"
    p = subprocess.run([sys.executable, "-m", "host.stream", "--boot", f"host:{firmware['host']}",
                        "--dataset", "mnist", "--classes", "3", "--limit", "25", "--frozen",
                        "--expect-report", str(report), "--out", str(out), "--no-progress"],
                       cwd=harness.REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rows, _ = check_outputs(out, p.stdout, ["frozen"], 25)
    assert p.stdout.strip().splitlines()[-1].startswith("frozen ")
    assert all(r["trained"] == "0" for r in rows)
    assert "warning" not in p.stderr


def test_cli_refuses_another_model_and_reports_device_errors(firmware, tmp_path, capsys):
    out = tmp_path / "e"
    base = ["--dataset", "digits", "--classes", "4", "--limit", 5, "--out", out, "--no-progress"]
    with board(firmware, "host") as r:
        status, stdout, err = run_cli(capsys, ["--port", r.url, "--expect-hash", "0123abcd", *base])
        assert status == stream.EXIT_MODEL
        assert "refusing" in err and "0123abcd" in err and HASH in err
        assert not (out / "stream.csv").exists() and "%" not in stdout
        # a build report with another model: refused too
        rep = tmp_path / "r.json"
        rep.write_text(json.dumps({"sha256": "ff" * 32}))
        status, _, err = run_cli(capsys, ["--port", r.url, "--expect-report", rep, *base])
        assert status == stream.EXIT_MODEL and "refusing" in err
        # a value the device rejects: its ERROR code and text
        status, _, err = run_cli(capsys, ["--port", r.url, "--lr", 5, *base])
        assert status == stream.EXIT_DEVICE
        assert "VALUE (code 11)" in err and "lr must be in (0, 1]" in err
        # more classes than the model has
        status, _, err = run_cli(capsys, ["--port", r.url, *base[:2], *base[4:]])
        assert status == stream.EXIT_USAGE and "--classes 4" in err
        port = serial.serial_for_url(r.url, timeout=0.02)
        try:
            s = P.Client(port).stats()
        finally:
            port.close()
        assert s.samples == 0, "no SAMPLE may reach a refused device"
        finish(r)


class DyingPort:
    """A serial port whose line goes dead after ``writes`` requests."""

    def __init__(self, port, writes):
        self.port, self.writes = port, writes

    timeout = property(lambda self: self.port.timeout,
                       lambda self, v: setattr(self.port, "timeout", v))
    in_waiting = property(lambda self: self.port.in_waiting)

    def write(self, data):
        self.writes -= 1
        if self.writes < 0:
            raise serial.SerialException("device disconnected")
        return self.port.write(data)

    def read(self, n):
        return self.port.read(n)

    def flush(self):
        self.port.flush()

    def close(self):
        self.port.close()


def test_cli_lost_line_keeps_what_was_streamed(firmware, tmp_path, capsys, monkeypatch):
    real_open = stream.open_port
    # HELLO, GET samples (the board's position: this firmware has none), STATS, GET samples,
    # then 12 SAMPLEs get through
    monkeypatch.setattr(stream, "open_port", lambda url, baud: DyingPort(real_open(url, baud), 16))
    out = tmp_path / "l"
    with board(firmware, "host") as r:
        status, stdout, err = run_cli(capsys, ["--port", r.url, "--dataset", "digits", "--classes", 4,
                                               "--limit", 50, "--out", out, "--no-progress"])
        monkeypatch.undo()
        assert status == stream.EXIT_DEVICE
        assert "sample 12 (dataset index" in err and "lost the serial line" in err
        rows = read_csv(out / "stream.csv")
        assert len(rows) == 12
        acc = 100.0 * sum(int(x["correct"]) for x in rows) / 12
        assert stdout.strip().splitlines()[-1] == f"on-device {acc:.1f}% (n=12, incomplete)"
        assert "(stopped early)" in stdout
        summary = json.loads((out / "summary.json").read_text())
        assert summary["passes"]["adapting"]["complete"] is False
        finish(r)


def test_cli_argument_errors(tmp_path, capsys, monkeypatch):
    base = ["--port", "socket://127.0.0.1:9", "--out", tmp_path, "--no-progress"]
    cases = [
        (["--dataset", "cifar"], stream.EXIT_USAGE, "unknown dataset 'cifar'"),
        (["--dataset", f"folder:{tmp_path / 'nope'}"], stream.EXIT_USAGE, "not found"),
        (["--shift", "blur:2"], stream.EXIT_USAGE, "unknown shift 'blur'"),
        (["--expect-report", tmp_path / "none.json"], stream.EXIT_USAGE, "not found"),
        (["--set", "lr"], stream.EXIT_USAGE, "KEY=VALUE"),
    ]
    (tmp_path / "nosha.json").write_text("{}")
    cases.append((["--expect-report", tmp_path / "nosha.json"], stream.EXIT_USAGE, "no 'sha256'"))
    for extra, code, msg in cases:
        status, stdout, err = run_cli(capsys, base + extra)
        assert status == code and msg in err and err.startswith("stream: error:"), (extra, err)
        assert stdout == ""
    # unreachable ports: nothing listens / no such device file
    port = harness.free_port()
    for url in (f"socket://127.0.0.1:{port}", str(tmp_path / "no-such-tty")):
        status, _, err = run_cli(capsys, ["--port", url, "--dataset", "digits", "--out", tmp_path,
                                          "--no-progress"])
        assert status == stream.EXIT_PORT and f"cannot open port {url}" in err
    # a port that opens but where no device answers
    master, slave = os.openpty()
    try:
        monkeypatch.setattr(stream, "HELLO_TIMEOUT", 0.2)
        status, _, err = run_cli(capsys, ["--port", os.ttyname(slave), "--dataset", "digits",
                                          "--out", tmp_path, "--no-progress"])
        assert status == stream.EXIT_PORT and "no device answers" in err and "after 3 attempts" in err
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(SystemExit) as ei:                  # argparse: usage error
        stream.main(["--port", "x", "--frozen", "--compare"])
    assert ei.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    status, _, err = run_cli(capsys, ["--boot", "qemu:" + str(tmp_path / "x.elf")])
    assert status == stream.EXIT_USAGE and "not found" in err


def test_augment_options(capsys):
    """--augment / --augment-shift: shown in --help, checked before anything is sent, and
    forwarded as the device app's SET keys (shift first, then augment); a refusal (firmware
    whose history stores features) is one error line naming the setting."""
    with pytest.raises(SystemExit):
        stream.main(["--help"])
    assert "--augment" in capsys.readouterr().out
    for argv, msg in ((["--augment"], "--augment applies to history rounds: give --history N"),
                      (["--augment-shift", "2", "--history", "4"], "--augment-shift needs --augment"),
                      (["--augment", "--augment-shift", "-1", "--history", "4"], "must be >= 0")):
        with pytest.raises(SystemExit) as ei:
            stream.parse_args(["--port", "x"] + argv)
        assert ei.value.code == 2 and msg in capsys.readouterr().err

    class Client:
        def __init__(self, refuse=None):
            self.sent, self.refuse = [], refuse

        def set(self, key, value):
            if key == self.refuse:
                raise P.DeviceError(P.ERR_VALUE, "augment: history stores features", req_type=P.MSG_SET)
            self.sent.append((key, value))

    info = type("Info", (), {"supports": lambda self, t: True})()
    log = type("Log", (), {"warn": lambda self, m: None})()
    args = stream.parse_args(["--port", "x", "--set", "history=4", "--augment", "--augment-shift", "3"])
    c = Client()
    assert stream.apply_settings(c, info, args, log) == {"augment_shift": 3, "augment": 1, "history": 4}
    assert c.sent == [("augment_shift", 3), ("augment", 1), ("history", 4)]
    with pytest.raises(stream.StreamError, match="rejected augment=1: .*history stores features"):
        stream.apply_settings(Client(refuse="augment"), info,
                              stream.parse_args(["--port", "x", "--history", "4", "--augment"]), log)
    # --verify reads both from the device; firmware without them never augments
    from host import verify as V
    dev = {"history": 4, "augment": 1, "augment_shift": 3}
    assert {k: V.settings_from_device(dev.get)[k] for k in ("augment", "augment_shift")} == \
        {"augment": 1, "augment_shift": 3}
    assert V.settings_from_device({"history": 4}.get)["augment"] == 0


def test_plot_is_written(tmp_path):
    from host.plots import plot_accuracy, running_accuracy, window_accuracy
    c = np.array([0, 1, 1, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(running_accuracy(c), 100 * np.cumsum(c) / np.arange(1, 9))
    np.testing.assert_allclose(window_accuracy(c, 2)[1:], 100 * (c[1:] + c[:-1]) / 2)
    p = plot_accuracy({"frozen": c[::-1], "adapting": c}, tmp_path / "a.png",
                      title="t", subtitle="s", window=3)
    with Image.open(p) as im:
        assert im.format == "PNG"
