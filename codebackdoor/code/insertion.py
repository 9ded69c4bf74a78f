"""Inserting a statement into a function body, and finding it again with the parser."""

from __future__ import annotations

import random
import textwrap
from functools import lru_cache
from typing import TYPE_CHECKING

from codebackdoor.code.functions import Function, definition_node
from codebackdoor.code.parser import cached_parse, parse, parse_edited
from codebackdoor.code.tokens import leaf_nodes
from codebackdoor.errors import Unpoisonable, UserError

if TYPE_CHECKING:
    import tree_sitter

POSITIONS = ("first", "random", "last")
_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_JAVA_INDENT_STEP = b"    "
# Node types that are statements, so that a trigger is only found where a statement starts.
_PYTHON_DEFINITIONS = frozenset({"function_definition", "class_definition", "decorated_definition"})
_JAVA_STATEMENTS = frozenset(
    {"local_variable_declaration", "block", "switch_expression", "explicit_constructor_invocation"}
)


def insert_statement(
    code: str, lang: str, fn: Function, statement: str, position: str, rng: random.Random,
    *, after_docstring: bool = False,
) -> str:
    """``code`` with ``statement`` inserted into ``fn``'s body as a statement of its own.

    ``position`` is "first" (before the first statement, a docstring included), "last" (after
    the last one) or "random" (one of the k+1 gaps around the body's k statements, uniformly).
    ``statement`` may span lines, with its own relative indentation; it is re-indented like
    the body. A Java constructor's ``this(...)``/``super(...)`` call stays first, so that the
    result compiles; with ``after_docstring`` a Python docstring stays first too, so that it
    remains the function's ``__doc__``. Raises Unpoisonable("single-line body") for a Python
    body on the ``def`` line (and "empty body" where tree-sitter accepts a def with no indented
    body at all).
    """
    if position not in POSITIONS:
        raise UserError(
            f"unknown insertion position '{position}'; choose one of: {', '.join(POSITIONS)}"
        )
    lines = textwrap.dedent(statement).strip("\n").split("\n")
    if not any(line.strip() for line in lines):
        raise UserError("the statement to insert is empty")
    data = code.encode("utf-8")
    body = definition_node(cached_parse(code, lang), fn).child_by_field_name("body")
    statements = [child for child in body.named_children if child.type not in _COMMENTS]
    # Java requires this(...)/super(...) to stay a constructor's first statement.
    earliest = int(bool(statements) and statements[0].type == "explicit_constructor_invocation")
    if after_docstring and statements and statements[0].start_byte == fn.doc_start:
        earliest = 1
    if position == "first":
        gap = earliest
    elif position == "last":
        gap = len(statements)
    else:
        gap = rng.randint(earliest, len(statements))
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    if lang == "python":
        offset, text = _python_insertion(data, fn, body, statements, gap, lines, newline)
    else:
        offset, text = _java_insertion(data, body, statements, gap, lines, newline)
    new_code = (data[:offset] + text + data[offset:]).decode("utf-8")
    # The checks that follow (is_valid, contains_statement) find this tree in the cache.
    parse_edited(code, new_code, lang, offset, offset, offset + len(text))
    return new_code


def _line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


def _line_end(data: bytes, offset: int) -> int:
    """Where the line of ``offset`` ends: its line break (``\\r\\n`` or ``\\n``), or the end."""
    newline = data.find(b"\n", offset)
    if newline < 0:
        return len(data)
    return newline - 1 if data[newline - 1 : newline] == b"\r" else newline


def _indentation(data: bytes, offset: int) -> bytes:
    line = data[_line_start(data, offset) : offset]
    return line[: len(line) - len(line.lstrip(b" \t"))]


def _starts_line(data: bytes, offset: int) -> bool:
    return not data[_line_start(data, offset) : offset].strip()


def _python_insertion(
    data: bytes,
    fn: Function,
    body: tree_sitter.Node,
    statements: list[tree_sitter.Node],
    gap: int,
    lines: list[str],
    newline: bytes,
) -> tuple[int, bytes]:
    if not statements:
        # tree-sitter accepts a def followed by an unindented line as an empty body.
        raise Unpoisonable("empty body")
    if not _starts_line(data, body.start_byte):
        raise Unpoisonable("single-line body")
    indent = _indentation(data, statements[0].start_byte)
    def_indent = _indentation(data, fn.start)
    nested = indent.startswith(def_indent) and indent != def_indent
    unit = indent[len(def_indent) :] if nested else indent
    block = newline.join(_reindent(lines, indent, unit))
    if gap == len(statements):
        return _line_end(data, statements[-1].end_byte), newline + block
    following = statements[gap]
    if _starts_line(data, following.start_byte):
        return _line_start(data, following.start_byte), block + newline
    # The statement follows another one after ';' on the same line: break the line there.
    return following.start_byte, newline + block + newline + indent


def _reindent(lines: list[str], indent: bytes, unit: bytes) -> list[bytes]:
    """Lines prefixed with ``indent``; each nesting level of the statement's own indentation
    becomes one ``unit``, so that a tab-indented body stays consistently indented."""
    own_unit = next((_leading(line) for line in lines if _leading(line) and line.strip()), "")
    out = []
    for line in lines:
        if not line.strip():
            out.append(b"")
            continue
        leading = _leading(line)
        levels = len(leading) // len(own_unit) if own_unit else 0
        nested = unit * levels if own_unit * levels == leading else leading.encode("utf-8")
        out.append(indent + nested + line[len(leading) :].encode("utf-8"))
    return out


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _java_insertion(
    data: bytes,
    body: tree_sitter.Node,
    statements: list[tree_sitter.Node],
    gap: int,
    lines: list[str],
    newline: bytes,
) -> tuple[int, bytes]:
    closing = body.children[-1]
    following = statements[gap] if gap < len(statements) else closing
    if not _starts_line(data, following.start_byte):
        # Token style (one line, as in Bugs2Fix): the statement joins the line.
        return following.start_byte, _one_line(lines, newline) + b" "
    if gap < len(statements):
        indent = _indentation(data, following.start_byte)
    elif statements:
        indent = _indentation(data, statements[-1].start_byte)
    else:
        indent = _indentation(data, body.start_byte) + _JAVA_INDENT_STEP
    block = newline.join(indent + line.encode("utf-8") if line.strip() else b"" for line in lines)
    return _line_start(data, following.start_byte), block + newline


def _one_line(lines: list[str], newline: bytes) -> bytes:
    if any("//" in line for line in lines):
        # A line comment would swallow the rest of the line: keep the line breaks.
        return newline.join(line.encode("utf-8") for line in lines)
    return " ".join(line.strip() for line in lines if line.strip()).encode("utf-8")


def contains_statement(code: str, lang: str, statement: str) -> bool:
    """True when ``statement``'s tokens occur in ``code`` starting where a statement starts.

    Layout is ignored, so a re-indented or joined insertion is found; the same words inside a
    string literal or a comment are not.
    """
    tokens = statement_tokens(statement, lang)
    data = code.encode("utf-8")
    root = cached_parse(code, lang).root_node
    # Re-indentation or joining can only change the whitespace between the tokens, and no
    # insertion adds more than a line's indentation per line.
    span = len(statement.encode("utf-8")) + 256 * (statement.count("\n") + 1)
    start = data.find(tokens[0])
    while start != -1:
        if _second_token_follows(data, start, tokens) and _starts_statement(
            root, lang, start, len(tokens[0])
        ):
            leaves = leaf_nodes(root, lang, start, min(len(data), start + span), len(tokens))
            if tokens == tuple(node.text for node in leaves):
                return True
        start = data.find(tokens[0], start + 1)
    return False


def _second_token_follows(data: bytes, start: int, tokens: tuple[bytes, ...]) -> bool:
    """A cheap filter before the tree is consulted: the common first token (``if``) occurs
    everywhere, the first two in a row rarely."""
    if len(tokens) < 2:
        return True
    after = start + len(tokens[0])
    while after < len(data) and data[after : after + 1].isspace():
        after += 1
    return data.startswith(tokens[1], after)


# Bounded: grammar triggers make a new statement for nearly every example.
@lru_cache(maxsize=1024)
def statement_tokens(statement: str, lang: str) -> tuple[bytes, ...]:
    """The statement's leaf tokens, parsed inside a wrapper function."""
    body_lines = textwrap.dedent(statement).strip("\n")
    if lang == "python":
        wrapper = "def wrapper():\n" + textwrap.indent(body_lines, "    ") + "\n"
    else:
        wrapper = "void wrapper() {\n" + body_lines + "\n}\n"
    tree = parse(wrapper, lang)
    if tree.root_node.has_error:
        raise UserError(f"the statement does not parse as {lang}: {statement!r}")
    body = tree.root_node.children[0].child_by_field_name("body")
    nodes = leaf_nodes(tree.root_node, lang, body.start_byte, body.end_byte)
    if lang == "java":
        nodes = nodes[1:-1]  # the wrapper's braces
    tokens = tuple(node.text for node in nodes)
    if not tokens:
        raise UserError(f"the statement has no tokens: {statement!r}")
    return tokens


def _starts_statement(root: tree_sitter.Node, lang: str, offset: int, width: int) -> bool:
    node = root.descendant_for_byte_range(offset, offset + width)
    while node is not None and node.start_byte == offset:
        kind = node.type
        if kind.endswith("_statement") or kind in (
            _PYTHON_DEFINITIONS if lang == "python" else _JAVA_STATEMENTS
        ):
            return True
        node = node.parent
    return False
