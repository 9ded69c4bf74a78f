"""Intervals and tests: how sure a number is, and whether two numbers differ (design §10).

- Proportions (n of N): the Wilson score interval (Wilson 1927; Newcombe 1998 recommends it over
  the Wald interval, which collapses at 0 and N).
- Corpus- and mean-type metrics: the percentile bootstrap over test items (Efron & Tibshirani
  1993, ch. 13). A metric enters as per-item statistics and a function of their sums, so one
  resample is a weighted sum rather than a new pass over the texts; the resamples are drawn from
  a fixed seed so that the same predictions always give the same interval.
- Across seeds: the Student t-interval of the mean; between two victims, Welch's t-interval of
  the difference of their seed means (Welch 1947).
- Paired: McNemar's exact test on the discordant pairs, and the paired bootstrap (the same
  resampled items for both systems) pooled over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 1000
SEED = 0
# Resamples drawn per block: bounds the memory of the count matrix on large test sets.
BLOCK = 100

WILSON = "wilson-score"
T_SEEDS = "student-t-over-seeds"


def bootstrap_method(resamples: int = RESAMPLES, seed: int = SEED) -> str:
    return f"percentile-bootstrap-items-{resamples}-seed{seed}"


Interval = tuple[float, float]
Combine = Callable[[np.ndarray], float]


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Wilson score interval of ``successes / trials`` as fractions; None without trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    z = _z(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # At 0 and N the bound is exactly 0 or 1; the formula leaves rounding dust there.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def t_interval(mean: float, std: float | None, n: int,
               confidence: float = CONFIDENCE) -> Interval | None:
    """Student t-interval of a mean from its sample std (n - 1) and n; None below two values."""
    if n < 2 or std is None:
        return None
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def interval_side(interval: Interval | None) -> int:
    """-1 when an interval of a difference lies below 0, +1 above, 0 when it holds 0 (or is
    missing): the sign a verdict reads."""
    if interval is None:
        return 0
    return -1 if interval[1] < 0 else 1 if interval[0] > 0 else 0


def welch_interval(a: Sequence[float], b: Sequence[float],
                   confidence: float = CONFIDENCE) -> Interval | None:
    """Welch's t-interval of mean(a) − mean(b) for two independent samples (unequal
    variances, Welch–Satterthwaite degrees of freedom); None below two values on a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import t

    var_a = float(np.var(a, ddof=1)) / len(a)
    var_b = float(np.var(b, ddof=1)) / len(b)
    difference = float(np.mean(a)) - float(np.mean(b))
    se = math.sqrt(var_a + var_b)
    if se == 0.0:
        return difference, difference
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (len(a) - 1) + var_b ** 2 / (len(b) - 1))
    half = float(t.ppf(0.5 + confidence / 2, df)) * se
    return difference - half, difference + half


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: under no difference each of the ``b + c`` discordant
    pairs goes either way with probability 1/2 (binomial test, both tails)."""
    if b + c == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2 * binom.cdf(min(b, c), b + c, 0.5)))


def resample_counts(items: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks of rows, one row per resample: how often each item was drawn (with replacement,
    ``items`` draws)."""
    done = 0
    while done < resamples:
        size = min(BLOCK, resamples - done)
        draws = rng.integers(0, items, size=(size, items))
        offsets = (np.arange(size) * items)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=size * items)
        yield counts.reshape(size, items).astype(np.float64)
        done += size


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE
                        ) -> Interval | None:
    """The central ``confidence`` share of the replicates (non-finite ones left out)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _apply(combine: Callable[[np.ndarray], Any], sums: np.ndarray) -> np.ndarray:
    return np.array([combine(row) for row in sums], dtype=np.float64)


def bootstrap_many(statistics: np.ndarray, combine: Callable[[np.ndarray], Sequence[float]], *,
                   resamples: int = RESAMPLES, seed: int = SEED,
                   confidence: float = CONFIDENCE) -> list[Interval | None]:
    """Percentile bootstrap intervals of the quantities ``combine(statistics.sum(0))`` (several
    at once, from the same resamples) over the items (rows).

    ``combine`` maps the summed per-item statistics to the quantities (NaN where one is
    undefined, e.g. no denominator in a resample; such resamples are left out for it)."""
    statistics = np.asarray(statistics, dtype=np.float64)
    if statistics.ndim != 2 or len(statistics) == 0:
        raise ValueError("bootstrap needs a non-empty items × statistics matrix")
    rng = np.random.default_rng(seed)
    replicates = np.concatenate([
        _apply(combine, counts @ statistics).reshape(len(counts), -1)
        for counts in resample_counts(len(statistics), resamples, rng)
    ])
    return [percentile_interval(column, confidence) for column in replicates.T]


def bootstrap(statistics: np.ndarray, combine: Combine, *, resamples: int = RESAMPLES,
              seed: int = SEED, confidence: float = CONFIDENCE) -> Interval | None:
    """Percentile bootstrap interval of ``combine(statistics.sum(0))`` over the items (rows)."""
    return bootstrap_many(statistics, lambda sums: [combine(sums)], resamples=resamples,
                          seed=seed, confidence=confidence)[0]


def paired_bootstrap(groups: Sequence[tuple[np.ndarray, np.ndarray]], combine: Combine, *,
                     resamples: int = RESAMPLES, seed: int = SEED,
                     confidence: float = CONFIDENCE) -> tuple[float, Interval | None]:
    """The mean over groups (seeds) of ``combine(B) - combine(A)``, and its percentile interval.

    Each group holds the per-item statistics of system A and of system B on the same items, in
    the same order. One resample draws the items of every group anew (the same draw for A and
    B, which is what pairs them) and averages the groups' differences."""
    if not groups:
        raise ValueError("paired_bootstrap needs at least one group")
    rng = np.random.default_rng(seed)
    point = 0.0
    totals = np.zeros(resamples)
    for first, second in groups:
        first = np.asarray(first, dtype=np.float64)
        second = np.asarray(second, dtype=np.float64)
        if first.shape[0] != second.shape[0] or first.shape[0] == 0:
            raise ValueError("paired statistics need the same, non-zero number of items")
        point += combine(second.sum(0)) - combine(first.sum(0))
        done = 0
        for counts in resample_counts(len(first), resamples, rng):
            block = _apply(combine, counts @ second) - _apply(combine, counts @ first)
            totals[done:done + len(block)] += block
            done += len(block)
    count = len(groups)
    return point / count, percentile_interval(totals / count, confidence)


def at_least_one_of_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate that at least one of ``k`` draws succeeds, from ``n`` draws of
    which ``c`` succeeded (Chen et al., 2021, the pass@k estimator): 1 − C(n−c, k) / C(n, k)."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"need 0 < k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)
