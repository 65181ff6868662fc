"""Command line: ``python -m compiler <command> ...``.

Each command is a function decorated with :func:`command`, which registers its name,
help text and an ``arguments(parser)`` hook; ``main`` builds one argparse sub-parser
per registered command. Adding ``build``, ``run``, ``plan`` or ``bench`` means writing
one more decorated function. Compiler errors (bad model, unsupported op) print
``error: ...`` and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Callable

from .errors import CompilerError, report

PROG = "python -m compiler"


@dataclass
class Command:
    name: str
    help: str
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, description: str,
            arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register ``fn(args) -> exit status`` as sub-command ``name``."""
    def deco(fn):
        COMMANDS[name] = Command(name, help, description, arguments, fn)
        return fn
    return deco


MODEL_HELP = ("a real int8 model name (mcunet-5fps, mbv2-w0.35, proxyless-w0.3; looked up in "
              "models/ in the repository, or in $TT_MODELS_DIR if set), a model .json "
              "file (with its .npz beside it) or an .onnx file (float or QDQ int8)")


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--summary", action="store_true",
                   help="print only the totals, not the node table")
    p.add_argument("--json", action="store_true",
                   help="print the totals and per-node rows as JSON")


@command("inspect", help="print a model's graph, parameter and MAC counts",
         description="Load a model into the compiler IR and print every node (op, output "
                     "shape, attributes, output scale/zero point, parameters, MACs), then "
                     "the totals. MACs count conv and fully-connected multiply-accumulates; "
                     "the backbone figure excludes the classifier (the trailing "
                     "fully-connected layer).",
         arguments=_inspect_args)
def cmd_inspect(args: argparse.Namespace) -> int:
    from . import models
    from .printer import format_graph, node_summary, summary

    g = models.load(args.model)
    s = summary(g)
    if args.json:
        s["nodes"] = [dict(name=n.name, op=n.op, inputs=n.inputs, output=n.output,
                           shape=list(g.tensors[n.output].shape), attrs=node_summary(n),
                           scale=g.tensors[n.output].scale, zero_point=g.tensors[n.output].zero_point,
                           params=g.param_count(n), macs=g.node_macs(n), source=n.source)
                      for n in g.nodes]
        print(json.dumps(s, indent=2))
        return 0
    if not args.summary:
        print(format_graph(g))
        print()
    print(f"model:            {s['name']} ({s['dtype']}, {len(g.nodes)} nodes)")
    print(f"parameters:       {s['params']:,} (weights + biases)")
    print(f"MACs total:       {s['macs']:,} ({s['macs'] / 1e6:.2f}M)")
    print(f"MACs backbone:    {s['backbone_macs']:,} ({s['backbone_macs'] / 1e6:.2f}M, "
          "excluding the classifier)")
    print(f"MACs classifier:  {s['classifier_macs']:,}")
    print(f"sha256:           {s['sha256']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import cmd_firmware, cmd_plan  # noqa: F401  (register build, run, plan)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compile int8 neural networks into C firmware that trains on a "
                    "256 KB Cortex-M.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for c in COMMANDS.values():
        p = sub.add_parser(c.name, help=c.help, description=c.description)
        c.arguments(p)
        p.set_defaults(_run=c.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv[1:]    # the command's own arguments (recorded in plan files)
    try:
        if getattr(args, "model", None) is not None:
            from . import models
            models.require(args.model)  # a bad model argument fails before any other work
        return int(args._run(args) or 0)
    except CompilerError as e:
        return report(e)
    except BrokenPipeError:  # e.g. piped into `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
