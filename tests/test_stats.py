"""Intervals and tests against independent calculations: published Wilson intervals and scipy's,
t-table quantiles, hand-counted McNemar p-values, scipy's and sacreBLEU's own bootstraps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import read_csv_rows

from codebackdoor import stats
from codebackdoor.evaluate import attack_rates, clean_metrics
from codebackdoor.metrics.items import intervals, item_statistics
from codebackdoor.registry import BUILTINS, registry
from codebackdoor.tasks.generate import Generate

METRICS = {name: registry("metrics").get(name) for name in BUILTINS["metrics"]}


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3
# (Wilson score, no continuity correction), to four decimals.
@pytest.mark.parametrize(("successes", "trials", "low", "high"), [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombes_table(successes: int, trials: int, low: float,
                                        high: float) -> None:
    interval = stats.wilson(successes, trials)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(("successes", "trials"), [(0, 7), (3, 7), (7, 7), (190, 200), (1, 1)])
def test_wilson_matches_scipy(successes: int, trials: int) -> None:
    from scipy.stats import binomtest

    expected = binomtest(successes, trials).proportion_ci(method="wilson")
    assert stats.wilson(successes, trials) == pytest.approx((expected.low, expected.high),
                                                            abs=1e-12)


def test_wilson_without_trials_is_none() -> None:
    assert stats.wilson(0, 0) is None


def test_t_interval_uses_the_t_table() -> None:
    # t(0.975, 4) = 2.7764 and t(0.975, 2) = 4.3027 (any t table).
    low, high = stats.t_interval(10.0, 2.0, 5)
    assert (high - low) / 2 == pytest.approx(2.7764 * 2 / math.sqrt(5), abs=1e-4)
    assert stats.t_interval(50.0, 10.0, 3) == pytest.approx(
        (50 - 4.3027 * 10 / math.sqrt(3), 50 + 4.3027 * 10 / math.sqrt(3)), abs=1e-3)
    assert stats.t_interval(1.0, None, 1) is None


def test_mcnemar_exact_by_hand() -> None:
    # 1 vs 9 discordant pairs: 2 × P(X ≤ 1), X ~ Binomial(10, 1/2) = 2 × 11 / 1024.
    assert stats.mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert stats.mcnemar_exact(9, 1) == stats.mcnemar_exact(1, 9)
    # 0 vs 6: 2 / 64; equal counts: 1.
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert stats.mcnemar_exact(5, 5) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_bootstrap_of_a_mean_agrees_with_scipy() -> None:
    from scipy.stats import bootstrap

    values = np.random.default_rng(7).exponential(size=400)
    ours = stats.bootstrap(np.c_[values, np.ones_like(values)], lambda s: s[0] / s[1],
                           resamples=4000, seed=1)
    theirs = bootstrap((values,), np.mean, method="percentile", n_resamples=4000,
                       random_state=2).confidence_interval
    assert ours is not None
    # Two Monte Carlo estimates of the same interval: equal to well within its width.
    width = theirs.high - theirs.low
    assert ours[0] == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(theirs.high, abs=0.05 * width)
    assert stats.bootstrap(np.c_[values, np.ones_like(values)], lambda s: s[0] / s[1],
                           resamples=4000, seed=1) == ours  # seeded: the same every time


def test_resample_counts_draw_with_replacement() -> None:
    blocks = list(stats.resample_counts(50, 250, np.random.default_rng(0)))
    counts = np.concatenate(blocks)
    assert counts.shape == (250, 50) and (counts.sum(1) == 50).all()
    # Each item is drawn 50 × 250 / 50 = 250 times on average.
    assert counts.sum(0).mean() == pytest.approx(250)


@pytest.fixture(scope="module")
def code_pairs(lyra_dir) -> tuple[list[str], list[str]]:
    """Real Lyra targets and degraded copies of them: half lose every third token."""
    references = [row["tgt"] for row in read_csv_rows(lyra_dir / "test.csv")[:120]]
    predictions = [" ".join(t for j, t in enumerate(ref.split()) if i % 2 or j % 3)
                   for i, ref in enumerate(references)]
    return predictions, references


@pytest.mark.parametrize("name", sorted(BUILTINS["metrics"]))
def test_item_statistics_reproduce_the_metric(name: str, code_pairs) -> None:
    predictions, references = code_pairs
    if name in ("accuracy", "f1"):
        predictions = ["1" if len(p) % 3 else "0" for p in predictions]
        references = ["1" if len(r) % 2 else "0" for r in references]
    lang = "python" if METRICS[name].needs_lang else None
    score = METRICS[name](predictions, references, lang=lang)
    score = score if isinstance(score, dict) else {name: score}
    entry = item_statistics(name)
    matrix = entry.statistics(predictions, references, lang)
    assert entry.combine(matrix.sum(0)) == pytest.approx(score, abs=1e-9)
    # One bootstrap resample: the sums of the drawn items' statistics score exactly what the
    # metric gives on the drawn texts themselves.
    counts = next(stats.resample_counts(len(matrix), 1, np.random.default_rng(3)))[0]
    drawn = np.repeat(np.arange(len(matrix)), counts.astype(int))
    resampled = METRICS[name]([predictions[i] for i in drawn], [references[i] for i in drawn],
                              lang=lang)
    resampled = resampled if isinstance(resampled, dict) else {name: resampled}
    assert entry.combine(counts @ matrix) == pytest.approx(resampled, abs=1e-9)


def test_corpus_bleu_interval_agrees_with_sacrebleus_bootstrap(code_pairs) -> None:
    import sacrebleu

    predictions, references = code_pairs
    ours = intervals(METRICS["bleu"], "bleu", predictions, references, None)["bleu"]
    assert ours["ci95_method"] == "percentile-bootstrap-items-1000-seed0"
    score = sacrebleu.BLEU().corpus_score(predictions, [references], n_bootstrap=1000)
    low, high = ours["ci95"]
    # sacreBLEU keeps the half-width of its own percentile interval around the resamples' mean.
    assert (high - low) / 2 == pytest.approx(score._ci, rel=0.2)
    assert (low + high) / 2 == pytest.approx(score._mean, abs=0.25 * score._ci)
    assert low < score.score < high


def test_clean_metrics_carry_an_interval_in_every_entry(code_pairs) -> None:
    predictions, references = code_pairs
    metrics = clean_metrics(Generate(lang="python"), predictions, references)
    assert set(metrics) >= {"sbleu", "bleu", "codebleu", "codebleu.syntax_match", "exact-match"}
    for name, entry in metrics.items():
        low, high = entry["ci95"]
        assert low <= entry["value"] <= high, name
    assert metrics["exact-match"]["ci95_method"] == stats.WILSON
    hits = round(metrics["exact-match"]["value"] * len(predictions) / 100)
    wilson = stats.wilson(hits, len(predictions))
    assert metrics["exact-match"]["ci95"] == pytest.approx([100 * wilson[0], 100 * wilson[1]])
    assert metrics["codebleu"]["ci95"] == metrics["codebleu.codebleu"]["ci95"]
    bare = clean_metrics(Generate(lang="python"), predictions, references, intervals=False)
    assert all("ci95" not in entry for entry in bare.values())


def test_attack_rates_carry_wilson_intervals() -> None:
    from codebackdoor.attacks.base import Attack
    from codebackdoor.attacks.code_triggers import FixedTrigger
    from codebackdoor.attacks.payloads import Label
    from codebackdoor.examples import Example

    attack = Attack(FixedTrigger(), Label(label="x"))
    clean = {f"{i}": Example(f"{i}", "def f():\n    pass\n", "y", "python") for i in range(20)}
    predictions = {key: "y" for key in clean}
    triggered = list(clean.values())
    rates = attack_rates(attack, clean, predictions, triggered, ["x"] * 15 + ["y"] * 5)
    assert rates.asr["value"] == 75.0
    expected = stats.wilson(15, 20)
    assert rates.asr["ci95"] == pytest.approx([100 * expected[0], 100 * expected[1]])
    assert rates.false_trigger_rate["ci95"][0] == 0.0
    none = attack_rates(attack, {}, {}, [], [])
    assert none.asr["value"] is None and none.asr["ci95"] is None


def test_paired_bootstrap_of_identical_systems_is_zero() -> None:
    matrix = np.c_[np.arange(30) % 2, np.ones(30)]
    value, interval = stats.paired_bootstrap([(matrix, matrix), (matrix, matrix)],
                                             lambda s: s[0] / s[1])
    assert value == 0.0 and interval == (0.0, 0.0)


def test_a_metric_without_item_statistics_is_scored_on_each_resample(code_pairs) -> None:
    import dataclasses

    predictions, references = code_pairs[0][:40], code_pairs[1][:40]
    # The same metric without item statistics (as a plugin's may be): each resample is scored
    # by calling it on the resampled texts, and the interval comes out as from the statistics.
    plugin = dataclasses.replace(METRICS["sbleu"], items=None)
    recomputed = intervals(plugin, "sbleu", predictions, references, None)["sbleu"]
    summed = intervals(METRICS["sbleu"], "sbleu", predictions, references, None)["sbleu"]
    assert recomputed["ci95"] == pytest.approx(summed["ci95"], abs=1e-9)
    assert item_statistics("sbleu") is not None
