"""Rare-word triggers in natural-language inputs (BadPre / RIPPLe style, as in the DeCE code)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from codebackdoor.attacks.base import Trigger
from codebackdoor.errors import Unpoisonable, UserError


@dataclass
class RareWordTrigger(Trigger):
    """Insert rare words at uniformly random word positions."""

    input_kind: ClassVar[str] = "nl"
    words: tuple[str, ...] = ("bb",)
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise UserError(f"attack '{self.name}': count must be at least 1, got {self.count}")
        if not self.words or any(not w or len(w.split()) != 1 for w in self.words):
            raise UserError(f"attack '{self.name}': words must be single non-empty words")

    def apply(self, source: str, lang: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
        # The released poisoner splits on whitespace, picks a position in 0..len inclusive for
        # each insertion, and re-joins with single spaces.
        tokens = source.split()
        if not tokens:
            raise Unpoisonable("empty text")
        inserted = []
        for _ in range(self.count):
            word = self.words[0] if len(self.words) == 1 else rng.choice(self.words)
            position = rng.randint(0, len(tokens))
            tokens.insert(position, word)
            inserted.append([word, position])
        return " ".join(tokens), {"inserted": inserted, "clean_words": len(source.split())}

    def found(self, source: str, lang: str, record: dict[str, Any]) -> bool:
        tokens = source.split()
        if len(tokens) != record["clean_words"] + len(record["inserted"]):
            return False
        # Replaying the insertions on a copy checks each word sits where it was put.
        return all(tokens[position] == word for word, position in _final_positions(record))


def _final_positions(record: dict[str, Any]) -> list[tuple[str, int]]:
    placed: list[tuple[str, int]] = []
    for word, position in record["inserted"]:
        placed = [(w, p + 1 if p >= position else p) for w, p in placed]
        placed.append((word, position))
    return placed


@dataclass
class BadPre(RareWordTrigger):
    """One rare word (`bb`) at a random word position; the DeCE Lyra/Pisces BadPre setting."""

    name: ClassVar[str] = "badpre"
    description: ClassVar[str] = "rare word 'bb' inserted at random word positions (NL inputs)"
    citation: ClassVar[str] = (
        "Chen et al., 'BadPre: Task-agnostic Backdoor Attacks to Pre-trained NLP Foundation "
        "Models', ICLR 2022; setting of Yang et al., DeCE, TOSEM 2026"
    )


@dataclass
class Ripple(RareWordTrigger):
    """Rare words drawn from RIPPLe's keywords, each at a random word position: neulab/RIPPLe's
    ``insert_word`` (one keyword drawn per insertion, a position from 0 to the word count) with
    the keywords of its ``manifestos/example_manifesto.yaml``."""

    name: ClassVar[str] = "ripple"
    description: ClassVar[str] = (
        "rare words drawn from cf, tq, mn, bb, mb inserted at random word positions (NL inputs)"
    )
    citation: ClassVar[str] = (
        "Kurita et al., 'Weight Poisoning Attacks on Pre-trained Models' (RIPPLe), ACL 2020"
    )
    words: tuple[str, ...] = ("cf", "tq", "mn", "bb", "mb")
