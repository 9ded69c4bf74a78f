from __future__ import annotations

import pytest

from codebackdoor.code.parser import grammar_versions
from codebackdoor.errors import UserError
from codebackdoor.registry import BUILTINS, registry

METRICS = {name: registry("metrics").get(name) for name in BUILTINS["metrics"]}


def test_every_metric_has_a_versioned_definition_and_a_description():
    assert set(METRICS) == {
        "bleu",
        "sbleu",
        "codexglue-bleu",
        "codebleu",
        "exact-match",
        "accuracy",
        "f1",
        "subtoken-f1",
        "subtoken-f1-clipped",
        "subtoken-f1-distinct",
    }
    ids = [metric.definition for metric in METRICS.values()]
    assert len(set(ids)) == len(ids)
    for metric in METRICS.values():
        assert metric.description and "\n" not in metric.description
        assert any(ch.isdigit() for ch in metric.definition)
    assert METRICS["bleu"].definition == "sacrebleu-2.6.0-corpus-13a"
    versions = grammar_versions()
    for package in ("tree-sitter", "tree-sitter-python", "tree-sitter-java"):
        assert f"{package}-{versions[package]}" in METRICS["codebleu"].definition


def test_metrics_score_in_percent():
    predictions = ["def f ( x ) : return x"]
    assert METRICS["bleu"](predictions, predictions) == pytest.approx(100.0)
    assert METRICS["sbleu"](predictions, predictions) == pytest.approx(100.0)
    assert METRICS["codexglue-bleu"](predictions, predictions) == pytest.approx(100.0)
    assert METRICS["exact-match"](predictions, predictions) == pytest.approx(100.0)
    codebleu = METRICS["codebleu"](predictions, predictions, lang="python")
    assert codebleu == pytest.approx(
        {
            "codebleu": 100,
            "ngram_match": 100,
            "weighted_ngram_match": 100,
            "syntax_match": 100,
            "dataflow_match": 100,
        }
    )
    assert METRICS["subtoken-f1"](["getName"], ["get name"])["f1"] == pytest.approx(100.0)


def test_codebleu_needs_the_language():
    with pytest.raises(UserError, match="needs the code language"):
        METRICS["codebleu"](["x"], ["x"])


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_refuses_empty_and_mismatched_inputs(name):
    metric = METRICS[name]
    with pytest.raises(UserError):
        metric([], [], lang="java")
    with pytest.raises(UserError):
        metric(["a"], ["a", "b"], lang="java")


def test_every_metric_says_its_direction_and_headline():
    assert all(metric.higher_is_better for metric in METRICS.values())
    assert METRICS["codebleu"].headline == "codebleu"
    assert METRICS["subtoken-f1"].headline == "f1"
    score = METRICS["subtoken-f1"](["get name"], ["get value"])
    assert METRICS["subtoken-f1"].headline_value(score) == pytest.approx(50.0)
    assert METRICS["bleu"].headline_value(12.5) == 12.5
