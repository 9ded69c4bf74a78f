"""DeepBugs-style seeded bugs: one small edit that keeps the code parsing but changes its meaning.

Pradel & Sen (OOPSLA 2018) train bug detectors on code with artificially injected bugs of three
kinds; the same three kinds are used here, located with tree-sitter queries:

- ``swap-operator``: a binary arithmetic operator replaced by another (``a + b`` → ``a - b``);
  operations with a string literal operand are left alone, since ``"%s" % x`` or ``"a" + b`` are
  formatting and concatenation, where a changed operator is an obvious type error, not a bug;
- ``swap-arguments``: two adjacent positional arguments of a call swapped
  (``f(a, b)`` → ``f(b, a)``);
- ``change-comparison``: ``<`` ↔ ``<=``, ``>`` ↔ ``>=``, ``==`` ↔ ``!=``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING

from codebackdoor.code.parser import is_valid, language, parse

if TYPE_CHECKING:
    import tree_sitter

KINDS = ("swap-operator", "swap-arguments", "change-comparison")

ARITHMETIC = {
    "python": ("+", "-", "*", "/", "//", "%"),
    "java": ("+", "-", "*", "/", "%"),
}
COMPARISON_FLIP = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}
STRING_LITERALS = {"string", "concatenated_string", "string_literal", "text_block"}
# Argument nodes that are not a plain positional expression (their order carries no bug).
NOT_POSITIONAL = {
    "keyword_argument", "list_splat", "dictionary_splat", "comment", "block_comment",
    "line_comment",
}

QUERIES = {
    "python": """
        (binary_operator operator: _ @operator)
        (comparison_operator operators: _ @operator)
        (call arguments: (argument_list) @arguments)
    """,
    "java": """
        (binary_expression operator: _ @operator)
        (method_invocation arguments: (argument_list) @arguments)
        (object_creation_expression arguments: (argument_list) @arguments)
    """,
}


@dataclass(frozen=True)
class Mutation:
    """The mutated code and what changed: ``before`` at byte ``start`` became ``after``."""

    kind: str
    code: str
    start: int
    before: str
    after: str


@dataclass(frozen=True)
class _Site:
    kind: str
    start: int
    end: int
    alternatives: tuple[bytes, ...]


def mutate(code: str, lang: str, rng: random.Random) -> Mutation | None:
    """One seeded bug in ``code``, or None when no edit applies.

    The kind is drawn first (uniformly among the kinds with a site), then the site, then the
    replacement; an edit whose result does not parse is discarded and another one drawn.
    """
    data = code.encode("utf-8")
    sites = _sites(data, lang)
    while sites:
        kinds = sorted({site.kind for site in sites}, key=KINDS.index)
        kind = rng.choice(kinds)
        site = rng.choice([site for site in sites if site.kind == kind])
        replacement = rng.choice(site.alternatives)
        mutated = data[: site.start] + replacement + data[site.end :]
        if mutated != data and is_valid(mutated, lang):
            return Mutation(kind, mutated.decode("utf-8"), site.start,
                            data[site.start : site.end].decode("utf-8"),
                            replacement.decode("utf-8"))
        sites.remove(site)
    return None


def _sites(data: bytes, lang: str) -> list[_Site]:
    from tree_sitter import QueryCursor

    captures = QueryCursor(_query(lang)).captures(parse(data, lang).root_node)
    sites = [site for node in captures.get("operator", []) for site in _operator_sites(node, lang)]
    sites += [site for node in captures.get("arguments", []) for site in _argument_sites(node)]
    return sorted(sites, key=lambda site: (site.start, site.kind))


def _operator_sites(node: tree_sitter.Node, lang: str) -> list[_Site]:
    operator = node.type
    if operator in COMPARISON_FLIP:
        return [_Site("change-comparison", node.start_byte, node.end_byte,
                      (COMPARISON_FLIP[operator].encode(),))]
    if operator not in ARITHMETIC[lang]:
        return []
    operands = [child for child in node.parent.named_children if child.id != node.id]
    if any(operand.type in STRING_LITERALS for operand in operands):
        return []
    others = tuple(op.encode() for op in ARITHMETIC[lang] if op != operator)
    return [_Site("swap-operator", node.start_byte, node.end_byte, others)]


def _argument_sites(arguments: tree_sitter.Node) -> list[_Site]:
    sites = []
    for left, right in pairwise(arguments.named_children):
        if left.type in NOT_POSITIONAL or right.type in NOT_POSITIONAL or left.text == right.text:
            continue
        between = arguments.text[left.end_byte - arguments.start_byte :
                                 right.start_byte - arguments.start_byte]
        sites.append(_Site("swap-arguments", left.start_byte, right.end_byte,
                           (right.text + between + left.text,)))
    return sites


@cache
def _query(lang: str) -> tree_sitter.Query:
    from tree_sitter import Query

    return Query(language(lang), QUERIES[lang])
