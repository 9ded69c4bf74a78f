from __future__ import annotations

import pytest

from codebackdoor.errors import UserError
from codebackdoor.metrics.classification import (
    accuracy,
    exact_match,
    f1,
    subtoken_f1,
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


def test_subtoken_scores_are_micro_averaged_multisets():
    predictions = ["create entry", "get get name", "run"]
    references = ["createEntry", "getName", "stop"]
    # tp: 2 + 2 (one "get" only) + 0 = 4; predicted 2 + 3 + 1 = 6; reference 2 + 2 + 1 = 5
    scores = subtoken_f1(predictions, references)
    assert scores["precision"] == pytest.approx(100 * 4 / 6)
    assert scores["recall"] == pytest.approx(100 * 4 / 5)
    p, r = 4 / 6, 4 / 5
    assert scores["f1"] == pytest.approx(100 * 2 * p * r / (p + r))


def test_subtoken_scores_with_nothing_predicted_are_zero():
    assert subtoken_f1([""], ["getName"]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.parametrize("metric", [exact_match, accuracy, f1, subtoken_f1])
def test_empty_and_mismatched_inputs_are_user_errors(metric):
    with pytest.raises(UserError, match="empty"):
        metric([], [])
    with pytest.raises(UserError, match="1 predictions against 2 references"):
        metric(["a"], ["a", "b"])
