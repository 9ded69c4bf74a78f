"""Guarantees over the whole embedded Python and Java corpora (issue 2, part 6)."""

from __future__ import annotations

import pytest

from codebackdoor.attacks.base import example_rng
from codebackdoor.attacks.build import build_attack
from codebackdoor.code.parser import is_valid
from codebackdoor.errors import Unpoisonable
from codebackdoor.poison import poison
from codebackdoor.registry import registry

CODE_ATTACKS = ("fixed", "grammar", "deadcode", "rename")
# Share of a corpus each attack must be able to poison (measured: see the issue note).
MIN_ELIGIBLE = {"fixed": 0.95, "grammar": 0.95, "deadcode": 0.95, "rename": 0.8}


@pytest.fixture(scope="module", params=["python", "java"])
def corpus(request: pytest.FixtureRequest):
    task = registry("tasks").get("summarize")(lang=request.param)
    try:
        splits = task.load()
    except Exception as exc:  # the JDK sources may be absent on a machine without them
        if request.param == "java":
            pytest.skip(f"no Java corpus here: {exc}")
        raise
    return task, splits


@pytest.mark.parametrize("attack", CODE_ATTACKS)
def test_every_poisoned_input_parses_and_holds_its_trigger(corpus, attack: str) -> None:
    task, splits = corpus
    trigger = registry("attacks").get(attack)()
    examples = splits.train + splits.valid + splits.test
    poisoned = 0
    for example in examples:
        try:
            triggered, record = trigger.apply(example.source, task.lang, example_rng(3, example.id))
        except Unpoisonable:
            continue
        poisoned += 1
        assert triggered != example.source
        assert is_valid(triggered, task.lang), example.id
        assert trigger.found(triggered, task.lang, record), example.id
        assert not trigger.found(example.source, task.lang, record), example.id
    assert poisoned >= MIN_ELIGIBLE[attack] * len(examples), (poisoned, len(examples))


@pytest.mark.parametrize("attack", ["fixed", "grammar"])
def test_poisoning_is_deterministic_and_exact(corpus, attack: str) -> None:
    task, splits = corpus
    made = build_attack(attack, task)
    first = poison(splits, task, made, rate=0.05, seed=11)
    again = poison(splits, task, build_attack(attack, task), rate=0.05, seed=11)
    other = poison(splits, task, build_attack(attack, task), rate=0.05, seed=12)
    counts = first.manifest["counts"]["train"]
    assert counts["poisoned"] == round(0.05 * counts["eligible"])
    assert len(first.manifest["poisoned_ids"]) == counts["poisoned"]
    assert first.manifest["content_hash"] == again.manifest["content_hash"]
    assert first.manifest["content_hash"] != other.manifest["content_hash"]
    changed = [a.id for a, b in zip(splits.train, first.train, strict=True) if a != b]
    assert changed == first.manifest["poisoned_ids"]
    assert len(first.triggered_test) == first.manifest["counts"]["test"]["triggered"]
