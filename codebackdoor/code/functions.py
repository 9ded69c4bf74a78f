"""Functions and methods in source code: where they are, their names and their docstrings."""

from __future__ import annotations

import html
import inspect
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from codebackdoor.code.parser import CODE_LANGS, cached_parse, language
from codebackdoor.errors import UserError

if TYPE_CHECKING:
    import tree_sitter

DEFINITION_TYPES = {
    "python": ("function_definition",),
    "java": ("method_declaration", "constructor_declaration", "compact_constructor_declaration"),
}
_PYTHON_COMMENT = "comment"


@dataclass(frozen=True)
class Function:
    """One function, method or constructor. Offsets are bytes into ``code.encode("utf-8")``.

    ``start:end`` is the definition node (Python: from ``def``/``async``, decorators excluded;
    Java: modifiers and annotations included); ``body_start:body_end`` is the body block (Java:
    with its braces); ``doc_start:doc_end`` is the docstring statement (Python) or the Javadoc
    comment (Java), whose cleaned text is ``docstring``.
    """

    lang: str
    name: str
    start: int
    end: int
    name_start: int
    name_end: int
    body_start: int
    body_end: int
    docstring: str | None
    doc_start: int | None
    doc_end: int | None


# Python functions are statements, so only these nodes (the ones that hold statements) can
# contain one; walking just them is several times faster than a query over the whole tree.
_PYTHON_STATEMENT_HOLDERS = frozenset({
    "module", "block", "decorated_definition", "class_definition", "function_definition",
    "if_statement", "elif_clause", "else_clause", "for_statement", "while_statement",
    "try_statement", "except_clause", "finally_clause", "with_statement", "match_statement",
    "case_clause",
})  # fmt: skip


@cache
def _java_definitions_query() -> tree_sitter.QueryCursor:
    import tree_sitter

    # Java methods also live in anonymous classes anywhere inside expressions: query the tree.
    alternatives = " ".join(f"({kind})" for kind in DEFINITION_TYPES["java"])
    return tree_sitter.QueryCursor(tree_sitter.Query(language("java"), f"[{alternatives}] @def"))


def definition_nodes(tree: tree_sitter.Tree, lang: str) -> list[tree_sitter.Node]:
    """Every function definition node with a body, in source order."""
    if lang == "python":
        found = []
        holders = [tree.root_node]
        while holders:
            for child in holders.pop().named_children:
                if child.type in _PYTHON_STATEMENT_HOLDERS:
                    holders.append(child)
                    if child.type == "function_definition":
                        found.append(child)
    elif lang == "java":
        found = _java_definitions_query().captures(tree.root_node).get("def", [])
    else:
        raise UserError(f"no parser for language '{lang}'; code languages: {', '.join(CODE_LANGS)}")
    found.sort(key=lambda node: node.start_byte)
    return [node for node in found if node.child_by_field_name("body") is not None]


def definition_node(tree: tree_sitter.Tree, fn: Function) -> tree_sitter.Node:
    """The node of ``fn`` in ``tree`` (a parse of the code ``fn`` was found in)."""
    node = tree.root_node.descendant_for_byte_range(fn.start, fn.end)
    while node is not None and not (
        node.type in DEFINITION_TYPES[fn.lang] and node.start_byte == fn.start
    ):
        node = node.parent
    if node is None or node.end_byte != fn.end:
        raise UserError(f"function '{fn.name}' is not in this code (was the code changed?)")
    return node


def functions(code: str, lang: str) -> list[Function]:
    """Every function, method and constructor of ``code`` in source order, nested ones included.

    Java methods without a body (abstract, interface, native) are left out.
    """
    data = code.encode("utf-8")
    tree = cached_parse(code, lang)
    describe = _python_function if lang == "python" else _java_function
    return [describe(node, data) for node in definition_nodes(tree, lang)]


def _python_function(node: tree_sitter.Node, data: bytes) -> Function:
    name = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    docstring = doc_start = doc_end = None
    doc_node = _python_docstring_node(body)
    if doc_node is not None:
        docstring = inspect.cleandoc(_python_string_contents(doc_node.named_children[0], data))
        doc_start, doc_end = doc_node.start_byte, doc_node.end_byte
    return _function("python", data, node, name, body, docstring, doc_start, doc_end)


def _python_docstring_node(body: tree_sitter.Node) -> tree_sitter.Node | None:
    """The body's first statement when it is a plain string literal (what Python keeps as
    ``__doc__``: bytes and f-strings are not docstrings)."""
    first = next((child for child in body.named_children if child.type != _PYTHON_COMMENT), None)
    if first is None or first.type != "expression_statement" or first.named_child_count != 1:
        return None
    literal = first.named_children[0]
    if literal.type == "string":
        parts = [literal]
    elif literal.type == "concatenated_string":
        parts = literal.named_children
    else:
        return None
    for part in parts:
        prefix = part.children[0].text.lower()
        if any(letter in prefix for letter in b"bft"):
            return None
    return first


def _python_string_contents(literal: tree_sitter.Node, data: bytes) -> str:
    """The text between the quotes, escapes kept as written (as in CodeSearchNet)."""
    parts = literal.named_children if literal.type == "concatenated_string" else [literal]
    return "".join(
        data[part.children[0].end_byte : part.children[-1].start_byte].decode("utf-8")
        for part in parts
    )


def _java_function(node: tree_sitter.Node, data: bytes) -> Function:
    name = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    docstring = doc_start = doc_end = None
    comment = node.prev_sibling
    if (
        comment is not None
        and comment.type == "block_comment"
        and _is_javadoc(data[comment.start_byte : comment.end_byte])
        and not data[comment.end_byte : node.start_byte].strip()
    ):
        docstring = _clean_javadoc(data[comment.start_byte : comment.end_byte].decode("utf-8"))
        doc_start, doc_end = comment.start_byte, comment.end_byte
    return _function("java", data, node, name, body, docstring, doc_start, doc_end)


def _function(
    lang: str,
    data: bytes,
    node: tree_sitter.Node,
    name: tree_sitter.Node,
    body: tree_sitter.Node,
    docstring: str | None,
    doc_start: int | None,
    doc_end: int | None,
) -> Function:
    return Function(
        lang=lang,
        name=data[name.start_byte : name.end_byte].decode("utf-8"),
        start=node.start_byte,
        end=node.end_byte,
        name_start=name.start_byte,
        name_end=name.end_byte,
        body_start=body.start_byte,
        body_end=body.end_byte,
        docstring=docstring,
        doc_start=doc_start,
        doc_end=doc_end,
    )


def _is_javadoc(comment: bytes) -> bool:
    # "/**/" is an empty ordinary comment, not a Javadoc.
    return comment.startswith(b"/**") and comment != b"/**/"


def _clean_javadoc(comment: str) -> str:
    lines = []
    for line in comment[3:-2].split("\n"):
        stripped = line.lstrip()
        lines.append((stripped[1:] if stripped.startswith("*") else line).rstrip())
    return inspect.cleandoc("\n".join(lines))


_SENTENCE_END = re.compile(r"\.(?=\s|$)")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_BLOCK_TAG_LINE = re.compile(r"^[ \t]*@", re.MULTILINE)
_HTML_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)\b[^<>]*>")
# Javadoc ends the summary at these, like at a blank line.
_HTML_PARAGRAPH_TAGS = {
    "p", "pre", "ul", "ol", "li", "dl", "dt", "dd", "table", "tr", "div", "blockquote", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_INLINE_TAG = re.compile(r"\{@(\w+)\s*")


def first_sentence(docstring: str, lang: str) -> str:
    """The docstring's first sentence, whitespace-normalised.

    It ends at the first '.' followed by whitespace or the end (the '.' is kept), or at a
    blank line. Java: inline tags are rendered as their text, HTML is removed, and the text
    stops before the block tags (``@param`` ...).
    """
    text = docstring
    if lang == "java":
        block_tag = _BLOCK_TAG_LINE.search(text)
        if block_tag is not None:
            text = text[: block_tag.start()]
        text = _render_javadoc(text)
    text = _BLANK_LINE.split(text, maxsplit=1)[0]
    text = " ".join(text.split())
    end = _SENTENCE_END.search(text)
    return text if end is None else text[: end.end()]


def _render_javadoc(text: str) -> str:
    """Javadoc text as plain text: inline tags replaced by their words, HTML removed."""
    pieces = []
    position = 0
    while (tag := _INLINE_TAG.search(text, position)) is not None:
        pieces.append(_strip_html(text[position : tag.start()]))
        content_end = _closing_brace(text, tag.end())
        pieces.append(_inline_tag_text(tag.group(1), text[tag.end() : content_end].strip()))
        position = content_end + 1
    pieces.append(_strip_html(text[position:]))
    return "".join(pieces)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return len(text)


def _inline_tag_text(tag: str, content: str) -> str:
    if tag in ("link", "linkplain"):
        reference, _, label = content.partition(" ")
        if label.strip():
            return label.strip()
        # A#b(int) reads as "b"; a bare class reference reads as the class.
        return reference.split("(", 1)[0].rsplit("#", 1)[-1] or reference
    if tag == "value":
        return content.rsplit("#", 1)[-1]
    if tag == "inheritDoc":
        return ""
    return content


def _strip_html(text: str) -> str:
    def replace(tag: re.Match[str]) -> str:
        return "\n\n" if tag.group(1).lower() in _HTML_PARAGRAPH_TAGS else ""

    return html.unescape(_HTML_TAG.sub(replace, text))


def _line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


def _line_end(data: bytes, offset: int) -> int:
    """Offset of the newline ending the line of ``offset`` (or the end of ``data``)."""
    newline = data.find(b"\n", offset)
    return len(data) if newline < 0 else newline


def extract(code: str, fn: Function) -> str:
    """The definition's text, dedented so that it parses on its own.

    The def line's column is removed from the start of every line, as far as the line has
    leading whitespace.
    """
    data = code.encode("utf-8")
    column = len(data[_line_start(data, fn.start) : fn.start].decode("utf-8"))
    first, *rest = data[fn.start : fn.end].decode("utf-8").split("\n")
    dedented = [first]
    for line in rest:
        indent = len(line) - len(line.lstrip(" \t"))
        dedented.append(line[min(indent, column) :])
    return "\n".join(dedented)


def without_docstring(code: str, lang: str, fn: Function) -> str:
    """``code`` with ``fn``'s docstring statement (Python) or Javadoc (Java) removed, together
    with the line it occupied; a Python body left empty gets ``pass``. Without a docstring the
    code comes back unchanged."""
    if fn.doc_start is None or fn.doc_end is None:
        return code
    data = code.encode("utf-8")
    if lang == "python" and _is_only_statement(code, fn):
        return (data[: fn.doc_start] + b"pass" + data[fn.doc_end :]).decode("utf-8")
    start, end = fn.doc_start, fn.doc_end
    line_start = _line_start(data, start)
    after = end
    while after < len(data) and data[after] in b" \t":
        after += 1
    if lang == "python" and data[after : after + 1] == b";":
        after += 1
        while after < len(data) and data[after] in b" \t":
            after += 1
    rest_of_line = data[after : _line_end(data, after)]
    own_line = not data[line_start:start].strip() and (
        not rest_of_line.strip() or (lang == "python" and rest_of_line.startswith(b"#"))
    )
    if own_line:
        start, end = line_start, min(_line_end(data, after) + 1, len(data))
    else:
        end = after
    return (data[:start] + data[end:]).decode("utf-8")


def _is_only_statement(code: str, fn: Function) -> bool:
    body = definition_node(cached_parse(code, "python"), fn).child_by_field_name("body")
    statements = [child for child in body.named_children if child.type != _PYTHON_COMMENT]
    return len(statements) == 1


def with_name(code: str, fn: Function, new_name: str) -> str:
    """``code`` with only the definition's name replaced by ``new_name``."""
    if not new_name.isidentifier():
        raise UserError(f"'{new_name}' is not a valid function name")
    data = code.encode("utf-8")
    return (data[: fn.name_start] + new_name.encode("utf-8") + data[fn.name_end :]).decode("utf-8")
