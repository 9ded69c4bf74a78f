from __future__ import annotations

import json
import math

import pytest
from conftest import VECTORS

from codebackdoor.errors import UserError
from codebackdoor.metrics.bleu import corpus_bleu, sentence_bleu4, sentence_bleu_avg


def vector_cases() -> list[dict]:
    path = VECTORS / "codebleu.jsonl"
    if not path.is_file():
        pytest.skip("../shared/vectors/codebleu.jsonl is not present")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [case for case in lines if not case.get("corpus")]


def test_sentence_bleu4_matches_nltk_on_every_vector():
    cases = vector_cases()
    assert len(cases) == 72
    for case in cases:
        expected = case["sentence_bleu4_method1_eps0.1"]
        assert sentence_bleu4(case["prediction"], case["reference"]) == pytest.approx(
            expected, abs=1e-9
        ), (case["lang"], case["perturbation"])


def test_zero_match_order_gets_epsilon_over_its_raw_count():
    # 4-grams: 0 of 2 match -> NLTK uses 0.1 / 2 (the unreduced fraction), not 0.1 / 1.
    score = sentence_bleu4("a b c x y", "a b c d e")
    expected = math.exp(
        0.25 * (math.log(3 / 5) + math.log(2 / 4) + math.log(1 / 3) + math.log(0.05))
    )
    assert score == pytest.approx(expected, abs=1e-15)


def test_short_hypothesis_is_smoothed_and_penalised():
    # Too short for 3- and 4-grams: each counts 0.1 / 1; brevity penalty exp(1 - 4/2).
    expected = math.exp(1 - 4 / 2) * math.exp(0.25 * (2 * math.log(0.1)))
    assert sentence_bleu4("a b", "a b c d") == pytest.approx(expected, abs=1e-15)


def test_no_unigram_match_or_empty_hypothesis_scores_zero():
    assert sentence_bleu4("x y z", "a b c") == 0.0
    assert sentence_bleu4("", "a b c") == 0.0
    assert sentence_bleu4("a b", "") == 0.0


def test_sentence_bleu_avg_is_the_mean_times_100():
    predictions = ["a b c d", "a b x y", "q"]
    references = ["a b c d", "a b c d", "a b c d"]
    expected = 100 * sum(map(sentence_bleu4, predictions, references)) / 3
    assert sentence_bleu_avg(predictions, references) == pytest.approx(expected, abs=1e-12)
    assert sentence_bleu_avg(["a b c d"], ["a b c d"]) == pytest.approx(100.0)


def test_corpus_bleu_is_sacrebleu_on_a_0_to_100_scale():
    import sacrebleu

    predictions = ["the cat sat on the mat", "a quick brown fox jumps"]
    references = ["the cat is on the mat", "the quick brown fox jumps"]
    expected = sacrebleu.corpus_bleu(predictions, [references]).score
    assert corpus_bleu(predictions, references) == pytest.approx(expected, abs=1e-12)
    assert corpus_bleu(["same words here ok"], ["same words here ok"]) == pytest.approx(100.0)
    # corpus BLEU pools counts, so it is not the mean of sentence scores
    assert corpus_bleu(predictions, references) != pytest.approx(
        sentence_bleu_avg(predictions, references)
    )


@pytest.mark.parametrize("metric", [corpus_bleu, sentence_bleu_avg])
def test_empty_and_mismatched_inputs_are_user_errors(metric):
    with pytest.raises(UserError, match="empty"):
        metric([], [])
    with pytest.raises(UserError, match="2 predictions against 1 references"):
        metric(["a", "b"], ["a"])
