"""BLEU in the two forms code papers report.

``corpus_bleu`` is sacreBLEU's corpus BLEU (13a tokenizer). ``sentence_bleu4`` and
``sentence_bleu_avg`` are the DeCE scripts' form: BLEU-4 on whitespace tokens with NLTK's
smoothing method 1 (epsilon 0.1), per example (CodeXGLUE's summarization BLEU is another
computation: ``codexglue_bleu``). ``smoothed_bleu`` is that same computation pooled
over a corpus, which is CodeBLEU's n-gram match component.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING

from codebackdoor.metrics import check_pairs

if TYPE_CHECKING:
    import sacrebleu

MAX_ORDER = 4
# NLTK's SmoothingFunction(epsilon=0.1).method1: a zero match count becomes epsilon.
EPSILON = 0.1


@cache
def _sacrebleu_scorer() -> sacrebleu.BLEU:
    import sacrebleu

    return sacrebleu.BLEU()


def corpus_bleu(predictions: list[str], references: list[str]) -> float:
    """sacreBLEU corpus BLEU with its defaults (13a tokenizer, exp smoothing), 0..100."""
    check_pairs(predictions, references)
    return float(_sacrebleu_scorer().corpus_score(predictions, [references]).score)


def ngram_counts(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    """Counts of the n-grams of ``tokens``, in order of first occurrence (empty when too short)."""
    # zip stops at the shortest shifted copy, which leaves exactly the complete n-grams.
    return Counter(zip(*(tokens[start:] for start in range(n)), strict=False))


def brevity_penalty(reference_length: int, hypothesis_length: int) -> float:
    """NLTK's brevity penalty: 1 when the hypothesis is longer, 0 when it is empty."""
    if hypothesis_length > reference_length:
        return 1.0
    if hypothesis_length == 0:
        return 0.0
    return math.exp(1 - reference_length / hypothesis_length)


def geometric_mean_bleu(
    matches: Sequence[float], totals: Sequence[float], reference_length: int, hypothesis_length: int
) -> float:
    """Combine pooled n-gram counts into BLEU-4 the way NLTK does with smoothing method 1.

    No unigram match at all gives 0; a zero count at a higher order is replaced by epsilon, kept
    over that order's own total (NLTK never reduces the fraction, so the total stays raw).
    """
    if matches[0] == 0:
        return 0.0
    weight = 1 / MAX_ORDER
    log_precisions = (
        weight * math.log((match if match != 0 else EPSILON) / total)
        for match, total in zip(matches, totals, strict=True)
    )
    return brevity_penalty(reference_length, hypothesis_length) * math.exp(
        math.fsum(log_precisions)
    )


def bleu_statistics(hypothesis: Sequence[str], reference: Sequence[str]) -> list[int]:
    """One pair's share of ``smoothed_bleu``: clipped matches of orders 1-4, their totals
    (at least 1 each, as NLTK keeps every denominator), hypothesis and reference length."""
    matches, totals = [], []
    for order in range(1, MAX_ORDER + 1):
        hypothesis_counts = ngram_counts(hypothesis, order)
        reference_counts = ngram_counts(reference, order)
        matches.append(
            sum(min(count, reference_counts[gram]) for gram, count in hypothesis_counts.items())
        )
        totals.append(max(1, sum(hypothesis_counts.values())))
    return [*matches, *totals, len(hypothesis), len(reference)]


def bleu_from_statistics(sums: Sequence[float]) -> float:
    """``smoothed_bleu`` from the sums of ``bleu_statistics`` over a corpus, as a fraction."""
    return geometric_mean_bleu(sums[:MAX_ORDER], sums[MAX_ORDER:2 * MAX_ORDER],
                               int(sums[2 * MAX_ORDER + 1]), int(sums[2 * MAX_ORDER]))


def smoothed_bleu(pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> float:
    """Corpus BLEU-4 over (hypothesis tokens, reference tokens) pairs, NLTK method 1, as a fraction.

    Counts are pooled over all pairs before the precisions are taken, as NLTK's ``corpus_bleu``
    does; with one pair this is NLTK's ``sentence_bleu``.
    """
    sums = [0] * (2 * MAX_ORDER + 2)
    for hypothesis, reference in pairs:
        sums = [a + b for a, b in zip(sums, bleu_statistics(hypothesis, reference), strict=True)]
    return bleu_from_statistics(sums)


def sentence_bleu4(prediction: str, reference: str) -> float:
    """NLTK sentence BLEU-4 on whitespace tokens with smoothing method 1 (epsilon 0.1), 0..1."""
    return smoothed_bleu([(prediction.split(), reference.split())])


def sentence_bleu_avg(predictions: list[str], references: list[str]) -> float:
    """Mean of ``sentence_bleu4`` over the examples, 0..100 (the DeCE scripts' BLEU)."""
    check_pairs(predictions, references)
    scores = [sentence_bleu4(p, r) for p, r in zip(predictions, references, strict=True)]
    return 100 * math.fsum(scores) / len(scores)
