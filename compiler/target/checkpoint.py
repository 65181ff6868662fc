"""Checkpoint images: the device app's trained state as it sits in a flash slot and as the
host downloads (host.stream --save-to) and uploads (--restore-from) it; the build sizes
flash slots with it. The layout is runtime_c/include/tt_ckpt.h's:

    header (100 bytes, little-endian)
      magic u32 "TTCK" | version u16 | header_bytes u16 | seq u32 | payload_bytes u32 |
      model_hash 64 x ASCII (hex sha256) | plan_hash 16 x ASCII | crc u32
    payload
      state block (16 x u32): version, resume_at (samples the state includes),
        trainable samples seen, training step, seed, lr (f32), lr_body (f32), history,
        epochs, train_every, enabled, bits, rounding, autosave, augment, augment_shift
        (state version 2; version 1, still read by the device, has 0, 0 there: no
        augmentation, the default shift)
      the trained arrays (DOWNLOAD blob 0's bytes)

crc = CRC-32 (zlib) of the payload, continued over the header bytes before it.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

MAGIC = 0x4B435454
VERSION = 1
HEADER = struct.Struct("<IHHII64s16sI")
STATE = struct.Struct("<5I2f9I")
STATE_KEYS = ("version", "resume_at", "trainable_seen", "step", "seed", "lr", "lr_body",
              "history", "epochs", "train_every", "enabled", "bits", "rounding", "autosave",
              "augment", "augment_shift")


class CheckpointError(ValueError):
    """Not a checkpoint file, or a damaged one."""


@dataclass
class Checkpoint:
    seq: int
    model_hash: str
    plan_hash: str
    state: dict
    arrays: bytes


def crc(header: bytes, payload: bytes) -> int:
    return zlib.crc32(header[:HEADER.size - 4], zlib.crc32(payload))


def parse(blob: bytes) -> Checkpoint:
    """Check and read a checkpoint image (raises CheckpointError)."""
    if len(blob) < HEADER.size + STATE.size:
        raise CheckpointError(f"{len(blob)} bytes: too short for a checkpoint")
    magic, ver, hbytes, seq, plen, mh, ph, c = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise CheckpointError("not a checkpoint file (no TTCK magic)")
    if ver != VERSION or hbytes != HEADER.size:
        raise CheckpointError(f"checkpoint format version {ver} (this host reads {VERSION})")
    payload = blob[HEADER.size:]
    if len(payload) != plen:
        raise CheckpointError(f"payload is {len(payload)} bytes, the header says {plen} "
                              "(truncated file?)")
    if crc(blob[:HEADER.size], payload) != c:
        raise CheckpointError("CRC mismatch: the file is damaged")
    vals = STATE.unpack_from(payload)
    return Checkpoint(seq, mh.rstrip(b"\0").decode("ascii", "replace"),
                      ph.rstrip(b"\0").decode("ascii", "replace"),
                      dict(zip(STATE_KEYS, vals)), payload[STATE.size:])
