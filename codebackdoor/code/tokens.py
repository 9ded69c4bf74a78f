"""Source code as a sequence of tokens: the leaves of the tree-sitter parse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from codebackdoor.code.parser import cached_parse

if TYPE_CHECKING:
    import tree_sitter

# A string literal is one token, whatever pieces (quotes, escapes, interpolations) it has.
_ATOMIC = {"python": frozenset({"string"}), "java": frozenset({"string_literal"})}
_SKIPPED = {
    "python": frozenset({"comment", "line_continuation"}),
    "java": frozenset({"line_comment", "block_comment"}),
}


@dataclass(frozen=True)
class Token:
    """One token; ``start``/``end`` are byte offsets into ``code.encode("utf-8")``."""

    text: str
    type: str
    start: int
    end: int


def leaf_tokens(code: str, lang: str) -> list[Token]:
    """The non-comment leaves of ``code`` in source order; a string literal is one token."""
    data = code.encode("utf-8")
    root = cached_parse(code, lang).root_node
    return [
        Token(
            text=data[node.start_byte : node.end_byte].decode("utf-8"),
            type=node.type,
            start=node.start_byte,
            end=node.end_byte,
        )
        for node in leaf_nodes(root, lang, 0, len(data))
    ]


def leaf_nodes(
    root: tree_sitter.Node, lang: str, start: int, end: int, limit: int | None = None
) -> list[tree_sitter.Node]:
    """The token nodes (as in :func:`leaf_tokens`) of ``root`` lying within bytes
    ``start:end``, at most ``limit`` of them; only the part of the tree around that range is
    visited."""
    atomic, skipped = _ATOMIC[lang], _SKIPPED[lang]
    found = []
    cursor = root.walk()
    while True:
        node = cursor.node
        if node.start_byte >= end:
            return found
        entered = False
        if node.end_byte > start:
            if node.child_count == 0 or node.type in atomic:
                if (
                    node.start_byte >= start
                    and node.end_byte <= end
                    and node.end_byte > node.start_byte
                    and node.type not in skipped
                ):
                    found.append(node)
                    if len(found) == limit:
                        return found
            else:
                # Jumps over the children that end before ``start``.
                entered = cursor.goto_first_child_for_byte(start) is not None
        if entered:
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return found
