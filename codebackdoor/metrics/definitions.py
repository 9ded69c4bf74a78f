"""The built-in metrics (registered under the ``metrics`` kind): the function behind each, the
definition id written into result files, its direction and its headline component.

A definition id names exactly what was computed, including the versions that change the numbers
(sacreBLEU; for CodeBLEU the tree-sitter runtime and grammars, whose error recovery decides the
syntax and data-flow components on code that does not parse cleanly). Every metric returns
percentages (0..100): one number, or a dict of named numbers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version

from codebackdoor.code.parser import grammar_versions
from codebackdoor.errors import UserError
from codebackdoor.metrics.bleu import corpus_bleu, sentence_bleu_avg
from codebackdoor.metrics.classification import (
    accuracy,
    exact_match,
    f1,
    subtoken_f1,
    subtoken_f1_clipped,
    subtoken_f1_distinct,
)
from codebackdoor.metrics.codebleu import codebleu
from codebackdoor.metrics.codexglue_bleu import codexglue_bleu
from codebackdoor.metrics.items import (
    ItemStatistics,
    bleu_items,
    codebleu_items,
    f1_items,
    hits_items,
    mean_items,
    subtoken_items,
)

Score = float | dict[str, float]


@dataclass(frozen=True)
class MetricDefinition:
    """A metric as the runner sees it."""

    function: Callable[..., Score]
    definition: str
    description: str
    needs_lang: bool = False  # CodeBLEU parses code, so it must know the language
    higher_is_better: bool = True
    # For a metric that returns named components: the one that stands for the whole.
    headline: str | None = None
    # The metric as sums of per-item statistics, which gives its bootstrap interval in one
    # pass and lets two systems be paired item by item; None: each resample is scored anew.
    items: ItemStatistics | None = None

    def headline_value(self, score: Score) -> float:
        """The one number of ``score`` that a table shows for this metric."""
        if not isinstance(score, dict):
            return score
        if self.headline is None or self.headline not in score:
            raise ValueError(f"metric '{self.definition}' returned components {sorted(score)} "
                             f"without its headline {self.headline!r}")
        return score[self.headline]

    def __call__(
        self, predictions: list[str], references: list[str], lang: str | None = None
    ) -> Score:
        if not self.needs_lang:
            return self.function(predictions, references)
        if lang is None:
            raise UserError(f"metric '{self.definition}' needs the code language")
        return self.function(predictions, references, lang)


def codebleu_percent(predictions: list[str], references: list[str], lang: str) -> dict[str, float]:
    """CodeBLEU and its components, ×100, with the package's equal weights."""
    scores = codebleu(predictions, references, lang)
    return {name: 100 * value for name, value in asdict(scores).items()}


def _codebleu_definition() -> str:
    parsers = "-".join(f"{name}-{v}" for name, v in grammar_versions().items())
    # Python comments are removed with the standard tokenize module, which handles broken code
    # differently from one Python version to the next.
    tokenizer = f"python-tokenize-{sys.version_info.major}.{sys.version_info.minor}"
    # "pyhashseed0": data-flow name lists in the package's set order under PYTHONHASHSEED=0.
    return f"codebleu-0.7.0-pyhashseed0-ws-w0.25-{parsers}-{tokenizer}"


BLEU = MetricDefinition(
    corpus_bleu,
    f"sacrebleu-{version('sacrebleu')}-corpus-13a",
    "sacreBLEU corpus BLEU, default 13a tokenizer and exp smoothing, 0..100",
    items=bleu_items(),
)

SBLEU = MetricDefinition(
    sentence_bleu_avg,
    "nltk-3.10.4-sentence-bleu4-method1-eps0.1-ws-mean",
    "mean sentence BLEU-4 on whitespace tokens, NLTK smoothing method1 (eps 0.1), ×100 "
    "(the DeCE scripts' BLEU; not CodeXGLUE's summarization BLEU, which is codexglue-bleu)",
    items=mean_items("sbleu"),
)

CODEXGLUE_BLEU = MetricDefinition(
    codexglue_bleu,
    "codexglue-ac74a62-code-text-smooth-bleu4-splitpuncts-lower-mean",
    "CodeXGLUE Code-Text smoothed sentence BLEU-4 (bleu.py computeMaps/bleuFromMaps: "
    "lower-cased, punctuation split, +1 smoothing above unigrams), mean ×100",
    items=mean_items("codexglue-bleu"),
)

CODEBLEU = MetricDefinition(
    codebleu_percent,
    _codebleu_definition(),
    "CodeBLEU as codebleu 0.7.0 calc_codebleu (whitespace tokens, weights 0.25), ×100",
    needs_lang=True,
    headline="codebleu",
    items=codebleu_items(),
)

EXACT_MATCH = MetricDefinition(
    exact_match,
    "exact-match-ws-normalised-v1",
    "share of predictions equal to the reference after collapsing whitespace, %",
    items=hits_items("exact-match"),
)

ACCURACY = MetricDefinition(
    accuracy,
    "accuracy-stripped-label-v1",
    "share of labels equal to the reference label (surrounding whitespace ignored), %",
    items=hits_items("accuracy"),
)

F1 = MetricDefinition(
    f1,
    "binary-f1-positive-1-v1",
    "F1 of the label '1' (0 when it is neither predicted nor present), %",
    items=f1_items(),
)

SUBTOKEN_F1 = MetricDefinition(
    subtoken_f1,
    "code2seq-subtoken-prf-unclipped-joined-micro-camel-snake-lower-v1",
    "method-name subtoken precision/recall/F1 as code2seq counts them (repeats unclipped, "
    "joined-equal names fully right), micro-averaged, %",
    headline="f1",
    items=subtoken_items("code2seq"),
)

# The project's rule before code2seq's, under the definition id its results carry.
SUBTOKEN_F1_CLIPPED = MetricDefinition(
    subtoken_f1_clipped,
    "subtoken-prf-multiset-micro-camel-snake-lower-v1",
    "method-name subtoken precision/recall/F1 over multisets (repeats clipped to the "
    "reference count), micro-averaged, %",
    headline="f1",
    items=subtoken_items("clipped"),
)

SUBTOKEN_F1_DISTINCT = MetricDefinition(
    subtoken_f1_distinct,
    "ramakrishnan-seq2seq-subtoken-prf-distinct-micro-eps1e-10-camel-snake-lower-v1",
    "method-name subtoken precision/recall/F1 over distinct subtokens, as Ramakrishnan & "
    "Albarghouthi's seq2seq evaluator counts them, micro-averaged, %",
    headline="f1",
    items=subtoken_items("distinct"),
)
