"""Scores that compare predictions with references as whole strings, labels or name subtokens.

All return percentages (0..100).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from codebackdoor.metrics import check_pairs


def exact_match(predictions: list[str], references: list[str]) -> float:
    """Share of predictions equal to their reference once runs of whitespace are collapsed.

    Whitespace is normalised because generated code is often detokenised differently
    (``a ( b )`` vs ``a (b)`` still differ; ``a  (b)\\n`` and ``a (b)`` do not).
    """
    check_pairs(predictions, references)
    hits = sum(p.split() == r.split() for p, r in zip(predictions, references, strict=True))
    return 100 * hits / len(predictions)


def accuracy(predictions: list[str], references: list[str]) -> float:
    """Share of predicted labels equal to the reference label (surrounding whitespace ignored)."""
    check_pairs(predictions, references)
    hits = sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True))
    return 100 * hits / len(predictions)


def f1(predictions: list[str], references: list[str], positive: str = "1") -> float:
    """F1 of the ``positive`` label (binary), 0 when it is neither predicted nor present."""
    check_pairs(predictions, references)
    predicted = [p.strip() == positive for p in predictions]
    actual = [r.strip() == positive for r in references]
    true_positives = sum(p and a for p, a in zip(predicted, actual, strict=True))
    errors = sum(p != a for p, a in zip(predicted, actual, strict=True))
    denominator = 2 * true_positives + errors
    return 100 * 2 * true_positives / denominator if denominator else 0.0


# An acronym before a capitalised word, a (capitalised) lower-case word, an acronym, a number.
_SUBTOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def subtokens(name: str) -> list[str]:
    """Lower-cased subtokens of a method name: ``getHTTPResponse``, ``get_http_response`` and
    ``get http response`` all give ``['get', 'http', 'response']``."""
    return [part.lower() for part in _SUBTOKEN.findall(name)]


def subtoken_scores(true_positives: float, predicted: float, expected: float
                    ) -> dict[str, float]:
    """Precision, recall and F1 in percent from micro-summed counts (0 where undefined)."""
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / expected if expected else 0.0
    f1_score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1_score}


def code2seq_counts(prediction: str, reference: str) -> tuple[int, int, int]:
    """One item's (true positives, predicted, expected) as code2seq counts them (``model.py``,
    ``update_per_subtoken_statistics``).

    A prediction whose subtokens spell the reference's when joined scores every reference
    subtoken as a true positive. Otherwise each predicted subtoken found anywhere in the
    reference is a true positive (repeats count each time: no clipping), each other one a false
    positive, and each reference subtoken missing from the prediction a false negative. So
    ``get get get`` for ``get name`` has precision 3/3 and recall 3/4.
    """
    predicted, expected = subtokens(prediction), subtokens(reference)
    if "".join(predicted) == "".join(expected):
        return len(expected), len(expected), len(expected)
    true_positives = sum(token in expected for token in predicted)
    false_positives = sum(token not in expected for token in predicted)
    false_negatives = sum(token not in predicted for token in expected)
    return true_positives, true_positives + false_positives, true_positives + false_negatives


def clipped_counts(prediction: str, reference: str) -> tuple[int, int, int]:
    """One item's (true positives, predicted, expected) over multisets: a repeated subtoken is
    a true positive only as often as the reference has it (``get get get`` for ``get name``:
    precision 1/3, recall 1/2). Not code2seq's count; the project's rule before code2seq's."""
    predicted, expected = Counter(subtokens(prediction)), Counter(subtokens(reference))
    return (sum((predicted & expected).values()), sum(predicted.values()),
            sum(expected.values()))


def distinct_counts(prediction: str, reference: str) -> tuple[int, int, int]:
    """One item's (true positives, false positives, false negatives) over distinct subtokens,
    as Ramakrishnan & Albarghouthi's seq2seq evaluator counts them (``models/seq2seq/seq2seq/
    evaluator/metrics.py``, ``calc_type`` 2): ``get get get`` for ``get name`` has precision
    1/1, recall 1/2."""
    predicted, expected = set(subtokens(prediction)), set(subtokens(reference))
    return (len(predicted & expected), len(predicted - expected), len(expected - predicted))


# Ramakrishnan & Albarghouthi's evaluator keeps 1e-10 in every denominator.
_RAMAKRISHNAN_EPSILON = 1e-10


def subtoken_scores_distinct(true_positives: float, false_positives: float,
                             false_negatives: float) -> dict[str, float]:
    """Precision, recall and F1 in percent as that evaluator computes them from summed counts."""
    precision = true_positives / (true_positives + false_positives + _RAMAKRISHNAN_EPSILON)
    recall = true_positives / (true_positives + false_negatives + _RAMAKRISHNAN_EPSILON)
    f1_score = 2 * precision * recall / (precision + recall + _RAMAKRISHNAN_EPSILON)
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1_score}


def _summed(counts: Any, predictions: list[str], references: list[str]) -> list[int]:
    check_pairs(predictions, references)
    totals = [0, 0, 0]
    for prediction, reference in zip(predictions, references, strict=True):
        for index, value in enumerate(counts(prediction, reference)):
            totals[index] += value
    return totals


def subtoken_f1(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Subtoken precision, recall and F1 as code2seq counts them (``code2seq_counts``),
    micro-summed over the corpus."""
    return subtoken_scores(*_summed(code2seq_counts, predictions, references))


def subtoken_f1_clipped(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Subtoken precision, recall and F1 over multisets (``clipped_counts``), micro-summed."""
    return subtoken_scores(*_summed(clipped_counts, predictions, references))


def subtoken_f1_distinct(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Subtoken precision, recall and F1 over distinct subtokens (``distinct_counts``),
    micro-summed, with 1e-10 added to each denominator as Ramakrishnan & Albarghouthi's
    evaluator does."""
    return subtoken_scores_distinct(*_summed(distinct_counts, predictions, references))
