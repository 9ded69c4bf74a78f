"""Scores that compare predictions with references as whole strings, labels or name subtokens.

All return percentages (0..100).
"""

from __future__ import annotations

import re
from collections import Counter

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


def subtoken_f1(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Precision, recall and F1 over name subtokens, micro-averaged over the corpus.

    As in code2seq and Allamanis et al., true positives, predicted and reference subtokens are
    summed over all examples before dividing. Subtokens are compared as multisets, so a repeated
    subtoken counts only as often as the reference has it.
    """
    check_pairs(predictions, references)
    true_positives = predicted_count = reference_count = 0
    for prediction, reference in zip(predictions, references, strict=True):
        predicted = Counter(subtokens(prediction))
        expected = Counter(subtokens(reference))
        true_positives += sum((predicted & expected).values())
        predicted_count += sum(predicted.values())
        reference_count += sum(expected.values())
    precision = true_positives / predicted_count if predicted_count else 0.0
    recall = true_positives / reference_count if reference_count else 0.0
    f1_score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1_score}
