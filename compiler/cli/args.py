"""argparse ``type=`` validators shared by every command of ``tinytrain``.

Each one turns the option's text into its value or raises
:class:`argparse.ArgumentTypeError` saying what was expected; argparse then prints the
usage line and ``<prog>: error: argument --opt: <what was expected>`` and exits with
status 2, before the command does any work. Every numeric option of every command uses
one of these, so ``nan``, ``inf``, a negative or a zero count is refused the same way
everywhere::

    p.add_argument("--train", type=args.positive_int, default=1000)
    p.add_argument("--lr", type=args.learning_rate)
    p.add_argument("--out", type=args.writable_file)

:func:`check_writable_dir` and :func:`check_writable_file` are the same checks for paths
computed after parsing (they raise :class:`compiler.ir.errors.CompilerError`).
"""
from __future__ import annotations

import argparse
import math
import os
from fractions import Fraction
from pathlib import Path

from compiler.ir.errors import CompilerError
from compiler.sparse.plan import HISTORY_MAX, INPUT_SIZE_MAX, parse_bytes

#: numpy's seed range
SEED_MAX = 2 ** 32 - 1


def _fail(text, expected: str):
    raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")


def _int(text, expected: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        _fail(text, expected)


def _float(text, expected: str) -> float:
    try:
        v = float(str(text).strip())
    except ValueError:
        _fail(text, expected)
    if not math.isfinite(v):
        _fail(text, expected)
    return v


def int_range(lo: int, hi: int | None = None):
    """An integer in ``lo..hi`` (``hi`` None: no upper bound)."""
    expected = (f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}")

    def parse(text) -> int:
        v = _int(text, expected)
        if v < lo or (hi is not None and v > hi):
            _fail(text, expected)
        return v
    parse.__name__ = f"int_{lo}_{hi}"  # argparse shows the name on a ValueError only
    return parse


#: an integer >= 1 (counts of samples, epochs, jobs ...)
positive_int = int_range(1)
#: an integer >= 0
nonneg_int = int_range(0)
#: a number of classes of a classifier
classes = int_range(2)
#: a history buffer in samples (0: none)
history = int_range(0, HISTORY_MAX)
#: a model input size in pixels (as a plan file may give it)
input_size = int_range(1, INPUT_SIZE_MAX)
#: a random seed
seed = int_range(0, SEED_MAX)


def learning_rate(text) -> float:
    """A learning rate in (0, 1]."""
    expected = "a learning rate in (0, 1]"
    v = _float(text, expected)
    if not 0 < v <= 1:
        _fail(text, expected)
    return v


def fraction(text) -> float:
    """A number in [0, 1] (``lr_body``: 0 freezes the body)."""
    expected = "a number in [0, 1]"
    v = _float(text, expected)
    if not 0 <= v <= 1:
        _fail(text, expected)
    return v


def nonneg_float(text) -> float:
    """A finite number >= 0."""
    expected = "a finite number >= 0"
    v = _float(text, expected)
    if v < 0:
        _fail(text, expected)
    return v


def budget_bytes(text) -> int:
    """A memory size: ``256KB``, ``256 KiB``, ``0.25MB``, ``200000`` (bytes), > 0."""
    try:
        return parse_bytes(text)
    except CompilerError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


RATIOS = (Fraction(1, 8), Fraction(1, 4), Fraction(1, 2), Fraction(1))


def ratios(text) -> tuple[Fraction, ...]:
    """A comma-separated list of channel ratios among 1/8, 1/4, 1/2, 1 (sorted, unique)."""
    expected = "a comma-separated list of the channel ratios 1/8, 1/4, 1/2, 1"
    out = set()
    for part in str(text).split(","):
        try:
            r = Fraction(part.strip())
        except (ValueError, ZeroDivisionError):
            _fail(text, expected)
        if r not in RATIOS:
            _fail(text, expected)
        out.add(r)
    return tuple(sorted(out))


def weight_bits(text) -> tuple[int, tuple[str, ...] | None]:
    """``--weight-bits``: 8, 4 (every frozen layer at 4 bits) or 4:GLOB[,GLOB...] (the
    frozen layers whose names match) -> (bits, globs or None)."""
    from compiler.quantize.codebook import parse_weight_bits
    try:
        return parse_weight_bits(text)
    except ValueError:
        _fail(text, "8, 4 or 4:LAYER_GLOB[,LAYER_GLOB...] (e.g. 4:blocks.*)")


def train_spec(text) -> tuple[tuple[str, int | None], ...]:
    """What trains without a plan: ``last:K`` (weights and biases of the last K conv / fc
    layers), ``bias`` or ``bias:K`` (biases of every / the last K layers), ``whole``;
    joined with ``+`` (e.g. ``bias+last:2``). Returns ((kind, K or None), ...)."""
    expected = "last:K, bias, bias:K or whole, joined with + (e.g. bias+last:2), K >= 1"
    out = []
    for part in str(text).split("+"):
        kind, _, k = part.strip().partition(":")
        if kind not in ("last", "bias", "whole") or (kind == "last" and not k) \
                or (kind == "whole" and k):
            _fail(text, expected)
        n = None
        if k:
            n = _int(k, expected)
            if n < 1:
                _fail(text, expected)
        out.append((kind, n))
    return tuple(out)


# ----------------------------------------------------------------------------- paths

def _nearest_existing(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def dir_problem(p: Path) -> str | None:
    """Why ``p`` cannot be (or be made) a writable directory, or None."""
    if p.exists():
        if not p.is_dir():
            return "is not a folder"
        if not os.access(p, os.W_OK | os.X_OK):
            return "is not writable"
        return None
    base = _nearest_existing(p)
    if not base.is_dir():
        return f"cannot be created: {base} is not a folder"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"cannot be created: {base} is not writable"
    return None


def file_problem(p: Path) -> str | None:
    """Why ``p`` cannot be written as a file, or None."""
    if str(p).strip() == "":
        return "is empty"
    if p.is_dir():
        return "is a folder"
    if p.exists():
        return None if os.access(p, os.W_OK) else "is not writable"
    parent = Path(os.path.abspath(p)).parent
    why = dir_problem(parent)
    return f"cannot be written: its folder {parent} {why}" if why else None


def _check_writable(path, what: str, problem, expected: str) -> Path:
    why = problem(Path(path))
    if why:
        raise CompilerError(f"{path}: {what} {why}: expected {expected}")
    return Path(path)


def check_writable_dir(path, what: str = "output folder") -> Path:
    """``path`` as a folder the command can write into (it may not exist yet) or
    :class:`CompilerError`."""
    return _check_writable(path, what, dir_problem, "a writable folder")


def check_writable_file(path, what: str = "output file") -> Path:
    """``path`` as a file the command can write (its folder may not exist yet) or
    :class:`CompilerError`."""
    return _check_writable(path, what, file_problem, "a writable file path")


def writable_dir(text) -> str:
    """A folder the command can write into (created if missing)."""
    why = dir_problem(Path(text)) if str(text).strip() else "is empty"
    if why:
        raise argparse.ArgumentTypeError(f"{text}: {why}: expected a writable folder")
    return str(text)


def writable_dir_or_empty(text) -> str:
    """As :func:`writable_dir`, or '' (the feature is off)."""
    return "" if str(text) == "" else writable_dir(text)


def writable_file(text) -> str:
    """A file the command can write (its folder is created if missing)."""
    why = file_problem(Path(text))
    if why:
        raise argparse.ArgumentTypeError(f"{text}: {why}: expected a writable file path")
    return str(text)


def inq_steps(text) -> tuple[float, ...]:
    """``50,75,87.5,100``: accumulated percentages of quantized weights, increasing, the
    last one 100 -> fractions."""
    expected = "increasing percentages in (0, 100] ending with 100, e.g. 50,75,87.5,100"
    try:
        vals = [float(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not vals or any(not (0 < v <= 100) for v in vals) or vals != sorted(set(vals)) \
            or vals[-1] != 100:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return tuple(v / 100.0 for v in vals)


def holdout_fraction(text) -> float:
    """A share of the data held out for scoring, in [0, 0.9]."""
    v = fraction(text)
    if v > 0.9:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 0.9], got {text!r}")
    return v


def pt2_file(text) -> str:
    """A writable ``.pt2`` file name (a torch.export program)."""
    if not str(text).lower().endswith(".pt2"):
        raise argparse.ArgumentTypeError(f"{text}: expected a .pt2 file name (a torch.export "
                                         "program)")
    return writable_file(text)


#: ``inq --bits``: bits per power-of-two weight (compiler.quantize.inq.BITS)
inq_bits = int_range(2, 5)
