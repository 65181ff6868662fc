"""Serial protocol: the Python side (host/protocol.py) and the C side (runtime_c/src/proto,
io/tt_resize.c) without a board.

- the constants of runtime_c/include/tt_proto.h and host/protocol.py agree;
- Python framing / CRC / payload round trips (hypothesis);
- the C code compiled natively with AddressSanitizer + UBSan into tests/c/proto_fuzz.c:
  COBS encoder/decoder against the `cobs` package, tt_resize_u8 bit-exact against
  protocol.resize_u8, and the whole device loop fed hypothesis-generated streams of
  valid, duplicated, bit-flipped, truncated, oversized and garbage frames. A Python
  model of the decoder says what each complete frame must get; the test checks exactly
  one reply per frame, in order, the right error codes, byte-identical replies for
  duplicates and how many times the application's callbacks ran.
End-to-end tests over the host build and QEMU are in tests/test_protocol_e2e.py.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import paths
from host import protocol as P

ROOT = paths.REPO

INCLUDE = ROOT / "runtime_c" / "include"
# the C side: runtime_c/src/proto (tt_proto.c first: it checks the limits) and io/tt_resize.c
RUNTIME_SRCS = [ROOT / "runtime_c" / "src" / "proto" / f for f in ("tt_proto.c", "tt_cobs.c", "tt_device.c")] + [
    ROOT / "runtime_c" / "src" / "io" / "tt_resize.c"]
FUZZ_SRCS = [*RUNTIME_SRCS, ROOT / "tests" / "c" / "proto_fuzz.c"]
# limits of the fuzz build: small, so that oversized frames and truncated replies are cheap
FUZZ_MAX_PAYLOAD = 300
FUZZ_MAX_REPLY = 96
FUZZ_CLASSES = 5
RX_CAP = FUZZ_MAX_PAYLOAD + P.PROTO_OVERHEAD

FAST = settings(max_examples=200, deadline=None)
SLOW = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


# ---- header <-> Python constants --------------------------------------------------------

def _header_ints(path: Path) -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^#define\s+TT_(\w+)\s+(0x[0-9A-Fa-f]+|\d+)u?\b", path.read_text(), re.M):
        out[m.group(1)] = int(m.group(2), 0)
    return out


def test_constants_match_header():
    consts = _header_ints(INCLUDE / "tt_proto.h") | _header_ints(INCLUDE / "tt_resize.h")
    for c_only in ("COBS_MORE", "COBS_FRAME"):     # return codes of the C decoder API
        consts.pop(c_only)
    assert len(consts) > 80
    # the values written in the header are the ones Python uses...
    missing = [k for k in consts if not hasattr(P, k)]
    wrong = {k: (v, getattr(P, k)) for k, v in consts.items() if hasattr(P, k) and getattr(P, k) != v}
    assert not missing, f"constants missing in host/protocol.py: {missing}"
    assert not wrong, f"header vs protocol.py (header, python): {wrong}"
    # ...and every protocol constant of Python exists in the header
    prefixes = ("PROTO_", "MSG_", "ERR_", "SAMPLE_", "RESULT_", "STATS_", "VAL_", "RESET_",
                "RESIZE_", "INFO_", "DOWNLOAD_", "DATA_", "UPLOAD_", "ERROR_", "OK_", "BLOB_",
                "LABEL_", "KEY_")
    extra = [k for k, v in vars(P).items() if k.startswith(prefixes) and isinstance(v, int)
             and not isinstance(v, bool) and k not in consts]
    assert not extra, f"constants only in host/protocol.py: {extra}"
    # struct layouts have the documented sizes
    assert P.INFO_STRUCT.size == P.INFO_FIXED_BYTES
    assert P.SAMPLE_STRUCT.size == P.SAMPLE_HEADER_BYTES
    assert P.RESULT_STRUCT.size == P.RESULT_FIXED_BYTES
    assert P.STATS_STRUCT.size == P.STATS_BYTES
    assert P.ERROR_STRUCT.size == P.ERROR_FIXED_BYTES
    assert P.DOWNLOAD_STRUCT.size == P.DOWNLOAD_BYTES
    assert P.DATA_STRUCT.size == P.DATA_FIXED_BYTES
    assert P.UPLOAD_BEGIN_STRUCT.size == P.UPLOAD_BEGIN_BYTES
    assert P.UPLOAD_STRUCT.size == P.UPLOAD_FIXED_BYTES
    assert P.HEADER_STRUCT.size == P.PROTO_HEADER_BYTES
    assert P.PROTO_DEFAULT_MAX_PAYLOAD == P.SAMPLE_HEADER_BYTES + 64 * 64 * 3


# ---- Python framing ------------------------------------------------------------------------

def test_crc_check_values():
    assert P.crc16(b"123456789") == 0x29B1          # CRC-16/CCITT-FALSE check value
    assert P.crc32(b"123456789") == 0xCBF43926


packets = st.builds(P.Packet, st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=600))


@FAST
@given(packets)
def test_packet_round_trip(pkt):
    frame = pkt.frame()
    assert frame[0] == 0 and frame[-1] == 0 and 0 not in frame[1:-1]
    (got,) = P.parse_frames(frame)
    assert got == pkt
    raw = pkt.encode()
    assert len(raw) == len(pkt.payload) + P.PROTO_OVERHEAD
    assert struct.unpack_from("<H", raw, len(raw) - 2)[0] == P.crc16(raw[:-2])


@FAST
@given(packets, st.data())
def test_corruption_is_detected(pkt, data):
    raw = bytearray(pkt.encode())
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(P.FrameError):    # CRC-16 detects every single-bit error
        P.Packet.decode(bytes(raw))
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(P.FrameError):
        P.Packet.decode(pkt.encode()[:cut])


@FAST
@given(st.lists(packets, max_size=6), st.lists(st.integers(1, 20), max_size=6))
def test_frame_reader_splits_stream_in_chunks(pkts, cuts):
    stream = b"".join(p.frame() for p in pkts)
    r, frames, at = P.FrameReader(), [], 0
    for c in cuts + [len(stream)]:
        frames += r.feed(stream[at:at + c])
        at += c
    assert [P.Packet.decode(P.decode_frame(f)) for f in frames] == pkts


def test_frame_reader_drops_overlong_frames():
    r = P.FrameReader(max_frame=10)
    assert r.feed(b"\x00" + b"\x01" * 50 + b"\x00\x03ab\x00") == [None, b"\x03ab"]


@FAST
@given(st.integers(0, 0xFFFF).map(lambda x: x if x != 0xFFFF else None) | st.none(),
       st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3]), st.integers(0, 7))
def test_payload_round_trips(label, h, w, c, flags):
    img = np.random.default_rng(h * 100 + w).integers(0, 256, (h, w, c), dtype=np.uint8)
    p = P.sample_payload(img, label, flags)
    lab, f, cc, hh, ww = P.SAMPLE_STRUCT.unpack_from(p)
    assert (lab, f, cc, hh, ww) == (P.LABEL_NONE if label is None else label, flags, c, h, w)
    assert p[P.SAMPLE_HEADER_BYTES:] == img.tobytes()
    info = P.Info(1, 0x7FFF, 300, 96, h, w, c, 10, 1, 2, 3, 4, 5, 6, "ab" * 16, "board", "plan")
    assert P.Info.parse(info.pack()) == info
    for v in (7, -3, 0.25, "text"):
        vt, vb = P.encode_value(v)
        assert P.decode_value(vt, vb) == v


# ---- the native build of the C side -------------------------------------------------------

ARM_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"]


@pytest.mark.parametrize("cc,flags", [("gcc", []), ("arm-none-eabi-gcc", ARM_FLAGS)])
def test_runtime_files_compile_cleanly(cc, flags, tmp_path):
    """The protocol files and tt_resize.c are linked into every firmware: no warning with any
    limit an application may choose; an impossible limit is a compile error."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not found")
    srcs = RUNTIME_SRCS + [ROOT / "runtime_c" / "apps" / "proto_test" / "main.c"]
    for defs in ([], ["-DTT_PROTO_MAX_PAYLOAD=64", "-DTT_PROTO_MAX_REPLY=64"],
                 ["-DTT_PROTO_MAX_PAYLOAD=65535", "-DTT_PROTO_MAX_REPLY=65535"]):
        for src in srcs:
            cmd = [cc, *flags, "-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                   *defs, f"-I{INCLUDE}", "-c", str(src), "-o", str(tmp_path / "x.o")]
            p = subprocess.run(cmd, capture_output=True, text=True)
            assert p.returncode == 0, f"{' '.join(defs)} {src.name}:\n{p.stderr}"
    p = subprocess.run([cc, *flags, "-std=c99", "-DTT_PROTO_MAX_PAYLOAD=70000", f"-I{INCLUDE}",
                        "-c", str(FUZZ_SRCS[0]), "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
    assert p.returncode != 0 and "TT_PROTO_MAX_PAYLOAD" in p.stderr


@pytest.fixture(scope="module")
def fuzz_exe(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not found")
    exe = tmp_path_factory.mktemp("proto_fuzz") / "proto_fuzz"
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
           f"-DTT_PROTO_MAX_PAYLOAD={FUZZ_MAX_PAYLOAD}", f"-DTT_PROTO_MAX_REPLY={FUZZ_MAX_REPLY}",
           f"-I{INCLUDE}", *map(str, FUZZ_SRCS), "-o", str(exe)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return exe


def run_driver(exe, mode: str, data: bytes) -> tuple[bytes, str]:
    p = subprocess.run([str(exe), mode], input=data, capture_output=True, timeout=60,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0 and "runtime error" not in err and "Sanitizer" not in err, \
        f"driver {mode} exited {p.returncode}:\n{err[-4000:]}"
    return p.stdout, err


@SLOW
@given(st.lists(st.binary(max_size=800), min_size=1, max_size=8))
def test_c_cobs_encoder_matches_python(fuzz_exe, blobs):
    blobs += [b"\x01" * 254, b"\x01" * 253 + b"\x00", b"\x01" * 254 + b"\x00", b"\x00" * 3, b""]
    out, _ = run_driver(fuzz_exe, "cobs", b"".join(struct.pack("<I", len(b)) + b for b in blobs))
    at = 0
    for b in blobs:
        (m,) = struct.unpack_from("<I", out, at)
        enc = out[at + 4:at + 4 + m]
        at += 4 + m
        assert P.cobs.decode(enc) == b
        assert enc == P.cobs.encode(b)
    assert at == len(out)


def resize_record(img, dh, dw, dc, mode):
    sh, sw, sc = img.shape
    return struct.pack("<HHBHHBB", sh, sw, sc, dh, dw, dc, mode) + img.tobytes()


def check_resize(exe, cases):
    out, _ = run_driver(exe, "resize", b"".join(resize_record(*c) for c in cases))
    at = 0
    for img, dh, dw, dc, mode in cases:
        status = out[at]
        at += 1
        try:
            ref = P.resize_u8(img, dh, dw, dc, mode)
        except ValueError:
            assert status == 1, (img.shape, dh, dw, dc, mode)
            continue
        assert status == 0, (img.shape, dh, dw, dc, mode)
        got = np.frombuffer(out, np.uint8, ref.size, at).reshape(ref.shape)
        at += ref.size
        np.testing.assert_array_equal(got, ref, err_msg=f"{img.shape} -> {(dh, dw, dc)} mode {mode}")
    assert at == len(out)


@SLOW
@given(st.lists(st.tuples(st.integers(1, 24), st.integers(1, 24), st.sampled_from([1, 2, 3, 4]),
                          st.integers(1, 24), st.integers(1, 24), st.sampled_from([1, 2, 3, 4]),
                          st.sampled_from([0, 1, 2]), st.integers(0, 2**32 - 1)),
                min_size=1, max_size=12))
def test_c_resize_matches_numpy(fuzz_exe, shapes):
    cases = []
    for sh, sw, sc, dh, dw, dc, mode, seed in shapes:
        img = np.random.default_rng(seed).integers(0, 256, (sh, sw, sc), dtype=np.uint8)
        cases.append((img, dh, dw, dc, mode))
    check_resize(fuzz_exe, cases)


def test_c_resize_extremes(fuzz_exe):
    rng = np.random.default_rng(3)
    big = rng.integers(0, 256, (1, 2048, 3), dtype=np.uint8)
    tall = rng.integers(0, 256, (2048, 2, 1), dtype=np.uint8)
    ones = np.full((3, 3, 3), 255, np.uint8)
    cases = [(big, 2048, 1, 1, 1), (big, 1, 2048, 3, 0), (big, 7, 2048, 1, 1), (tall, 1, 2048, 3, 1),
             (tall, 2048, 2048 // 8, 1, 0), (ones, 64, 64, 1, 1), (ones, 1, 1, 3, 1),
             (ones, 2049, 1, 3, 0), (ones, 0, 4, 3, 0), (ones, 4, 4, 2, 0)]
    check_resize(fuzz_exe, cases)
    # the gray conversion of white stays white; bilinear of a constant image is constant
    assert P.resize_u8(ones, 5, 5, 1, 1).min() == 255


# ---- fuzzing the device loop ---------------------------------------------------------------

def decoder_model(stream: bytes, cap: int) -> list[tuple[str, bytes]]:
    """What the C streaming decoder reports for each complete non-empty frame:
    ('frame' | 'cobs' | 'too_long', the bytes it decoded, at most cap)."""
    out = []
    buf, remaining, pending, overflow, started = bytearray(), 0, False, False, False
    for b in stream:
        if b == 0:
            if started:
                kind = "too_long" if overflow else "cobs" if remaining else "frame"
                out.append((kind, bytes(buf)))
            buf, remaining, pending, overflow, started = bytearray(), 0, False, False, False
            continue
        started = True
        if remaining == 0:
            if pending:
                if len(buf) < cap:
                    buf.append(0)
                else:
                    overflow = True
            remaining, pending = b - 1, b != 0xFF
        else:
            if len(buf) < cap:
                buf.append(b)
            else:
                overflow = True
            remaining -= 1
    return out


def segments(stream: bytes) -> list[bytes]:
    return [s for s in stream.split(b"\x00")[:-1] if s]


KNOWN = set(range(1, P.MSG_LAST_REQUEST + 1))


def check_device_stream(exe, stream: bytes) -> dict:
    """Run the device loop on ``stream``; check every reply; return counters."""
    out, err = run_driver(exe, "loop", stream)
    model = decoder_model(stream, RX_CAP)
    segs = segments(stream)
    assert len(model) == len(segs)
    replies = segments(out)
    assert len(replies) == len(model), f"{len(model)} frames in, {len(replies)} replies out"
    calls = {"sample": 0, "set": 0, "commit": 0}
    last_key, last_reply = None, None
    for (kind, dec), seg, enc_reply in zip(model, segs, replies):
        raw_reply = P.cobs.decode(enc_reply)
        rep = P.Packet.decode(raw_reply)                       # replies are always valid
        assert len(rep.payload) <= FUZZ_MAX_REPLY
        try:
            py = P.cobs.decode(seg)
        except P.cobs.DecodeError:
            py = None
        if kind == "frame":
            assert py == dec
        elif kind == "cobs":
            assert py is None
        seq_guess = struct.unpack_from("<H", dec, 2)[0] if len(dec) >= 4 else 0

        def expect_error(code, seq=None):
            assert rep.type == P.MSG_ERROR, (kind, dec[:16], rep)
            e = P.parse_error(rep.payload)
            assert e.code == code, (e, dec[:16])
            assert len(e.text) <= P.ERR_TEXT_MAX
            if seq is not None:
                assert rep.seq == seq

        if kind == "too_long":
            expect_error(P.ERR_TOO_LONG, seq_guess)
            continue
        if kind == "cobs":
            expect_error(P.ERR_COBS, seq_guess)
            continue
        if len(dec) < P.PROTO_OVERHEAD:
            expect_error(P.ERR_SHORT, seq_guess)
            continue
        crc = struct.unpack_from("<H", dec, len(dec) - 2)[0]
        if P.crc16(dec[:-2]) != crc:
            expect_error(P.ERR_CRC, seq_guess)
            continue
        version, typ, seq, length = P.HEADER_STRUCT.unpack_from(dec)
        if (seq, crc) == last_key:
            assert raw_reply == last_reply, "a duplicate must get the cached reply"
            continue
        last_key, last_reply = (seq, crc), raw_reply
        assert rep.seq == seq
        if version != P.PROTO_VERSION:
            expect_error(P.ERR_VERSION)
            continue
        if length != len(dec) - P.PROTO_OVERHEAD:
            expect_error(P.ERR_LENGTH)
            continue
        if typ not in KNOWN:
            expect_error(P.ERR_UNKNOWN_TYPE)
            continue
        if rep.type == P.MSG_ERROR:
            e = P.parse_error(rep.payload)
            assert e.code > P.ERR_LAST_TRANSMISSION and e.req_type == typ
            assert len(e.text) <= P.ERR_TEXT_MAX
            if typ == P.MSG_SAMPLE and e.code == P.ERR_APP:
                calls["sample"] += 1
            if typ == P.MSG_SET and e.code in (P.ERR_KEY, P.ERR_VALUE):
                calls["set"] += 1
            continue
        assert rep.type == typ | P.MSG_REPLY_BIT
        body = rep.payload
        if typ == P.MSG_HELLO:
            info = P.Info.parse(body)
            assert (info.max_payload, info.max_reply, info.num_classes) == (FUZZ_MAX_PAYLOAD, FUZZ_MAX_REPLY, FUZZ_CLASSES)
        elif typ == P.MSG_ECHO:
            assert body == dec[P.PROTO_HEADER_BYTES:-2]
        elif typ == P.MSG_SAMPLE:
            calls["sample"] += 1
            r = P.Result.parse(body)
            assert r.pred < FUZZ_CLASSES
            label = struct.unpack_from("<H", dec, P.PROTO_HEADER_BYTES)[0]
            assert r.labelled == (label != P.LABEL_NONE)
        elif typ == P.MSG_STATS:
            P.Stats.parse(body)
        elif typ == P.MSG_SET:
            calls["set"] += 1
            assert len(body) == P.OK_BYTES
        elif typ == P.MSG_UPLOAD_END:
            calls["commit"] += 1
        elif typ == P.MSG_DOWNLOAD:
            assert len(body) >= P.DATA_FIXED_BYTES
    m = re.search(r"calls sample=(\d+) set=(\d+) commit=(\d+)", err)
    assert m, err
    got = dict(zip(("sample", "set", "commit"), map(int, m.groups())))
    assert got == calls, "callbacks ran a different number of times than requests were executed"
    return calls


# strategies for requests ----------------------------------------------------------------
u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1)


@st.composite
def sample_payloads(draw):
    if draw(st.integers(0, 3)) != 2:              # mostly well-formed
        label = draw(st.sampled_from([0, 1, 4, P.LABEL_NONE]))
        flags = draw(st.integers(0, P.SAMPLE_FLAGS_ALL))
        c = draw(st.sampled_from([1, 3]))
        h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        n = h * w * c
    else:
        label = draw(st.sampled_from([0, 5, 999, P.LABEL_NONE]))
        flags = draw(st.sampled_from([0, 8, 0x81]))
        c = draw(st.sampled_from([0, 1, 2, 3, 4, 5]))
        h, w = draw(st.integers(0, 12)), draw(st.integers(0, 12))
        n = max(h * w * c + draw(st.sampled_from([0, -1, 1])), 0)
    return P.SAMPLE_STRUCT.pack(label, flags, c, h, w) + draw(st.binary(min_size=n, max_size=n))


def keyed(key, rest=b""):
    return bytes([len(key)]) + key + rest


valid_set = st.builds(lambda k, v: keyed(k, bytes([P.VAL_I32]) + struct.pack("<i", v)),
                      st.sampled_from([b"k", b"k", b"x"]), st.integers(-5, 5))
requests = st.one_of(
    st.tuples(st.just(P.MSG_HELLO), st.just(b"") | st.binary(max_size=4)),
    st.tuples(st.just(P.MSG_ECHO), st.binary(max_size=120)),
    st.tuples(st.just(P.MSG_SAMPLE), sample_payloads()),
    st.tuples(st.just(P.MSG_SAMPLE), sample_payloads()),
    st.tuples(st.just(P.MSG_STATS), st.sampled_from([b"", b"\x01", b"\x00", b"\x01\x01"])),
    st.tuples(st.just(P.MSG_SET), valid_set | st.builds(keyed, st.sampled_from([b"k", b"x", b"", b"a" * 40]),
                                                        st.binary(max_size=8))),
    st.tuples(st.just(P.MSG_GET), st.builds(keyed, st.sampled_from([b"k", b"long", b"zz"]))
              | st.binary(max_size=6)),
    st.tuples(st.sampled_from([P.MSG_SAVE, P.MSG_RESTORE, P.MSG_RESET, P.MSG_EXIT, P.MSG_UPLOAD_END]),
              st.binary(max_size=2)),
    st.tuples(st.just(P.MSG_DOWNLOAD), st.builds(P.DOWNLOAD_STRUCT.pack, st.sampled_from([0, 1]), u8,
                                                 st.integers(0, 400), st.integers(0, 300))
              | st.binary(max_size=10)),
    st.tuples(st.just(P.MSG_UPLOAD_BEGIN), st.builds(P.UPLOAD_BEGIN_STRUCT.pack, st.sampled_from([0, 1]),
                                                     u8, st.integers(0, 800), u32)),
    st.tuples(st.just(P.MSG_UPLOAD), st.builds(lambda o, d: P.UPLOAD_STRUCT.pack(0, 0, o) + d,
                                               st.integers(0, 400), st.binary(max_size=290))),
    st.tuples(st.integers(0, 255), st.binary(max_size=40)),
)


@st.composite
def packets_for_fuzz(draw):
    typ, payload = draw(requests)
    seq = draw(st.sampled_from([0, 1, 2, 0xFFFF]) | u16)
    version = P.PROTO_VERSION if draw(st.integers(0, 15)) != 7 else draw(st.sampled_from([0, 2, 255]))
    pkt = P.Packet(typ, seq, payload, version)
    raw = pkt.encode()
    if draw(st.integers(0, 15)) == 9:            # a wrong len field with a valid crc
        body = bytearray(raw[:-2])
        body[4:6] = struct.pack("<H", draw(u16))
        raw = bytes(body) + struct.pack("<H", P.crc16(bytes(body)))
    return raw


@st.composite
def streams(draw):
    out = bytearray()
    prev = b"\x00\x05hello\x00"
    for _ in range(draw(st.integers(1, 14))):
        op = draw(st.sampled_from(["frame"] * 6 + ["dup", "dup", "flip", "trunc", "garbage",
                                                   "zeros", "oversize", "nolead"]))
        if op == "dup":
            out += prev
            continue
        if op == "garbage":
            out += draw(st.binary(min_size=1, max_size=60))
            continue
        if op == "zeros":
            out += bytes(draw(st.integers(1, 3)))
            continue
        if op == "oversize":
            raw = P.Packet(P.MSG_ECHO, draw(u16), draw(st.binary(min_size=FUZZ_MAX_PAYLOAD + 1,
                                                                  max_size=FUZZ_MAX_PAYLOAD + 40))).encode()
        else:
            raw = draw(packets_for_fuzz())
        enc = bytearray(P.cobs.encode(raw))
        if op == "flip":
            for _ in range(draw(st.integers(1, 3))):
                i = draw(st.integers(0, len(enc) - 1))
                enc[i] ^= 1 << draw(st.integers(0, 7))
        if op == "trunc":
            enc = enc[:draw(st.integers(0, len(enc) - 1))]
        frame = (b"" if op == "nolead" else b"\x00") + bytes(enc) + b"\x00"
        out += frame
        prev = frame
    if draw(st.booleans()):
        out += draw(st.binary(max_size=20))          # an unterminated tail: no reply
    return bytes(out)


@SLOW
@given(streams())
def test_device_loop_fuzz(fuzz_exe, stream):
    check_device_stream(fuzz_exe, stream)


@FAST
@given(st.lists(packets_for_fuzz(), min_size=1, max_size=12), st.data())
def test_device_loop_valid_requests_and_duplicates(fuzz_exe, raws, data):
    """Only CRC-valid packets, each sent once or repeated: every reply matches, no
    request runs twice."""
    stream = bytearray()
    for raw in raws:
        frame = b"\x00" + P.cobs.encode(raw) + b"\x00"
        stream += frame * data.draw(st.integers(1, 3))
    check_device_stream(fuzz_exe, bytes(stream))


def test_device_loop_random_garbage(fuzz_exe):
    rng = np.random.default_rng(7)
    stream = rng.integers(0, 256, 300_000, dtype=np.uint8)
    stream[rng.random(stream.size) < 0.01] = 0        # frames of ~100 bytes
    stream = stream.tobytes()
    check_device_stream(fuzz_exe, stream)
    # runs of non-zero bytes far beyond the buffer, then one valid request
    ok = P.Packet(P.MSG_HELLO, 77).frame()
    check_device_stream(fuzz_exe, b"\x01" * 70_000 + b"\x00" + b"\xff" * 5000 + ok)


def test_device_loop_upload_download_sequence(fuzz_exe):
    """A complete chunked upload, then downloads of it, through the C loop."""
    blob = bytes(range(256)) * 2 + b"tail"
    frames, seq = [], 100
    chunks = [blob[i:i + 200] for i in range(0, len(blob), 200)]

    def req(t, payload):
        nonlocal seq
        seq += 1
        frames.append(P.Packet(t, seq, payload).frame())

    req(P.MSG_UPLOAD_BEGIN, P.UPLOAD_BEGIN_STRUCT.pack(0, 0, len(blob), P.crc32(blob)))
    off = 0
    for c in chunks:
        req(P.MSG_UPLOAD, P.UPLOAD_STRUCT.pack(0, 0, off) + c)
        off += len(c)
    req(P.MSG_UPLOAD_END, b"\x00")
    for off in range(0, len(blob) + 1, FUZZ_MAX_REPLY - P.DATA_FIXED_BYTES):
        req(P.MSG_DOWNLOAD, P.DOWNLOAD_STRUCT.pack(0, 0, off, 1000))
    req(P.MSG_DOWNLOAD, P.DOWNLOAD_STRUCT.pack(0, 0, len(blob) + 1, 10))      # beyond the end
    req(P.MSG_UPLOAD_BEGIN, P.UPLOAD_BEGIN_STRUCT.pack(0, 0, 4, 0))           # wrong crc32
    req(P.MSG_UPLOAD, P.UPLOAD_STRUCT.pack(0, 0, 0) + b"abcd")
    req(P.MSG_UPLOAD_END, b"\x00")
    stream = b"".join(frames)
    calls = check_device_stream(fuzz_exe, stream)
    assert calls["commit"] == 1
    out, _ = run_driver(fuzz_exe, "loop", stream)
    reps = [P.Packet.decode(P.cobs.decode(s)) for s in segments(out)]
    n_up = len(chunks) + 2
    assert all(r.type != P.MSG_ERROR for r in reps[:n_up])
    assert struct.unpack("<I", reps[n_up - 1].payload)[0] == len(blob)
    got = b"".join(r.payload[P.DATA_FIXED_BYTES:] for r in reps[n_up:-4])
    assert got == blob
    assert P.parse_error(reps[-4].payload).code == P.ERR_OFFSET
    assert P.parse_error(reps[-1].payload).code == P.ERR_BLOB_CRC


def test_duplicate_after_damaged_frames_is_not_reexecuted(fuzz_exe):
    """The retry pattern: a request, then noise (garbage, a truncated and a corrupted
    copy), then the same request again: it is answered from the cache."""
    img = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    frame = P.Packet(P.MSG_SAMPLE, 9, P.sample_payload(img, 1)).frame()
    bad = bytearray(frame)
    bad[-5] ^= 0x10                   # a data byte of the last COBS block: crc error
    stream = frame + b"\x00garbage\x00" + frame[:20] + b"\x00" + bytes(bad) + frame
    stream += P.Packet(P.MSG_STATS, 10).frame()
    calls = check_device_stream(fuzz_exe, stream)
    assert calls["sample"] == 1
    out, _ = run_driver(fuzz_exe, "loop", stream)
    reps = [P.Packet.decode(P.cobs.decode(s)) for s in segments(out)]
    assert len(reps) == 6 and reps[0] == reps[4] and reps[0].type == P.MSG_RESULT
    assert [P.parse_error(r.payload).code for r in reps[1:4]] == [P.ERR_COBS, P.ERR_COBS, P.ERR_CRC]
    assert [r.seq for r in reps[2:4]] == [9, 9]     # the seq of a damaged frame, when readable
    s = P.Stats.parse(reps[5].payload)
    assert (s.samples, s.labelled, s.trained, s.duplicates, s.frame_errors) == (1, 1, 1, 1, 3)
