"""Stream labelled samples to a board over its serial line and watch it learn.

    python -m host.stream --port /dev/ttyACM0 --dataset mnist --classes 4 --limit 600 \\
        --shift spotlight:radius=32,gain=4,corner=ul --compare --out build/stream

Works with any firmware that speaks the serial protocol (host/PROTOCOL.md): it asks the
device for its model (HELLO), optionally refuses a device running another model
(``--expect-hash`` / ``--expect-report``), forwards training settings with SET, then
sends one SAMPLE per image and records the device's RESULT. Accuracy is prequential
(evaluate, then train): each sample is scored on the prediction the device made *before*
it trained on that sample. ``--compare`` runs the same stream twice on the same device,
after a RESET each time: once with training off (the frozen-model baseline), once
adapting. Results: a CSV of every sample, a PNG of running accuracy, a JSON summary,
and, as the last line printed, e.g. ``frozen 61.2% -> on-device 83.5% (n=600)``. The CSV's
``cycles_predict`` / ``cycles_train`` columns hold what the board's counter counts
(:func:`cost_unit`): instructions on QEMU, ns on the host build, clock cycles on a real
board; the summary line and ``summary.json`` (``cycles_unit``) name the unit.

Images are prepared on the host in this order: dataset image -> channels (--gray/--rgb)
-> resized to the size sent (--size; Pillow bilinear) -> distribution shifts (--shift,
host/shifts.py, in pixels of the image as sent) -> SAMPLE. The device resizes each
sample to its model input itself (bilinear unless --device-resize nearest).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import signal
import sys
import termios
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import serial

from compiler import paths
from compiler.frontend import datasets as D
from compiler.ir.errors import CompilerError
from host import protocol as P
from host.shifts import ShiftChain, ShiftError

REPO = paths.REPO
DEFAULT_OUT = REPO / "build" / "stream"
CSV_NAME, PNG_NAME, JSON_NAME = "stream.csv", "accuracy.png", "summary.json"
CSV_FIELDS = ("mode", "index", "dataset_index", "label", "pred", "correct", "trained", "loss",
              "cycles_predict", "cycles_train", "device_index", "resent", "event")
# CSV/JSON mode -> summary-line name. "head": the classifier alone learns (SET lr_body 0,
# on firmware that trains more than the classifier); "plan": everything the firmware's
# sparse-update plan trains (the same as "adapting", named for the summary line).
MODES = {"frozen": "frozen", "adapting": "on-device", "head": "head only", "plan": "sparse plan"}


def cost_unit(board: str | None) -> str:
    """What the firmware's ``board_cycles()`` counts, so what the ``cycles_predict`` /
    ``cycles_train`` CSV columns and summary hold (the column names stay): instructions on
    QEMU (``-icount``), nanoseconds on the host build (CLOCK_MONOTONIC), core clock cycles
    on a real board (DWT cycle counter)."""
    b = str(board or "")
    if b.startswith("qemu"):
        return "instructions"
    if b == "host":
        return "ns"
    return "cycles"


def build_ram(report) -> dict | None:
    """The RAM figures of a build report (``report.json``) as `build` printed them
    (:func:`compiler.target.firmware.ram_figures`), or None."""
    from compiler.target import firmware
    if report is None or not Path(report).is_file():
        return None
    try:
        return firmware.ram_figures(json.loads(Path(report).read_text()))
    except (ValueError, KeyError, TypeError):
        return None

EXIT_OK, EXIT_DEVICE, EXIT_USAGE, EXIT_MODEL, EXIT_PORT, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

HELLO_TIMEOUT, HELLO_RETRIES = 2.0, 2
REQUEST_TIMEOUT = 5.0
# what a dying serial line raises (a pty whose board is gone raises termios.error)
LINE_ERRORS = (serial.SerialException, OSError, termios.error)


class StreamError(Exception):
    """A failure with a message for the user and an exit status."""

    def __init__(self, msg: str, status: int = EXIT_DEVICE):
        super().__init__(msg)
        self.status = status


# ---- command line ---------------------------------------------------------------------------
EPILOG = """\
shifts (host/shifts.py), combined with '+' or by repeating --shift, applied in order:
  spotlight:radius=R,gain=G,corner=ul|ur|ll|lr|c[,add=A]  pixels within R px (or R%
                    of the image side) of the corner: clip(x*G + A)  (defaults G=4, ul)
  brightness:F      clip(x*F)
  rotation:DEG      rotate DEG degrees counter-clockwise (bilinear, fill 0)
  noise:STD         add Gaussian noise (0..255 scale), the same for a sample in every pass

outputs in --out: stream.csv (one row per sample and pass), accuracy.png (running
accuracy over samples), summary.json; the last line printed is the result, e.g.
  frozen 61.2% -> on-device 83.5% (n=600)

a board that resets or drops the line mid-stream is noticed (its sample counter goes
back, or the line fails): the stream reconnects (--reconnects), checks the model hash,
reloads the board's newest checkpoint (or its compiled-in weights) and re-sends every
sample after the one that state includes, so the final weights equal those of an
uninterrupted stream; the CSV marks re-sent rows (resent=1) and where it resumed.

exit status: 0 done, 1 device error (ERROR reply, lost link), 2 bad arguments / dataset,
3 the device runs another model (--expect-hash), 4 port cannot be opened / no device
answers, 130 interrupted (what was streamed so far is still written, with the command
that resumes it).
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=("tinytrain-stream" if Path(sys.argv[0]).name == "tinytrain-stream"
              else "python -m host.stream"),
        description="Stream labelled samples to a board running the training firmware and "
                    "report its prequential (evaluate-then-train) accuracy.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_argument_group("device")
    where = g.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="URL",
                       help="pyserial port or URL: /dev/ttyACM0, socket://127.0.0.1:PORT, a pty path")
    where.add_argument("--boot", metavar="BOARD:FILE",
                       help="start the board first and stream to it: qemu:ELF (emulated "
                            "Cortex-M7, serial over a local socket) or host:EXE (host build, pty); "
                            "the board is told to exit at the end")
    g.add_argument("--baud", type=int, default=115200, help="baud rate (real UARTs; default 115200)")
    g.add_argument("--expect-hash", metavar="HEX",
                   help="refuse a device whose model hash differs")
    g.add_argument("--expect-report", metavar="REPORT_JSON",
                   help="read the expected model hash ('sha256') from a build's report.json")
    g.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="seconds to wait for one SAMPLE reply, training included (default 30)")

    g = ap.add_argument_group("data")
    g.add_argument("--dataset", default="mnist", metavar="NAME",
                   help="mnist | digits | folder:PATH (one subfolder per class) | "
                        "npz:PATH (arrays x, y)  (default mnist)")
    g.add_argument("--classes", type=int, metavar="N",
                   help="use the first N classes only (labels 0..N-1)")
    g.add_argument("--limit", type=int, metavar="N", help="stream at most N samples")
    g.add_argument("--repeat", type=int, default=1, metavar="R",
                   help="go through the dataset R times, reshuffled each time (default 1)")
    g.add_argument("--seed", type=int, default=0, help="shuffle and noise seed (default 0)")
    g.add_argument("--no-shuffle", action="store_true",
                   help="stream in dataset order (default: shuffled with --seed)")
    g.add_argument("--size", type=int, metavar="S",
                   help="resize to SxS before sending (default: the dataset's size, capped at "
                        "the model input)")
    ch = g.add_mutually_exclusive_group()
    ch.add_argument("--gray", dest="channels", action="store_const", const=1,
                    help="send grayscale (1 channel)")
    ch.add_argument("--rgb", dest="channels", action="store_const", const=3,
                    help="send RGB (3 channels)")
    g.add_argument("--shift", action="append", default=[], metavar="SPEC",
                   help="distribution shift applied on the host (see below)")
    g.add_argument("--device-resize", choices=("bilinear", "nearest"), default="bilinear",
                   help="how the device resizes samples to its model input (default bilinear)")

    g = ap.add_argument_group("training (sent to the device with SET; keys it does not know are skipped)")
    g.add_argument("--history", type=int, metavar="N", help="history buffer of the last N samples")
    g.add_argument("--epochs", type=int, metavar="E", help="epochs over the history per round")
    g.add_argument("--lr", type=float, metavar="LR", help="learning rate (of the classifier)")
    g.add_argument("--lr-body", type=float, metavar="LR",
                   help="learning rate of the layers below the classifier (sparse-update "
                        "firmware; default: the firmware's own)")
    g.add_argument("--train-every", type=int, metavar="K", help="train every K samples")
    g.add_argument("--augment", action="store_true",
                   help="history rounds train on each stored sample randomly shifted and "
                        "mirrored left-right, anew in every epoch (SET augment 1; needs "
                        "--history, and firmware whose history stores inputs, not features)")
    g.add_argument("--augment-shift", type=int, metavar="PX",
                   help="with --augment: largest shift in pixels each way (default: the "
                        "firmware's, 1/8 of the input size)")
    g.add_argument("--range", type=range_function, metavar="F",
                   help="gradient range function of every gradient (SET range): "
                        f"{', '.join(P.RANGE_FUNCTIONS)} (K 1..64)")
    g.add_argument("--loss-range", type=range_function, metavar="F",
                   help="range function of the loss gradient (SET loss_range), as --range")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other device setting (int, float or string)")

    g = ap.add_argument_group("run")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--frozen", action="store_true",
                      help="send samples flagged no-train: the frozen-model baseline")
    mode.add_argument("--compare", action="store_true",
                      help="RESET, stream frozen; RESET, stream adapting; report both")
    mode.add_argument("--passes", metavar="LIST",
                      help="comma-separated passes over the same stream, each after a RESET: "
                           "frozen, head (only the classifier learns: lr_body 0), adapting, "
                           "plan (= adapting, named 'sparse plan'); e.g. frozen,head,plan")
    g.add_argument("--reset", action="store_true",
                   help="RESET the device (weights, history, counters) before streaming "
                        "(--compare always does)")
    g.add_argument("--save", action="store_true",
                   help="checkpoint the trained state to the device's flash (SAVE) at the end")
    g.add_argument("--autosave", type=int, metavar="N",
                   help="the device checkpoints to flash after every N trained samples "
                        "(SET autosave; 0 = off). After a reset it resumes from there")
    g.add_argument("--save-to", metavar="FILE", default=None,
                   help="after streaming, download the device's trained state as a checkpoint "
                        "file (header + counters + settings + trained arrays)")
    g.add_argument("--restore-from", metavar="FILE", default=None,
                   help="before streaming, upload a checkpoint file made by --save-to (for this "
                        "model and plan only) and make it the device's state")
    g.add_argument("--resume", action="store_true",
                   help="continue an earlier stream on a board that has trained: skip the "
                        "samples its state already includes (GET resume_at)")
    g.add_argument("--flash", metavar="FILE", default=None,
                   help="with --boot: the file that holds the emulated board's checkpoint "
                        "flash across boots (default: flash.bin in --out)")
    g.add_argument("--reconnects", type=int, default=5, metavar="N",
                   help="how often to reconnect to a board that reset or dropped the line "
                        "before giving up (default 5)")
    g.add_argument("--download", metavar="FILE", default=None,
                   help="after streaming, download the device's trained weights (blob 0) "
                        "to FILE (raw bytes, e.g. to compare with a reference replay)")
    g.add_argument("--verify", metavar="BUILD_DIR", default=None,
                   help="replay the last adapting pass on the numpy reference (the firmware's "
                        "build folder holds the model as compiled and its training setup) and "
                        "check that the board's predictions and trained arrays are identical")
    g.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default build/stream in the repository)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def _positive(ap, args, name):
    v = getattr(args, name)
    if v is not None and v < 1:
        ap.error(f"--{name.replace('_', '-')} must be at least 1")


def parse_args(argv=None) -> argparse.Namespace:
    ap = build_parser()
    args = ap.parse_args(argv)
    for name in ("classes", "limit", "size", "history", "epochs", "train_every", "repeat"):
        _positive(ap, args, name)
    if args.autosave is not None and args.autosave < 0:
        ap.error("--autosave must be >= 0 (0 = off)")
    if args.augment_shift is not None and not args.augment:
        ap.error("--augment-shift needs --augment")
    if args.augment_shift is not None and args.augment_shift < 0:
        ap.error("--augment-shift must be >= 0")
    if args.augment and args.history is None and not any(
            s.partition("=")[0].strip() == "history" for s in args.set):
        ap.error("--augment applies to history rounds: give --history N")
    if args.reconnects < 0:
        ap.error("--reconnects must be >= 0")
    if args.flash and not args.boot:
        ap.error("--flash needs --boot (a real board keeps its own flash)")
    if args.resume and (args.compare or args.passes or args.reset):
        ap.error("--resume continues one stream: not with --compare, --passes or --reset")
    if args.size is not None and args.size > P.RESIZE_MAX_DIM:
        ap.error(f"--size must be at most {P.RESIZE_MAX_DIM}")
    if args.timeout <= 0:
        ap.error("--timeout must be positive")
    if args.lr is not None and not math.isfinite(args.lr):
        ap.error("--lr must be a finite number")
    if args.lr_body is not None and not (math.isfinite(args.lr_body) and args.lr_body >= 0):
        ap.error("--lr-body must be a finite number >= 0")
    if args.passes is not None:
        args.passes = [m.strip() for m in args.passes.split(",") if m.strip()]
        bad = [m for m in args.passes if m not in MODES]
        if bad or not args.passes:
            ap.error(f"--passes: unknown pass {', '.join(bad) or '(none)'}; choose from "
                     f"{', '.join(MODES)}")
    return args


def range_function(text: str) -> str:
    """argparse type of --range / --loss-range: one of P.RANGE_FUNCTIONS."""
    from compiler.ref import grad_ops as rgo
    try:
        rgo._parse_mode(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected {', '.join(P.RANGE_FUNCTIONS)} (K 1..64)") from None
    return text


def parse_setting(text: str):
    key, sep, val = text.partition("=")
    key, val = key.strip(), val.strip()
    if not sep or not key:
        raise StreamError(f"--set {text!r}: expected KEY=VALUE", EXIT_USAGE)
    for conv in (int, float):
        try:
            return key, conv(val)
        except ValueError:
            pass
    return key, val


def expected_hash(args) -> str | None:
    h = args.expect_hash.strip().lower() if args.expect_hash else None
    if args.expect_report:
        path = Path(args.expect_report)
        try:
            report = json.loads(path.read_text())
        except FileNotFoundError:
            raise StreamError(f"build report {str(path)!r} not found", EXIT_USAGE) from None
        except (OSError, ValueError) as e:
            raise StreamError(f"cannot read build report {path}: {e}", EXIT_USAGE) from None
        sha = report.get("sha256") if isinstance(report, dict) else None
        if not isinstance(sha, str) or not sha:
            raise StreamError(f"build report {path} has no 'sha256' model hash", EXIT_USAGE)
        if h is not None and h != sha.lower():
            raise StreamError(f"--expect-hash {h} and {path}'s sha256 {sha} disagree", EXIT_USAGE)
        h = sha.lower()
    return h


# ---- preparing the stream ---------------------------------------------------------------------
@dataclass
class Plan:
    """What is streamed: dataset, order, image geometry, shifts."""
    ds: D.Dataset
    order: np.ndarray
    size: tuple          # (h, w) sent
    channels: int
    shifts: ShiftChain

    def image(self, i: int) -> np.ndarray:
        img = D.resize(D.to_channels(self.ds.x[i], self.channels), self.size)
        return self.shifts(img, int(i))

    def describe(self) -> str:
        return (f"streaming {len(self.order)} samples as {self.size[0]}x{self.size[1]}x"
                f"{self.channels}, shift: {self.shifts.describe()}")


def load_dataset(args) -> D.Dataset:
    try:
        ds = D.load(args.dataset, size=args.size)
        return D.select_classes(ds, args.classes)
    except D.DatasetError as e:
        raise StreamError(str(e), EXIT_USAGE) from None


def make_plan(args, ds: D.Dataset, info: P.Info) -> Plan:
    if getattr(info, "unsupervised", False):   # (replays pass a namespace)
        raise StreamError("the device runs an autoencoder that learns without labels (mse "
                          "loss): host.stream streams labelled images; send it int8 feature "
                          "vectors with host.protocol.Client.sample (README, Serial protocol)",
                          EXIT_USAGE)
    if len(ds.classes) > info.num_classes:
        raise StreamError(f"{ds.name} has {len(ds.classes)} classes but the device's model has "
                          f"{info.num_classes}: use --classes {info.num_classes} (or fewer)", EXIT_USAGE)
    channels = args.channels or (1 if ds.channels == 1 or info.in_c == 1 else 3)
    if not (channels == info.in_c or (channels, info.in_c) in ((1, 3), (3, 1))):
        raise StreamError(f"the device's model takes {info.in_c} channels and cannot convert "
                          f"{channels}-channel samples", EXIT_USAGE)
    h, w = ds.x.shape[1:3]
    size = (args.size, args.size) if args.size else (min(h, info.in_h), min(w, info.in_w))
    need = P.SAMPLE_HEADER_BYTES + size[0] * size[1] * channels
    if need > info.max_payload:
        raise StreamError(f"a {size[0]}x{size[1]}x{channels} sample needs {need} bytes, the device "
                          f"accepts at most {info.max_payload} per request: use a smaller --size"
                          f"{' or --gray' if channels == 3 else ''}", EXIT_USAGE)
    try:
        shifts = ShiftChain.parse(args.shift, seed=args.seed)
    except ShiftError as e:
        raise StreamError(str(e), EXIT_USAGE) from None
    rng = np.random.default_rng(args.seed)
    order = np.concatenate([np.arange(len(ds)) if args.no_shuffle else rng.permutation(len(ds))
                            for _ in range(max(1, args.repeat))])
    if args.limit:
        order = order[:args.limit]
    return Plan(ds, order, size, channels, shifts)


# ---- device ---------------------------------------------------------------------------------
def open_port(url: str, baud: int):
    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=0.02)
    except (serial.SerialException, ValueError, OSError) as e:
        # pyserial repeats the URL (and the errno): keep its reason only
        msg = re.sub(r"^(\[Errno \d+\] )?could not open port .*?: (?=\[Errno|\w)", "",
                     str(e), count=1, flags=re.IGNORECASE)
        raise StreamError(f"cannot open port {url}: {msg}", EXIT_PORT) from None


def connect(client: P.Client, url: str, want_hash: str | None) -> P.Info:
    """HELLO (and the model-hash check), with short timeouts: a dead line fails fast."""
    timeout, retries = client.timeout, client.retries
    client.timeout, client.retries = HELLO_TIMEOUT, HELLO_RETRIES
    try:
        return client.check_model(want_hash) if want_hash else client.hello()
    except P.ModelMismatch as e:
        raise StreamError(f"{e} (stream to the firmware built for this model, or drop "
                          f"--expect-hash/--expect-report)", EXIT_MODEL) from None
    except P.ReplyTimeout as e:
        raise StreamError(f"no device answers on {url}: {e} (is the firmware running and "
                          f"the baud rate right?)", EXIT_PORT) from None
    except P.DeviceError as e:
        raise StreamError(f"the device answered HELLO with {describe_error(e)}", EXIT_DEVICE) from None
    except P.ProtocolError as e:
        raise StreamError(f"no valid INFO reply on {url}: {e}", EXIT_PORT) from None
    finally:
        client.timeout, client.retries = timeout, retries


def describe_error(e: P.DeviceError) -> str:
    return (f"ERROR {P.ERR_NAMES.get(e.code, '?')} (code {e.code}) to "
            f"{P.MSG_NAMES.get(e.req_type, e.req_type)}: {e.text!r}")


class Skipped(str):
    """A setting the device did not take (the text says why)."""


def apply_settings(client: P.Client, info: P.Info, args, log) -> dict:
    """SET each requested key; keys the device does not know are skipped with a warning.
    Returns {key: value or 'skipped: ...'}."""
    wanted = [("history", args.history), ("epochs", args.epochs), ("lr", args.lr),
              ("lr_body", args.lr_body), ("train_every", args.train_every),
              ("autosave", args.autosave), ("range", args.range),
              ("loss_range", args.loss_range), ("augment_shift", args.augment_shift),
              ("augment", 1 if args.augment else None)]
    wanted = [(k, v) for k, v in wanted if v is not None]
    wanted += [parse_setting(s) for s in args.set]
    done = {}
    if wanted and not info.supports(P.MSG_SET):
        log.warn("the device does not take settings (no SET): "
                 + ", ".join(k for k, _ in wanted) + " skipped")
        return {k: Skipped("skipped: no SET") for k, _ in wanted}
    for key, value in wanted:
        try:
            client.set(key, value)
            done[key] = value
        except P.DeviceError as e:
            if e.code in (P.ERR_KEY, P.ERR_UNSUPPORTED):
                log.warn(f"the device does not know the setting {key!r} "
                         f"({P.ERR_NAMES.get(e.code)}: {e.text}); skipped")
                done[key] = Skipped(f"skipped: {e.text}")
            else:
                raise StreamError(f"the device rejected {key}={value!r}: {describe_error(e)}") from None
        except (ValueError, TypeError) as e:
            raise StreamError(f"setting {key}={value!r}: {e}", EXIT_USAGE) from None
    return done


def resend_settings(client: P.Client, settings: dict):
    """SET again the keys the device accepted the first time."""
    for key, value in settings.items():
        if not isinstance(value, Skipped):
            try:
                client.set(key, value)
            except P.DeviceError as e:
                raise StreamError(f"the device rejected {key}={value!r}: {describe_error(e)}") from None


# ---- one pass ---------------------------------------------------------------------------------
@dataclass
class PassResult:
    mode: str
    unit: str = "cycles"         # what the board's cycle counter counts (cost_unit)
    correct: list = field(default_factory=list)
    trained: int = 0
    losses: list = field(default_factory=list)      # per sample (None: no loss)
    preds: list = field(default_factory=list)
    cycles_predict: list = field(default_factory=list)
    cycles_train: list = field(default_factory=list)
    trained_flags: list = field(default_factory=list)
    seconds: float = 0.0
    device_stats: dict | None = None
    complete: bool = False
    resumes: list = field(default_factory=list)   # [{"at": sample, "from": sample, "why": ...}]

    def rewind(self, pos: int):
        """Forget the results from sample ``pos`` on (they are sent again)."""
        for name in ("correct", "trained_flags", "cycles_predict", "cycles_train", "losses", "preds"):
            del getattr(self, name)[pos:]
        self.trained = sum(self.trained_flags)

    @property
    def n(self) -> int:
        return len(self.correct)

    @property
    def accuracy(self) -> float | None:
        return 100.0 * sum(self.correct) / self.n if self.n else None

    def summary(self) -> dict:
        def mean(v):
            return float(np.mean(v)) if len(v) else None
        return {"n": self.n, "correct": int(sum(self.correct)), "accuracy": self.accuracy,
                "trained": self.trained,
                "mean_loss": mean([v for v in self.losses if v is not None]),
                "mean_cycles_predict": mean(self.cycles_predict),
                "mean_cycles_train": mean([c for c, t in zip(self.cycles_train, self.trained_flags)
                                           if t]),
                "cycles_unit": self.unit,
                "seconds": round(self.seconds, 3), "complete": self.complete,
                "resumes": self.resumes, "device_stats": self.device_stats}

    def line(self) -> str:
        s = self.summary()
        parts = [f"{s['accuracy']:.1f}% ({s['correct']}/{self.n})" if self.n else "no samples"]
        if s["mean_loss"] is not None:
            parts.append(f"mean loss {s['mean_loss']:.3f}")
        parts.append(f"trained on {self.trained}")
        if s["mean_cycles_predict"] is not None:
            parts.append(f"predict {s['mean_cycles_predict']:.0f} {self.unit}")
        if s["mean_cycles_train"] is not None:
            parts.append(f"train step {s['mean_cycles_train']:.0f} {self.unit}")
        if self.seconds > 0 and self.n:
            parts.append(f"{self.n / self.seconds:.1f} samples/s")
        if self.resumes:
            parts.append(f"resumed {len(self.resumes)}x, "
                         f"{sum(r['at'] - r['from'] for r in self.resumes)} samples re-sent")
        return f"{self.mode + ':':10s}" + ", ".join(parts)


def run_pass(link: "Link", plan: Plan, res: PassResult, args, writer, log, start: int = 0,
             settings: dict | None = None) -> PassResult:
    """Stream ``plan`` once from sample ``start``, filling ``res`` as samples come back (so
    an interrupted pass keeps what it got). A board that resets or drops the line is
    reconnected and the stream resumes where the board's restored state ends."""
    train = res.mode != "frozen"
    before = _stats(link.client)
    base = link.position()          # the device's sample counter at this pass's sample 0
    if base is not None:
        base -= start
    bar = log.bar(len(plan.order), res.mode)
    if bar is not None and start:
        bar.update(start)
    t0 = time.monotonic()
    pos, last_index, resent_below, event = start, None, start, ""
    try:
        while pos < len(plan.order):
            i = plan.order[pos]
            label = int(plan.ds.y[i])
            img = plan.image(i)
            where = f"sample {pos} (dataset index {i})"
            try:
                r = link.client.sample(img, label, bilinear=args.device_resize == "bilinear",
                                       train=train, timeout=args.timeout)
                if last_index is not None and r.sample_index <= last_index:
                    raise BoardReset(f"the device's sample counter went back from {last_index} "
                                     f"to {r.sample_index}")
            except P.DeviceError as e:
                raise StreamError(f"{where}: the device answered {describe_error(e)}") from None
            except (P.ProtocolError, BoardReset) + LINE_ERRORS as e:
                why = (str(e) if isinstance(e, BoardReset) else f"lost the serial line: {e}"
                       if not isinstance(e, P.ProtocolError) else str(e))
                if base is None:
                    raise StreamError(f"{where}: {why} (the firmware cannot report its "
                                      "position, so the stream cannot resume)") from None
                log.warn(f"{where}: {why}; reconnecting")
                new = link.recover(base + pos, log, where, rolled=isinstance(e, BoardReset))
                new -= base
                if new < 0:
                    log.warn(f"the board's restored state predates this pass by {-new} samples; "
                             "resuming from sample 0 (the final weights will differ from an "
                             "uninterrupted stream)")
                    new = 0
                    base = link.position()
                if settings:
                    resend_settings(link.client, settings)
                if res.mode == "head":
                    link.client.set("lr_body", 0.0)
                res.resumes.append({"at": pos, "from": new, "why": why})
                log.warn(f"resuming at sample {new} (re-sending {pos - new})")
                resent_below = max(resent_below, pos)
                res.rewind(new)
                if bar is not None:
                    bar.n = new
                    bar.refresh()
                pos, last_index, event = new, None, f"resumed here after: {why}"
                continue
            last_index = r.sample_index
            ok = r.pred == label
            res.correct.append(int(ok))
            res.trained += r.trained
            res.trained_flags.append(int(r.trained))
            res.losses.append(r.loss)
            res.preds.append(r.pred)
            res.cycles_predict.append(r.cycles_predict)
            res.cycles_train.append(r.cycles_train)
            writer.writerow({"mode": res.mode, "index": pos, "dataset_index": int(i),
                             "label": label, "pred": r.pred, "correct": int(ok),
                             "trained": int(r.trained),
                             "loss": "" if r.loss is None else f"{r.loss:.6g}",
                             "cycles_predict": r.cycles_predict, "cycles_train": r.cycles_train,
                             "device_index": r.sample_index, "resent": int(pos < resent_below),
                             "event": event})
            event = ""
            pos += 1
            if bar is not None:
                bar.set_postfix_str(f"acc {res.accuracy:.1f}%", refresh=False)
                bar.update(1)
        res.complete = True
    finally:
        res.seconds = time.monotonic() - t0
        if bar is not None:
            bar.close()
    after = _stats(link.client)
    if before and after and not res.resumes and not start:
        # the device's own counters over this pass (its "last_*" fields are not counters)
        res.device_stats = {k: after[k] - before[k] for k in after if not k.startswith("last_")}
        d = res.device_stats
        if (d["labelled"], d["correct"]) != (res.n, sum(res.correct)):
            log.warn(f"{res.mode}: the device counted {d['correct']}/{d['labelled']} correct, "
                     f"the host {sum(res.correct)}/{res.n}")
    return res


def _close_quietly(port):
    try:
        port.close()
    except LINE_ERRORS:
        pass


class BoardReset(Exception):
    """The board's counters went back: it rebooted behind the open port."""


class Link:
    """The board at the other end of the line: opens the port (booting an emulated board
    first with --boot), and reconnects after a reset or a lost line."""

    def __init__(self, args, want: str | None, stack: ExitStack, out: Path):
        self.args, self.want, self.stack = args, want, stack
        self.flash = Path(args.flash) if args.flash else out / "flash.bin"
        self.board = self.port = self.client = self.info = None

    def open(self) -> P.Info:
        if self.args.boot and (self.board is None or self.board._p.poll() is not None):
            if self.board is not None:
                self.board.wait(timeout=1)
            self.board = boot(self.args.boot, self.stack, self.flash)
        self.url = self.board.url if self.board is not None else self.args.port
        self.port = open_port(self.url, self.args.baud)
        self.stack.callback(_close_quietly, self.port)
        self.client = P.Client(self.port, timeout=REQUEST_TIMEOUT, retries=3, expected_hash=self.want)
        self.info = connect(self.client, self.url, self.want)
        return self.info

    def get(self, key: str):
        """A device setting, or None when the firmware does not have it."""
        if not self.info.supports(P.MSG_GET):
            return None
        try:
            return self.client.get(key)
        except P.DeviceError:
            return None

    def position(self) -> int | None:
        """SAMPLE requests the board's state has seen (None: firmware without the key)."""
        return self.get("samples")

    def recover(self, expected: int, log, where: str, rolled: bool = False) -> int:
        """Reconnect (bounded retries), then put the board in a state that includes an exact
        prefix of the stream: if it has seen exactly ``expected`` samples, nothing is lost;
        otherwise (or when it has ``rolled`` on: it trained on a sample after rebooting)
        reload its newest checkpoint (RESTORE) or, with none, its compiled-in weights.
        Returns the position to resume from (the device's ``resume_at``)."""
        for attempt in range(self.args.reconnects + 1):
            try:
                try:
                    self.port.close()
                except LINE_ERRORS:
                    pass
                if attempt:
                    time.sleep(min(5.0, 0.5 * 2 ** attempt))
                info = self.open()
                break
            except StreamError as e:
                if e.status == EXIT_MODEL:
                    raise
                log.warn(f"reconnect {attempt + 1}/{self.args.reconnects + 1}: {e}")
        else:
            raise StreamError(f"{where}: the board did not come back after "
                              f"{self.args.reconnects + 1} attempts", EXIT_PORT)
        log.info(f"device: back, {info.status or 'no status'}")
        seen = self.position()
        if seen is None:
            raise StreamError(f"{where}: the board came back with firmware that cannot report "
                              "its position")
        if seen != expected or rolled:
            try:
                if self.get("checkpoint") and self.info.supports(P.MSG_RESTORE):
                    n = self.client.restore(timeout=self.args.timeout)
                    log.info(f"device: reloaded checkpoint {n}")
                else:
                    self.client.reset(weights=True, history=True)
                    log.info("device: no checkpoint; back to the compiled-in weights")
            except P.DeviceError as e:
                raise StreamError(f"{where}: rolling the board back failed: {describe_error(e)}") from None
        return int(self.get("resume_at") or 0)


def _stats(client: P.Client) -> dict | None:
    try:
        return vars(client.stats())
    except P.ProtocolError:
        return None


# ---- output -----------------------------------------------------------------------------------
class Log:
    def __init__(self, progress: bool):
        self.progress = progress
        self.warnings: list[str] = []

    def info(self, msg: str):
        print(msg, flush=True)

    def warn(self, msg: str):
        self.warnings.append(msg)
        print(f"warning: {msg}", file=sys.stderr, flush=True)

    def bar(self, total: int, mode: str):
        if not self.progress:
            return None
        from tqdm import tqdm
        return tqdm(total=total, desc=f"{mode:8s}", unit="sample", file=sys.stderr,
                    dynamic_ncols=True, leave=True)


def result_line(results: list) -> str:
    done = [r for r in results if r.n]
    if not done:
        return "no samples streamed"
    n = min(r.n for r in done)
    parts = [f"{MODES[r.mode]} {r.accuracy:.1f}%" for r in done]
    ns = {r.n for r in done}
    tail = f"n={n}" if len(ns) == 1 else "n=" + "/".join(str(r.n) for r in done)
    if not all(r.complete for r in results):
        tail += ", incomplete"
    return " -> ".join(parts) + f" ({tail})"


def write_outputs(out: Path, results: list, plan: Plan | None, info: P.Info | None,
                  args, settings: dict, log: Log) -> list:
    from host.plots import plot_accuracy

    written = []
    curves = {r.mode: r.correct for r in results if r.n}
    if curves:
        title = ("Prequential accuracy (evaluate, then train) on board "
                 f"{info.board if info else '?'}")
        sub = (f"{plan.ds.name}, {len(plan.ds.classes)} classes, sent as "
               f"{plan.size[0]}x{plan.size[1]}x{plan.channels}, shift: {plan.shifts.describe()}")
        if info is not None:
            sub += f"\nmodel {info.model_hash[:16]}, {len(results[0].correct)} samples"
        written.append(plot_accuracy(curves, out / PNG_NAME, title=title, subtitle=sub))
    summary = {
        "result": result_line(results),
        "passes": {r.mode: r.summary() for r in results},
        "dataset": None if plan is None else {
            "spec": args.dataset, "name": plan.ds.name, "classes": plan.ds.classes,
            "samples": len(plan.order), "size": list(plan.size), "channels": plan.channels,
            "shift": plan.shifts.describe(), "seed": args.seed, "shuffled": not args.no_shuffle},
        "device": None if info is None else {
            "board": info.board, "model_hash": info.model_hash, "plan": info.plan,
            "input": [info.in_h, info.in_w, info.in_c], "classes": info.num_classes,
            "ram_used": info.ram_used, "ram_budget": info.ram_budget,
            "ram_build_report": build_ram(_report_of(args)),
            "flash_used": info.flash_used, "flash_budget": info.flash_budget},
        "settings": settings,
        "warnings": log.warnings,
    }
    (out / JSON_NAME).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    written.append(out / JSON_NAME)
    return written


def _report_of(args) -> Path | None:
    """The build report of the firmware at the other end, if known: --expect-report,
    the --verify build folder's, or the one beside the ELF this stream booted (--boot)."""
    cands = [getattr(args, "expect_report", None)]
    if getattr(args, "verify", None):
        cands.append(Path(args.verify) / "report.json")
    elf = (getattr(args, "boot", None) or "").partition(":")[2]
    if elf:
        cands.append(Path(elf).parent / "report.json")
    return next((Path(c) for c in cands if c and Path(c).is_file()), None)


def _ram_text(info, args) -> str:
    """The RAM figure of the device line: the build report's (same numbers as `build`
    printed) when the firmware's build folder is known, else the device's own figure,
    named for what it counts."""
    rep = build_ram(_report_of(args))
    if rep is not None:
        return (f", RAM {rep['ram'] / 1024:.1f} KB of {rep['budget'] // 1024} KB (build report: "
                f"arena {rep['arena'] / 1024:.1f}, stack {rep['stack'] / 1024:.1f}, runtime "
                f"{rep['runtime'] / 1024:.1f}"
                + (f", trainable params {rep['params'] / 1024:.1f}" if rep["params"] else "") + ")")
    if not info.ram_budget:
        return ""
    return (f", RAM {info.ram_used / 1024:.1f} KB of {info.ram_budget // 1024} KB (arena + stack + "
            "trained arrays, as the device reports; the build report's RAM also counts the "
            "runtime's buffers)")


def _rel(p: Path) -> str:
    """``p`` relative to the current directory when it lies inside it."""
    p = Path(p).absolute()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


# ---- boot ----------------------------------------------------------------------------------
def boot(spec: str, stack: ExitStack, flash: Path | None = None):
    """--boot qemu:ELF / host:EXE: start the board (compiler/target/runner.py) with its
    checkpoint flash kept in ``flash``; its serial URL is ``.url``."""
    from compiler.target import runner
    kind, sep, path = spec.partition(":")
    kinds = {"qemu": runner.QemuSerial, "host": runner.HostSerial}
    if not sep or kind not in kinds or not path:
        raise StreamError(f"--boot {spec!r}: expected qemu:ELF or host:EXE", EXIT_USAGE)
    if not Path(path).is_file():
        raise StreamError(f"--boot: firmware {path!r} not found", EXIT_USAGE)
    try:
        if flash is not None:
            flash.parent.mkdir(parents=True, exist_ok=True)
        return stack.enter_context(kinds[kind](path, flash=flash))
    except (OSError, RuntimeError, ValueError) as e:
        raise StreamError(f"could not start the {kind} board with {path}: {e}", EXIT_PORT) from None


def stop_board(board, client: P.Client | None, log: Log):
    """Ask a board we booted to exit (EXIT); one that does not is ended."""
    if board is None:
        return
    said_exit = False
    if client is not None and client.info is not None and client.info.supports(P.MSG_EXIT):
        try:
            # short: a board that died must not hold the user up
            client.request(P.MSG_EXIT, bytes([0]), timeout=1.0, retries=1)
            said_exit = True
        except (P.ProtocolError,) + LINE_ERRORS as e:
            log.warn(f"EXIT: {e}")
    r = board.wait(timeout=10 if said_exit else 1)      # wait() ends it after the timeout
    if said_exit and (r.exit_code != 0 or r.timed_out):
        log.warn(f"the booted board ended with {r.describe().splitlines()[0]}")


# ---- main ----------------------------------------------------------------------------------
def main(argv=None) -> int:
    """The CLI; returns the exit status (see the --help epilog)."""
    args = parse_args(argv)
    log = Log(progress=not args.no_progress)
    previous = _terminate_as_interrupt()
    try:
        return _main(args, log, argv)
    except StreamError as e:
        print(f"stream: error: {e}", file=sys.stderr, flush=True)
        return e.status
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _terminate_as_interrupt():
    """SIGTERM ends a stream like Ctrl-C does: outputs written, a booted board stopped."""
    try:
        return signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:             # not the main thread: leave signals alone
        return None


def _check_writable(path: Path, what: str):
    """Fail before streaming, not after, when an output cannot be written (the compiler's
    own check of output paths)."""
    from compiler.cli.args import file_problem
    why = file_problem(Path(path))
    if why:
        raise StreamError(f"cannot write {what} {path}: it {why}", EXIT_USAGE)


def _write_file(path: Path, data: bytes, what: str, out: Path, log: Log):
    """Write ``data``; when that fails, keep it in --out and say where."""
    try:
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path
    except OSError as e:
        keep = out / f"{what.replace(' ', '-')}-{time.strftime('%Y%m%d-%H%M%S')}.bin"
        try:
            keep.write_bytes(data)
            log.warn(f"cannot write {what} to {path}: {e.strerror or e}; kept in {_rel(keep)}")
            return keep
        except OSError:
            raise StreamError(f"cannot write {what} to {path}: {e.strerror or e} "
                              f"(and not to {keep} either)") from None


def resume_command(argv: list[str]) -> str:
    """The command line that continues this stream after an interruption."""
    drop = {"--reset", "--compare", "--restore-from"}
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in drop:
            skip = a == "--restore-from"
            continue
        if a.startswith("--restore-from="):
            continue
        out.append(a)
    prog = "tinytrain-stream" if Path(sys.argv[0]).name == "tinytrain-stream" else "python -m host.stream"
    return " ".join([prog] + out + ([] if "--resume" in out else ["--resume"]))


def _main(args, log: Log, argv: list[str] | None = None) -> int:
    # everything that can be checked without the device, first
    want = expected_hash(args)
    for s in args.set:
        parse_setting(s)
    try:
        ShiftChain.parse(args.shift)
    except ShiftError as e:
        raise StreamError(str(e), EXIT_USAGE) from None
    ds = load_dataset(args)
    out = Path(args.out) if args.out else DEFAULT_OUT
    _check_writable(out / CSV_NAME, "--out")
    for path, what in ((args.download, "--download"), (args.save_to, "--save-to")):
        if path:
            _check_writable(Path(path), what)
    restore_blob = None
    if args.restore_from:
        from compiler.target import checkpoint as ck
        try:
            restore_blob = Path(args.restore_from).read_bytes()
            hdr = ck.parse(restore_blob)
        except OSError as e:
            raise StreamError(f"--restore-from {args.restore_from}: {e.strerror or e}", EXIT_USAGE) from None
        except ck.CheckpointError as e:
            raise StreamError(f"--restore-from {args.restore_from}: {e}", EXIT_USAGE) from None

    results: list[PassResult] = []
    modes: list[str] = []
    plan = info = link = None
    settings: dict = {}
    status = EXIT_OK
    with ExitStack() as stack:
        link = Link(args, want, stack, out)
        try:
            info = link.open()
            client = link.client
            log.info(f"device: {info.board}, model {info.model_hash}, input {info.in_h}x{info.in_w}"
                     f"x{info.in_c}, {info.num_classes} classes" + _ram_text(info, args))
            if info.plan:
                log.info(f"plan:   {info.plan}")
            if info.status:
                log.info(f"state:  {info.status}")
            plan = make_plan(args, ds, info)
            log.info(f"data:   {ds.describe()}")
            log.info(f"        {plan.describe()}")
            modes = (args.passes if args.passes else ["frozen", "adapting"] if args.compare
                     else ["frozen" if args.frozen else "adapting"])
            resets = args.compare or args.reset or bool(args.passes)
            if resets and not info.supports(P.MSG_RESET):
                raise StreamError("the device does not support RESET, which --compare and "
                                  "--reset need")
            if restore_blob is not None:
                if hdr.model_hash != info.model_hash[:len(hdr.model_hash)]:
                    raise StreamError(f"--restore-from {args.restore_from} is a checkpoint of model "
                                      f"{hdr.model_hash[:16]}..., the device runs "
                                      f"{info.model_hash[:16]}...", EXIT_MODEL)
                if not info.supports(P.MSG_UPLOAD_BEGIN):
                    raise StreamError("the device cannot take a checkpoint (no UPLOAD)")
                try:
                    client.upload(restore_blob, blob=P.BLOB_CHECKPOINT)
                except P.DeviceError as e:
                    raise StreamError(f"--restore-from: the device refused the checkpoint: "
                                      f"{describe_error(e)}") from None
                log.info(f"state:  {args.restore_from} uploaded ({len(restore_blob)} bytes, state "
                         f"after {link.get('resume_at')} samples)")
            start = 0
            seen = None if resets else link.position()
            if seen:
                resume_at = link.get("resume_at") or 0
                if args.resume:
                    if seen != resume_at:         # buffered samples not yet in the weights
                        client.reset(weights=False, history=True)
                    start = min(resume_at, len(plan.order))
                    log.info(f"resume: the board's state includes {resume_at} samples; "
                             f"continuing at sample {start}")
                else:
                    log.warn(f"the board has already trained on {seen} samples: {info.status or 'state kept since boot'}; "
                             "accuracy on samples it has seen is not prequential. --reset starts "
                             "from the compiled-in weights, --resume continues that stream")
            out.mkdir(parents=True, exist_ok=True)
            with open(out / CSV_NAME, "a" if start else "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
                if not start:
                    writer.writeheader()
                for n_pass, mode in enumerate(modes):
                    if resets:
                        _reset(link.client)
                    # settings after the RESET, in case the firmware's RESET restores them
                    if n_pass == 0:
                        settings = apply_settings(link.client, info, args, log)
                        if settings:
                            log.info("set:    " + ", ".join(f"{k}={v}" for k, v in settings.items()))
                    elif resets:
                        resend_settings(link.client, settings)
                    restore = _head_only(link.client) if mode == "head" else None
                    results.append(PassResult(mode, unit=cost_unit(info.board)))
                    try:
                        run_pass(link, plan, results[-1], args, writer, log, start=start,
                                 settings=settings)
                        if restore is not None:
                            link.client.set("lr_body", restore)
                    finally:
                        f.flush()
                        if results[-1].n:
                            log.info(results[-1].line()
                                     + ("" if results[-1].complete else " (stopped early)"))
            if args.verify:
                status = _verify(link, plan, results, args, log, fresh=resets or not seen) or status
            if args.save:
                _save(link.client, info, args, log)
            if args.save_to:
                blob = link.client.download(P.BLOB_CHECKPOINT)
                where = _write_file(Path(args.save_to), blob, "checkpoint", out, log)
                log.info(f"state:  checkpoint of {len(blob)} bytes written to {_rel(where)}")
            if args.download:
                blob = link.client.download()
                where = _write_file(Path(args.download), blob, "weights", out, log)
                log.info(f"weights: {len(blob)} bytes downloaded to {_rel(where)}")
        except KeyboardInterrupt:
            log.warn("interrupted; writing what was streamed so far")
            status = EXIT_INTERRUPTED
        except StreamError as e:
            print(f"stream: error: {e}", file=sys.stderr, flush=True)
            status = e.status
        except P.ProtocolError as e:
            print(f"stream: error: {e}", file=sys.stderr, flush=True)
            status = EXIT_DEVICE
        except LINE_ERRORS as e:
            print(f"stream: error: lost the serial line {link.url if link else args.port}: {e}",
                  file=sys.stderr, flush=True)
            status = EXIT_DEVICE
        finally:
            # a second Ctrl-C must not lose the outputs: ignore it until they are written
            previous = _ignore_sigint()
            try:
                stop_board(link.board if link else None, link.client if link else None, log)
                if (status == EXIT_INTERRUPTED or (status != EXIT_OK and results
                                                   and not results[-1].complete)) and len(modes) == 1:
                    log.info("to resume: " + resume_command(argv if argv is not None else sys.argv[1:]))
                if plan is not None and any(r.n for r in results):
                    written = write_outputs(out, results, plan, info, args, settings, log)
                    log.info("wrote:  " + ", ".join(_rel(p) for p in [out / CSV_NAME] + written))
                    print(result_line(results), flush=True)
            finally:
                _restore_sigint(previous)
    return status


def _ignore_sigint():
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:             # not the main thread
        return None


def _restore_sigint(previous):
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _verify(link: Link, plan: Plan, results: list, args, log: Log, fresh: bool) -> int:
    """--verify: the last adapting pass replayed on the reference; EXIT_DEVICE on a mismatch."""
    from host import verify as V
    passes = [r for r in results if r.mode != "frozen"]
    if not passes:
        log.warn("--verify: no adapting pass to verify")
        return EXIT_OK
    res = passes[-1]
    if not fresh or args.resume or args.restore_from:
        log.warn("--verify: the board did not start from its compiled-in weights (no RESET: "
                 "use --reset, --compare or --passes); not verified")
        return EXIT_OK
    if not res.complete:
        log.warn("--verify: the pass did not complete; not verified")
        return EXIT_OK
    settings = V.settings_from_device(link.get)
    if any(v is None for v in settings.values()):
        log.warn("--verify: the firmware does not report its training settings; not verified")
        return EXIT_OK
    try:
        g, rep, sim = V.replay_pass(args.verify, plan, link.info, res, settings, args.device_resize, log)
    except (V.VerifyError, CompilerError) as e:
        raise StreamError(f"--verify: {e}", EXIT_USAGE) from None
    ok, line = V.compare(g, rep, sim, res.preds, link.client.download())
    log.info(f"verify: {res.mode} pass: {line}")
    return EXIT_OK if ok else EXIT_DEVICE


def _head_only(client: P.Client) -> float:
    """Before a "head" pass: SET lr_body 0, so only the classifier learns (its updates are
    bit for bit those of a head-only training program). Returns the previous lr_body, which
    is set again after the pass."""
    try:
        before = client.get("lr_body")
        client.set("lr_body", 0.0)
        return before
    except P.DeviceError as e:
        raise StreamError("a 'head' pass needs firmware with the lr_body setting (sparse-update "
                          f"firmware): the device answered {describe_error(e)}") from None


def _reset(client: P.Client):
    try:
        client.reset(weights=True, stats=True, history=True)
    except P.DeviceError as e:
        raise StreamError(f"RESET: the device answered {describe_error(e)}") from None


def _save(client: P.Client, info: P.Info, args, log: Log):
    if not info.supports(P.MSG_SAVE):
        log.warn("the device cannot SAVE; the trained weights were not checkpointed")
        return
    try:
        log.info(f"saved:  checkpoint {client.save(timeout=args.timeout)} on the device")
    except P.DeviceError as e:
        raise StreamError(f"SAVE: the device answered {describe_error(e)}") from None


if __name__ == "__main__":
    sys.exit(main())
