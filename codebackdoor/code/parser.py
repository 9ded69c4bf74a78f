"""Parsing with tree-sitter and the official per-language grammar wheels."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from functools import cache
from typing import TYPE_CHECKING

from codebackdoor.errors import UserError

if TYPE_CHECKING:
    import tree_sitter

CODE_LANGS = ("python", "java")


@cache
def language(lang: str) -> tree_sitter.Language:
    import tree_sitter

    if lang == "python":
        import tree_sitter_python as grammar
    elif lang == "java":
        import tree_sitter_java as grammar
    else:
        raise UserError(f"no parser for language '{lang}'; code languages: {', '.join(CODE_LANGS)}")
    with warnings.catch_warnings():
        # The 0.21 grammar wheels hand over an int pointer, which tree-sitter 0.26 still accepts
        # but flags as deprecated; the pins in pyproject.toml keep the pair working.
        warnings.simplefilter("ignore", DeprecationWarning)
        return tree_sitter.Language(grammar.language())


@cache
def _parser(lang: str) -> tree_sitter.Parser:
    import tree_sitter

    return tree_sitter.Parser(language(lang))


def parse(code: str | bytes, lang: str) -> tree_sitter.Tree:
    """Parse ``code`` (str is encoded as UTF-8; node offsets are byte offsets)."""
    data = code.encode("utf-8") if isinstance(code, str) else code
    return _parser(lang).parse(data)


# Attacks parse the same text several times in a row (find functions, insert, check, find the
# trigger again); remembering the last few trees makes each text cost one parse.
_TREE_CACHE_SIZE = 16
_trees: OrderedDict[tuple[str | bytes, str], tree_sitter.Tree] = OrderedDict()


def _remember(key: tuple[str | bytes, str], tree: tree_sitter.Tree) -> None:
    _trees[key] = tree
    if len(_trees) > _TREE_CACHE_SIZE:
        _trees.popitem(last=False)


def cached_parse(code: str | bytes, lang: str) -> tree_sitter.Tree:
    """Like :func:`parse`, but reuses the tree of a recently parsed equal text.

    The tree is shared: read it, never ``edit`` it.
    """
    key = (code, lang)
    tree = _trees.get(key)
    if tree is None:
        tree = parse(code, lang)
        _remember(key, tree)
    else:
        _trees.move_to_end(key)
    return tree


def _point(data: bytes, offset: int) -> tuple[int, int]:
    row = data.count(b"\n", 0, offset)
    return row, offset - (data.rfind(b"\n", 0, offset) + 1)


def parse_edited(
    old_code: str, new_code: str, lang: str, start: int, old_end: int, new_end: int
) -> tree_sitter.Tree:
    """Parse ``new_code``, which is ``old_code`` with bytes ``start:old_end`` replaced by
    ``new_code``'s bytes ``start:new_end``, incrementally from ``old_code``'s tree.

    Unchanged subtrees are reused (a small edit late in a long text costs a fraction of a
    parse); the result equals a fresh parse and is cached for :func:`cached_parse`.
    """
    old_data = old_code.encode("utf-8")
    new_data = new_code.encode("utf-8")
    tree = cached_parse(old_code, lang).copy()
    tree.edit(
        start_byte=start,
        old_end_byte=old_end,
        new_end_byte=new_end,
        start_point=_point(old_data, start),
        old_end_point=_point(old_data, old_end),
        new_end_point=_point(new_data, new_end),
    )
    new_tree = _parser(lang).parse(new_data, tree)
    _remember((new_code, lang), new_tree)
    return new_tree


def is_valid(code: str | bytes, lang: str) -> bool:
    """True when the parse has no ERROR and no MISSING node."""
    return not cached_parse(code, lang).root_node.has_error


def _first_error(node: tree_sitter.Node) -> tree_sitter.Node:
    """The innermost first ERROR or MISSING node under ``node`` (which has an error)."""
    while True:
        for child in node.children:
            if child.is_missing:
                return child
            # An ERROR leaf (an unexpected character) reports has_error as False.
            if child.is_error or child.has_error:
                node = child
                break
        else:
            return node


def check_valid(code: str, lang: str) -> None:
    """Raise UserError naming the first ERROR or MISSING node when ``code`` does not parse."""
    root = cached_parse(code, lang).root_node
    if not root.has_error:
        return
    bad = _first_error(root)
    data = code.encode("utf-8")
    row, _ = bad.start_point
    line_start = data.rfind(b"\n", 0, bad.start_byte) + 1
    column = len(data[line_start : bad.start_byte].decode("utf-8", errors="replace")) + 1
    rest_of_line = data[bad.start_byte :].split(b"\n", 1)[0]
    if bad.is_missing:
        near = f"'{_shorten(rest_of_line)}' (missing '{bad.type}')"
    else:
        near = f"'{_shorten(rest_of_line[: bad.end_byte - bad.start_byte] or rest_of_line)}'"
    raise UserError(f"code does not parse ({lang}): line {row + 1}, column {column}: near {near}")


def _shorten(text: bytes, limit: int = 40) -> str:
    decoded = text.decode("utf-8", errors="replace").strip()
    return decoded if len(decoded) <= limit else decoded[: limit - 3] + "..."


def grammar_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        name: version(name) for name in ("tree-sitter", "tree-sitter-python", "tree-sitter-java")
    }
