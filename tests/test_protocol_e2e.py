"""Serial protocol end to end: host/protocol.py's Client against the protocol test
firmware (runtime_c/apps/proto_test: the device loop + a small int8 nearest-centroid
learner), on the host build (serial line on a pty) and on QEMU (socket://).

Every test boots a fresh device and ends with EXIT, checking the exit code: the device
must still be serving after whatever the test threw at it. SAMPLE results are replayed
with a numpy model of the learner, with the device's resize reproduced by
protocol.resize_u8.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import struct
import time

import harness
import numpy as np
import pytest
import serial

from host import protocol as P

APP = harness.REPO / "runtime_c" / "apps" / "proto_test" / "main.c"
HASH = "c0ffee00c0ffee00c0ffee00c0ffee00"
# the application chooses its request limit at compile time; QEMU's UART is slow, so the
# QEMU build takes 1 KB requests (the host build keeps the 64x64x3 default)
QEMU_MAX_PAYLOAD = 1032
BOARDS = ["host", pytest.param("qemu", marks=pytest.mark.qemu)]
# reply timeout of the retry test (a lost frame costs one of these); others use 2 s
RETRY_TIMEOUT = {"host": 0.4, "qemu": 0.6}
RUNTIME = [harness.REPO / "runtime_c" / "src" / f for f in (
    "proto/tt_cobs.c", "proto/tt_device.c", "proto/tt_proto.c", "io/tt_resize.c")]


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    d = tmp_path_factory.mktemp("proto_test")
    jobs = {"host": ("host", {}),
            "qemu": ("qemu-mps2-an500", {"TT_PROTO_MAX_PAYLOAD": QEMU_MAX_PAYLOAD})}
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = {k: ex.submit(harness.build_firmware, b, [APP], d / k, defines=defs,
                             runtime_srcs=RUNTIME) for k, (b, defs) in jobs.items()}
        return {k: f.result() for k, f in futs.items()}


class Device:
    def __init__(self, board, runner, port):
        self.board, self.runner, self.port = board, runner, port

    def client(self, **kw) -> P.Client:
        kw.setdefault("timeout", 2.0)
        return P.Client(self.port, **kw)

    def finish(self, client: P.Client | None = None):
        """EXIT and check the device exits cleanly with that code."""
        (client or self.client()).exit(7)
        r = self.runner.wait(20)
        assert r.exit_code == 7, r.describe()


@contextlib.contextmanager
def device(firmware, board):
    runner = (harness.HostSerial if board == "host" else harness.QemuSerial)(firmware[board], timeout=60)
    with runner as r:
        port = serial.serial_for_url(r.url, timeout=0.02)
        try:
            yield Device(board, r, port)
        finally:
            port.close()
            if r.result is None and r._p.poll() is None:
                r._p.kill()          # the test failed before EXIT: do not wait for it


def read_reply(port, timeout=2.0) -> P.Packet:
    """One reply frame straight off the line (for raw, hand-made requests)."""
    reader, deadline = P.FrameReader(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = port.read(max(1, port.in_waiting or 0))
        frames = reader.feed(data) if data else []
        if frames:
            assert len(frames) == 1, frames
            return P.Packet.decode(P.decode_frame(frames[0]))
    raise AssertionError("no reply")


def assert_silent(port, quiet=0.15):
    time.sleep(quiet)
    assert not port.read(max(1, port.in_waiting or 0)), "unexpected extra reply"


# ---- numpy model of the test learner (see runtime_c/apps/proto_test/main.c) -------------

class LearnerRef:
    K, F = 4, 48

    def __init__(self):
        self.cent = np.zeros((self.K, self.F), np.int64)
        self.n = np.zeros(self.K, np.int64)
        self.lr_q8, self.every, self.enabled, self.seen, self.samples = 128, 1, 1, 0, 0

    @staticmethod
    def features(x):                      # x: (16, 16, 3) uint8
        s = (x.astype(np.int64) - 128).reshape(4, 4, 4, 4, 3).sum(axis=(1, 3))
        return ((s + 8) >> 4).reshape(-1)

    def sample(self, img, label, bilinear, train):
        x = P.resize_u8(img, 16, 16, 3, P.RESIZE_BILINEAR if bilinear else P.RESIZE_NEAREST)
        f = self.features(x)
        d = ((f[None, :] - self.cent) ** 2).sum(axis=1)
        live = self.n > 0
        pred = int(np.flatnonzero(live)[np.argmin(d[live])]) if live.any() else 0
        q = np.where(live, np.maximum(-127, -((d + 8) >> 4)), -128).astype(np.int8)
        loss = None
        if label is not None:
            lg = np.float32(0.25) * q.astype(np.float32)
            m = lg.max()
            loss = float(m + np.log(np.exp(lg - m).sum()) - lg[label])
        trained = False
        if label is not None and train and self.enabled:
            self.seen += 1
            if self.seen % self.every == 0:
                if self.n[label] == 0:
                    self.cent[label] = f
                else:
                    c = self.cent[label]
                    self.cent[label] = np.clip(c + (((f - c) * self.lr_q8 + 128) >> 8), -128, 127)
                self.n[label] += 1
                trained = True
        self.samples += 1
        return pred, q, loss, trained


def class_images(rng, n):
    """Noisy views of four 12x12 prototypes at random sizes, some in grayscale."""
    protos = rng.integers(0, 256, (4, 12, 12, 3), dtype=np.uint8)
    out = []
    for _ in range(n):
        k = int(rng.integers(4))
        h, w = int(rng.integers(3, 13)), int(rng.integers(3, 13))
        img = P.resize_u8(protos[k], h, w, 3, P.RESIZE_BILINEAR).astype(np.int64)
        img = np.clip(img + rng.integers(-30, 31, img.shape), 0, 255).astype(np.uint8)
        if rng.random() < 0.3:
            img = P.resize_u8(img, h, w, 1)[:, :, 0]          # grayscale input, (h, w)
        out.append((img, k))
    return out


# ---- tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("board", BOARDS)
def test_hello_info_and_model_hash(firmware, board):
    with device(firmware, board) as dev:
        c = dev.client()
        info = c.hello()
        assert (info.in_h, info.in_w, info.in_c, info.num_classes) == (16, 16, 3, 4)
        assert info.model_hash == HASH and info.proto_version == P.PROTO_VERSION
        assert info.board == {"host": "host", "qemu": "qemu-mps2-an500"}[board]
        assert info.max_payload == (P.PROTO_DEFAULT_MAX_PAYLOAD if board == "host" else QEMU_MAX_PAYLOAD)
        assert info.max_reply == P.PROTO_DEFAULT_MAX_REPLY
        assert info.trainable_bytes == 216 and "centroid" in info.plan
        assert all(info.supports(t) for t in range(1, P.MSG_LAST_REQUEST + 1))
        assert c.check_model(HASH.upper()) == info

        # a host expecting another model refuses to stream to this one
        wrong = dev.client(expected_hash="0123456789abcdef")
        img = np.zeros((4, 4), np.uint8)
        with pytest.raises(P.ModelMismatch, match="refusing"):
            wrong.sample(img, 1)
        with pytest.raises(P.ModelMismatch):
            wrong.upload(b"\x00" * 216)
        with pytest.raises(P.ModelMismatch):
            wrong.check_model()
        s = c.stats()
        assert s.samples == 0, "a refused SAMPLE must never reach the device"
        assert s.frames_ok == 5 + 1 and s.frame_errors == 0   # five HELLOs + this STATS
        # the right hash: the checked client streams
        right = dev.client(expected_hash=HASH)
        assert right.sample(img, 1).labelled
        dev.finish(c)


@pytest.mark.parametrize("board", BOARDS)
def test_sample_semantics_replayed_in_numpy(firmware, board):
    rng = np.random.default_rng(11 if board == "host" else 12)
    ref = LearnerRef()
    with device(firmware, board) as dev:
        c = dev.client(expected_hash=HASH)
        labelled = correct = trained = 0
        for i, (img, k) in enumerate(class_images(rng, 40 if board == "host" else 24)):
            if i == 15:
                c.set("lr", 0.75)
                ref.lr_q8 = 192
            if i == 20:
                c.set("train_every", 2)
                ref.every = 2
            label = None if rng.random() < 0.2 else k
            bilinear, train = bool(rng.random() < 0.5), bool(rng.random() < 0.85)
            r = c.sample(img, label, logits=True, bilinear=bilinear, train=train)
            pred, q, loss, tr = ref.sample(img, label, bilinear, train)
            assert r.pred == pred, i
            np.testing.assert_array_equal(r.logits_q, q)
            assert r.trained == tr and r.labelled == (label is not None), i
            assert r.correct == (label is not None and pred == label)
            assert r.sample_index == i + 1
            assert (r.loss is None) == (loss is None)
            if loss is not None:
                assert r.loss == pytest.approx(loss, rel=1e-5, abs=1e-5)
            np.testing.assert_allclose(r.logits, q.astype(np.float32) * 0.25)
            labelled += label is not None
            correct += r.correct
            trained += tr
        s = c.stats()
        assert (s.samples, s.labelled, s.correct, s.trained) == (ref.samples, labelled, correct, trained)
        assert s.duplicates == 0 and s.frame_errors == 0
        assert correct > labelled // 2, "the learner should learn something"
        # the device's state image is the numpy model's
        state = c.download()
        n = np.frombuffer(state, "<u4", 4, 8)
        cent = np.frombuffer(state, np.int8, 4 * 48, 24).reshape(4, 48)
        np.testing.assert_array_equal(n, ref.n)
        np.testing.assert_array_equal(cent, ref.cent)
        dev.finish(c)


@pytest.mark.parametrize("board", BOARDS)
def test_duplicate_sample_is_not_trained_twice(firmware, board):
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    with device(firmware, board) as dev:
        frame = P.Packet(P.MSG_SAMPLE, 500, P.sample_payload(img, 2)).frame()
        dev.port.write(frame)
        first = read_reply(dev.port)
        assert first.type == P.MSG_RESULT and P.Result.parse(first.payload).trained
        for _ in range(2):                          # the host "did not get" the reply
            dev.port.write(frame)
            assert read_reply(dev.port) == first   # the same reply, not a second training
        # the same seq with another payload is a new request
        dev.port.write(P.Packet(P.MSG_SAMPLE, 500, P.sample_payload(img, 1)).frame())
        second = P.Result.parse(read_reply(dev.port).payload)
        assert second.sample_index == 2 and second.trained and second.pred == 2
        c = dev.client()
        s = c.stats()
        assert (s.samples, s.trained, s.duplicates) == (2, 2, 2)
        dev.finish(c)


class LossyPort:
    """A pyserial port that drops or damages chosen frames, to exercise retries."""

    def __init__(self, port):
        self.port = port
        self.drop_writes = self.corrupt_writes = self.corrupt_reads = 0

    timeout = property(lambda self: self.port.timeout,
                       lambda self, v: setattr(self.port, "timeout", v))
    in_waiting = property(lambda self: self.port.in_waiting)

    def write(self, data):
        if self.drop_writes:
            self.drop_writes -= 1
            return len(data)
        if self.corrupt_writes:
            self.corrupt_writes -= 1
            b = bytearray(data)
            i = len(b) // 2
            while b[i] in (0, 0x40):
                i += 1
            b[i] ^= 0x40
            data = bytes(b)
        return self.port.write(data)

    def read(self, n):
        data = self.port.read(n)
        if data and self.corrupt_reads:
            b = bytearray(data)
            for i, x in enumerate(b):
                if x not in (0, 0x40):
                    b[i] ^= 0x40
                    self.corrupt_reads -= 1
                    break
            data = bytes(b)
        return data

    def flush(self):
        self.port.flush()


@pytest.mark.parametrize("board", BOARDS)
def test_retries_resend_the_same_seq(firmware, board):
    img = np.full((6, 6, 3), 200, np.uint8)
    with device(firmware, board) as dev:
        lossy = LossyPort(dev.port)
        c = P.Client(lossy, timeout=RETRY_TIMEOUT[dev.board], retries=3)
        c.hello()
        base = c.stats()

        def sample_with(**damage):
            for k, v in damage.items():
                setattr(lossy, k, v)
            sends = c.counters.sends
            r = c.sample(img, 3)
            assert r.trained
            return c.counters.sends - sends

        # the reply arrives damaged: the request is resent with the same seq and the
        # device answers from its cache
        assert sample_with(corrupt_reads=1) == 2 and c.counters.bad_frames == 1
        # the request is lost: timeout, resend, executed once
        assert sample_with(drop_writes=1) == 2 and c.counters.timeouts == 1
        # the request arrives damaged: the device reports a transmission error, resend
        assert sample_with(corrupt_writes=1) == 2
        # everything lost twice in a row, then fine
        assert sample_with(drop_writes=1, corrupt_reads=1) == 3
        s = c.stats()
        assert s.samples - base.samples == 4 and s.trained - base.trained == 4
        assert s.duplicates - base.duplicates == 2       # the two damaged replies
        assert s.frame_errors - base.frame_errors == 1   # the damaged request
        # a dead line: bounded retries, then a clear error
        lossy.drop_writes = 10
        t0 = time.monotonic()
        with pytest.raises(P.ReplyTimeout, match="after 3 attempts"):
            c.request(P.MSG_STATS, timeout=0.2, retries=2)
        assert time.monotonic() - t0 < 2
        lossy.drop_writes = 0
        c.drain()
        assert c.stats().samples == s.samples
        dev.finish(c)


@pytest.mark.parametrize("board", BOARDS)
def test_bad_frames_get_an_error_and_the_device_keeps_running(firmware, board):
    with device(firmware, board) as dev:
        c = dev.client(retries=0)
        info = c.hello()
        port = dev.port
        good = P.Packet(P.MSG_STATS, 4242).frame()
        flipped = bytearray(P.Packet(P.MSG_STATS, 4243, b"\x01").encode())
        flipped[6] ^= 0x02                                  # a bit error in the payload
        raw_cases = [
            (b"\x00this is not a frame\x00", {P.ERR_COBS, P.ERR_SHORT, P.ERR_CRC}),
            (good[:len(good) // 2] + b"\x00", {P.ERR_COBS, P.ERR_SHORT, P.ERR_CRC}),  # truncated
            (b"\x00\x01\x01\x00", {P.ERR_SHORT}),                                       # 2 zero bytes
            (b"\x00" + P.cobs.encode(bytes(flipped)) + b"\x00", {P.ERR_CRC}),
            (P.Packet(P.MSG_ECHO, 1, bytes(info.max_payload + 1)).frame(), {P.ERR_TOO_LONG}),
            (b"\x00" + b"\x55" * (info.max_payload + 300) + b"\x00", {P.ERR_TOO_LONG}),
        ]
        for data, codes in raw_cases:
            port.write(data)
            rep = read_reply(port)
            assert rep.type == P.MSG_ERROR
            e = P.parse_error(rep.payload)
            assert e.code in codes, (data[:20], e)
        assert_silent(port)
        # intact packets that cannot be executed
        bad_version = P.Packet(P.MSG_STATS, 77, b"", version=9).encode()
        raw = bytearray(P.Packet(P.MSG_STATS, 78).encode())
        raw[4] = 5                                           # len field says 5, carries 0
        raw[-2:] = struct.pack("<H", P.crc16(bytes(raw[:-2])))
        for pkt, code in [(bad_version, P.ERR_VERSION), (bytes(raw), P.ERR_LENGTH)]:
            port.write(b"\x00" + P.cobs.encode(pkt) + b"\x00")
            assert P.parse_error(read_reply(port).payload).code == code
        semantic = [
            (0x42, b"", P.ERR_UNKNOWN_TYPE),
            (P.MSG_SAMPLE, P.SAMPLE_STRUCT.pack(1, 0, 3, 4, 4) + bytes(47), P.ERR_PAYLOAD),
            (P.MSG_SAMPLE, P.sample_payload(np.zeros((2, 2), np.uint8), 4), P.ERR_PAYLOAD),
            (P.MSG_SAMPLE, P.SAMPLE_STRUCT.pack(1, 0, 2, 2, 2) + bytes(8), P.ERR_PAYLOAD),
            (P.MSG_SAMPLE, P.SAMPLE_STRUCT.pack(1, 0x80, 1, 1, 1) + bytes(1), P.ERR_PAYLOAD),
            (P.MSG_RESTORE, b"", P.ERR_STATE),
            (P.MSG_UPLOAD, P.UPLOAD_STRUCT.pack(0, 0, 0) + b"x", P.ERR_STATE),
            (P.MSG_DOWNLOAD, P.DOWNLOAD_STRUCT.pack(0, 0, 217, 10), P.ERR_OFFSET),
        ]
        if info.max_reply < info.max_payload:
            semantic.append((P.MSG_ECHO, bytes(info.max_reply + 1), P.ERR_PAYLOAD))
        for typ, payload, code in semantic:
            with pytest.raises(P.DeviceError) as ei:
                c.request(typ, payload)
            assert ei.value.code == code and ei.value.req_type == typ, ei.value
        n = min(info.max_reply, info.max_payload) // 2
        assert c.echo(b"\x00\x01" * n) == b"\x00\x01" * n
        s = c.stats()
        assert s.frame_errors == len(raw_cases) and s.samples == 0
        assert c.hello() == info
        dev.finish(c)


@pytest.mark.parametrize("board", BOARDS)
def test_settings_checkpoints_and_blob_transfer(firmware, board):
    rng = np.random.default_rng(5)
    imgs = class_images(rng, 8)
    with device(firmware, board) as dev:
        c = dev.client(expected_hash=HASH)
        c.set("lr", 0.25)
        assert c.get("lr") == 0.25 and c.get("name") == "proto_test"
        c.set("train_every", 1)
        assert c.get("train_every") == 1
        for key, value, code in [("lr", 2.0, P.ERR_VALUE), ("lr", 1, P.ERR_VALUE),
                                 ("train_every", 0, P.ERR_VALUE), ("history", 5, P.ERR_KEY)]:
            with pytest.raises(P.DeviceError) as ei:
                c.set(key, value)
            assert ei.value.code == code, (key, value)
        with pytest.raises(P.DeviceError, match="no checkpoint"):
            c.restore()
        initial = c.download()
        for img, k in imgs[:4]:
            c.sample(img, k)
        assert c.save() == 1
        a = c.download(chunk=50)
        assert a != initial and len(a) == 216
        for img, k in imgs[4:]:
            c.sample(img, k)
        b = c.download()
        assert b != a
        assert c.restore() == 1 and c.download() == a
        c.upload(b, chunk=64)
        assert c.download() == b
        with pytest.raises(P.DeviceError) as ei:              # not a state image
            c.upload(b"\x00" * 216)
        assert ei.value.code == P.ERR_VALUE
        with pytest.raises(P.DeviceError) as ei:              # wrong size
            c.upload(b[:100])
        assert ei.value.code == P.ERR_VALUE
        # a chunk lost on the way: crc32 over the blob catches it at UPLOAD_END
        c.request(P.MSG_UPLOAD_BEGIN, P.UPLOAD_BEGIN_STRUCT.pack(0, 0, 216, P.crc32(a)))
        c.request(P.MSG_UPLOAD, P.UPLOAD_STRUCT.pack(0, 0, 0) + a[:100])
        with pytest.raises(P.DeviceError) as ei:              # out of order
            c.request(P.MSG_UPLOAD, P.UPLOAD_STRUCT.pack(0, 0, 150) + a[150:])
        assert ei.value.code == P.ERR_OFFSET and ei.value.arg == 100
        c.request(P.MSG_UPLOAD, P.UPLOAD_STRUCT.pack(0, 0, 100) + bytes(116))
        with pytest.raises(P.DeviceError) as ei:
            c.request(P.MSG_UPLOAD_END, b"\x00")
        assert ei.value.code == P.ERR_BLOB_CRC
        assert c.download() == b, "a rejected upload must not change the weights"
        c.reset()
        assert c.download() == initial
        assert c.stats().samples == 8
        c.reset(weights=False, stats=True)
        assert c.stats().samples == 0
        dev.finish(c)


@pytest.mark.parametrize("board", BOARDS)
def test_seq_wraps_around(firmware, board):
    with device(firmware, board) as dev:
        c = dev.client(seq=0xFFFD)
        for _ in range(6):
            c.stats()
        assert c.seq == 3 and c.counters.sends == 6
        dev.finish(c)


def test_largest_sample_on_host(firmware):
    """The default limit carries a 64x64x3 SAMPLE; one byte more is refused."""
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with device(firmware, "host") as dev:
        c = dev.client(expected_hash=HASH)
        r = c.sample(img, 0, bilinear=True)
        assert r.trained and r.pred == 0
        assert len(P.sample_payload(img)) == c.info.max_payload
        with pytest.raises(P.ProtocolError, match="exceeds"):
            c.echo(bytes(c.info.max_payload + 1))     # refused by the host before sending
        c.info.max_payload += 1                        # pretend: now the device refuses
        with pytest.raises(P.DeviceError, match="frame too long") as ei:
            c.request(P.MSG_ECHO, bytes(c.info.max_payload), retries=1)
        assert ei.value.code == P.ERR_TOO_LONG and ei.value.arg == c.info.max_payload - 1
        c.info.max_payload -= 1
        assert c.stats().frame_errors == 2
        dev.finish(c)
