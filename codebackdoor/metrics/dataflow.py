"""CodeBLEU's data-flow component: def-use edges between variable occurrences, and their match.

The extraction follows the ``codebleu`` package 0.7.0 (itself GraphCodeBERT's DFG code) rule for
rule, quirks included, so that scores stay comparable with published CodeBLEU numbers:

- a token is a leaf (or a whole string/character literal) other than a comment; its text is cut
  from the source lines with tree-sitter's *byte* columns, as the package does;
- a token whose text equals its node type (keywords, punctuation) is not a variable;
- loops are walked twice so that values flowing around the loop are seen, and the two passes are
  merged;
- a snippet whose walk meets a missing field or a token it cannot look up (both only happen on
  broken parses) has no data flow at all, as the package's catch-all ``except`` gives; so has a
  tree deeper than the package's recursion reaches (``PACKAGE_MAX_DEPTH``);
- only edges that take part in a def-use link are kept, edges of the same token are merged, and
  variable names are replaced by ``var_<i>`` in order of first appearance before matching;
- where the package merges name lists through a Python ``set``, whose order follows the string
  hash seed of its process, the names here take the order that ``PYTHONHASHSEED=0`` gives
  (``set_order``): the package's scores as run with that seed, in any process. The order matters:
  renaming a variable reorders such a list, and the edge no longer matches.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from codebackdoor.metrics.set_order import seed0_set_order

if TYPE_CHECKING:
    import tree_sitter

COMES_FROM = "comesFrom"
COMPUTED_FROM = "computedFrom"

# Literals that count as one token although tree-sitter gives them children.
_WHOLE_TOKEN_TYPES = frozenset({"string_literal", "string", "character_literal"})

# The package recurses once per tree level and its catch-all ``except`` turns the RecursionError
# into "no data flow". Called from a script's top level at the default limit of 1000 frames, it
# manages trees of up to 993 levels (each enclosing call of ``calc_codebleu`` costs one level).
PACKAGE_MAX_DEPTH = 993
_FRAMES_PER_LEVEL = 4

State = dict[str, tuple[int, ...]]
Span = tuple[int, int]  # start and end byte: as unique per token as the package's row/column pairs


class Edge(NamedTuple):
    """A variable occurrence and the occurrences its value comes from."""

    name: str
    position: int  # index of the token in the snippet's token sequence
    relation: str
    sources: tuple[str, ...]
    source_positions: tuple[int, ...]


NormalizedEdge = tuple[str, str, tuple[str, ...]]


class _BrokenTree(Exception):
    """The walk met a missing field or an unknown token (a broken parse): no data flow at all."""


def _is_token(node: tree_sitter.Node) -> bool:
    return (node.child_count == 0 or node.type in _WHOLE_TOKEN_TYPES) and node.type != "comment"


def _span(node: tree_sitter.Node) -> Span:
    return (node.start_byte, node.end_byte)


def _cut(lines: list[str], node: tree_sitter.Node) -> str:
    # tree-sitter columns count bytes; slicing the str lines with them reproduces the package's
    # token texts exactly, also on lines with non-ASCII text before the token.
    start_row, start_column = node.start_point
    end_row, end_column = node.end_point
    if start_row == end_row:
        return lines[start_row][start_column:end_column]
    middle = "".join(lines[start_row + 1 : end_row])
    return lines[start_row][start_column:] + middle + lines[end_row][:end_column]


def _token_table(root: tree_sitter.Node, code: str) -> dict[Span, tuple[int, str]]:
    """Span -> (position, text) of every token in source order; a repeated span keeps the last."""
    lines = code.split("\n")
    table: dict[Span, tuple[int, str]] = {}
    stack = [root]
    position = 0
    while stack:
        node = stack.pop()
        if _is_token(node):
            table[_span(node)] = (position, _cut(lines, node))
            position += 1
        else:
            stack.extend(reversed(node.children))
    return table


def _set_merged(names: Iterable[str]) -> tuple[str, ...]:
    # The package merges name lists as ``list(set(...))``; the order matters to normalisation
    # and matching, so it is the order a ``PYTHONHASHSEED=0`` process gives, in any process.
    return tuple(seed0_set_order(names))


def _by_position(edges: list[Edge]) -> list[Edge]:
    return sorted(edges, key=lambda edge: edge.position)


def _merge_loop_passes(edges: list[Edge]) -> list[Edge]:
    """Fold the edges that both passes over a loop produced into one edge each."""
    merged: dict[tuple[str, int, str], tuple[tuple[str, ...], tuple[int, ...]]] = {}
    for edge in edges:
        key = (edge.name, edge.position, edge.relation)
        if key in merged:
            sources, positions = merged[key]
            merged[key] = (
                _set_merged(sources + edge.sources),
                tuple(sorted(set(positions + edge.source_positions))),
            )
        else:
            merged[key] = (edge.sources, edge.source_positions)
    ordered = sorted(merged.items(), key=lambda item: item[0][1])
    return [Edge(*key, sources, positions) for key, (sources, positions) in ordered]


def _join_branches(branches: list[State]) -> State:
    """After an if: each variable may come from any branch's last definition."""
    joined: dict[str, list[int]] = {}
    for branch in branches:
        for name, positions in branch.items():
            joined.setdefault(name, []).extend(positions)
    return {name: tuple(sorted(set(positions))) for name, positions in joined.items()}


class _Walker:
    """Walks one parse tree, threading the last-definition state of each variable."""

    # Children of these node types are walked before their siblings.
    walk_first: ClassVar[frozenset[str]] = frozenset()
    # Node type -> name of the method that handles it; other nodes walk their children.
    handlers: ClassVar[dict[str, str]] = {}

    def __init__(self, tokens: dict[Span, tuple[int, str]]):
        self.tokens = tokens

    def walk(self, node: tree_sitter.Node | None, states: State) -> tuple[list[Edge], State]:
        node = _required(node)
        states = dict(states)
        if _is_token(node):
            return self._token(node, states)
        handler = self.handlers.get(node.type)
        if handler is None:
            return self._children(node, states)
        return getattr(self, handler)(node, states)

    def token(self, node: tree_sitter.Node) -> tuple[int, str]:
        """(position, text) of a token node."""
        found = self.tokens.get(_span(node))
        if found is None:
            # Only a part of a string literal (which counts as one token) has no entry; pairing
            # the parts of a broken assignment can reach one.
            raise _BrokenTree
        return found

    def variables(self, node: tree_sitter.Node | None) -> list[tuple[int, str]]:
        """(position, text) of the tokens under ``node`` that are not keywords or punctuation."""
        node = _required(node)
        found = []
        stack = [node]
        while stack:
            current = stack.pop()
            if _is_token(current):
                position, text = self.token(current)
                if current.type != text:
                    found.append((position, text))
            else:
                stack.extend(reversed(current.children))
        return found

    def _token(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        position, text = self.token(node)
        if node.type == text:
            return [], states
        if text in states:
            return [Edge(text, position, COMES_FROM, (text,), states[text])], states
        if node.type == "identifier":
            states[text] = (position,)
        return [Edge(text, position, COMES_FROM, (), ())], states

    def _children(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        edges: list[Edge] = []
        children = node.children
        ordered = [c for c in children if c.type in self.walk_first]
        ordered += [c for c in children if c.type not in self.walk_first]
        for child in ordered:
            found, states = self.walk(child, states)
            edges += found
        return _by_position(edges), states

    def _walk_all(
        self, nodes: Iterable[tree_sitter.Node], states: State, edges: list[Edge]
    ) -> State:
        for node in nodes:
            found, states = self.walk(node, states)
            edges += found
        return states

    def _definition(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        """``name = value`` in a declaration or default parameter: names come from each value."""
        name = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        edges: list[Edge] = []
        if value is None:
            for position, text in self.variables(name):
                edges.append(Edge(text, position, COMES_FROM, (), ()))
                states[text] = (position,)
            return _by_position(edges), states
        targets = self.variables(name)
        values = self.variables(value)
        states = self._walk_all([value], states, edges)
        for position, text in targets:
            for value_position, value_text in values:
                edges.append(Edge(text, position, COMES_FROM, (value_text,), (value_position,)))
            states[text] = (position,)
        return _by_position(edges), states

    def _bind_each(
        self, left: tree_sitter.Node | None, right: tree_sitter.Node | None, states: State
    ) -> tuple[list[Edge], State]:
        """Each variable of ``left`` is computed from each one of ``right``, an edge per pair."""
        edges = []
        targets = self.variables(left)
        values = self.variables(right)
        for position, text in targets:
            for value_position, value_text in values:
                edges.append(Edge(text, position, COMPUTED_FROM, (value_text,), (value_position,)))
            states[text] = (position,)
        return edges, states

    def _while(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        edges: list[Edge] = []
        for _ in range(2):
            states = self._walk_all(node.children, states, edges)
        return _by_position(_merge_loop_passes(edges)), states


def _required(node: tree_sitter.Node | None) -> tree_sitter.Node:
    if node is None:
        raise _BrokenTree
    return node


class _PythonWalker(_Walker):
    walk_first = frozenset({"for_in_clause"})
    handlers: ClassVar[dict[str, str]] = {
        "default_parameter": "_definition",
        "assignment": "_assignment",
        "augmented_assignment": "_assignment",
        "for_in_clause": "_assignment",
        "if_statement": "_if",
        "for_statement": "_for",
        "while_statement": "_while",
    }

    @staticmethod
    def _sides(node: tree_sitter.Node) -> tuple[list[tree_sitter.Node], list[tree_sitter.Node]]:
        """Pair ``a, b = x, y`` part by part when both sides have as many parts, else whole."""
        left = _required(node.child_by_field_name("left"))
        right = _required(node.child_by_field_name("right"))
        left_parts = [c for c in left.children if c.type != ","]
        right_parts = [c for c in right.children if c.type != ","]
        if len(left_parts) != len(right_parts) or not left_parts:
            return [left], [right]
        return left_parts, right_parts

    def _bind_sides(
        self, lefts: list[tree_sitter.Node], rights: list[tree_sitter.Node], states: State
    ) -> tuple[list[Edge], State]:
        """Walk the right sides, then compute each left variable from all its right variables."""
        edges: list[Edge] = []
        states = self._walk_all(rights, states, edges)
        for left, right in zip(lefts, rights, strict=True):
            targets = self.variables(left)
            values = self.variables(right)
            names = tuple(text for _, text in values)
            positions = tuple(position for position, _ in values)
            for position, text in targets:
                edges.append(Edge(text, position, COMPUTED_FROM, names, positions))
                states[text] = (position,)
        return edges, states

    def _assignment(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        if node.type == "for_in_clause":
            lefts, rights = [node.child_by_field_name("left")], [node.children[-1]]
        elif node.child_by_field_name("right") is None:
            return [], states
        else:
            lefts, rights = self._sides(node)
        edges, states = self._bind_sides(lefts, rights, states)
        return _by_position(edges), states

    def _if(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        edges: list[Edge] = []
        current = dict(states)
        branches: list[State] = []
        has_else = False
        for child in node.children:
            if "else" in child.type:
                has_else = True
            if child.type in ("elif_clause", "else_clause"):
                found, branch = self.walk(child, states)
                branches.append(branch)
            else:
                found, current = self.walk(child, current)
            edges += found
        branches.append(current)
        if not has_else:
            branches.append(states)
        return _by_position(edges), _join_branches(branches)

    def _for(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        edges: list[Edge] = []
        for _ in range(2):
            lefts, rights = self._sides(node)
            found, states = self._bind_sides(lefts, rights, states)
            edges += found
            # A loop with an else clause ends in that clause, and then its body is not walked.
            if node.children[-1].type == "block":
                states = self._walk_all([node.children[-1]], states, edges)
        return _by_position(_merge_loop_passes(edges)), states


class _JavaWalker(_Walker):
    handlers: ClassVar[dict[str, str]] = {
        "variable_declarator": "_definition",
        "assignment_expression": "_assignment",
        "update_expression": "_update",
        "if_statement": "_if",
        "for_statement": "_for",
        "enhanced_for_statement": "_enhanced_for",
        "while_statement": "_while",
    }

    def _assignment(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        right = node.child_by_field_name("right")
        edges: list[Edge] = []
        states = self._walk_all([_required(right)], states, edges)
        found, states = self._bind_each(node.child_by_field_name("left"), right, states)
        return _by_position(edges + found), states

    def _update(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        # ``i++``: the variable is computed from itself.
        edges, states = self._bind_each(node, node, states)
        return _by_position(edges), states

    def _if(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        edges: list[Edge] = []
        current = dict(states)
        branches: list[State] = []
        in_alternative = False
        has_else = False
        for child in node.children:
            if "else" in child.type:
                has_else = True
            # From the ``else`` keyword on, every child starts again from the state before the if.
            if child.type in ("if_statement", "else") or in_alternative:
                in_alternative = True
                found, branch = self.walk(child, states)
                branches.append(branch)
            else:
                found, current = self.walk(child, current)
            edges += found
        branches.append(current)
        if not has_else:
            branches.append(states)
        return _by_position(edges), _join_branches(branches)

    def _for(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        edges: list[Edge] = []
        children = node.children
        states = self._walk_all(children, states, edges)
        # The second pass repeats what follows a declared loop variable (condition, update, body).
        declared = [c.type == "local_variable_declaration" for c in children]
        if True in declared:
            states = self._walk_all(children[declared.index(True) + 1 :], states, edges)
        return _by_position(_merge_loop_passes(edges)), states

    def _enhanced_for(self, node: tree_sitter.Node, states: State) -> tuple[list[Edge], State]:
        name = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        body = node.child_by_field_name("body")
        edges: list[Edge] = []
        for _ in range(2):
            states = self._walk_all([_required(value)], states, edges)
            found, states = self._bind_each(name, value, states)
            edges += found
            states = self._walk_all([_required(body)], states, edges)
        return _by_position(_merge_loop_passes(edges)), states


_WALKERS: dict[str, type[_Walker]] = {"python": _PythonWalker, "java": _JavaWalker}


def _depth(root: tree_sitter.Node) -> int:
    """Levels of the tree, the root being level 1."""
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in node.children)
    return deepest


@contextmanager
def _recursion_room(frames: int) -> Iterator[None]:
    """Let the recursive walk go ``frames`` deeper than the current limit allows."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def data_flow(tree: tree_sitter.Tree, code: str, lang: str) -> list[Edge]:
    """The def-use edges of ``code`` (parsed as ``tree``) that CodeBLEU compares."""
    root = tree.root_node
    depth = _depth(root)
    if depth > PACKAGE_MAX_DEPTH:
        return []
    try:
        tokens = _token_table(root, code)
        # The walk takes up to four frames a level; room for them leaves the package's cut-off
        # as the only one, whatever the caller's stack.
        with _recursion_room(_FRAMES_PER_LEVEL * depth + 50):
            edges, _ = _WALKERS[lang](tokens).walk(root, {})
    except _BrokenTree:
        return []
    edges = _by_position(edges)
    linked: set[int] = set()
    for edge in edges:
        if edge.source_positions:
            linked.add(edge.position)
        linked.update(edge.source_positions)
    merged: dict[int, Edge] = {}
    for edge in edges:
        if edge.position not in linked:
            continue
        earlier = merged.get(edge.position)
        if earlier is None:
            merged[edge.position] = edge
        else:
            merged[edge.position] = edge._replace(
                sources=_set_merged(earlier.sources + edge.sources),
                source_positions=tuple(set(earlier.source_positions + edge.source_positions)),
            )
    return list(merged.values())


def normalize(edges: list[Edge]) -> list[NormalizedEdge]:
    """Rename variables to ``var_<i>`` in order of first appearance (sources before the target)."""
    names: dict[str, str] = {}

    def renamed(name: str) -> str:
        return names.setdefault(name, f"var_{len(names)}")

    normalized = []
    for edge in edges:
        sources = tuple(renamed(source) for source in edge.sources)
        normalized.append((renamed(edge.name), edge.relation, sources))
    return normalized


def count_matches(reference: list[NormalizedEdge], candidate: list[NormalizedEdge]) -> int:
    """How many reference edges the candidate has, each candidate edge used at most once."""
    available = Counter(candidate)
    matched = 0
    for edge in reference:
        if available[edge] > 0:
            available[edge] -= 1
            matched += 1
    return matched
