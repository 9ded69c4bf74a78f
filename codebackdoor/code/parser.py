"""Parsing with tree-sitter and the official per-language grammar wheels."""

from __future__ import annotations

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
    return tree_sitter.Language(grammar.language())


@cache
def _parser(lang: str) -> tree_sitter.Parser:
    import tree_sitter

    return tree_sitter.Parser(language(lang))


def parse(code: str | bytes, lang: str) -> tree_sitter.Tree:
    """Parse ``code`` (str is encoded as UTF-8; node offsets are byte offsets)."""
    data = code.encode("utf-8") if isinstance(code, str) else code
    return _parser(lang).parse(data)


def is_valid(code: str | bytes, lang: str) -> bool:
    """True when the parse has no ERROR and no MISSING node."""
    return not parse(code, lang).root_node.has_error


def grammar_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        name: version(name) for name in ("tree-sitter", "tree-sitter-python", "tree-sitter-java")
    }
