"""KillBadCode: trigger tokens make code less natural, so deleting them makes it more natural.

Sun et al. train an n-gram code language model on a few clean snippets, measure for every
token of every training snippet how much the snippet's per-token cross-entropy drops when the
token is deleted, sum each token's drops over the snippets where it ranks among the largest,
and remove the snippets that contain the top-scoring tokens. Their released code
(wssun/KillBadCode) trains a 4-gram KenLM (modified Kneser-Ney) on CodeLlama subword tokens;
here the model is an add-k smoothed 4-gram over tree-sitter leaf tokens, which needs no
external tool and keeps identifiers whole.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codebackdoor.defenses.base import DefenseContext, FilterDecision, FilterDefense
from codebackdoor.defenses.units import units
from codebackdoor.errors import UserError

if TYPE_CHECKING:
    from codebackdoor.examples import Example
    from codebackdoor.models.victim import Victim

BOS, EOS = "<s>", "</s>"
# Candidate tokens: names and keywords. The released code's pattern for subword pieces is
# letters and digits not starting with a digit; leaf tokens add the underscore of whole names.
CANDIDATE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class KillBadCode(FilterDefense):
    """Removes the examples holding the tokens whose deletion most improves naturalness."""

    name = "killbadcode"
    description = (
        "KillBadCode: an n-gram code model trained on clean code names the tokens whose deletion "
        "makes training code most natural; removes the examples holding them"
    )
    citation = (
        "Sun, Chen, Yuan, Fang, Chen, Wang, Liu, Xu, Chen. Show Me Your Code! Kill Code "
        "Poisoning: A Lightweight Method Based on Code Naturalness. ICSE 2025"
    )
    needs_victim = False

    # The released code's n-gram order.
    order: int = 4
    # Add-k smoothing constant (ours: the released model is Kneser-Ney smoothed). A small k
    # keeps the clean sample's n-grams likely against a vocabulary of thousands of names.
    k: float = 0.01
    # Clean snippets the model is trained on, from the defender's clean sample.
    clean_samples: int = 2000
    # Tokens scored per snippet (the released code stops at 600) and candidates a snippet
    # contributes to the sum (its 10 largest improvements, as released).
    max_tokens: int = 600
    per_sample: int = 10
    # Top-ranked tokens taken as the trigger.
    triggers: int = 1

    def __post_init__(self) -> None:
        if self.order < 1:
            raise UserError(f"killbadcode: order = {self.order} must be at least 1")
        if not self.k > 0.0:
            raise UserError(f"killbadcode: k = {self.k} must be positive")
        for field_name in ("clean_samples", "max_tokens", "per_sample", "triggers"):
            if getattr(self, field_name) < 1:
                raise UserError(
                    f"killbadcode: {field_name} = {getattr(self, field_name)} must be >= 1"
                )

    def check_applies(self, task: Any) -> None:
        if getattr(task, "input_kind", None) != "code":
            raise UserError(
                f"killbadcode needs code inputs; task '{task.name}' takes natural language"
            )

    def filter(
        self, train: list[Example], victim: Victim | None, context: DefenseContext
    ) -> FilterDecision:
        clean = context.clean[: self.clean_samples]
        if not clean:
            raise UserError("killbadcode needs a clean sample to train its n-gram model on")
        model = NGramModel.train([_texts(e) for e in clean], order=self.order, k=self.k)
        tokens = [_texts(e) for e in train]
        improvements = [self.improvements(model, t) for t in tokens]
        totals: dict[str, float] = {}
        for found in improvements:
            best = sorted(found.items(), key=lambda item: -item[1])[: self.per_sample]
            for text, gain in best:
                totals[text] = totals.get(text, 0.0) + gain
        ranking = sorted(totals.items(), key=lambda item: -item[1])
        chosen = {text for text, _ in ranking[: self.triggers]}
        keep = [chosen.isdisjoint(t) for t in tokens]
        scores = [
            max((g for t, g in found.items() if t in chosen), default=0.0) for found in improvements
        ]
        details = {
            "triggers": [{"token": t, "score": s} for t, s in ranking[: self.triggers]],
            "candidates": [{"token": t, "score": s} for t, s in ranking[:20]],
            "clean_samples": len(clean),
        }
        return FilterDecision(keep, scores, details)

    def improvements(self, model: NGramModel, tokens: list[str]) -> dict[str, float]:
        """Per candidate token text, the drop in cross-entropy (clipped at 0) its deletion brings;
        a repeated text counts at its last occurrence, as in the released code."""
        scored = tokens[: self.max_tokens]
        full, deleted = model.deletion_entropies(tokens, len(scored))
        found: dict[str, float] = {}
        for text, entropy in zip(scored, deleted, strict=True):
            if CANDIDATE.fullmatch(text):
                found[text] = max(full - entropy, 0.0)
        return found


def _texts(example: Example) -> list[str]:
    return [unit.text for unit in units(example.source, example.lang)]


@dataclass
class NGramModel:
    """An add-k smoothed n-gram model: P(w | h) = (c(h w) + k) / (c(h) + k·V).

    V counts the training token types, the end marker and one slot for every unseen token.
    Log probabilities are base 10, as KenLM reports them.
    """

    order: int
    k: float
    grams: dict[tuple[str, ...], int]
    histories: dict[tuple[str, ...], int]
    vocabulary: int

    @classmethod
    def train(cls, sequences: Sequence[Sequence[str]], *, order: int, k: float) -> NGramModel:
        grams: dict[tuple[str, ...], int] = {}
        histories: dict[tuple[str, ...], int] = {}
        types: set[str] = {EOS}
        for tokens in sequences:
            types.update(tokens)
            padded = _padded(tokens, order)
            for i in range(order - 1, len(padded)):
                gram = tuple(padded[i - order + 1 : i + 1])
                grams[gram] = grams.get(gram, 0) + 1
                histories[gram[:-1]] = histories.get(gram[:-1], 0) + 1
        return cls(order, k, grams, histories, len(types) + 1)

    def log_prob(self, history: tuple[str, ...], word: str) -> float:
        numerator = self.grams.get((*history, word), 0) + self.k
        denominator = self.histories.get(history, 0) + self.k * self.vocabulary
        return math.log10(numerator / denominator)

    def entropy(self, tokens: Sequence[str]) -> float:
        """Cross-entropy per token: −log10 P(tokens, end marker) / len(tokens)."""
        return -sum(self._terms(_padded(tokens, self.order))) / max(len(tokens), 1)

    def deletion_entropies(self, tokens: Sequence[str], first: int) -> tuple[float, list[float]]:
        """The entropy of ``tokens`` and, for each of the ``first`` tokens, that without it.

        Deleting a token changes only its own term and the n − 1 terms whose history held it,
        so each deletion costs O(n) look-ups instead of a rescoring of the whole sequence.
        """
        n = self.order
        padded = _padded(tokens, n)
        terms = self._terms(padded)
        total = sum(terms)
        full = -total / max(len(tokens), 1)
        remaining = max(len(tokens) - 1, 1)
        deleted = []
        for j in range(first):
            at = j + n - 1  # the token's index in `padded`; its term is terms[j]
            last = min(at + n - 1, len(padded) - 1)
            changed = total - sum(terms[j : last - n + 2])
            for i in range(at + 1, last + 1):
                history = (*padded[i - n : at], *padded[at + 1 : i])
                changed += self.log_prob(history, padded[i])
            deleted.append(-changed / remaining)
        return full, deleted

    def _terms(self, padded: list[str]) -> list[float]:
        """log10 P of each token after the start markers, given the n − 1 before it."""
        n = self.order
        return [
            self.log_prob(tuple(padded[i - n + 1 : i]), padded[i])
            for i in range(n - 1, len(padded))
        ]


def _padded(tokens: Sequence[str], order: int) -> list[str]:
    return [BOS] * (order - 1) + list(tokens) + [EOS]
