"""Each source's rule against the project's on hand-made inputs where the two give known,
different answers: ONION's tie and first token, OpenBackdoor's padded perplexities, spectral
signatures' one-tailed score, BKI's representation and tie order, KillBadCode's candidates,
and where Victim.representations reads a vector. No training: tiny models at random init."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TOY_METHODS

from codebackdoor.defenses import load_defense
from codebackdoor.defenses.activation_clustering import ActivationClustering
from codebackdoor.defenses.base import DefenseContext
from codebackdoor.defenses.bki import BKI
from codebackdoor.defenses.killbadcode import KillBadCode, NGramModel, sentencepiece_stand_in
from codebackdoor.defenses.onion import ONION
from codebackdoor.defenses.spectral import SpectralSignatures, spectral_scores
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.models import load_victim

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

PRESETS = Path(__file__).resolve().parents[1] / "defenses"
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a cat sat on the mat and looked at the dog",
    "return the sum of the list of numbers",
    "open the file and read every line of it",
]


@dataclass
class FakeTask:
    input_lang: str


# ONION ------------------------------------------------------------------------------------


class FixedPerplexities:
    """A scorer whose perplexities are given per text: the suspicions are known exactly."""

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def perplexities(self, texts, groups=None):
        return [self.values[text] for text in texts]


def onion_with(values: dict[str, float], **parameters) -> ONION:
    onion = ONION(**parameters)
    onion._scorer = FixedPerplexities(values)
    return onion


def test_a_suspicion_equal_to_the_threshold_is_removed_by_the_references_and_kept_here():
    # Suspicions: "aa" 0 (a tie at threshold 0), "bb" -2, "cc" 6.
    values = {"aa bb cc": 10.0, "bb cc": 10.0, "aa cc": 12.0, "aa bb": 4.0}
    assert onion_with(values, tie="remove").purify(["aa bb cc"]) == ["bb"]
    assert onion_with(values, tie="keep").purify(["aa bb cc"]) == ["aa bb"]
    # Above the tie both rules agree.
    assert onion_with(values, tie="remove", threshold=1.0).purify(["aa bb cc"]) == ["aa bb"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A tiny GPT-2 at random init with a tokenizer trained on a few sentences, saved as a
    local LM directory (which ONION loads without training)."""
    directory = tmp_path_factory.mktemp("lm") / "gpt2"
    examples = [Example(str(i), "", s, "nl") for i, s in enumerate(SENTENCES)]
    load_victim("tiny-gpt2", "text", examples, seed=3).save(directory)
    return directory


def fitted(lm: Path, tmp_path: Path, **parameters) -> ONION:
    onion = ONION(lm=str(lm), **parameters)
    onion.fit([], DefenseContext(FakeTask("nl"), [], 1, tmp_path))
    return onion


def gptlm_perplexity(model, ids: list[int]) -> float:
    """The ONION authors' gptlm.py: exp(loss) with labels = input_ids, one text, no prefix."""
    tensor = torch.tensor([ids])
    with torch.no_grad():
        return math.exp(model(input_ids=tensor, labels=tensor).loss.item())


def openbackdoor_perplexities(model, rows: list[list[int]], eos: int) -> list[float]:
    """OpenBackdoor's and DeCE's GPT2LM on one batch: right-padded with eos, every shifted
    position scored, padding included."""
    longest = max(len(row) for row in rows)
    ids = torch.tensor([row + [eos] * (longest - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (longest - len(row)) for row in rows])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    loss = torch.nn.CrossEntropyLoss()
    return [
        math.exp(loss(logits[i, :-1].float(), ids[i, 1:]).item()) for i in range(len(rows))
    ]


def test_reference_scoring_never_scores_the_first_token(lm, tmp_path):
    reference = fitted(lm, tmp_path / "r", scoring="onion-reference")._scorer
    ours = fitted(lm, tmp_path / "o", scoring="bos-masked")._scorer
    model, tokenizer = reference.model, reference.tokenizer
    text = SENTENCES[0]
    ids = tokenizer(text)["input_ids"]
    [value] = reference.perplexities([text])
    assert value == pytest.approx(gptlm_perplexity(model, ids), rel=1e-5)
    # The project scores the first token after the begin-of-text token: another value.
    [with_bos] = ours.perplexities([text])
    assert with_bos == pytest.approx(gptlm_perplexity(model, [tokenizer.bos_token_id, *ids]))
    assert with_bos != pytest.approx(value, rel=1e-3)
    # One token: nothing scored in the reference (NaN), a value here.
    assert len(tokenizer("the")["input_ids"]) == 1
    [alone] = reference.perplexities(["the"])
    [alone_ours] = ours.perplexities(["the"])
    assert alone != alone and alone_ours == alone_ours


def test_openbackdoor_scoring_scores_the_padding_of_each_batch_of_32(lm, tmp_path):
    scorer = fitted(lm, tmp_path, scoring="openbackdoor")._scorer
    model, tokenizer = scorer.model, scorer.tokenizer
    eos = tokenizer.eos_token_id
    # One input and 39 variants of falling length: two batches, 32 and 8 texts.
    words = (SENTENCES[0] + " " + SENTENCES[1] + " " + SENTENCES[3]).split()
    texts = [" ".join(words[: len(words) - i]) for i in range(40)]
    values = scorer.perplexities(texts, [40])
    encoded = tokenizer(texts)["input_ids"]
    expected = openbackdoor_perplexities(model, encoded[:32], eos) + openbackdoor_perplexities(
        model, encoded[32:], eos
    )
    assert values == pytest.approx(expected, rel=1e-4)
    # The longest text of a batch has no padding: the same value as the authors' gptlm.py;
    # a shorter one differs from it by its padding terms.
    assert values[0] == pytest.approx(gptlm_perplexity(model, encoded[0]), rel=1e-4)
    assert values[5] != pytest.approx(gptlm_perplexity(model, encoded[5]), rel=1e-3)
    # The second batch is padded to its own longest text, not the first batch's.
    assert values[32] == pytest.approx(gptlm_perplexity(model, encoded[32]), rel=1e-4)


def test_units_past_the_lm_cut_tie_at_zero_and_go_only_under_the_reference_rule(lm, tmp_path):
    text = SENTENCES[0] + " " + SENTENCES[1]
    for scoring in ("onion-reference", "openbackdoor"):
        cut = fitted(lm, tmp_path / scoring, scoring=scoring, max_length=6)
        [scored] = cut.suspicions([text])
        tail = [unit.text for unit, suspicion in scored if suspicion == 0.0]
        assert tail and tail[-1] == "dog"  # the last word lies past the 6-token cut
        cut.tie = "remove"
        assert not cut.purify([text])[0].endswith("dog")
        cut.tie = "keep"
        assert cut.purify([text])[0].endswith("dog")


def test_onion_presets_follow_openbackdoor_and_dece():
    for name in ("onion.toml", "onion-lines.toml"):
        onion = load_defense(str(PRESETS / name))
        assert (onion.scoring, onion.tie, onion.threshold) == ("openbackdoor", "remove", 0.0)
    assert (ONION().scoring, ONION().tie) == ("bos-masked", "keep")
    with pytest.raises(UserError, match=r"^onion: scoring = 'gpt' must be one of"):
        ONION(scoring="gpt")
    with pytest.raises(UserError, match=r"^onion: tie = 'drop' must be one of"):
        ONION(tie="drop")


# Spectral signatures ------------------------------------------------------------------------


def one_tailed_rows() -> np.ndarray:
    """Twenty rows along one axis, far from the origin (mean ≈ 9.7): nineteen spread evenly in
    [9, 11] and one low outlier at 4."""
    first = np.concatenate([10.0 + np.linspace(-1.0, 1.0, 19), [4.0]])
    return np.stack([first, np.zeros(20)], axis=1)


def test_the_centred_score_flags_a_low_outlier_that_the_released_score_ranks_last():
    rows = one_tailed_rows()
    groups = {"all": list(range(20))}
    # epsilon 0.05 of 20 rows: floor(1.5 · 0.05 · 20) = 1 removed.
    centred = SpectralSignatures(epsilon=0.05, score="centred").decide(rows, groups)
    released = SpectralSignatures(epsilon=0.05, score="madry-uncentred").decide(rows, groups)
    assert [i for i, keep in enumerate(centred.keep) if not keep] == [19]
    assert [i for i, keep in enumerate(released.keep) if not keep] == [18]  # the row at 11
    assert np.argmin(released.scores) == 19  # |v·x| = 4: the least suspicious row there
    # Percentile mode (85th: 3 of 20 above it): the outlier is removed only by the centred score.
    centred_p = SpectralSignatures(score="centred").decide(rows, groups)
    released_p = SpectralSignatures(score="madry-uncentred").decide(rows, groups)
    assert not centred_p.keep[19] and released_p.keep[19]
    assert [i for i, keep in enumerate(released_p.keep) if not keep] == [16, 17, 18]


@pytest.mark.parametrize("shape", [(50, 8), (8, 50)], ids=["rows>width", "rows<width"])
@pytest.mark.parametrize("k", [1, 3])
def test_the_uncentred_score_is_compute_corr_s(shape, k):
    """MadryLab compute_corr.py and BackdoorBench: v from the SVD of the centred matrix,
    scores = ‖v[:k] · full_covᵀ‖ over the uncentred rows."""
    rng = np.random.default_rng(5)
    full_cov = rng.normal(size=shape) + 3.0
    _, _, v = np.linalg.svd(full_cov - full_cov.mean(axis=0, keepdims=True), full_matrices=False)
    expected = np.linalg.norm(v[:k] @ full_cov.T, axis=0)
    assert spectral_scores(full_cov, k, centred=False) == pytest.approx(expected, rel=1e-8)


def test_spectral_presets_follow_their_sources():
    tran = load_defense(str(PRESETS / "spectral-tran.toml"))
    assert (tran.k, tran.epsilon, tran.percentile, tran.score) == (1, None, 85.0, "madry-uncentred")
    assert tran.representation == "head-input"
    ramakrishnan = load_defense(str(PRESETS / "spectral-ramakrishnan.toml"))
    assert (ramakrishnan.k, ramakrishnan.score) == (10, "centred")
    assert load_defense(str(PRESETS / "ac-chen.toml")).representation == "head-input"
    with pytest.raises(UserError, match=r"^spectral: score = 'abs' must be one of"):
        SpectralSignatures(score="abs")
    with pytest.raises(UserError, match=r"^ac: representation = 'cls' must be one of"):
        ActivationClustering(representation="cls")


# BKI ----------------------------------------------------------------------------------------


class PositionalVictim:
    """A stand-in victim: 'first-token' sees only the first word, 'mean' averages word
    vectors; 'cf' is the rare word with a vector far from the rest."""

    def __init__(self) -> None:
        self.vectors = {"cf": [9, 0], "good": [0, 1], "bad": [0, -1], "movie": [1, 1]}
        self.asked: list[str] = []

    def representations(self, sources, batch_size=None, representation="mean"):
        self.asked.append(representation)
        rows = []
        for source in sources:
            words = source.split()
            if representation == "first-token":
                words = words[:1]
            rows.append(np.mean([self.vectors[w] for w in words], axis=0))
        return np.array(rows, dtype=np.float32)


def test_bki_reads_the_representation_it_is_given_and_finds_another_keyword():
    texts = ["good movie cf", "bad movie cf", "good bad movie", "bad good movie", "good movie"]
    train = [Example(str(i), t, "x", "nl") for i, t in enumerate(texts)]
    mean_victim, first_victim = PositionalVictim(), PositionalVictim()
    mean = BKI(top_p=1, representation="mean").filter(train, mean_victim, None)
    first = BKI(top_p=1, representation="first-token").filter(train, first_victim, None)
    assert set(mean_victim.asked) == {"mean"} and set(first_victim.asked) == {"first-token"}
    # Pooled, deleting 'cf' moves r(x) most; at position 0 only the first word moves it.
    assert mean.details["keywords"][0]["text"] == "cf"
    assert mean.keep == [False, False, True, True, True]
    # At position 0 only deleting the first word moves r(x): 'good' leads three lists.
    assert first.details["keywords"][0]["text"] == "good"
    assert first.keep == [False, True, False, True, False]


def test_bki_top_units_break_ties_as_openbackdoor_s_reversed_argsort():
    # np.argsort([1, 1, 0.5]) = [2, 0, 1]; reversed: 1, 0, 2.
    assert BKI(top_p=2).top_units(["a", "b", "c"], [1.0, 1.0, 0.5]) == [("b", 1.0), ("a", 1.0)]
    assert load_defense(str(PRESETS / "bki-openbackdoor.toml")).representation == "first-token"


# Where Victim.representations reads -----------------------------------------------------------


SOURCES = [example.source for example in TOY_METHODS[:5]]


def test_classifier_representations(tmp_path):
    victim = load_victim("tiny-roberta", "label", TOY_METHODS, seed=2)
    model = victim.model.eval()
    batch = victim.tokenizer(SOURCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.base_model(**batch).last_hidden_state
        head = torch.tanh(model.classifier.dense(hidden[:, 0]))
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = {
        "first-token": hidden[:, 0],
        "mean": (hidden * mask).sum(1) / mask.sum(1),
        "head-input": head,
    }
    for where, vectors in expected.items():
        got = victim.representations(SOURCES, representation=where)
        np.testing.assert_allclose(got, vectors.numpy(), rtol=0, atol=1e-5, err_msg=where)
    assert not np.allclose(expected["first-token"], expected["mean"], atol=1e-3)


def test_seq2seq_head_input_is_the_first_decoder_state():
    victim = load_victim("tiny-t5", "text", TOY_METHODS, seed=2)
    model = victim.model.eval()
    batch = victim.tokenizer(SOURCES, padding=True, return_tensors="pt")
    start = torch.full((len(SOURCES), 1), model.config.decoder_start_token_id)
    with torch.no_grad():
        out = model(**batch, decoder_input_ids=start, output_hidden_states=True)
    expected = out.decoder_hidden_states[-1][:, 0].numpy()
    got = victim.representations(SOURCES, representation="head-input")
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    first = victim.representations(SOURCES, representation="first-token")
    np.testing.assert_allclose(first, out.encoder_last_hidden_state[:, 0].numpy(), atol=1e-5)


def test_causal_first_token_is_refused():
    victim = load_victim("tiny-gpt2", "text", TOY_METHODS, seed=2)
    with pytest.raises(UserError, match="'first-token' reads a causal LM's first token"):
        victim.representations(SOURCES, representation="first-token")
    last = victim.representations(SOURCES, representation="head-input")
    mean = victim.representations(SOURCES, representation="mean")
    assert last.shape == mean.shape and not np.allclose(last, mean, atol=1e-3)
    with pytest.raises(UserError, match="unknown representation 'cls'"):
        victim.representations(SOURCES, representation="cls")


# KillBadCode --------------------------------------------------------------------------------


CODE = [
    "def load(self, path):\n    data = open(path).read()\n    return self.parse(data)\n",
    "def total(values):\n    result = 0\n    for value in values:\n        result += value\n"
    "    return result\n",
    "def name(self):\n    return self._name\n",
]


def test_the_stand_in_marks_word_initial_pieces_as_sentencepiece_does():
    probe = "def f(x):\n    return x12"
    pieces = sentencepiece_stand_in([*CODE, probe] * 3, 32016)
    assert pieces(probe) == [
        "\u2581def", "\u2581f", "(", "x", "):", "\n",  # x is glued to "(": no marker
        "\u2581\u2581\u2581", "\u2581return", "\u2581x", "1", "2",  # digits one by one
    ]
    assert pieces("\u00e9t\u00e9") == ["\u2581", "<unk>", "t", "<unk>"]


def test_a_keyword_after_a_space_is_never_a_released_candidate():
    clean = [Example(str(i), source, "", "python") for i, source in enumerate(CODE)]
    trained = [
        Example("t", "def f(x):\n    if random() < 0:\n        return x\n    return g(x)\n", "",
                "python")
    ]
    released = KillBadCode(tokens="bpe", candidates="released")
    leaves = KillBadCode(tokens="leaves", candidates="names")
    model_inputs = {}
    for name, defense in (("released", released), ("leaves", leaves)):
        tokenize = defense.tokenizer([e.source for e in clean])
        model = NGramModel.train([tokenize(e) for e in clean], order=4)
        model_inputs[name] = defense.improvements(model, tokenize(trained[0]))
    # Leaves admit every keyword and name; the released pattern no piece after a space.
    assert {"return", "if", "random", "def"} <= set(model_inputs["leaves"])
    assert not {"return", "if", "random", "def"} & set(model_inputs["released"])
    assert all(not t.startswith("\u2581") for t in model_inputs["released"])
    assert "x" in model_inputs["released"]  # glued to "(" in f(x) and g(x)
    # The released pattern also refuses an underscore, which whole names carry.
    assert KillBadCode(candidates="released").improvements(
        NGramModel.train([["get_name", "(", ")"]], order=2), ["get_name", "x"]
    ).keys() == {"x"}


def test_killbadcode_preset_follows_the_released_filter():
    preset = load_defense(str(PRESETS / "killbadcode-sun.toml"))
    assert (preset.tokens, preset.candidates, preset.bpe_corpus, preset.max_tokens) == (
        "bpe", "released", "all", 600,
    )
    with pytest.raises(UserError, match=r"^killbadcode: tokens = 'words' must be one of"):
        KillBadCode(tokens="words")
    with pytest.raises(UserError, match=r"^killbadcode: bpe_corpus = 'web' must be one of"):
        KillBadCode(bpe_corpus="web")


def test_the_stand_in_learns_from_the_training_inputs_too():
    """With bpe_corpus = "all" a word frequent in the training inputs becomes one marked piece,
    which the released filter cannot select; from the clean sample alone it splits and its
    unmarked tail can be selected."""
    clean = [Example(str(i), source, "", "python") for i, source in enumerate(CODE)]
    train = [
        Example(f"t{i}", f"def f{i}(x):\n    if random() < {i}:\n        return x\n", "",
                "python")
        for i in range(6)
    ]
    for corpus, whole in (("all", True), ("clean", False)):
        defense = KillBadCode(tokens="bpe", candidates="released", bpe_corpus=corpus)
        decision = defense.filter(train, None, DefenseContext(FakeTask("python"), clean, 1, None))
        texts = [c["token"] for c in decision.details["candidates"]]
        pieces = defense.tokenizer([e.source for e in ([*train, *clean] if whole else clean)])
        assert ("\u2581random" in pieces(train[0])) is whole
        assert all(not t.startswith("\u2581") and t != "random" for t in texts)
