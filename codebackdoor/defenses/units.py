"""The units that input-level defenses delete one at a time: words of text, tokens or lines of code.

BKI, ONION and KillBadCode all score an input by removing one unit and looking at what changes.
For natural language a unit is a whitespace-separated word (as in ONION and OpenBackdoor); for
code it is a tree-sitter leaf token (a string literal is one token) or a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GRANULARITIES = ("token", "line")

_WORD = re.compile(r"\S+")
_LINE = re.compile(r"[^\n]*\S[^\n]*")


@dataclass(frozen=True)
class Unit:
    """One deletable piece of an input; ``start``/``end`` are character offsets."""

    text: str
    start: int
    end: int


def units(source: str, lang: str, granularity: str = "token") -> list[Unit]:
    """The units of ``source`` in order. ``lang`` is ``nl`` (words) or a code language."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; valid: {GRANULARITIES}")
    if lang == "nl" or granularity == "line":
        pattern = _WORD if granularity == "token" else _LINE
        return [Unit(m.group(), m.start(), m.end()) for m in pattern.finditer(source)]
    from codebackdoor.code.tokens import leaf_tokens

    tokens = leaf_tokens(source, lang)
    if source.isascii():
        return [Unit(t.text, t.start, t.end) for t in tokens]
    # Tree-sitter counts bytes; the units count characters.
    chars = _byte_to_char(source)
    return [Unit(t.text, chars[t.start], chars[t.end]) for t in tokens]


def without(source: str, unit: Unit) -> str:
    """``source`` with ``unit`` deleted; a word's following space goes with it, and the last
    word's preceding space, so that deleting a word of "a b c" leaves "b c", "a c" or "a b",
    as OpenBackdoor's and ONION's ``' '.join`` of the other words does."""
    start, end = unit.start, unit.end
    if end < len(source) and source[end] == " " and (start == 0 or source[start - 1] in " \n"):
        end += 1
    elif end == len(source) and start > 0 and source[start - 1] == " ":
        start -= 1
    return source[:start] + source[end:]


def _byte_to_char(source: str) -> list[int]:
    offsets = []
    for index, char in enumerate(source):
        offsets.extend([index] * len(char.encode("utf-8")))
    offsets.append(len(source))
    return offsets
