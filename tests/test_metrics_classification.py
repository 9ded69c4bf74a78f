from __future__ import annotations

import pytest

from codebackdoor.errors import UserError
from codebackdoor.metrics.classification import (
    accuracy,
    exact_match,
    f1,
    subtoken_f1,
    subtoken_f1_clipped,
    subtoken_f1_distinct,
    subtokens,
)


def test_exact_match_collapses_whitespace_only():
    predictions = ["a  ( b )\n", "a (b)", "x"]
    references = ["a ( b )", "a ( b )", "x"]
    assert exact_match(predictions, references) == pytest.approx(200 / 3)


def test_accuracy_compares_stripped_labels():
    assert accuracy(["1", " 0", "1"], ["1", "0", "0"]) == pytest.approx(200 / 3)


def test_f1_of_the_positive_label():
    # tp = 1, fp = 1, fn = 1 -> 2 / (2 + 2)
    assert f1(["1", "1", "0", "0"], ["1", "0", "1", "0"]) == pytest.approx(50.0)
    assert f1(["yes", "no"], ["yes", "yes"], positive="yes") == pytest.approx(200 / 3)
    assert f1(["0", "0"], ["0", "0"]) == 0.0


@pytest.mark.parametrize(
    "name",
    [
        "getHTTPResponse",
        "get_http_response",
        "get http response",
        "GET_HTTP_RESPONSE",
        "get|http|response",
    ],
)
def test_subtokens_split_camel_snake_and_spaces(name):
    assert subtokens(name) == ["get", "http", "response"]


def test_subtokens_keep_numbers_apart():
    assert subtokens("toUTF8String") == ["to", "utf", "8", "string"]


# The case: a repeated subtoken, where the three counts differ.
REPEAT = (["get get get"], ["get name"])
# A joined-equal name, a repeat, a miss and an unsplit name.
PREDICTIONS = ["create entry", "get get name", "run", "getname"]
REFERENCES = ["createEntry", "getName", "stop", "get name"]


def _prf(precision: float, recall: float) -> dict[str, float]:
    f1_score = 2 * precision * recall / (precision + recall)
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1_score}


def test_code2seq_counts_repeats_without_clipping():
    # code2seq model.py: tp 3 (every "get" is in the reference), fp 0, fn 1 ("name").
    assert subtoken_f1(*REPEAT) == pytest.approx(_prf(3 / 3, 3 / 4))
    assert subtoken_f1(*REPEAT)["f1"] == pytest.approx(600 / 7)  # 85.7


def test_code2seq_counts_are_micro_summed_and_joined_names_are_right():
    # tp 2 (joined equal) + 3 + 0 + 2 (getname = get+name joined); fp 0 + 0 + 1 + 0; fn 0+0+1+0
    assert subtoken_f1(PREDICTIONS, REFERENCES) == pytest.approx(_prf(7 / 8, 7 / 8))


def test_clipped_counts_a_repeat_as_often_as_the_reference_has_it():
    assert subtoken_f1_clipped(*REPEAT) == pytest.approx(_prf(1 / 3, 1 / 2))
    assert subtoken_f1_clipped(*REPEAT)["f1"] == pytest.approx(40.0)
    # tp 2 + 2 + 0 + 0; predicted 2 + 3 + 1 + 1; reference 2 + 2 + 1 + 2
    assert subtoken_f1_clipped(PREDICTIONS, REFERENCES) == pytest.approx(_prf(4 / 7, 4 / 7))


def test_distinct_counts_each_subtoken_once():
    # Ramakrishnan & Albarghouthi's seq2seq metrics.py: sets of subtokens.
    assert subtoken_f1_distinct(*REPEAT) == pytest.approx(_prf(1, 1 / 2))
    # tp 2 + 2 + 0 + 0; fp 0 + 0 + 1 + 1; fn 0 + 0 + 1 + 2
    assert subtoken_f1_distinct(PREDICTIONS, REFERENCES) == pytest.approx(_prf(4 / 6, 4 / 7))


@pytest.mark.parametrize("metric", [subtoken_f1, subtoken_f1_clipped, subtoken_f1_distinct])
def test_subtoken_scores_with_nothing_predicted_are_zero(metric):
    assert metric([""], ["getName"]) == pytest.approx({"precision": 0, "recall": 0, "f1": 0})


@pytest.mark.parametrize(
    "metric",
    [exact_match, accuracy, f1, subtoken_f1, subtoken_f1_clipped, subtoken_f1_distinct],
)
def test_empty_and_mismatched_inputs_are_user_errors(metric):
    with pytest.raises(UserError, match="empty"):
        metric([], [])
    with pytest.raises(UserError, match="1 predictions against 2 references"):
        metric(["a"], ["a", "b"])
