"""Command line: ``tinytrain <command> ...`` (also ``python -m compiler <command> ...``).

Each command is a function decorated with :func:`compiler.cli.commands.command` in
its own module (``inspect``, ``build`` / ``run``, ``plan``); ``main`` imports them and
builds one argparse sub-parser per registered command: a new command is one more
decorated function in one more module, imported here. Compiler errors (bad model,
unsupported op, bad plan) and file-system errors print one ``error: ...`` line and exit
with status 2; bad option values are refused by argparse with the validators of
:mod:`compiler.cli.args` (usage line + ``error:`` line, status 2).
"""
from __future__ import annotations

import argparse
import os
import sys

from compiler.cli import build, imports, inq, inspect, plan  # noqa: F401  (each registers its commands)
from compiler.cli.commands import COMMANDS, PROG
from compiler.ir.errors import CompilerError, report


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Compile int8 neural networks into C firmware that trains on a "
                    "256 KB Cortex-M.",
        epilog=f"Run '{prog} COMMAND --help' for a command's options.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for c in COMMANDS.values():
        p = sub.add_parser(c.name, help=c.help, description=c.description)
        c.arguments(p)
        p.set_defaults(_run=c.run)
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    args.argv = argv[1:]    # the command's own arguments (recorded in plan files)
    try:
        if getattr(args, "model", None) is not None:
            from compiler.cli import model_arg
            # a bad model argument (or a float source without --calibrate) fails before any
            # other work
            model_arg.check(args.model, args if hasattr(args, "calibrate") else None,
                            need_int8=args.command != "inspect")
        return int(args._run(args) or 0)
    except CompilerError as e:
        return report(e)
    except BrokenPipeError:  # e.g. piped into `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:     # a file the command reads or writes (permissions, disk full, ...)
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return report(f"{where}{e.strerror or e}")


def tinytrain() -> int:
    """Console script ``tinytrain``."""
    return main(prog="tinytrain")
