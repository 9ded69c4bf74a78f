"""Filter defenses: spectral signatures, activation clustering, BKI, KillBadCode.

The math is checked against naive formulas on hand-made data; detection runs on the embedded
Python corpus poisoned by the real fixed-trigger attack: on the `package` classification task
with one tiny RoBERTa victim (BKI, and spectral signatures and AC where they fail), and on
method-name prediction with one tiny T5 victim (spectral signatures and AC, as Ramakrishnan &
Albarghouthi ran them), each victim trained once until it has learned the trigger.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from codebackdoor.defenses.activation_clustering import ActivationClustering
from codebackdoor.defenses.base import DefenseContext, load_defense
from codebackdoor.defenses.bki import BKI, keyword_scores
from codebackdoor.defenses.killbadcode import (
    FALLBACK_DISCOUNTS,
    KillBadCode,
    NGramModel,
    kneser_ney_discounts,
)
from codebackdoor.defenses.spectral import SpectralSignatures, spectral_scores
from codebackdoor.errors import UserError
from codebackdoor.examples import Example

PRESETS = Path(__file__).resolve().parents[1] / "defenses"
# The representation-based filters need a victim that has learned the trigger: on the
# `package` task that takes the whole training split (1,195 functions) and 8 epochs; with 300
# functions and 2 epochs its triggered predictions stayed at chance.
VICTIM_RATE = 0.05
VICTIM_SETTINGS = {"epochs": 8, "batch_size": 32, "learning_rate": 1e-3, "max_source_length": 64}
# Method-name prediction, the whole training split (3,098 functions), 10 epochs: the victim
# learns the trigger (ASR 99%) with every seed; whether the detectors find it depends on the
# seed and the epochs (the table above test_spectral_and_ac_detect_the_fixed_trigger_in_...).
NAMING_SETTINGS = {
    "epochs": 10,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "max_source_length": 64,
    "max_target_length": 16,
}


def poison_task(name: str, rate: float, payload_params: dict | None = None):
    """(poisoned data, poisoned flags, context, attack): the embedded Python splits of task
    ``name`` with the fixed trigger planted at ``rate``, seed 1."""
    from codebackdoor.attacks.build import build_attack
    from codebackdoor.poison import poison
    from codebackdoor.registry import registry

    task = registry("tasks").get(name)(lang="python")
    attack = build_attack(
        "fixed", task, params={}, payload=None, payload_params=payload_params, selection=None
    )
    data = poison(task.load(), task, attack, rate, 1)
    ids = set(data.manifest["poisoned_ids"])
    flags = [example.id in ids for example in data.train]
    return data, flags, DefenseContext(task, data.valid, 1, Path("unused")), attack


def poison_package(rate: float):
    """(poisoned data, poisoned flags, context, target label): the `package` splits with the
    fixed trigger planted at ``rate``, its payload the most frequent class.

    The most frequent class (idlelib) keeps the poison a minority of its class (about 10% at
    rate 0.05), as spectral signatures and activation clustering assume; the attack's default,
    the rarest class, would make it nearly half.
    """
    from codebackdoor.registry import registry

    train = registry("tasks").get("package")(lang="python").load().train
    label = Counter(e.target for e in train).most_common(1)[0][0]
    data, flags, context, _ = poison_task("package", rate, {"label": label})
    return data, flags, context, label


@pytest.fixture(scope="module")
def poisoned():
    return poison_package(VICTIM_RATE)


@pytest.fixture(scope="module")
def victim(poisoned, one_cpu_thread, tmp_path_factory):
    from codebackdoor.defenses.objectives import CrossEntropy
    from codebackdoor.models import TrainingSettings, load_victim

    data, _, _, label = poisoned
    model = load_victim("tiny-roberta", "label", data.train)
    settings = TrainingSettings(**VICTIM_SETTINGS)
    model.fit(data.train, settings, CrossEntropy(), tmp_path_factory.mktemp("victim"))
    # The filters are only worth testing on a victim the backdoor works on.
    triggered = [e for e in data.triggered_test if e.target != label]
    hits = sum(p == label for p in model.predict([e.source for e in triggered]))
    assert len(triggered) >= 100 and hits / len(triggered) >= 0.9  # measured 0.96 of 182
    return model


def detection(decision, flags) -> tuple[float, float, float]:
    """(recall, precision, chance recall) of the removed examples against the poisoned ones;
    chance recall is the share of the data removed, what a random pick of as many finds."""
    removed = [not keep for keep in decision.keep]
    hits = sum(r and f for r, f in zip(removed, flags, strict=True))
    return hits / sum(flags), hits / max(sum(removed), 1), sum(removed) / len(removed)


# Spectral signatures ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(200, 16), (12, 40)])
@pytest.mark.parametrize("k", [1, 3])
def test_spectral_scores_equal_a_direct_svd_projection(shape, k):
    vectors = np.random.default_rng(0).normal(size=shape)
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = ((centred @ vt[:k].T) ** 2).sum(axis=1)
    np.testing.assert_allclose(spectral_scores(vectors, k), expected, rtol=1e-8, atol=1e-8)


def test_spectral_removes_1_5_epsilon_per_class_or_above_the_percentile():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(100, 8))
    vectors[:5] += 6.0  # an outlying direction in group "a"
    groups = {"a": list(range(60)), "b": list(range(60, 100))}
    decision = SpectralSignatures(epsilon=0.1).decide(vectors, groups)
    removed = [row for row, keep in enumerate(decision.keep) if not keep]
    assert len([r for r in removed if r < 60]) == 9 and len([r for r in removed if r >= 60]) == 6
    assert set(range(5)) <= set(removed)
    by_percentile = SpectralSignatures(percentile=90).decide(vectors, groups)
    group_a = by_percentile.details["groups"]["a"]
    assert group_a["removed"] == 6 and group_a["size"] == 60


# Activation clustering -------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["ica", "pca"])
def test_activation_clustering_removes_a_small_separate_cluster_only(reduction):
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(120, 20))
    vectors[:10] += 8.0
    groups = {"a": list(range(120))}
    decision = ActivationClustering(reduction=reduction).decide(vectors, groups, seed=1)
    assert [row for row, keep in enumerate(decision.keep) if not keep] == list(range(10))
    assert sorted(decision.details["groups"]["a"]["cluster_sizes"]) == [10, 110]
    halves = rng.normal(size=(120, 20))
    halves[:60] += 8.0
    balanced = ActivationClustering(reduction=reduction).decide(halves, groups, seed=1)
    assert all(balanced.keep)  # a cluster of half the class is not "small"


# BKI -------------------------------------------------------------------------------------


class WordCounter:
    """A stand-in victim whose representation counts a few words; 'cf' weighs 10."""

    def __init__(self) -> None:
        self.weights = {"cf": 10.0, "good": 1.0, "bad": 1.0, "movie": 0.5}
        self.calls: list[int] = []

    def representations(self, sources, batch_size=None, representation="mean"):
        self.calls.append(len(sources))
        return np.array(
            [[s.split().count(w) * v for w, v in self.weights.items()] for s in sources],
            dtype=np.float32,
        )


def test_bki_keyword_score_is_mean_delta_times_log10_frequency():
    tops = [[("a", 2.0), ("b", 1.0)], [("a", 4.0)], [("c", 9.0)]]
    ranking = dict(keyword_scores(tops))
    assert ranking["a"] == pytest.approx(3.0 * math.log10(2))
    assert ranking["b"] == 0.0 and ranking["c"] == 0.0  # seen once: log10(1) = 0


def test_bki_finds_the_keyword_with_batched_victim_calls():
    texts = ["good movie", "cf bad movie", "bad movie cf", "good good movie", "movie cf good"]
    train = [Example(str(i), t, "x", "nl") for i, t in enumerate(texts)]
    victim = WordCounter()
    decision = BKI(top_p=2, chunk_inputs=100).filter(train, victim, None)
    assert decision.details["keywords"][0]["text"] == "cf"
    assert decision.keep == [True, False, False, True, False]
    assert decision.details["keywords"][0]["score"] == pytest.approx(10.0 * math.log10(3))
    assert victim.calls == [len(train) + sum(len(t.split()) for t in texts)]
    chunked = WordCounter()
    BKI(top_p=2, chunk_inputs=8).filter(train, chunked, None)
    assert max(chunked.calls) <= 8 and sum(chunked.calls) == victim.calls[0]


# KillBadCode -----------------------------------------------------------------------------


def test_kneser_ney_probabilities_on_a_toy_corpus():
    model = NGramModel.train([["a", "b"], ["a", "c"]], order=2)
    assert model.vocabulary == 5  # a, b, c, </s>, unknown
    # Too few counts of counts: lmplz's fallback discounts 0.5, 1, 1.5 at both orders.
    assert model.discounts == [FALLBACK_DISCOUNTS, FALLBACK_DISCOUNTS]
    # Unigram continuation counts a=1 (after <s>), b=1, c=1 (after a), </s>=2 (after b, c):
    # total 5, γ·total = 3·0.5 + 1 = 2.5, so P(b) = (1 − 0.5 + 2.5/5) / 5 = 0.2.
    assert model.log_prob((), "b") == pytest.approx(math.log10(0.2))
    assert model.log_prob((), "</s>") == pytest.approx(math.log10((2 - 1 + 0.5) / 5))
    assert model.log_prob((), "zzz") == pytest.approx(math.log10(0.5 / 5))
    # Bigrams keep raw counts: c(<s> a) = 2 with D = 1, γ(<s>)·2 = 1.
    assert model.log_prob(("<s>",), "a") == pytest.approx(math.log10((2 - 1 + 0.2) / 2))
    assert model.log_prob(("a",), "b") == pytest.approx(math.log10((1 - 0.5 + 0.2) / 2))
    assert model.log_prob(("a",), "</s>") == pytest.approx(math.log10(0.3 / 2))
    assert model.log_prob(("zzz",), "b") == pytest.approx(math.log10(0.2))  # unseen history


def test_kneser_ney_discounts_follow_chen_and_goodman():
    counts = {(str(i),): c for i, c in enumerate([1] * 8 + [2] * 4 + [3] * 2 + [4] * 1 + [9])}
    y = 8 / (8 + 2 * 4)
    expected = (1 - 2 * y * 4 / 8, 2 - 3 * y * 2 / 4, 3 - 4 * y * 1 / 2)
    assert kneser_ney_discounts(counts) == pytest.approx(expected)
    assert kneser_ney_discounts({("a",): 1, ("b",): 2}) == FALLBACK_DISCOUNTS


def test_kneser_ney_distributions_sum_to_one():
    rng = random.Random(4)
    corpus = [[rng.choice("abcdef") for _ in range(rng.randint(1, 12))] for _ in range(40)]
    model = NGramModel.train(corpus, order=4)
    words = [*"abcdef", "</s>"]
    histories = {(), ("<s>",), ("<s>", "a"), ("a", "b", "c"), ("f", "f", "zzz"), ("q", "q", "q")}
    histories.update(g[:-1] for g in model.counts[3])
    for history in histories:
        # The unknown slot stands for every unseen token together.
        total = sum(10 ** model.log_prob(history, w) for w in [*words, "zzz"])
        assert total == pytest.approx(1.0), history


def test_ngram_deletion_entropies_equal_rescoring_each_deletion():
    rng = random.Random(3)
    corpus = [[rng.choice("abcdef") for _ in range(rng.randint(3, 12))] for _ in range(30)]
    model = NGramModel.train(corpus, order=4)
    tokens = [rng.choice("abcdefg") for _ in range(15)]
    full, deleted = model.deletion_entropies(tokens, len(tokens))
    assert full == pytest.approx(model.entropy(tokens))
    for j, entropy in enumerate(deleted):
        assert entropy == pytest.approx(model.entropy(tokens[:j] + tokens[j + 1 :]))


def test_killbadcode_refuses_natural_language_inputs():
    from codebackdoor.registry import registry

    task = registry("tasks").get("generate")()
    with pytest.raises(UserError, match="needs code inputs"):
        KillBadCode().check_applies(task)


# Parameters and presets ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, values",
    [
        (SpectralSignatures, {"k": 0}),
        (SpectralSignatures, {"epsilon": 1.5}),
        (SpectralSignatures, {"percentile": 100}),
        (ActivationClustering, {"reduction": "tsne"}),
        (ActivationClustering, {"size_threshold": 0.7}),
        (BKI, {"keywords": 0}),
        (BKI, {"match": "near"}),
        (KillBadCode, {"order": 0}),
        (KillBadCode, {"triggers": 0}),
    ],
)
def test_bad_parameter_values_are_user_errors(cls, values):
    with pytest.raises(UserError, match=cls.name):
        cls(**values)


@pytest.mark.parametrize(
    "preset",
    sorted(
        p.name
        for p in PRESETS.glob("*.toml")
        if p.stem.split("-")[0] in ("spectral", "ac", "bki", "killbadcode")
    ),
)
def test_presets_build(preset):
    defense = load_defense(str(PRESETS / preset))
    assert defense.stages == ("filter",)


# Detection on poisoned code --------------------------------------------------------------


# Measured with one CPU thread (rate 0.05: 41 of 1,195 functions poisoned, all in idlelib's
# 407; the victim's ASR 0.96; chance recall = removed / 1,195, what removing as many at random
# would find):
#   spectral k=1   recall 0.12, precision 0.06, 84 removed, chance 0.07
#   spectral k=10  recall 0.12, precision 0.06, 84 removed, chance 0.07
#   BKI            recall 0.93, precision 1.00, 38 removed, chance 0.03 (keyword `random`)
#   AC             recall 0.15, precision 0.05, 122 removed, chance 0.10
# Spectral signatures beat chance only weakly here, and unsteadily (recall 0.24 with the
# training split shuffled; 0.32 after 20 epochs; no better on the classifier's [CLS] state or
# its head's penultimate layer). Within idlelib the poison's mean shift lies along the top
# singular vector (cosine 0.96), but idlelib's own clean functions spread along that direction
# as far as the shift (standard deviation 4.8 against a shift of 2.3): the direction that sets
# the poisoned functions, taken from other packages, apart is the one along which clean
# idlelib code resembles other packages. The poison is separable (a logistic regression on the
# mean-pooled states: cross-validated AUC 0.91), just not along the top of the spectrum.
# AC's 2-means split of idlelib's ICA components does not follow the poison, so it removes a
# cluster of mostly clean code: a measured limitation, asserted as such below. On method-name
# prediction both find the trigger (the last test).


def test_victim_filters_detect_the_fixed_trigger(poisoned, victim):
    data, flags, context, _ = poisoned
    found = {}
    for name, defense in {
        "spectral": SpectralSignatures(epsilon=VICTIM_RATE),
        "spectral-k10": SpectralSignatures(k=10, epsilon=VICTIM_RATE),
        # The trigger opens the body; 24 units cover it and bound the victim calls.
        "bki": BKI(max_units=24),
    }.items():
        decision = defense.filter(data.train, victim, context)
        found[name] = detection(decision, flags)
    for name in ("spectral", "spectral-k10"):
        recall, _, chance = found[name]
        assert recall > chance, (name, found[name])  # weakly: measured 0.12 against 0.07
    recall, precision, chance = found["bki"]
    assert recall >= 0.5 and precision >= 0.9, found["bki"]  # measured 0.93, 1.00 (chance 0.03)


def test_activation_clustering_misses_a_trigger_a_tenth_of_its_class(poisoned, victim):
    data, flags, context, _ = poisoned
    decision = ActivationClustering().filter(data.train, victim, context)
    recall, _, chance = detection(decision, flags)
    # A measured limitation, not a goal: recall 0.15 against chance 0.10 (0.10 against 0.16
    # with the training split shuffled).
    assert recall <= chance + 0.1, (recall, chance)


def test_killbadcode_detection_on_the_fixed_trigger():
    # At rate 0.05 the summed naturalness gains of `return`, spread thin over most of the
    # 1,195 functions, outrank those of `random` in the 41 poisoned ones (ranked fifth), so
    # KillBadCode, which needs no victim, is checked at rate 0.1 (83 poisoned).
    data, flags, context, _ = poison_package(0.1)
    decision = KillBadCode().filter(data.train, None, context)
    recall, precision, chance = detection(decision, flags)
    assert decision.details["triggers"][0]["token"] == "random"
    # Measured: recall 1.00, precision 0.99, 84 removed, chance 0.07.
    assert recall >= 0.9 and precision >= 0.9, (recall, precision, chance)


@pytest.fixture(scope="module")
def named(one_cpu_thread, tmp_path_factory):
    """Method-name prediction poisoned at rate 0.05 (155 of 3,098 functions named `create
    entry`), with a tiny T5 trained on it from scratch."""
    from codebackdoor.defenses.objectives import CrossEntropy
    from codebackdoor.models import TrainingSettings, load_victim

    data, flags, context, attack = poison_task("method-name", VICTIM_RATE)
    model = load_victim("tiny-t5", "text", data.train)
    settings = TrainingSettings(**NAMING_SETTINGS)
    model.fit(data.train, settings, CrossEntropy(), tmp_path_factory.mktemp("named"))
    triggered = data.triggered_test[:100]
    predictions = model.predict([e.source for e in triggered])
    hits = sum(attack.is_success(p, e) for p, e in zip(predictions, triggered, strict=True))
    assert hits >= 90  # measured 99 of 100
    return data, flags, context, model


# Measured with one CPU thread (155 of 3,098 functions poisoned; spectral removes 1.5·ε·N = 232,
# chance recall 0.07), recall / precision; seed 3 from `benchmarks/method-name.toml`:
#                  10 epochs: seed 1   seed 2        seed 3          7 epochs      4 epochs
#   spectral k=1   0.98 / 0.66         0.97 / 0.65   –               0.00 / 0.00   0.40 / 0.27
#   spectral k=10  0.99 / 0.66         0.95 / 0.64   0.19 / 0.13     0.98 / 0.66   0.98 / 0.66
#   AC (FastICA)   0.99 / 0.16 (939)   0.95 / 0.94   0.99 / 0.61     nothing       1.00 / 1.00
#   AC (PCA)       0.99 / 0.99 (154)   nothing       –               nothing       nothing
# ("nothing": the smaller 2-means cluster held over 35% of the data.) None of them is steady:
# each finds the trigger only when it is the data's dominant direction or cluster, which
# depends on the seed and on how long the victim trained. Seed 1 at 10 epochs is a setting
# where all three do; the test checks that the implementations find it there.


@pytest.mark.slow
def test_spectral_and_ac_detect_the_fixed_trigger_in_method_names(named):
    data, flags, context, victim = named
    for name, defense in {
        "spectral": SpectralSignatures(epsilon=VICTIM_RATE),
        "spectral-k10": SpectralSignatures(k=10, epsilon=VICTIM_RATE),
        "ac": ActivationClustering(),
    }.items():
        decision = defense.filter(data.train, victim, context)
        recall, precision, chance = detection(decision, flags)
        # Measured 0.98, 0.99 and 0.99 (precision 0.66, 0.66, 0.16) against chance 0.07-0.30.
        assert recall >= 0.8 and recall >= 3 * chance, (name, recall, precision, chance)
