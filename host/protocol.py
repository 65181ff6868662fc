"""Host side of the serial protocol (specification: host/PROTOCOL.md; device side:
runtime_c/include/tt_proto.h + runtime_c/src/proto/).

    port = serial.serial_for_url("socket://127.0.0.1:4321")   # or a pty / /dev/ttyACM0
    dev = Client(port, expected_hash="c0ffee...")
    info = dev.hello()                   # refuses a device with another model hash
    r = dev.sample(img, label=3)         # -> Result(pred, trained, loss, ...)
    dev.stats(); dev.set("lr", 0.1); dev.save(); blob = dev.download()

Every constant below named like a `#define TT_<NAME>` of tt_proto.h has the same value
(tests/test_protocol.py parses the header and checks). All fields are little-endian.
"""
from __future__ import annotations

import binascii
import random
import struct
import time
import zlib
from dataclasses import dataclass

import numpy as np
from cobs import cobs

# ---- constants (twins of tt_proto.h / tt_resize.h) ------------------------------------
PROTO_VERSION = 1
PROTO_HEADER_BYTES = 6
PROTO_CRC_BYTES = 2
PROTO_OVERHEAD = 8
PROTO_DEFAULT_MAX_PAYLOAD = 12296
PROTO_DEFAULT_MAX_REPLY = 1088
PROTO_MIN_MAX_PAYLOAD = 64
PROTO_MIN_MAX_REPLY = 64

MSG_HELLO = 0x01
MSG_ECHO = 0x02
MSG_SAMPLE = 0x03
MSG_STATS = 0x04
MSG_SET = 0x05
MSG_GET = 0x06
MSG_SAVE = 0x07
MSG_RESTORE = 0x08
MSG_RESET = 0x09
MSG_DOWNLOAD = 0x0A
MSG_UPLOAD_BEGIN = 0x0B
MSG_UPLOAD = 0x0C
MSG_UPLOAD_END = 0x0D
MSG_EXIT = 0x0E
MSG_LAST_REQUEST = 0x0E
MSG_REPLY_BIT = 0x80
MSG_INFO = 0x81
MSG_ECHO_REPLY = 0x82
MSG_RESULT = 0x83
MSG_STATS_REPLY = 0x84
MSG_VALUE = 0x86
MSG_DATA = 0x8A
MSG_ERROR = 0xFF

ERR_COBS = 1
ERR_TOO_LONG = 2
ERR_SHORT = 3
ERR_CRC = 4
ERR_LAST_TRANSMISSION = 4
ERR_VERSION = 5
ERR_LENGTH = 6
ERR_UNKNOWN_TYPE = 7
ERR_PAYLOAD = 8
ERR_UNSUPPORTED = 9
ERR_KEY = 10
ERR_VALUE = 11
ERR_STATE = 12
ERR_OFFSET = 13
ERR_BLOB_CRC = 14
ERR_APP = 15
ERR_TEXT_MAX = 48

INFO_FIXED_BYTES = 40
SAMPLE_HEADER_BYTES = 8
LABEL_NONE = 0xFFFF
SAMPLE_LOGITS = 0x01
SAMPLE_BILINEAR = 0x02
SAMPLE_NO_TRAIN = 0x04
SAMPLE_RAW = 0x08            # the payload is the int8 model input itself (no resize, no table)
SAMPLE_FLAGS_ALL = 0x0F
RESULT_FIXED_BYTES = 28
RESULT_TRAINED = 0x01
RESULT_LABELLED = 0x02
RESULT_CORRECT = 0x04
RESULT_HAS_LOSS = 0x08
RESULT_HAS_LOGITS = 0x10
RESULT_SCORE = 0x20          # loss = the anomaly score (reconstruction mse), pred 0
INFO_LOSS_MSE = 0x01         # Info.model_flags: learns without labels (mse autoencoder)
STATS_CLEAR = 0x01
STATS_BYTES = 36
VAL_I32 = 1
VAL_F32 = 2
VAL_STR = 3
KEY_MAX = 32
OK_BYTES = 4
RESET_WEIGHTS = 0x01
RESET_STATS = 0x02
RESET_HISTORY = 0x04
RESET_CHECKPOINTS = 0x08
RESET_ALL = 0x0F
DOWNLOAD_BYTES = 8
DATA_FIXED_BYTES = 10
UPLOAD_BEGIN_BYTES = 10
UPLOAD_FIXED_BYTES = 6
BLOB_WEIGHTS = 0
BLOB_CHECKPOINT = 1
ERROR_FIXED_BYTES = 6

RESIZE_NEAREST = 0
RESIZE_BILINEAR = 1
RESIZE_MAX_DIM = 2048
RESIZE_MAX_C = 4

# struct layouts of the fixed parts
INFO_STRUCT = struct.Struct("<BBHHHHHBBH6I")
SAMPLE_STRUCT = struct.Struct("<HBBHH")
RESULT_STRUCT = struct.Struct("<HBBfIIIfbBH")
STATS_STRUCT = struct.Struct("<9I")
ERROR_STRUCT = struct.Struct("<BBI")
DOWNLOAD_STRUCT = struct.Struct("<BBIH")
DATA_STRUCT = struct.Struct("<BBII")
UPLOAD_BEGIN_STRUCT = struct.Struct("<BBII")
UPLOAD_STRUCT = struct.Struct("<BBI")
HEADER_STRUCT = struct.Struct("<BBHH")

MSG_NAMES = {v: k[4:] for k, v in globals().items()
             if k.startswith("MSG_") and isinstance(v, int) and k not in ("MSG_REPLY_BIT", "MSG_LAST_REQUEST")}
ERR_NAMES = {v: k[4:] for k, v in globals().items()
             if k.startswith("ERR_") and isinstance(v, int)
             and k not in ("ERR_TEXT_MAX", "ERR_LAST_TRANSMISSION")}
TRANSMISSION_ERRORS = frozenset(range(1, ERR_LAST_TRANSMISSION + 1))

# a reply frame larger than this is garbage (len is u16)
MAX_FRAME = PROTO_OVERHEAD + 0xFFFF


# ---- errors ----------------------------------------------------------------------------
class ProtocolError(Exception):
    """The exchange failed: no valid reply, an unexpected reply, a malformed payload."""


class FrameError(ProtocolError):
    """A received frame is not a valid packet (COBS, length, CRC, version, len field)."""

    def __init__(self, code: int, msg: str):
        super().__init__(msg)
        self.code = code


class ReplyTimeout(ProtocolError):
    """No valid reply after the allowed retries."""


class DeviceError(ProtocolError):
    """The device answered ERROR."""

    def __init__(self, code: int, text: str, arg: int = 0, req_type: int = 0):
        self.code, self.text, self.arg, self.req_type = code, text, arg, req_type
        super().__init__(f"device error {ERR_NAMES.get(code, code)} ({code}) on "
                         f"{MSG_NAMES.get(req_type, req_type)}: {text} [arg={arg}]")


class ModelMismatch(ProtocolError):
    """The firmware runs another model than the one the host expects."""


# ---- checksums, packets, framing -----------------------------------------------------
def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    return binascii.crc_hqx(data, crc)


def crc32(data: bytes, crc: int = 0) -> int:
    """CRC-32 (IEEE / zlib), the blob checksum of UPLOAD_BEGIN."""
    return zlib.crc32(data, crc) & 0xFFFFFFFF


@dataclass
class Packet:
    type: int
    seq: int
    payload: bytes = b""
    version: int = PROTO_VERSION

    def encode(self) -> bytes:
        """The raw packet (header, payload, crc16), before COBS."""
        if not 0 <= self.seq <= 0xFFFF:
            raise ValueError(f"seq {self.seq} out of range")
        if len(self.payload) > 0xFFFF:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds the u16 len field")
        body = HEADER_STRUCT.pack(self.version, self.type, self.seq, len(self.payload)) + bytes(self.payload)
        return body + struct.pack("<H", crc16(body))

    def frame(self) -> bytes:
        """The bytes on the wire: 0x00, COBS(packet), 0x00."""
        return b"\x00" + cobs.encode(self.encode()) + b"\x00"

    @classmethod
    def decode(cls, raw: bytes, check_version: bool = True) -> "Packet":
        """Parse a decoded frame (checks in the device's order: size, crc, version, len)."""
        if len(raw) < PROTO_OVERHEAD:
            raise FrameError(ERR_SHORT, f"packet of {len(raw)} bytes is shorter than {PROTO_OVERHEAD}")
        (crc,) = struct.unpack_from("<H", raw, len(raw) - 2)
        if crc16(raw[:-2]) != crc:
            raise FrameError(ERR_CRC, "crc16 mismatch")
        version, type_, seq, length = HEADER_STRUCT.unpack_from(raw)
        if check_version and version != PROTO_VERSION:
            raise FrameError(ERR_VERSION, f"protocol version {version}, expected {PROTO_VERSION}")
        if length != len(raw) - PROTO_OVERHEAD:
            raise FrameError(ERR_LENGTH, f"len field {length} != {len(raw) - PROTO_OVERHEAD}")
        return cls(type_, seq, bytes(raw[PROTO_HEADER_BYTES:-2]), version)


def decode_frame(encoded: bytes) -> bytes:
    """COBS-decode one frame's bytes (without delimiters)."""
    try:
        return cobs.decode(encoded)
    except cobs.DecodeError as e:
        raise FrameError(ERR_COBS, f"bad COBS encoding: {e}") from None


class FrameReader:
    """Splits a byte stream into frames (0x00-delimited; empty frames skipped). Frames
    longer than ``max_frame`` encoded bytes are dropped and reported as None."""

    def __init__(self, max_frame: int = MAX_FRAME + MAX_FRAME // 254 + 2):
        self.max_frame = max_frame
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list:
        out = []
        data = bytes(data)
        start = 0
        while True:
            i = data.find(b"\x00", start)
            if i < 0:
                self._append(data[start:])
                break
            self._append(data[start:i])
            if self._overflow:
                out.append(None)
            elif self._buf:
                out.append(bytes(self._buf))
            self._buf.clear()
            self._overflow = False
            start = i + 1
        return out

    def _append(self, b: bytes):
        if self._overflow or not b:
            return
        if len(self._buf) + len(b) > self.max_frame:
            self._overflow = True
            self._buf.clear()
        else:
            self._buf += b

    def pending(self) -> int:
        return len(self._buf)


def parse_frames(stream: bytes) -> list:
    """All complete frames of a byte stream as Packet or FrameError (tests, tools)."""
    out = []
    for enc in FrameReader().feed(stream):
        try:
            out.append(Packet.decode(decode_frame(enc)) if enc is not None
                       else FrameError(ERR_TOO_LONG, "frame too long"))
        except FrameError as e:
            out.append(e)
    return out


# ---- payloads ---------------------------------------------------------------------------
@dataclass
class Info:
    proto_version: int
    caps: int
    max_payload: int
    max_reply: int
    in_h: int
    in_w: int
    in_c: int
    num_classes: int
    ram_used: int
    ram_budget: int
    flash_used: int
    flash_budget: int
    arena_bytes: int
    trainable_bytes: int
    model_hash: str
    board: str
    plan: str
    status: str = ""   # what the firmware booted into (e.g. the checkpoint it restored)
    model_flags: int = 0   # INFO_LOSS_MSE (0 from firmware before the flags)

    @property
    def unsupervised(self) -> bool:
        """An mse autoencoder: send unlabelled int8 samples; RESULT carries the score."""
        return bool(self.model_flags & INFO_LOSS_MSE)

    def supports(self, msg_type: int) -> bool:
        return bool(self.caps >> msg_type & 1)

    @classmethod
    def parse(cls, p: bytes) -> "Info":
        if len(p) < INFO_FIXED_BYTES:
            raise ProtocolError(f"INFO of {len(p)} bytes is shorter than {INFO_FIXED_BYTES}")
        (ver, _r, caps, maxp, maxr, h, w, c, mflags, ncls,
         ram, ramb, fl, flb, arena, trainable) = INFO_STRUCT.unpack_from(p)
        strs, at = [], INFO_FIXED_BYTES
        for _ in range(3):
            if at >= len(p):
                raise ProtocolError("INFO strings truncated")
            n = p[at]
            if at + 1 + n > len(p):
                raise ProtocolError("INFO strings truncated")
            strs.append(p[at + 1:at + 1 + n].decode("utf-8", "replace"))
            at += 1 + n
        if at < len(p) and at + 1 + p[at] <= len(p):   # status (optional, newer firmware)
            strs.append(p[at + 1:at + 1 + p[at]].decode("utf-8", "replace"))
        info = cls(ver, caps, maxp, maxr, h, w, c, ncls, ram, ramb, fl, flb, arena,
                   trainable, *strs)
        info.model_flags = mflags
        return info

    def pack(self) -> bytes:
        s = INFO_STRUCT.pack(self.proto_version, 0, self.caps, self.max_payload, self.max_reply,
                             self.in_h, self.in_w, self.in_c, self.model_flags, self.num_classes, self.ram_used,
                             self.ram_budget, self.flash_used, self.flash_budget,
                             self.arena_bytes, self.trainable_bytes)
        for t in (self.model_hash, self.board, self.plan, self.status):
            b = t.encode()[:255]
            s += bytes([len(b)]) + b
        return s


@dataclass
class Result:
    pred: int
    flags: int
    loss: float | None
    cycles_predict: int
    cycles_train: int
    sample_index: int
    logit_scale: float
    logit_zero_point: int
    logits_q: np.ndarray | None = None

    trained = property(lambda self: bool(self.flags & RESULT_TRAINED))
    labelled = property(lambda self: bool(self.flags & RESULT_LABELLED))
    correct = property(lambda self: bool(self.flags & RESULT_CORRECT))

    @property
    def score(self) -> float | None:
        """The anomaly score (reconstruction mse of an unsupervised model), else None."""
        return self.loss if self.flags & RESULT_SCORE else None

    @property
    def logits(self) -> np.ndarray | None:
        """Dequantized logits (float32) if they were requested."""
        if self.logits_q is None:
            return None
        return (self.logits_q.astype(np.float32) - np.float32(self.logit_zero_point)) * np.float32(self.logit_scale)

    @classmethod
    def parse(cls, p: bytes) -> "Result":
        if len(p) < RESULT_FIXED_BYTES:
            raise ProtocolError(f"RESULT of {len(p)} bytes is shorter than {RESULT_FIXED_BYTES}")
        pred, flags, _r, loss, cp, ct, idx, scale, zp, _r2, n = RESULT_STRUCT.unpack_from(p)
        if len(p) != RESULT_FIXED_BYTES + n:
            raise ProtocolError(f"RESULT says {n} logits but carries {len(p) - RESULT_FIXED_BYTES}")
        logits = (np.frombuffer(p, np.int8, n, RESULT_FIXED_BYTES).copy()
                  if flags & RESULT_HAS_LOGITS else None)
        return cls(pred, flags, loss if flags & RESULT_HAS_LOSS else None, cp, ct, idx, scale,
                   zp, logits)


@dataclass
class Stats:
    samples: int
    labelled: int
    correct: int
    trained: int
    last_predict_cycles: int
    last_train_cycles: int
    frames_ok: int
    frame_errors: int
    duplicates: int

    @property
    def accuracy(self) -> float | None:
        """Prequential accuracy: correct predictions (made before training) / labelled."""
        return self.correct / self.labelled if self.labelled else None

    @classmethod
    def parse(cls, p: bytes) -> "Stats":
        if len(p) != STATS_BYTES:
            raise ProtocolError(f"STATS of {len(p)} bytes, expected {STATS_BYTES}")
        return cls(*STATS_STRUCT.unpack(p))


def parse_error(p: bytes) -> DeviceError:
    if len(p) < ERROR_FIXED_BYTES:
        return DeviceError(0, f"malformed ERROR payload {p!r}")
    code, req_type, arg = ERROR_STRUCT.unpack_from(p)
    return DeviceError(code, p[ERROR_FIXED_BYTES:].decode("ascii", "replace"), arg, req_type)


def sample_payload(img, label: int | None = None, flags: int = 0) -> bytes:
    """SAMPLE payload for a uint8 image of shape (h, w) or (h, w, c); or, with int8
    values, the model input itself (SAMPLE_RAW: already quantized with the model's input
    scale and zero point, NHWC or flat; sent as 1 x size x 1; float feature vectors become
    these with ``compiler.ref.inputs.flat_samples``)."""
    a = np.asarray(img)
    if a.dtype == np.int8:
        lab = LABEL_NONE if label is None else int(label)
        if not 0 <= lab <= 0xFFFF or not 0 < a.size <= 0xFFFF:
            raise ValueError(f"label {label} or raw sample size {a.size} out of range")
        return SAMPLE_STRUCT.pack(lab, flags | SAMPLE_RAW, 1, 1, a.size) + a.tobytes()
    if a.dtype != np.uint8:
        raise ValueError(f"SAMPLE images are uint8 (or the int8 model input), got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"image must be HxW or HxWxC, got shape {a.shape}")
    h, w, c = a.shape
    lab = LABEL_NONE if label is None else int(label)
    if not 0 <= lab <= 0xFFFF:
        raise ValueError(f"label {label} out of range")
    return SAMPLE_STRUCT.pack(lab, flags, c, h, w) + np.ascontiguousarray(a).tobytes()


#: the device's gradient range functions (SET range / loss_range; K an integer 1..64)
RANGE_FUNCTIONS = ("max", "max/2", "max/4", "3*max/4", "mean*K")


def encode_value(value) -> tuple[int, bytes]:
    if isinstance(value, bool) or isinstance(value, (int, np.integer)):
        v = int(value)
        if not -2**31 <= v < 2**31:
            raise ValueError(f"integer {v} does not fit in int32")
        return VAL_I32, struct.pack("<i", v)
    if isinstance(value, (float, np.floating)):
        return VAL_F32, struct.pack("<f", float(value))
    if isinstance(value, (str, bytes)):
        return VAL_STR, value.encode() if isinstance(value, str) else value
    raise TypeError(f"cannot send a {type(value).__name__} value")


def decode_value(vtype: int, b: bytes):
    if vtype == VAL_I32 and len(b) == 4:
        return struct.unpack("<i", b)[0]
    if vtype == VAL_F32 and len(b) == 4:
        return struct.unpack("<f", b)[0]
    if vtype == VAL_STR:
        return b.decode("utf-8", "replace")
    raise ProtocolError(f"bad VALUE type {vtype} / {len(b)} bytes")


def _key(key: str) -> bytes:
    k = key.encode()
    if not 1 <= len(k) <= KEY_MAX:
        raise ValueError(f"key {key!r}: 1..{KEY_MAX} bytes")
    return bytes([len(k)]) + k


# ---- resize reference (bit-exact with tt_resize_u8) ------------------------------------
def _coords_nearest(s: int, d: int) -> np.ndarray:
    i = np.arange(d, dtype=np.int64)
    return ((2 * i + 1) * s) // (2 * d)


def _coords_bilinear(s: int, d: int):
    i = np.arange(d, dtype=np.int64)
    f = np.clip(((2 * i + 1) * s * 128) // d - 128, 0, (s - 1) * 256)
    i0 = f >> 8
    return i0, np.minimum(i0 + 1, s - 1), f & 255


def resize_u8(img, h: int, w: int, c: int, mode: int = RESIZE_NEAREST) -> np.ndarray:
    """What the device does to a SAMPLE image (tt_resize.h): resize an (H, W[, C]) uint8
    image to (h, w) and convert its channels to c. Returns (h, w, c) uint8."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise ValueError("uint8 image expected")
    if a.ndim == 2:
        a = a[:, :, None]
    sh, sw, sc = a.shape
    for d in (sh, sw, h, w):
        if not 1 <= d <= RESIZE_MAX_DIM:
            raise ValueError(f"dimension {d} outside 1..{RESIZE_MAX_DIM}")
    if not (1 <= sc <= RESIZE_MAX_C and 1 <= c <= RESIZE_MAX_C
            and (sc == c or (sc, c) in ((1, 3), (3, 1)))):
        raise ValueError(f"unsupported channel conversion {sc} -> {c}")
    if mode not in (RESIZE_NEAREST, RESIZE_BILINEAR):
        raise ValueError(f"unknown resize mode {mode}")
    if (sh, sw, sc) == (h, w, c):
        return a.copy()
    src = a.astype(np.int64)
    if mode == RESIZE_NEAREST:
        v = src[_coords_nearest(sh, h)][:, _coords_nearest(sw, w)]
    else:                                   # RESIZE_BILINEAR
        y0, y1, wy = _coords_bilinear(sh, h)
        x0, x1, wx = _coords_bilinear(sw, w)
        wy, wx = wy[:, None, None], wx[None, :, None]
        v = (src[y0][:, x0] * (256 - wx) * (256 - wy) + src[y0][:, x1] * wx * (256 - wy)
             + src[y1][:, x0] * (256 - wx) * wy + src[y1][:, x1] * wx * wy + 32768) >> 16
    if sc == c:
        out = v
    elif sc == 1:
        out = np.repeat(v, 3, axis=2)
    else:
        out = (77 * v[..., 0] + 150 * v[..., 1] + 29 * v[..., 2] + 128)[..., None] >> 8
    return out.astype(np.uint8)


# ---- client ------------------------------------------------------------------------------
@dataclass
class ClientCounters:
    requests: int = 0
    sends: int = 0
    timeouts: int = 0
    bad_frames: int = 0
    stale: int = 0
    transmission_errors: int = 0


class Client:
    """Request/reply over any pyserial-like port (``write``, ``read``, ``in_waiting``,
    ``timeout``): a real board, the host build's pty or QEMU's socket:// URL.

    One request at a time. A request is resent (same seq, same bytes, so the device
    answers from its reply cache instead of executing twice) when no valid reply comes
    within ``timeout`` seconds, when a reply frame is corrupted, or when the device
    reports a transmission error for this seq; at most ``retries`` times. Replies with
    another seq are stale copies and are skipped.

    With ``expected_hash`` every request except HELLO first checks (once) that the
    firmware's model hash matches, and raises ModelMismatch otherwise.
    """

    def __init__(self, port, timeout: float = 2.0, retries: int = 3, seq: int | None = None,
                 expected_hash: str | None = None, poll: float = 0.02):
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.seq = random.randrange(0x10000) if seq is None else seq & 0xFFFF
        self.expected_hash = expected_hash
        self.info: Info | None = None
        self.counters = ClientCounters()
        self._reader = FrameReader()
        self._frames: list = []
        self._checked = False
        try:
            if port.timeout is None or port.timeout > poll:
                port.timeout = poll
        except AttributeError:
            pass

    # -- transport
    def _next_seq(self) -> int:
        s = self.seq
        self.seq = (self.seq + 1) & 0xFFFF
        return s

    def _read_frame(self, deadline: float):
        """Next complete frame (encoded bytes, or None for an over-long one), or
        raise TimeoutError at the deadline."""
        while not self._frames:
            if time.monotonic() >= deadline:
                raise TimeoutError
            n = getattr(self.port, "in_waiting", 0) or 0
            data = self.port.read(n if n > 1 else 1)
            if data:
                self._frames.extend(self._reader.feed(data))
        return self._frames.pop(0)

    def drain(self, quiet: float = 0.05):
        """Discard input until the line has been quiet for ``quiet`` seconds."""
        self._frames.clear()
        end = time.monotonic() + quiet
        while time.monotonic() < end:
            n = getattr(self.port, "in_waiting", 0) or 0
            if self.port.read(n if n > 1 else 1):
                end = time.monotonic() + quiet
        self._reader = FrameReader()

    def request(self, msg_type: int, payload: bytes = b"", timeout: float | None = None,
                retries: int | None = None) -> Packet:
        """Send one request and return its reply packet (type = msg_type | 0x80).
        Raises DeviceError for an ERROR reply (for a transmission error only once
        the retries are used up), ReplyTimeout when no valid reply came."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        if self.info is not None and len(payload) > self.info.max_payload:
            raise ProtocolError(f"payload of {len(payload)} bytes exceeds the device's "
                                f"max_payload {self.info.max_payload}")
        seq = self._next_seq()
        frame = Packet(msg_type, seq, payload).frame()
        self.counters.requests += 1
        why, last_device_error = "no reply", None
        for _attempt in range(retries + 1):
            self.port.write(frame)
            if hasattr(self.port, "flush"):
                self.port.flush()
            self.counters.sends += 1
            deadline = time.monotonic() + timeout
            while True:
                try:
                    enc = self._read_frame(deadline)
                except TimeoutError:
                    self.counters.timeouts += 1
                    why, last_device_error = f"timeout after {timeout} s", None
                    break
                try:
                    if enc is None:
                        raise FrameError(ERR_TOO_LONG, "reply frame too long")
                    pkt = Packet.decode(decode_frame(enc))
                except FrameError as e:
                    # a corrupted frame may well be our reply: ask again
                    self.counters.bad_frames += 1
                    why, last_device_error = f"corrupted reply ({e})", None
                    break
                if pkt.seq != seq:
                    self.counters.stale += 1
                    continue
                if pkt.type == MSG_ERROR:
                    err = parse_error(pkt.payload)
                    if err.code in TRANSMISSION_ERRORS:
                        # our request arrived damaged: send it again
                        self.counters.transmission_errors += 1
                        why, last_device_error = str(err), err
                        break
                    raise err
                if pkt.type != (msg_type | MSG_REPLY_BIT):
                    raise ProtocolError(f"reply type 0x{pkt.type:02x} to "
                                        f"{MSG_NAMES.get(msg_type, msg_type)} (seq {seq})")
                return pkt
        if last_device_error is not None:
            # the device kept receiving this request damaged (or too long)
            raise last_device_error
        raise ReplyTimeout(f"no valid reply to {MSG_NAMES.get(msg_type, msg_type)} seq {seq} "
                           f"after {retries + 1} attempts: {why}")

    # -- model identity
    def hello(self) -> Info:
        self.info = Info.parse(self.request(MSG_HELLO).payload)
        return self.info

    def check_model(self, expected_hash: str | None = None) -> Info:
        """HELLO, then raise ModelMismatch unless the firmware's model hash is
        ``expected_hash`` (default: the one given to the constructor)."""
        expected = expected_hash if expected_hash is not None else self.expected_hash
        info = self.hello()
        if expected is None:
            raise ValueError("no expected model hash given")
        if info.model_hash.lower() != expected.lower():
            self._checked = False
            raise ModelMismatch(f"firmware runs model {info.model_hash!r} on {info.board}, "
                                f"expected {expected!r}: refusing to talk to it")
        self._checked = True
        return info

    def _guard(self):
        if self.expected_hash is not None and not self._checked:
            self.check_model()
        elif self.info is None:
            self.hello()

    # -- typed helpers
    def echo(self, data: bytes) -> bytes:
        return self.request(MSG_ECHO, data).payload

    def sample(self, img, label: int | None = None, logits: bool = False,
               bilinear: bool = False, train: bool = True, timeout: float | None = None) -> Result:
        self._guard()
        flags = ((SAMPLE_LOGITS if logits else 0) | (SAMPLE_BILINEAR if bilinear else 0)
                 | (0 if train else SAMPLE_NO_TRAIN))
        return Result.parse(self.request(MSG_SAMPLE, sample_payload(img, label, flags),
                                         timeout=timeout).payload)

    def stats(self, clear: bool = False) -> Stats:
        return Stats.parse(self.request(MSG_STATS, bytes([STATS_CLEAR]) if clear else b"").payload)

    def set(self, key: str, value) -> None:
        self._guard()
        vt, vb = encode_value(value)
        self.request(MSG_SET, _key(key) + bytes([vt]) + vb)

    def get(self, key: str):
        p = self.request(MSG_GET, _key(key)).payload
        if not p:
            raise ProtocolError("empty VALUE")
        return decode_value(p[0], p[1:])

    def _ok(self, msg_type: int, payload: bytes = b"", timeout: float | None = None) -> int:
        p = self.request(msg_type, payload, timeout=timeout).payload
        if len(p) != OK_BYTES:
            raise ProtocolError(f"OK reply of {len(p)} bytes")
        return struct.unpack("<I", p)[0]

    def save(self, timeout: float | None = None) -> int:
        self._guard()
        return self._ok(MSG_SAVE, timeout=timeout)

    def restore(self, timeout: float | None = None) -> int:
        self._guard()
        return self._ok(MSG_RESTORE, timeout=timeout)

    def reset(self, weights: bool = True, stats: bool = False, history: bool = False,
              checkpoints: bool = False) -> None:
        """RESET: weights to the compiled-in ones, the STATS counters, the sample history,
        and (checkpoints) erase the flash checkpoints: all four = factory state."""
        self._guard()
        what = ((RESET_WEIGHTS if weights else 0) | (RESET_STATS if stats else 0)
                | (RESET_HISTORY if history else 0) | (RESET_CHECKPOINTS if checkpoints else 0))
        self._ok(MSG_RESET, bytes([what]))

    def exit(self, code: int = 0) -> None:
        self._ok(MSG_EXIT, bytes([code & 0xFF]))

    def download(self, blob: int = BLOB_WEIGHTS, chunk: int | None = None) -> bytes:
        """Read a whole blob in chunks (each protected by its packet's crc16)."""
        self._guard()
        room = (self.info.max_reply if self.info else PROTO_MIN_MAX_REPLY) - DATA_FIXED_BYTES
        chunk = min(chunk or room, room, 0xFFFF)
        out, total = bytearray(), None
        while total is None or len(out) < total:
            p = self.request(MSG_DOWNLOAD, DOWNLOAD_STRUCT.pack(blob, 0, len(out), chunk)).payload
            b, _r, tot, off = DATA_STRUCT.unpack_from(p)
            if b != blob or off != len(out) or (total is not None and tot != total):
                raise ProtocolError(f"DATA for blob {b} offset {off} total {tot}, asked "
                                    f"blob {blob} offset {len(out)}")
            total = tot
            data = p[DATA_FIXED_BYTES:]
            if not data and len(out) < total:
                raise ProtocolError("empty DATA chunk before the end of the blob")
            out += data
        return bytes(out)

    def upload(self, data: bytes, blob: int = BLOB_WEIGHTS, chunk: int | None = None) -> None:
        """Write a whole blob: UPLOAD_BEGIN (size + crc32), sequential UPLOAD chunks,
        UPLOAD_END (the device checks the crc32, then commits)."""
        self._guard()
        room = (self.info.max_payload if self.info else PROTO_MIN_MAX_PAYLOAD) - UPLOAD_FIXED_BYTES
        chunk = min(chunk or room, room)
        data = bytes(data)
        self._ok(MSG_UPLOAD_BEGIN, UPLOAD_BEGIN_STRUCT.pack(blob, 0, len(data), crc32(data)))
        off = 0
        while off < len(data):
            piece = data[off:off + chunk]
            nxt = self._ok(MSG_UPLOAD, UPLOAD_STRUCT.pack(blob, 0, off) + piece)
            if nxt != off + len(piece):
                raise ProtocolError(f"device expects offset {nxt}, sent up to {off + len(piece)}")
            off = nxt
        self._ok(MSG_UPLOAD_END, bytes([blob]))
