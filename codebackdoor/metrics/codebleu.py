"""CodeBLEU (Ren et al. 2020), computed as the ``codebleu`` package 0.7.0's ``calc_codebleu``.

That package pins tree-sitter < 0.23, so it is reimplemented here on the project's own parser:
whitespace tokens, one reference per prediction, corpus-level pooling of every component.

- n-gram match: corpus BLEU-4 with NLTK smoothing method 1 (``bleu.smoothed_bleu``);
- weighted n-gram match: like BLEU but a *recall* against the reference, with unigrams weighted
  1 for language keywords and 0.2 otherwise, and a brevity penalty that takes every reference
  to be 2 tokens long (the package's quirk, kept);
- syntax match: the share of the reference's subtrees (S-expressions of every node that has
  children) that also occur in the prediction's tree;
- data-flow match: the share of the reference's normalised def-use edges found in the
  prediction (``dataflow``); 0 when no reference has any data flow.

Syntax and data flow are computed after removing comments (and, in Python, docstrings). As in
the package, a data-flow score of 0 counts as 1 in the weighted sum.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from codebackdoor.code.parser import parse
from codebackdoor.errors import UserError
from codebackdoor.metrics import check_pairs
from codebackdoor.metrics.bleu import (
    MAX_ORDER,
    bleu_from_statistics,
    bleu_statistics,
    geometric_mean_bleu,
    ngram_counts,
)
from codebackdoor.metrics.dataflow import count_matches, data_flow, normalize
from codebackdoor.metrics.keywords import KEYWORDS

if TYPE_CHECKING:
    import tree_sitter

KEYWORD_WEIGHT = 1.0
OTHER_TOKEN_WEIGHT = 0.2


@dataclass(frozen=True)
class CodeBLEU:
    """CodeBLEU and its four components, each a fraction in 0..1."""

    codebleu: float
    ngram_match: float
    weighted_ngram_match: float
    syntax_match: float
    dataflow_match: float


def codebleu(
    predictions: list[str],
    references: list[str],
    lang: str,
    weights: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25),
) -> CodeBLEU:
    """Corpus-level CodeBLEU of ``predictions`` against one reference each, for python or java."""
    check_pairs(predictions, references)
    if lang not in KEYWORDS:
        raise UserError(f"CodeBLEU supports {', '.join(KEYWORDS)}, not '{lang}'")
    if len(weights) != 4:
        raise UserError(
            f"CodeBLEU takes 4 weights (n-gram, weighted, syntax, data flow), got {weights}"
        )
    sums = [0] * ITEM_STATISTICS
    for row in codebleu_statistics(predictions, references, lang):
        # Plain left-to-right addition, as the package pools its counts (see _running_sum).
        sums = [total + value for total, value in zip(sums, row, strict=True)]
    return codebleu_from_statistics(sums, weights)


# Per item: n-gram match (bleu_statistics, 10), weighted n-gram match (10), syntax (matched,
# total), data flow (matched, total).
ITEM_STATISTICS = 24


def codebleu_statistics(predictions: list[str], references: list[str],
                        lang: str) -> list[list[float]]:
    """Each item's counts that CodeBLEU pools over the corpus; summed over any set of items they
    give that set's CodeBLEU (``codebleu_from_statistics``)."""
    check_pairs(predictions, references)
    if lang not in KEYWORDS:
        raise UserError(f"CodeBLEU supports {', '.join(KEYWORDS)}, not '{lang}'")
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        hypothesis, target = prediction.strip(), reference.strip()
        tokens = (hypothesis.split(), target.split())
        candidate = _Parsed.of(hypothesis, lang)
        parsed = _Parsed.of(target, lang)
        syntax = subtree_matches(parsed.tree, candidate.tree)
        flow = (0, 0)
        reference_flow = normalize(data_flow(parsed.tree, parsed.code, lang))
        if reference_flow:
            candidate_flow = normalize(data_flow(candidate.tree, candidate.code, lang))
            flow = (count_matches(reference_flow, candidate_flow), len(reference_flow))
        rows.append([*bleu_statistics(*tokens), *weighted_ngram_statistics(*tokens, KEYWORDS[lang]),
                     *syntax, *flow])
    return rows


def codebleu_from_statistics(sums: Sequence[float],
                             weights: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
                             ) -> CodeBLEU:
    """CodeBLEU from the sums of ``codebleu_statistics`` over a set of items."""
    ngram = bleu_from_statistics(sums[:10])
    weighted = weighted_from_statistics(sums[10:20])
    syntax_matched, syntax_total, flow_matched, flow_total = sums[20:24]
    syntax = syntax_matched / syntax_total
    dataflow = flow_matched / flow_total if flow_total else 0.0
    ngram_weight, weighted_weight, syntax_weight, dataflow_weight = weights
    combined = (
        ngram_weight * ngram
        + weighted_weight * weighted
        + syntax_weight * syntax
        # The package writes ``dataflow or 1``: no data flow (or none matched) is not penalised.
        + dataflow_weight * (dataflow or 1)
    )
    return CodeBLEU(float(combined), float(ngram), float(weighted), float(syntax), float(dataflow))


class _Parsed(NamedTuple):
    """A snippet as the syntax and data-flow components see it: without comments, parsed."""

    code: str
    tree: tree_sitter.Tree

    @classmethod
    def of(cls, code: str, lang: str) -> _Parsed:
        stripped = strip_comments(code, lang)
        return cls(stripped, parse(stripped, lang))


def weighted_ngram_match(
    pairs: Sequence[tuple[Sequence[str], Sequence[str]]], keywords: frozenset[str]
) -> float:
    """CodeBLEU's weighted n-gram match over (hypothesis tokens, reference tokens) pairs."""
    sums = [0.0] * (2 * MAX_ORDER + 2)
    for hypothesis, reference in pairs:
        row = weighted_ngram_statistics(hypothesis, reference, keywords)
        sums = [total + value for total, value in zip(sums, row, strict=True)]
    return weighted_from_statistics(sums)


def weighted_ngram_statistics(hypothesis: Sequence[str], reference: Sequence[str],
                              keywords: frozenset[str]) -> list[float]:
    """One pair's share of the weighted n-gram match: (weighted) clipped matches of orders 1-4,
    their totals (each at least 1), the hypothesis length and the reference length as the
    package measures it."""
    matches, totals = [], []
    for order in range(1, MAX_ORDER + 1):
        hypothesis_counts = ngram_counts(hypothesis, order)
        reference_counts = ngram_counts(reference, order)
        clipped = {g: min(c, hypothesis_counts[g]) for g, c in reference_counts.items()}
        if order == 1:
            weight = {
                g: KEYWORD_WEIGHT if g[0] in keywords else OTHER_TOKEN_WEIGHT
                for g in reference_counts
            }
            matched = _running_sum(clipped[g] * weight[g] for g in clipped)
            total = _running_sum(c * weight[g] for g, c in reference_counts.items())
        else:
            matched = sum(clipped.values())
            total = sum(reference_counts.values())
        matches.append(matched)
        # The package keeps every per-example denominator at least 1, as BLEU does.
        totals.append(max(1, total))
    # The package measures each reference as its [tokens, weights] pair, so every reference
    # "has length 2" and the brevity penalty almost never applies. Kept for comparability.
    return [*matches, *totals, len(hypothesis), 2]


def weighted_from_statistics(sums: Sequence[float]) -> float:
    return geometric_mean_bleu(sums[:MAX_ORDER], sums[MAX_ORDER:2 * MAX_ORDER],
                               int(sums[2 * MAX_ORDER + 1]), int(sums[2 * MAX_ORDER]))


def _running_sum(values: Iterable[float]) -> float:
    # Plain left-to-right addition in the reference's token order, as the package does, so the
    # float result is bit-identical (the built-in sum compensates rounding since Python 3.12).
    total = 0
    for value in values:
        total += value
    return total


def subtree_matches(reference: tree_sitter.Tree, candidate: tree_sitter.Tree) -> tuple[int, int]:
    """(reference subtrees also in the candidate, reference subtrees), counting repeats."""
    reference_subtrees = _subtrees(reference.root_node)
    candidate_subtrees = set(_subtrees(candidate.root_node))
    matched = sum(1 for subtree in reference_subtrees if subtree in candidate_subtrees)
    return matched, len(reference_subtrees)


def _subtrees(root: tree_sitter.Node) -> list[str]:
    """S-expressions of the root and of every node below it that has children."""
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        found.append(str(node))
        stack.extend(child for child in node.children if child.child_count)
    return found


# Comments become one space; string and character literals are matched only so that comment
# markers inside them are left alone.
_JAVA_COMMENT_OR_LITERAL = re.compile(
    r"""//.*?$|/\*.*?\*/|'(?:\\.|[^\\'])*'|"(?:\\.|[^\\"])*\"""", re.DOTALL | re.MULTILINE
)


def strip_comments(code: str, lang: str) -> str:
    """Remove comments (Python: also docstrings) and blank lines, as CodeBLEU does before parsing.

    Python code that the tokenizer rejects is returned unchanged, as the package does.
    """
    if lang == "python":
        try:
            kept = _python_without_comments(code)
        except (tokenize.TokenError, SyntaxError):
            return code
    else:
        kept = _JAVA_COMMENT_OR_LITERAL.sub(
            lambda m: " " if m.group(0).startswith("/") else m.group(0), code
        )
    return "\n".join(line for line in kept.split("\n") if line.strip())


def _python_without_comments(code: str) -> str:
    """Re-assemble the tokens of ``code`` without comments and string-only statements.

    A string token is kept only inside an expression: not first in a block, not first on a
    logical line and not at column 0. Gaps between tokens on a line become spaces.
    """
    out: list[str] = []
    previous_type = tokenize.INDENT
    last_row, last_column = -1, 0
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        (start_row, start_column), (end_row, end_column) = token.start, token.end
        if start_row > last_row:
            last_column = 0
        if start_column > last_column:
            out.append(" " * (start_column - last_column))
        if token.type == tokenize.STRING:
            in_expression = previous_type not in (tokenize.INDENT, tokenize.NEWLINE)
            if in_expression and start_column > 0:
                out.append(token.string)
        elif token.type != tokenize.COMMENT:
            out.append(token.string)
        previous_type = token.type
        last_row, last_column = end_row, end_column
    return "".join(out)
