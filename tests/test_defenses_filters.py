"""Filter defenses: spectral signatures, activation clustering, BKI, KillBadCode.

The math is checked against naive formulas on hand-made data. On the embedded Python corpus
poisoned by the real fixed-trigger attack, spectral signatures, AC and BKI run through
`filter` with stand-in victims built by hand (the trigger planted as a direction, or as the
word that moves the representation most), so that their verdict is exact; KillBadCode needs
no victim. One tiny RoBERTa is trained on the poisoned data to check that it learns the
trigger. What the filters find on trained victims depends on the seed and the CPU: a result,
in docs/reproducibility.md, not a test.
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
from codebackdoor.defenses.spectral import SpectralSignatures, class_groups, spectral_scores
from codebackdoor.defenses.units import units
from codebackdoor.errors import UserError
from codebackdoor.examples import Example

PRESETS = Path(__file__).resolve().parents[1] / "defenses"
# A victim learns the trigger on the `package` task from the whole training split (1,184
# functions) in 8 epochs; with 300 functions and 2 epochs its triggered predictions stayed at
# chance.
VICTIM_RATE = 0.05
VICTIM_SETTINGS = {"epochs": 8, "batch_size": 32, "learning_rate": 1e-3, "max_source_length": 64}


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


def train_package_victim(data, seed: int, workdir: Path):
    """The tiny RoBERTa classifier trained on the poisoned `package` data (seed ``seed``)."""
    from codebackdoor.defenses.objectives import CrossEntropy
    from codebackdoor.models import TrainingSettings, load_victim

    model = load_victim("tiny-roberta", "label", data.train, seed=seed)
    settings = TrainingSettings(**VICTIM_SETTINGS, seed=seed)
    model.fit(data.train, settings, CrossEntropy(), workdir)
    return model


def label_attack_success(model, data, label: str) -> tuple[int, int]:
    """(hits, cases): triggered test inputs of another class that the victim labels ``label``."""
    triggered = [e for e in data.triggered_test if e.target != label]
    hits = sum(p == label for p in model.predict([e.source for e in triggered]))
    return hits, len(triggered)


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
    """A stand-in victim whose representation counts a few words (whole words, as tokens of
    text or code); by default 'cf' weighs 10."""

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        self.weights = weights or {"cf": 10.0, "good": 1.0, "bad": 1.0, "movie": 0.5}
        self.calls: list[int] = []

    def representations(self, sources, batch_size=None, representation="mean"):
        import re

        self.calls.append(len(sources))
        return np.array(
            [[len(re.findall(rf"\b{w}\b", s)) * v for w, v in self.weights.items()]
             for s in sources],
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


class PlantedDirection:
    """A stand-in victim whose representation of a source is seeded noise, shifted far along
    one axis when the source holds the trigger: the separation that spectral signatures and
    activation clustering assume, built by hand so that their verdict is known exactly.

    FastICA's whitening leaves the planted gap a few units wide whatever the shift, and AC's
    2-means split along it must beat one through the noise: hence little noise (4 dimensions).
    """

    def __init__(self, trigger: str, width: int = 4, shift: float = 20.0) -> None:
        self.trigger, self.width, self.shift = trigger, width, shift

    def representations(self, sources, batch_size=None, representation="mean"):
        import zlib

        rows = []
        for source in sources:
            row = np.random.default_rng(zlib.crc32(source.encode())).normal(size=self.width)
            row[0] += self.shift * (self.trigger in source)
            rows.append(row)
        return np.array(rows, dtype=np.float32)


@pytest.mark.parametrize("task", ["package", "method-name"])
def test_spectral_and_ac_remove_a_planted_direction_on_poisoned_code(task):
    """The filters on real poisoned splits, through `filter`: per-class groups of the `package`
    labels (the poison is a tenth of idlelib), one group for method names (5% poisoned)."""
    if task == "package":
        data, flags, context, _ = poison_package(VICTIM_RATE)
    else:
        data, flags, context, _ = poison_task(task, VICTIM_RATE)
    victim = PlantedDirection("if random() < 0:")
    poisoned = {row for row, flag in enumerate(flags) if flag}
    groups = class_groups(data.train, context.task)
    # 2-means may cut a group of pure noise unevenly, which AC rightly removes, so AC is
    # checked within the groups that hold poison (idlelib; all rows for method names).
    reached = {row for rows in groups.values() if poisoned & set(rows) for row in rows}
    # ε is the poisoned share of the group that holds the poison (Tran et al.'s bound).
    epsilon = len(poisoned) / len(reached)
    for k in (1, 10):
        decision = SpectralSignatures(k=k, epsilon=epsilon).filter(data.train, victim, context)
        removed = {row for row, keep in enumerate(decision.keep) if not keep}
        assert poisoned <= removed, (k, len(poisoned - removed))
        # 1.5·ε·n from each group of n, nothing more.
        assert len(removed) == sum(int(1.5 * epsilon * len(g)) for g in groups.values())
    for reduction in ("ica", "pca"):
        decision = ActivationClustering(reduction=reduction).filter(data.train, victim, context)
        removed = {row for row, keep in enumerate(decision.keep) if not keep}
        assert removed & reached == poisoned, (reduction, len(removed & reached), len(poisoned))


def test_bki_finds_the_keyword_among_the_tokens_of_poisoned_code(poisoned):
    """BKI through tree-sitter tokens of the real poisoned `package` split, with a stand-in
    victim moved most by `random` (the trigger's call): its verdict is known exactly."""
    data, flags, context, _ = poisoned
    victim = WordCounter({"random": 10.0, "self": 1.0, "return": 1.0, "if": 1.0})
    decision = BKI().filter(data.train, victim, context)
    assert decision.details["keywords"][0]["text"] == "random"
    holding = [any(u.text == "random" for u in units(e.source, e.lang, "token")[: BKI.max_units])
               for e in data.train]
    # Every function holding the token goes: the 43 poisoned, and clean ones calling random.
    assert [not keep for keep in decision.keep] == holding
    assert all(h for h, f in zip(holding, flags, strict=True) if f)


@pytest.mark.slow
def test_a_victim_trained_on_the_poisoned_package_data_learns_the_trigger(poisoned, one_cpu_thread,
                                                                          tmp_path):
    data, _, _, label = poisoned
    model = train_package_victim(data, 1, tmp_path)
    hits, cases = label_attack_success(model, data, label)
    # Measured over training seeds 1, 2 and 5, one thread (`python benchmarks/spread.py
    # package`): ASR 0.956-0.989. What spectral signatures, AC and BKI find on this victim
    # depends on the seed and the CPU (BKI's recall 0.02-0.93): docs/reproducibility.md.
    assert cases >= 100 and hits / cases >= 0.5, (hits, cases)


def test_killbadcode_detection_on_the_fixed_trigger():
    # The training split holds tkinter/__init__.py, whose 97 functions share `self._w`, a name
    # the clean sample (the valid split) hardly has: deleting `_w` gains naturalness in many
    # functions. It ranks first at rates 0.05 (43 poisoned; `random` third) and 0.1 (`random`
    # second), so KillBadCode, which needs no victim, is checked at rate 0.15 (129 poisoned).
    # It trains no network: n-gram counts, far from the assertion's bounds.
    data, flags, context, _ = poison_package(0.15)
    decision = KillBadCode().filter(data.train, None, context)
    recall, precision, chance = detection(decision, flags)
    assert decision.details["triggers"][0]["token"] == "random"
    # Measured: recall 1.00, precision 0.99, 130 removed, chance 0.11.
    assert recall >= 0.9 and precision >= 0.9, (recall, precision, chance)
