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


def smoothed_bleu(pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> float:
    """Corpus BLEU-4 over (hypothesis tokens, reference tokens) pairs, NLTK method 1, as a fraction.

    Counts are pooled over all pairs before the precisions are taken, as NLTK's ``corpus_bleu``
    does; with one pair this is NLTK's ``sentence_bleu``.
    """
    matches = [0] * MAX_ORDER
    totals = [0] * MAX_ORDER
    hypothesis_length = reference_length = 0
    for hypothesis, reference in pairs:
        for order in range(1, MAX_ORDER + 1):
            hypothesis_counts = ngram_counts(hypothesis, order)
            reference_counts = ngram_counts(reference, order)
            matches[order - 1] += sum(
                min(count, reference_counts[gram]) for gram, count in hypothesis_counts.items()
            )
            # NLTK keeps every denominator at least 1, also for hypotheses shorter than n.
            totals[order - 1] += max(1, sum(hypothesis_counts.values()))
        hypothesis_length += len(hypothesis)
        reference_length += len(reference)
    return geometric_mean_bleu(matches, totals, reference_length, hypothesis_length)


def sentence_bleu4(prediction: str, reference: str) -> float:
    """NLTK sentence BLEU-4 on whitespace tokens with smoothing method 1 (epsilon 0.1), 0..1."""
    return smoothed_bleu([(prediction.split(), reference.split())])


def sentence_bleu_avg(predictions: list[str], references: list[str]) -> float:
    """Mean of ``sentence_bleu4`` over the examples, 0..100 (the DeCE scripts' BLEU)."""
    check_pairs(predictions, references)
    scores = [sentence_bleu4(p, r) for p, r in zip(predictions, references, strict=True)]
    return 100 * math.fsum(scores) / len(scores)
