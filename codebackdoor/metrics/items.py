"""Each metric as per-item statistics and a function of their sums.

Summed over all test items, the statistics give the metric exactly as its function computes it;
summed over a bootstrap resample of the items they give the metric of that resample, without a
new pass over the texts. Corpus metrics pool counts (sacreBLEU's sufficient
statistics, CodeBLEU's n-gram, subtree and data-flow counts, subtoken counts), so the statistics
are those counts; mean-type metrics carry (item score, 1).

Proportions (accuracy, exact match) get the Wilson interval on hits/items; everything else the
percentile bootstrap over items. A metric missing here (a plugin's) is bootstrapped by calling
it on each resample, which is correct but slow; it cannot be paired (``leaderboard.paired``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from codebackdoor import stats
from codebackdoor.metrics import check_pairs
from codebackdoor.metrics.bleu import _sacrebleu_scorer, sentence_bleu4
from codebackdoor.metrics.classification import (
    clipped_counts,
    code2seq_counts,
    distinct_counts,
    subtoken_scores,
    subtoken_scores_distinct,
)

Components = dict[str, float]


@dataclass(frozen=True)
class ItemStatistics:
    """``statistics(predictions, references, lang)`` is an items × k matrix; ``combine`` maps
    its column sums to the metric's components (named as the registry's metric returns them, or
    the metric's own name for a single number). ``proportion``: the first column is hits and
    the metric is 100 × hits / items."""

    statistics: Callable[[list[str], list[str], str | None], np.ndarray]
    combine: Callable[[np.ndarray], Components]
    proportion: bool = False


def _hits(test: Callable[[str, str], bool]) -> Callable[..., np.ndarray]:
    def statistics(predictions: list[str], references: list[str], lang: str | None) -> np.ndarray:
        check_pairs(predictions, references)
        return np.array([[test(p, r), 1] for p, r in zip(predictions, references, strict=True)],
                        dtype=np.float64)
    return statistics


def _share(name: str) -> Callable[[np.ndarray], Components]:
    def combine(sums: np.ndarray) -> Components:
        return {name: 100 * sums[0] / sums[1] if sums[1] else math.nan}
    return combine


def _sbleu(predictions: list[str], references: list[str], lang: str | None) -> np.ndarray:
    check_pairs(predictions, references)
    return np.array([[sentence_bleu4(p, r), 1] for p, r in zip(predictions, references,
                                                                 strict=True)])


def _codexglue_bleu(predictions: list[str], references: list[str], lang: str | None
                    ) -> np.ndarray:
    from codebackdoor.metrics.codexglue_bleu import sentence_bleu

    check_pairs(predictions, references)
    return np.array([[sentence_bleu(p, r), 1] for p, r in zip(predictions, references,
                                                               strict=True)])


def _bleu(predictions: list[str], references: list[str], lang: str | None) -> np.ndarray:
    check_pairs(predictions, references)
    # sacreBLEU's own segment statistics: sys_len, ref_len, matches 1-4, totals 1-4.
    return np.array(_sacrebleu_scorer()._extract_corpus_statistics(predictions, [references]),
                    dtype=np.float64)


def _bleu_combine(sums: np.ndarray) -> Components:
    counts = np.rint(sums).astype(int).tolist()
    return {"bleu": float(_sacrebleu_scorer()._compute_score_from_stats(counts).score)}


def _f1(predictions: list[str], references: list[str], lang: str | None) -> np.ndarray:
    check_pairs(predictions, references)
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        predicted, actual = prediction.strip() == "1", reference.strip() == "1"
        rows.append([predicted and actual, predicted != actual])
    return np.array(rows, dtype=np.float64)


def _f1_combine(sums: np.ndarray) -> Components:
    true_positives, errors = sums
    denominator = 2 * true_positives + errors
    return {"f1": 100 * 2 * true_positives / denominator if denominator else 0.0}


def _subtoken_statistics(counts: Callable[[str, str], tuple[float, float, float]]
                         ) -> Callable[..., np.ndarray]:
    """Items × (true positives, predicted, expected) by one of the subtoken counting rules."""
    def statistics(predictions: list[str], references: list[str], lang: str | None) -> np.ndarray:
        check_pairs(predictions, references)
        return np.array([counts(p, r) for p, r in zip(predictions, references, strict=True)],
                        dtype=np.float64)
    return statistics


def _subtokens_combine(sums: np.ndarray) -> Components:
    return subtoken_scores(*sums)


def _subtokens_distinct_combine(sums: np.ndarray) -> Components:
    return subtoken_scores_distinct(*sums)


def _codebleu(predictions: list[str], references: list[str], lang: str | None) -> np.ndarray:
    from codebackdoor.metrics.codebleu import codebleu_statistics

    if lang is None:
        raise ValueError("CodeBLEU needs the code language")
    return np.array(codebleu_statistics(predictions, references, lang), dtype=np.float64)


def _codebleu_combine(sums: np.ndarray) -> Components:
    from dataclasses import asdict

    from codebackdoor.metrics.codebleu import codebleu_from_statistics

    return {name: 100 * value for name, value in asdict(codebleu_from_statistics(sums)).items()}


def item_statistics(name: str) -> ItemStatistics | None:
    """The registered metric ``name``'s item statistics; None for a metric without them."""
    from codebackdoor.registry import registry

    return registry("metrics").get(name).items


def _recomputed(metric: Any, name: str, predictions: list[str], references: list[str],
                lang: str | None, resamples: int, seed: int) -> dict[str, stats.Interval | None]:
    """A metric without item statistics: each resample of the items is scored anew (the same
    resamples as ``stats.bootstrap`` draws)."""
    scores: dict[str, list[float]] = {}
    rng = np.random.default_rng(seed)
    for block in stats.resample_counts(len(predictions), resamples, rng):
        for counts in block:
            chosen = np.repeat(np.arange(len(counts)), counts.astype(int))
            score = metric([predictions[i] for i in chosen], [references[i] for i in chosen],
                           lang=lang if metric.needs_lang else None)
            for component, value in (score if isinstance(score, dict) else {name: score}).items():
                scores.setdefault(component, []).append(value)
    return {component: stats.percentile_interval(np.array(values))
            for component, values in scores.items()}


def intervals(metric: Any, name: str, predictions: list[str], references: list[str],
              lang: str | None, *, resamples: int = stats.RESAMPLES, seed: int = stats.SEED
              ) -> dict[str, dict[str, Any]]:
    """``{"ci95": [low, high], "ci95_method": ...}`` for ``metric`` (a MetricDefinition
    registered as ``name``) and each of its components, keyed as ``clean_metrics`` keys them
    (``name``, ``name.component``)."""
    entry = metric.items
    if entry is None:
        recomputed = _recomputed(metric, name, predictions, references, lang, resamples, seed)
        components = sorted(recomputed)
        found = [recomputed[component] for component in components]
    else:
        matrix = entry.statistics(predictions, references, lang)
        if entry.proportion:
            low_high = stats.wilson(int(np.rint(matrix[:, 0].sum())), len(matrix))
            bounds = None if low_high is None else [100 * low_high[0], 100 * low_high[1]]
            return {name: {"ci95": bounds, "ci95_method": stats.WILSON}}
        components = sorted(entry.combine(matrix.sum(0)))
        found = stats.bootstrap_many(
            matrix, lambda sums: [entry.combine(sums)[c] for c in components],
            resamples=resamples, seed=seed)
    out: dict[str, dict[str, Any]] = {}
    for component, interval in zip(components, found, strict=True):
        key = name if len(components) == 1 else f"{name}.{component}"
        out[key] = {"ci95": None if interval is None else list(interval),
                    "ci95_method": stats.bootstrap_method(resamples, seed)}
    if len(components) > 1:
        # The headline is the component ``clean_metrics`` reports under the metric's own name.
        out[name] = out[f"{name}.{metric.headline}"]
    return out


# What the built-in metrics of ``definitions`` are made of.


def hits_items(name: str) -> ItemStatistics:
    """A share of items, 100 × hits / items (Wilson interval)."""
    test = {"accuracy": lambda p, r: p.strip() == r.strip(),
            "exact-match": lambda p, r: p.split() == r.split()}[name]
    return ItemStatistics(_hits(test), _share(name), proportion=True)


def mean_items(name: str) -> ItemStatistics:
    """A mean of per-item scores (sentence BLEU variants)."""
    return ItemStatistics({"sbleu": _sbleu, "codexglue-bleu": _codexglue_bleu}[name],
                          _share(name))


def bleu_items() -> ItemStatistics:
    return ItemStatistics(_bleu, _bleu_combine)


def f1_items() -> ItemStatistics:
    return ItemStatistics(_f1, _f1_combine)


def codebleu_items() -> ItemStatistics:
    return ItemStatistics(_codebleu, _codebleu_combine)


def subtoken_items(rule: str) -> ItemStatistics:
    """Subtoken counts by ``rule``: code2seq's, clipped, or Ramakrishnan's distinct."""
    counts = {"code2seq": code2seq_counts, "clipped": clipped_counts,
              "distinct": distinct_counts}[rule]
    combine = _subtokens_distinct_combine if rule == "distinct" else _subtokens_combine
    return ItemStatistics(_subtoken_statistics(counts), combine)
