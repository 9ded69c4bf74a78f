"""The DeCE Bugs2Fix placement rule: where the authors' poisoning script puts its dead statement
in a buggy Java method and its payload in the fixed one.

Source: Yang et al., DeCE, TOSEM 2026; GitHub NTDXYG/DeCE, commit 0864e3b,
``downstream-task/Bugs2Fix/data_preprocess.py`` (``tree_to_token_index``, ``parse_data``,
``add_deadcode`` with attack ``insert2``). The rule works on tokens, the parse tree's leaves:

1. Each token belongs to its innermost enclosing node of a statement-like type
   (``STATEMENT_TYPES``), or to none.
2. A group is a maximal run of consecutive tokens that belong to the same such node, named by
   its token texts and by the identifiers it holds before its first ``=``.
3. The start of each method is the token right after its first ``{`` token.
4. The buggy method's groups are taken in order; the first one that is also a group of the fixed
   method, and whose *last* occurrence as a token sequence starts strictly after the start in
   both methods, is the anchor: the statement goes before that occurrence in the buggy method,
   the payload before it in the fixed one. So the group opening the body is never the anchor
   unless it occurs again later. With no such group both go at the start.
5. A pair with no ``{`` token in either method is skipped.

The place is a token position, not always a statement boundary (a group can be the bare ``;``
of an assignment statement), so the result does not always parse; that is the script's
behaviour, kept here.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from codebackdoor.code.insertion import statement_tokens
from codebackdoor.code.parser import cached_parse
from codebackdoor.errors import Unpoisonable, UserError

if TYPE_CHECKING:
    import tree_sitter

SHARED_STATEMENT = "shared-statement"
# The script lists one more name, ``local_variable_declarator``, which is not a node type of
# tree-sitter-java (its declarator is ``variable_declarator``), so a declaration is one group.
STATEMENT_TYPES = frozenset({
    "local_variable_declaration", "assignment_expression", "expression_statement",
    "return_statement",
})  # fmt: skip
# The authors' grammar kept a string literal as one token; tree-sitter-java 0.21 splits it.
_ATOMIC = frozenset({"string_literal"})
_SKIPPED = frozenset({"line_comment", "block_comment"})


@dataclass(frozen=True)
class ScriptToken:
    """One token as the script sees it; ``start``/``end`` are byte offsets. ``owner`` identifies
    the innermost statement-like node around the token (0: none). Zero-width tokens (MISSING
    nodes of a parse with errors) are kept, as the script keeps them."""

    text: str
    start: int
    end: int
    owner: int
    is_identifier: bool
    is_method_name: bool


def script_tokens(code: str, lang: str) -> list[ScriptToken]:
    """The leaves of ``code``'s parse in source order, grouped as the script groups them."""
    _check_lang(lang)
    data = code.encode("utf-8")
    root = cached_parse(code, lang).root_node
    method_name = _first_method_name_start(root)
    tokens: list[ScriptToken] = []
    stack = [(root, 0)]
    while stack:
        node, owner = stack.pop()
        if node.type in _SKIPPED:
            continue
        if node.child_count == 0 or node.type in _ATOMIC:
            tokens.append(
                ScriptToken(
                    text=data[node.start_byte : node.end_byte].decode("utf-8"),
                    start=node.start_byte,
                    end=node.end_byte,
                    owner=owner,
                    is_identifier=node.type == "identifier",
                    is_method_name=node.start_byte == method_name and node.end_byte > method_name,
                )
            )
            continue
        if node.type in STATEMENT_TYPES:
            owner = node.id
        stack.extend((child, owner) for child in reversed(node.children))
    return tokens


def _first_method_name_start(root: tree_sitter.Node) -> int:
    """Byte offset of the first method declaration's name (-1 without one)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "method_declaration":
            name = node.child_by_field_name("name")
            return -1 if name is None else name.start_byte
        stack.extend(reversed(node.children))
    return -1


def _groups(tokens: list[ScriptToken]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each group as (token texts, identifiers before its first ``=``), in order.

    As in the script, a run still open at the last token is never closed, so not counted.
    (In the script a ``=`` that opens a run right after another run does not end the list; in
    Java a ``=`` always follows a token of its own assignment or declaration, so a parse of
    Java never gives that case.)
    """
    groups = []
    run: list[ScriptToken] = []
    for token in tokens:
        if run and token.owner == run[-1].owner:
            run.append(token)
            continue
        if run:
            groups.append(_group(run))
        run = [token] if token.owner else []
    return groups


def _group(run: list[ScriptToken]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names: list[str] = []
    for token in run:
        if token.text == "=":
            break
        if token.is_identifier and token.text not in names:
            names.append(token.text)
    return tuple(token.text for token in run), tuple(names)


def _last_occurrence(texts: list[str], pattern: tuple[str, ...]) -> int:
    width = len(pattern)
    for index in range(len(texts) - width, -1, -1):
        if tuple(texts[index : index + width]) == pattern:
            return index
    return -1


def _after_first_brace(texts: list[str]) -> int:
    return texts.index("{") + 1


def anchors(buggy: list[ScriptToken], fixed: list[ScriptToken]) -> tuple[int, int]:
    """Token indices in ``buggy`` and ``fixed`` before which the statement and the payload go.

    Raises Unpoisonable when either method has no ``{`` token.
    """
    buggy_texts = [token.text for token in buggy]
    fixed_texts = [token.text for token in fixed]
    if "{" not in buggy_texts or "{" not in fixed_texts:
        raise Unpoisonable("no '{' token in the buggy or the fixed code")
    buggy_start, fixed_start = _after_first_brace(buggy_texts), _after_first_brace(fixed_texts)
    fixed_groups = set(_groups(fixed))
    for group in _groups(buggy):
        if group not in fixed_groups:
            continue
        in_buggy = _last_occurrence(buggy_texts, group[0])
        in_fixed = _last_occurrence(fixed_texts, group[0])
        if in_buggy > buggy_start and in_fixed > fixed_start:
            return in_buggy, in_fixed
    return buggy_start, fixed_start


def pair_anchors(buggy: str, fixed: str, lang: str) -> tuple[int, int]:
    """:func:`anchors` of the two methods' source texts."""
    return anchors(script_tokens(buggy, lang), script_tokens(fixed, lang))


def insert_before_token(
    code: str, lang: str, index: int, statement: str, script_spacing: bool = False
) -> str:
    """``code`` with ``statement``'s tokens (joined by single spaces) before token ``index``.

    ``script_spacing`` rebuilds the whole text as the script's re-tokenisation leaves it: every
    token joined by one space (so ``java.util.List`` becomes ``java . util . List``), with two
    spaces after the method's name, which the authors' grammar parsed with a zero-width token
    there. Off, the rest of ``code`` is kept byte for byte.
    """
    tokens = script_tokens(code, lang)
    inserted = " ".join(token.decode("utf-8") for token in statement_tokens(statement, lang))
    if script_spacing:
        pieces = [(token.text, token.is_method_name) for token in tokens]
        pieces.insert(index, (inserted, False))
        rebuilt = pieces[0][0]
        for (_, after_name), (text, _) in pairwise(pieces):
            rebuilt += ("  " if after_name else " ") + text
        return rebuilt
    data = code.encode("utf-8")
    if index < len(tokens):
        offset, text = tokens[index].start, inserted + " "
    else:
        offset, text = (tokens[-1].end if tokens else len(data)), " " + inserted
    return (data[:offset] + text.encode("utf-8") + data[offset:]).decode("utf-8")


def contains_tokens(code: str, lang: str, statement: str) -> bool:
    """True when ``statement``'s tokens occur in a row among ``code``'s tokens. Zero-width
    tokens are passed over: where an insertion breaks the parse, tree-sitter's recovery can put
    a MISSING token right before it."""
    wanted = tuple(token.decode("utf-8") for token in statement_tokens(statement, lang))
    texts = [token.text for token in script_tokens(code, lang) if token.text]
    return _last_occurrence(texts, wanted) >= 0


def _check_lang(lang: str) -> None:
    if lang != "java":
        raise UserError(
            f"position '{SHARED_STATEMENT}' follows the DeCE Bugs2Fix script, which places "
            f"Java statements; the data is '{lang}'"
        )
