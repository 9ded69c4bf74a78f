"""CodeXGLUE's smoothed sentence BLEU: the BLEU of CodeXGLUE's code summarization (Code-Text
``code-to-text/evaluator/evaluator.py``, the same file as its ``code/bleu.py``: ``computeMaps``
and ``bleuFromMaps``), which CodeT5 (``smooth_bleu.py``) and AFRAIDOOR report.

Per example, both texts are stripped, lower-cased and split into runs of word characters and
single other characters (``splitPuncts``), then tokenised again by the NIST rules of the Moses
script it adapts (``normalize``), which also splits an underscore off inside a word. BLEU-4 is
then taken with 1 added to the matches and to the n-gram count of orders 2 to 4 (not of
unigrams, so no unigram match gives a score of about 0) and the brevity penalty
exp(min(0, 1 - (r + 1) / (c + 1))), r and c the reference and prediction lengths. The score is
the mean over examples, ×100.
"""

from __future__ import annotations

import math
import re
import sys

from codebackdoor.metrics import check_pairs
from codebackdoor.metrics.bleu import MAX_ORDER, ngram_counts

_SPLIT_PUNCTS = re.compile(r"[\w]+|[^\s\w]")
# mteval-v11a's Western-language tokenisation, which ``normalize`` runs on the split text. Its
# first stage (``<skipped>`` tags, line breaks, XML entities) cannot match there: splitPuncts has
# already separated every `<`, `&` and `;` from its neighbours and removed every line break.
_NORMALIZE = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
# The script adds the smallest positive float inside every logarithm, so that log(0) is finite.
_TINY = sys.float_info.min


def tokens(text: str) -> list[str]:
    """The words BLEU counts for ``text``: ``splitPuncts`` of the stripped, lower-cased text,
    then the NIST tokenisation of ``normalize`` (which, on that text, only splits off ``_``)."""
    text = " " + " ".join(_SPLIT_PUNCTS.findall(text.strip().lower())) + " "
    for pattern, replacement in _NORMALIZE:
        text = pattern.sub(replacement, text)
    return text.split()


def sentence_bleu(prediction: str, reference: str) -> float:
    """The smoothed BLEU-4 of one prediction against one reference, 0..1."""
    hypothesis, gold = tokens(prediction), tokens(reference)
    log_bleu = 0.0
    for order in range(1, MAX_ORDER + 1):
        predicted = ngram_counts(hypothesis, order)
        expected = ngram_counts(gold, order)
        correct = sum(min(count, expected[gram]) for gram, count in predicted.items())
        guessed = max(len(hypothesis) - order + 1, 0)
        smoothing = 1 if order > 1 else 0
        log_bleu += math.log(correct + smoothing + _TINY) - math.log(guessed + smoothing + _TINY)
    brevity = min(0.0, 1 - (len(gold) + 1) / (len(hypothesis) + 1))
    return math.exp(log_bleu / MAX_ORDER + brevity)


def codexglue_bleu(predictions: list[str], references: list[str]) -> float:
    """Mean smoothed sentence BLEU-4 over the examples, 0..100 (``bleuFromMaps``)."""
    check_pairs(predictions, references)
    total = 0.0
    for prediction, reference in zip(predictions, references, strict=True):
        total += sentence_bleu(prediction, reference)
    return total * 100.0 / len(predictions)
