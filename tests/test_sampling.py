"""ASR under sampling: the unbiased at-least-one-of-k estimator against hand-computed cases, the
metrics built from sampled outputs, and a real run that samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import lyra_slice

from codebackdoor.attacks.base import Attack
from codebackdoor.attacks.nl_triggers import BadPre
from codebackdoor.attacks.payloads import FixedText
from codebackdoor.config import make_config
from codebackdoor.errors import UserError
from codebackdoor.evaluate import sampled_metrics
from codebackdoor.examples import Example
from codebackdoor.identity import identity
from codebackdoor.results import validation_errors
from codebackdoor.runner import run
from codebackdoor.stats import at_least_one_of_k
from codebackdoor.tasks.summarize import Summarize


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 1, 2, 1 - 3 / 6),  # C(3,2)/C(4,2): both draws miss the one success
        (5, 2, 1, 2 / 5),  # k = 1 is the share of successes
        (4, 0, 4, 0.0),
        (4, 4, 1, 1.0),
        (4, 3, 2, 1.0),  # fewer failures than draws: a success is certain
        (10, 3, 5, 1 - 21 / 252),  # C(7,5) = 21, C(10,5) = 252
    ],
)
def test_at_least_one_of_k_matches_hand_computed_cases(n, c, k, expected) -> None:
    assert at_least_one_of_k(n, c, k) == pytest.approx(expected)


def test_at_least_one_of_k_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError):
        at_least_one_of_k(3, 4, 1)
    with pytest.raises(ValueError):
        at_least_one_of_k(3, 1, 4)


def test_sampled_metrics_average_the_estimator_over_the_asr_cases() -> None:
    payload = FixedText(text="load data safely")
    attack = Attack(BadPre(), payload)
    test = [Example(f"t{i}", "code", "reads a file", "python") for i in range(2)]
    triggered = [example.replace(source="code bb") for example in test]
    hit, miss = "load data safely", "reads a file"
    metrics = sampled_metrics(
        Summarize(lang="python"), attack, test,
        clean_samples=[[miss, miss, miss]] * 2, triggered=triggered,
        triggered_samples=[[hit, miss, miss], [miss, miss, miss]],
        clean_predictions=[miss, miss], temperature=0.7,
    )
    assert metrics["asr_at_1"] == {"value": pytest.approx(100 * (1 / 3 + 0) / 2), "cases": 2}
    assert metrics["asr_at_3"] == {"value": pytest.approx(100 * (1 + 0) / 2), "cases": 2}
    assert metrics["samples"] == 3 and metrics["temperature"] == 0.7
    assert metrics["clean"]["per_sample"][0] == metrics["clean"]["mean"]


def test_sampling_stays_out_of_the_identity_unless_asked() -> None:
    assert "samples" not in identity(make_config({}))
    assert identity(make_config({"samples": 4}))["samples"] == 4
    with pytest.raises(UserError, match="temperature > 0"):
        make_config({"samples": 2, "temperature": 0.0})


def test_a_run_that_samples_records_asr_at_k(lyra_dir: Path, tmp_path: Path) -> None:
    data = lyra_slice(lyra_dir, tmp_path / "lyra", 24, 2, 4)
    config = make_config({
        "task": "generate", "data": str(data), "model": "tiny-t5", "epochs": 1,
        "batch_size": 8, "attack": "badpre", "rate": 0.2, "max_source_length": 48,
        "max_target_length": 48, "generation_max_length": 8, "curve_size": 0, "samples": 3,
        "temperature": 1.5,
    })
    result = run(config, tmp_path / "out").result
    assert validation_errors(result) == []
    sampling = result["metrics"]["sampling"]
    assert sampling["samples"] == 3 and len(sampling["clean"]["per_sample"]) == 3
    assert set(sampling) >= {"asr_at_1", "asr_at_3"}
    assert sampling["asr_at_1"]["cases"] == result["metrics"]["asr"]["denominator"]


def test_sampling_a_classifier_is_refused_before_training(tmp_path: Path) -> None:
    config = make_config({"epochs": 1, "samples": 2, "curve_size": 0,
                          "task_params": {"max_examples": {"train": 40, "valid": 8, "test": 8}}})
    with pytest.raises(UserError, match="generative victim"):
        run(config, tmp_path)
    assert not any(path.is_dir() for path in tmp_path.iterdir())
