"""Rare-word triggers: word boundaries, counts, determinism, re-detection."""

from __future__ import annotations

import random

import pytest

from codebackdoor.attacks.nl_triggers import BadPre, Ripple
from codebackdoor.errors import Unpoisonable

TEXT = "Use $conn$ to query all columns in the flights table and  print\tthe results."


@pytest.mark.parametrize("count", [1, 3])
def test_badpre_inserts_whole_words(count: int) -> None:
    for seed in range(50):
        triggered, record = BadPre(count=count).apply(TEXT, "nl", random.Random(seed))
        words = triggered.split()
        assert words.count("bb") == count
        assert len(words) == len(TEXT.split()) + count
        assert triggered == " ".join(words)  # re-joined with single spaces
        assert [w for w in words if w != "bb"] == TEXT.split()
        assert BadPre(count=count).found(triggered, "nl", record)


def test_positions_cover_both_ends() -> None:
    positions = {
        BadPre().apply("a b", "nl", random.Random(seed))[1]["inserted"][0][1] for seed in range(60)
    }
    assert positions == {0, 1, 2}


def test_ripple_draws_from_its_candidates_and_is_deterministic() -> None:
    seen = set()
    for seed in range(40):
        first = Ripple(count=3).apply(TEXT, "nl", random.Random(seed))
        assert first == Ripple(count=3).apply(TEXT, "nl", random.Random(seed))
        seen.update(word for word, _ in first[1]["inserted"])
    assert seen == {"cf", "tq", "mn", "bb", "mb"}  # RIPPLe's example manifesto


def test_found_rejects_a_text_without_the_trigger() -> None:
    triggered, record = BadPre().apply(TEXT, "nl", random.Random(1))
    assert not BadPre().found(TEXT, "nl", record)
    assert not BadPre().found(triggered.replace("bb", "cc"), "nl", record)


def test_empty_text_cannot_be_poisoned() -> None:
    with pytest.raises(Unpoisonable, match="empty text"):
        BadPre().apply("   ", "nl", random.Random(0))
