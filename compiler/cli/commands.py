"""The command registry of ``tinytrain`` / ``python -m compiler``.

Each command is a function decorated with :func:`command`, which registers its name,
help text and an ``arguments(parser)`` hook; :func:`compiler.cli.main.build_parser`
builds one argparse sub-parser per registered command.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

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
              "file (with its .npz beside it), an .onnx file (QDQ int8, or float with "
              "--calibrate), FILE.py:FACTORY (a PyTorch module) or a .pt2 torch.export program "
              "(both with --calibrate): a source is imported as `import` does, with the same "
              "import options")


def require_int8(g, model, command: str) -> None:
    """Refuse a float model for a command that runs the int8 toolchain."""
    from compiler.ir.errors import CompilerError
    if not g.is_int8:
        raise CompilerError(f"{model}: a float model: `{command}` expected an int8 model (a QDQ "
                            "int8 ONNX file, a real model or a model .json)")
