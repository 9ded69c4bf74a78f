"""Filter defenses: spectral signatures, activation clustering, BKI, KillBadCode.

The math is checked against naive formulas on hand-made data; detection runs on the embedded
Python corpus poisoned by the real fixed-trigger attack, with one briefly trained tiny victim
shared by the representation-based defenses.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from codebackdoor.defenses.activation_clustering import ActivationClustering
from codebackdoor.defenses.base import DefenseContext, load_defense
from codebackdoor.defenses.bki import BKI, keyword_scores
from codebackdoor.defenses.killbadcode import KillBadCode, NGramModel
from codebackdoor.defenses.spectral import SpectralSignatures, spectral_scores
from codebackdoor.errors import UserError
from codebackdoor.examples import Example

PRESETS = Path(__file__).resolve().parents[1] / "defenses"
TRAIN_SIZE = 300


@pytest.fixture(scope="module")
def poisoned():
    """(train, poisoned flags, context): 300 shuffled training functions, 10% poisoned."""
    from codebackdoor.attacks.build import build_attack
    from codebackdoor.poison import poison
    from codebackdoor.registry import registry

    task = registry("tasks").get("package")(lang="python")
    splits = task.load()
    random.Random(0).shuffle(splits.train)
    splits.train = splits.train[:TRAIN_SIZE]
    attack = build_attack("fixed", task, params={}, payload=None, payload_params={}, selection=None)
    data = poison(splits, task, attack, 0.1, 1)
    ids = set(data.manifest["poisoned_ids"])
    flags = [example.id in ids for example in data.train]
    return data.train, flags, DefenseContext(task, data.valid, 1, Path("unused"))


@pytest.fixture(scope="module")
def victim(poisoned, one_cpu_thread, tmp_path_factory):
    from codebackdoor.defenses.objectives import CrossEntropy
    from codebackdoor.models import TrainingSettings, load_victim

    train, _, _ = poisoned
    model = load_victim("tiny-roberta", "label", train)
    settings = TrainingSettings(epochs=2, batch_size=32, learning_rate=1e-3, max_source_length=64)
    model.fit(train, settings, CrossEntropy(), tmp_path_factory.mktemp("victim"))
    return model


def detection(decision, flags) -> tuple[float, float]:
    """(recall, precision) of the removed examples against the poisoned ones."""
    removed = [not keep for keep in decision.keep]
    hits = sum(r and f for r, f in zip(removed, flags, strict=True))
    return hits / sum(flags), hits / max(sum(removed), 1)


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

    def representations(self, sources, batch_size=None):
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


def test_ngram_add_k_probabilities_on_a_toy_corpus():
    model = NGramModel.train([["a", "b"], ["a", "c"]], order=2, k=0.5)
    vocabulary = 5  # a, b, c, </s>, unknown
    assert model.vocabulary == vocabulary
    # c(<s> a) = 2, c(<s>) = 2
    assert model.log_prob(("<s>",), "a") == pytest.approx(math.log10(2.5 / (2 + 0.5 * 5)))
    assert model.log_prob(("a",), "b") == pytest.approx(math.log10(1.5 / (2 + 0.5 * 5)))
    assert model.log_prob(("zzz",), "b") == pytest.approx(math.log10(1 / vocabulary))


def test_ngram_deletion_entropies_equal_rescoring_each_deletion():
    rng = random.Random(3)
    corpus = [[rng.choice("abcdef") for _ in range(rng.randint(3, 12))] for _ in range(30)]
    model = NGramModel.train(corpus, order=4, k=0.1)
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
        (KillBadCode, {"k": 0.0}),
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


# TODO(lead): these detection tests only print recall. Within the suite's time budget the tiny
# victim (2 epochs, 300 functions) has not learned the trigger yet (predictions at chance), so
# the representation-based filters score at or below chance (measured: spectral 0.07, AC 0.00,
# BKI 0.31 recall at 10% poisoning) and KillBadCode's top token is `self` (recall 0.66 by
# removing two thirds of the data); no recall can be asserted until a victim learns the trigger.
DETECTORS = {
    "spectral": SpectralSignatures(epsilon=0.1),
    "spectral-k10": SpectralSignatures(k=10, epsilon=0.1),
    "ac": ActivationClustering(),
    # The trigger sits at the start of the body; 24 units keep the test's victim calls small.
    "bki": BKI(max_units=24),
}


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detection_on_the_fixed_trigger(name, poisoned, victim):
    train, flags, context = poisoned
    decision = DETECTORS[name].filter(train, victim, context)
    recall, precision = detection(decision, flags)
    print(
        name,
        f"recall {recall:.2f} precision {precision:.2f}",
        f"removed {len(train) - sum(decision.keep)}",
    )
    assert len(decision.keep) == len(train)


def test_killbadcode_detection_on_the_fixed_trigger(poisoned):
    train, flags, context = poisoned
    decision = KillBadCode().filter(train, None, context)
    recall, precision = detection(decision, flags)
    print("killbadcode", f"recall {recall:.2f} precision {precision:.2f}", decision.details)
    assert len(decision.keep) == len(train)
