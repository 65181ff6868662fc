"""Formatting of generated C: every generated line stays under :data:`WIDTH` characters."""
from __future__ import annotations

import re

WIDTH = 99      # longest generated line


def wrap_values(items: list[str], indent: int = 4, width: int = WIDTH) -> str:
    """Array initializer body: ``items`` separated by ", ", greedily filled into lines of
    at most ``width`` characters (each line ends with a comma)."""
    lines, cur = [], ""
    pad = " " * indent
    for it in items:
        piece = it + ","
        if cur and len(pad) + len(cur) + 1 + len(piece) > width:
            lines.append(pad + cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    if cur:
        lines.append(pad + cur)
    return "\n".join(lines)


def _split_top(text: str) -> list[str]:
    """``text`` split after each ", " and " = " that is not inside a string literal."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        cur += ch
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ((ch == "," and text[i + 1:i + 2] == " ")
                             or (ch == "=" and text[i - 1:i] == " " and text[i + 1:i + 2] == " ")):
            parts.append(cur)
            cur = ""
            i += 1          # drop the space: the next line starts with the next piece
        i += 1
    if cur:
        parts.append(cur)
    return parts


def wrap_stmt(stmt: str, indent: int = 4, width: int = WIDTH, tail: int = 1) -> str:
    """A C statement (without its indentation and the ``tail`` characters after it, such
    as ";") broken after commas so that every line fits in ``width``; continuation lines
    are indented 8 more spaces."""
    if indent + len(stmt) + tail <= width:
        return stmt
    parts = _split_top(stmt)
    lines, cur = [], ""
    cont = " " * (indent + 8)
    first = True
    for p in parts:
        lead = indent if first else indent + 8
        if cur and lead + len(cur) + 1 + len(p) + tail > width:
            lines.append(cur)
            cur, first = p, False
        else:
            cur = f"{cur} {p}" if cur else p
    lines.append(cur)
    return ("\n" + cont).join(line.rstrip() for line in lines)


def c_string(text: str, indent: int = 4, width: int = WIDTH) -> str:
    """A C string literal for ``text`` (no quotes or backslashes in it) for a
    ``#define``: when long, split into adjacent literals on continuation lines."""
    if len(text) + 40 <= width:
        return f'"{text}"'
    step = width - indent - 4
    chunks = [text[i:i + step] for i in range(0, len(text), step)]
    sep = "\\\n" + " " * indent
    return sep + sep.join(f'"{c}"' for c in chunks)


def c_ident(name: str) -> str:
    """A C identifier for an IR name (every other character becomes ``_``)."""
    s = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return s if not s[0].isdigit() else "_" + s
