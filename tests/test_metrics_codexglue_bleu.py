"""CodeXGLUE's smoothed BLEU on cases worked by hand from its bleu.py (computeMaps, bleuFromMaps),
where NLTK's method-1 sentence BLEU (``sbleu``) gives other numbers."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import random

import pytest

from codebackdoor.errors import UserError
from codebackdoor.metrics.bleu import sentence_bleu4
from codebackdoor.metrics.codexglue_bleu import codexglue_bleu, sentence_bleu, tokens


def test_tokens_are_lower_cased_with_punctuation_and_underscores_split() -> None:
    assert tokens("  Returns the value.\n") == ["returns", "the", "value", "."]
    assert tokens("load_data(x)") == ["load", "_", "data", "(", "x", ")"]
    assert tokens("3.5-2 don't") == ["3", ".", "5", "-", "2", "don", "'", "t"]


def test_case_and_punctuation_do_not_count() -> None:
    # Both sides become "returns the value ." : every n-gram matches, lengths equal.
    assert sentence_bleu("Returns the value.", "returns the value .") == pytest.approx(1.0)
    # NLTK on whitespace tokens sees 'Returns' and 'value.' as other words.
    assert sentence_bleu4("Returns the value.", "returns the value .") < 0.2


def test_smoothing_adds_one_above_unigrams_and_to_the_lengths() -> None:
    # get the name | get the file name: matches 3/3, 1/2, 0/1, 0/0; +1 above unigrams gives
    # 3/3 · 2/3 · 1/2 · 1/1 = 1/3; brevity exp(1 - 5/4).
    expected = math.exp(math.log(1 / 3) / 4 + (1 - 5 / 4))
    assert sentence_bleu("get the name", "get the file name") == pytest.approx(expected)
    assert 100 * expected == pytest.approx(59.176, abs=1e-3)
    # NLTK method 1: (1 · 1/2 · 0.1 · 0.1)^(1/4) · exp(1 - 4/3).
    nltk = (1 * 0.5 * 0.1 * 0.1) ** 0.25 * math.exp(1 - 4 / 3)
    assert sentence_bleu4("get the name", "get the file name") == pytest.approx(nltk)


def test_an_underscore_is_a_word_of_its_own() -> None:
    # load _ data | load data: 2/3, (0+1)/(2+1), (0+1)/(1+1), (0+1)/(0+1) = 1/9; no brevity
    # penalty (3 > 2).
    assert sentence_bleu("load_data", "load data") == pytest.approx((1 / 9) ** 0.25)


def test_an_empty_prediction_scores_the_brevity_penalty_alone() -> None:
    # No n-gram is guessed: every order gives log(tiny) - log(tiny) = 0 or log 1 - log 1 = 0,
    # and the brevity penalty is exp(1 - (3 + 1) / (0 + 1)) = exp(-3).
    assert sentence_bleu("", "returns the value") == pytest.approx(math.exp(-3))
    assert sentence_bleu4("", "returns the value") == 0.0


def test_no_unigram_match_is_almost_zero() -> None:
    # Unigrams are not smoothed: log(0 + tiny) ≈ -708, a quarter of it in the exponent.
    assert 0 < sentence_bleu("foo", "bar") < 1e-70


def test_the_corpus_score_is_the_mean_of_the_sentences_times_100() -> None:
    score = codexglue_bleu(["Returns the value.", ""], ["returns the value .", "returns the value"])
    assert score == pytest.approx((100 + 100 * math.exp(-3)) / 2)


def test_empty_and_mismatched_inputs_are_user_errors() -> None:
    with pytest.raises(UserError, match="empty"):
        codexglue_bleu([], [])
    with pytest.raises(UserError, match="1 predictions against 2 references"):
        codexglue_bleu(["a"], ["a", "b"])


SCRIPT = os.environ.get("CODEBACKDOOR_CODEXGLUE_BLEU")


@pytest.mark.skipif(
    not SCRIPT,
    reason="set CODEBACKDOOR_CODEXGLUE_BLEU to CodeXGLUE's Code-Text/code-to-text/evaluator/"
    "evaluator.py (or code/bleu.py) to compare with the script itself",
)
def test_equals_the_codexglue_script_on_the_embedded_summaries() -> None:
    from codebackdoor.registry import registry

    spec = importlib.util.spec_from_file_location("codexglue_bleu_script", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    references = [e.target for e in registry("tasks").get("summarize")(lang="python").load().test]
    # Predictions of every kind: other summaries, truncations with an identifier, empty ones.
    draws = random.Random(0)
    predictions = []
    for reference in references:
        words = draws.choice(references).split()
        if draws.random() < 0.5:
            words = [*reference.split()[:-2], "load_data", "x."]
        predictions.append("" if draws.random() < 0.1 else " ".join(words))
    gold = {str(i): [script.splitPuncts(r.strip().lower())] for i, r in enumerate(references)}
    hypotheses = {str(i): [script.splitPuncts(p.strip().lower())]
                  for i, p in enumerate(predictions)}
    with contextlib.redirect_stderr(io.StringIO()):
        expected = script.bleuFromMaps(gold, hypotheses)[0]
    assert codexglue_bleu(predictions, references) == expected  # to the last bit
