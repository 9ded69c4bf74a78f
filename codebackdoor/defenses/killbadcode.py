"""KillBadCode: trigger tokens make code less natural, so deleting them makes it more natural.

Sun et al. train an n-gram code language model on a few clean snippets, measure for every
token of every training snippet how much the snippet's per-token cross-entropy drops when the
token is deleted, sum each token's drops over the snippets where it ranks among the largest,
and remove the snippets that contain the top-scoring tokens. Their released code
(wssun/KillBadCode) trains a 4-gram KenLM (modified Kneser-Ney) on the pieces of CodeLlama's
SentencePiece tokenizer; the same estimate is computed here in Python, on either of two token
streams (``tokens``):

- ``bpe``: a stand-in for CodeLlama's tokenizer, which cannot be downloaded here: a BPE model
  trained on the clean sample with SentencePiece's conventions as Llama uses them (a space
  becomes ``▁`` and joins the piece after it, a ``▁`` before the text, digits one by one,
  letters, punctuation and newlines never merged together). Its merges are not CodeLlama's,
  so identifiers split elsewhere; where a piece starts is the same.
- ``leaves``: tree-sitter leaf tokens, which keep every name and keyword whole.

``detect_token.py`` admits as candidates only the pieces matching
``^(?![0-9])[a-zA-Z0-9]+$`` (``candidates = "released"``). A piece that follows a space
carries the ``▁`` marker and fails it, so after indentation or a space ``return``, ``if`` and
``random`` can never be chosen there; only pieces glued to what precedes them (after a
bracket, a dot, a newline without indentation, or inside a split name) can.
``candidates = "names"`` admits every name and keyword, underscores included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from codebackdoor.defenses.base import DefenseContext, FilterDecision, FilterDefense
from codebackdoor.defenses.units import units
from codebackdoor.errors import UserError

if TYPE_CHECKING:
    from codebackdoor.examples import Example
    from codebackdoor.models.victim import Victim

BOS, EOS = "<s>", "</s>"
# Candidate tokens. "released": detect_token.py's pattern, verbatim, applied with re.match.
# "names": whole names and keywords, the underscore included.
CANDIDATES = {
    "released": re.compile(r"^(?![0-9])[a-zA-Z0-9]+$"),
    "names": re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$"),
}
TOKEN_STREAMS = ("bpe", "leaves")
BPE_CORPORA = ("all", "clean")
# SentencePiece's word marker, which Llama's tokenizer puts in place of a space.
MARKER = "\u2581"
# The stand-in's pieces never cross these boundaries: a run of markers before another marker
# (indentation), a marker-led letter run, one digit, a marker-led punctuation run, one
# whitespace character that is not a space (a newline: CodeLlama's byte piece <0x0A>).
PIECE_BOUNDARIES = "|".join(
    (
        f"{MARKER}+(?={MARKER})",
        f"{MARKER}?[A-Za-z]+",
        f"{MARKER}?[0-9]",
        rf"{MARKER}?[^A-Za-z0-9{MARKER}\s]+",
        r"\s",
    )
)


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
    # Clean snippets the model is trained on, from the defender's clean sample.
    clean_samples: int = 2000
    # Tokens a snippet is cut to (the released code's 600) and candidates a snippet
    # contributes to the sum (its 10 largest improvements, as released).
    max_tokens: int = 600
    per_sample: int = 10
    # Top-ranked tokens taken as the trigger.
    triggers: int = 1
    # The token stream and the candidate rule (module docstring). The released code: "bpe"
    # (CodeLlama's tokenizer there, a stand-in here) with "released" candidates.
    tokens: Literal["bpe", "leaves"] = "leaves"
    candidates: Literal["released", "names"] = "names"
    # The stand-in's vocabulary: CodeLlama's size, which a few thousand snippets stop short of.
    bpe_vocab_size: int = 32016
    # The texts the stand-in learns its merges from: "all" (the training inputs and the clean
    # sample) or "clean" (the clean sample alone). CodeLlama learned its merges from far more
    # code than either, so common words (`random`, `return`) are single pieces there; the
    # more text, the closer. A tokenizer learns no labels, and the defender holds the
    # training inputs anyway.
    bpe_corpus: Literal["all", "clean"] = "all"

    def __post_init__(self) -> None:
        if self.tokens not in TOKEN_STREAMS:
            raise UserError(
                f"killbadcode: tokens = {self.tokens!r} must be one of {TOKEN_STREAMS}"
            )
        if self.candidates not in CANDIDATES:
            raise UserError(
                f"killbadcode: candidates = {self.candidates!r} must be one of "
                f"{tuple(CANDIDATES)}"
            )
        if self.bpe_corpus not in BPE_CORPORA:
            raise UserError(
                f"killbadcode: bpe_corpus = {self.bpe_corpus!r} must be one of {BPE_CORPORA}"
            )
        if self.bpe_vocab_size < 1:
            raise UserError(f"killbadcode: bpe_vocab_size = {self.bpe_vocab_size} must be >= 1")
        if self.order < 1:
            raise UserError(f"killbadcode: order = {self.order} must be at least 1")
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
        corpus = clean if self.bpe_corpus == "clean" else [*train, *clean]
        tokenize = self.tokenizer([e.source for e in corpus])
        model = NGramModel.train([tokenize(e) for e in clean], order=self.order)
        tokens = [tokenize(e) for e in train]
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
            "token_stream": self.tokens,
            "candidate_rule": self.candidates,
        }
        return FilterDecision(keep, scores, details)

    def improvements(self, model: NGramModel, tokens: list[str]) -> dict[str, float]:
        """Per candidate token text, the drop in cross-entropy (clipped at 0) its deletion brings;
        a repeated text counts at its last occurrence, as in the released code, which also cuts
        each snippet to its first max_tokens tokens before scoring it at all."""
        scored = tokens[: self.max_tokens]
        full, deleted = model.deletion_entropies(scored, len(scored))
        candidate = CANDIDATES[self.candidates]
        found: dict[str, float] = {}
        for text, entropy in zip(scored, deleted, strict=True):
            if candidate.match(text):
                found[text] = max(full - entropy, 0.0)
        return found

    def tokenizer(self, corpus: Sequence[str]) -> Callable[[Example], list[str]]:
        """The function from an example to its token texts, for the chosen stream; the
        stand-in tokenizer learns from ``corpus``."""
        if self.tokens == "leaves":
            return lambda example: [unit.text for unit in units(example.source, example.lang)]
        pieces = sentencepiece_stand_in(corpus, self.bpe_vocab_size)
        return lambda example: pieces(example.source)


def sentencepiece_stand_in(texts: Sequence[str], vocab_size: int) -> Callable[[str], list[str]]:
    """A BPE tokenizer trained on ``texts`` with Llama's SentencePiece conventions (module
    docstring); returns the function from a text to its pieces."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend(MARKER), normalizers.Replace(" ", MARKER)]
    )
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(PIECE_BOUNDARIES), behavior="isolated")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<unk>"],
        # Printable ASCII is never unknown, as in CodeLlama's vocabulary; other characters
        # become <unk> where CodeLlama has byte pieces: neither passes the candidate filter.
        initial_alphabet=[chr(code) for code in range(33, 127)] + [MARKER, "\n", "\t"],
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer, length=len(texts))
    return lambda text: backend.encode(text).tokens if text else []


class NGramModel:
    """An interpolated modified Kneser-Ney n-gram model: the estimate KenLM's lmplz builds.

    Chen & Goodman's recursion, for a history h and h′ = h without its first token:
    P(w | h) = max(a(h w) − D(a(h w)), 0) / a(h ·) + γ(h) · P(w | h′), with
    γ(h) = (D1·N1(h ·) + D2·N2(h ·) + D3+·N3+(h ·)) / a(h ·), and P(w | h) = P(w | h′) for a
    history never seen. The adjusted count a is the raw count at the highest order and for
    n-grams that begin with the start marker, and elsewhere the number of distinct tokens seen
    right before the n-gram. Each order's discounts come from its counts of counts; where those
    cannot give valid ones (tiny data) they are lmplz's --discount_fallback values. The unigrams
    are interpolated with the uniform distribution over the vocabulary: the training types, the
    end marker and one slot for every unseen token. A sentence is scored from a single start
    marker, never itself predicted, through the end marker; log probabilities are base 10, as
    KenLM reports them.
    """

    def __init__(self, order: int, counts: list[dict[tuple[str, ...], int]]) -> None:
        self.order = order
        # counts[k - 1]: the adjusted count of every k-gram seen.
        self.counts = counts
        self.discounts = [kneser_ney_discounts(level) for level in counts]
        # Per order, per history h: a(h ·) and γ(h)·a(h ·).
        self.contexts: list[dict[tuple[str, ...], tuple[int, float]]] = []
        for level, discount in zip(counts, self.discounts, strict=True):
            sums: dict[tuple[str, ...], tuple[int, float]] = {}
            for gram, count in level.items():
                total, mass = sums.get(gram[:-1], (0, 0.0))
                sums[gram[:-1]] = (total + count, mass + discount[min(count, 3) - 1])
            self.contexts.append(sums)
        self.vocabulary = len(counts[0]) + 1
        self._cache: dict[tuple[tuple[str, ...], str], float] = {}

    @classmethod
    def train(cls, sequences: Sequence[Sequence[str]], *, order: int) -> NGramModel:
        raw: list[dict[tuple[str, ...], int]] = [{} for _ in range(order)]
        for tokens in sequences:
            padded = (BOS, *tokens, EOS)
            for start in range(len(padded)):
                for length in range(1, min(order, len(padded) - start) + 1):
                    gram = padded[start : start + length]
                    if gram != (BOS,):
                        raw[length - 1][gram] = raw[length - 1].get(gram, 0) + 1
        counts = [dict(level) for level in raw]
        for length in range(1, order):
            left: dict[tuple[str, ...], int] = {}
            for gram in raw[length]:
                left[gram[1:]] = left.get(gram[1:], 0) + 1
            for gram in counts[length - 1]:
                # Every occurrence of an n-gram that does not open the sentence has a token
                # before it, so it is the suffix of at least one longer n-gram.
                if gram[0] != BOS:
                    counts[length - 1][gram] = left[gram]
        return cls(order, counts)

    def log_prob(self, history: tuple[str, ...], word: str) -> float:
        """log10 P(word | history), with at most the last order − 1 tokens of history used."""
        history = history[max(len(history) - self.order + 1, 0) :]
        key = (history, word)
        if key not in self._cache:
            self._cache[key] = math.log10(self._prob(history, word))
        return self._cache[key]

    def _prob(self, history: tuple[str, ...], word: str) -> float:
        lower = self._prob(history[1:], word) if history else 1.0 / self.vocabulary
        context = self.contexts[len(history)].get(history)
        if context is None:
            return lower
        total, mass = context
        count = self.counts[len(history)].get((*history, word), 0)
        discount = self.discounts[len(history)][min(count, 3) - 1] if count else 0.0
        return (max(count - discount, 0.0) + mass * lower) / total

    def entropy(self, tokens: Sequence[str]) -> float:
        """Cross-entropy per token: −log10 P(tokens, end marker) / len(tokens), as the released
        code divides KenLM's sentence score by the token count."""
        return -sum(self._terms([BOS, *tokens, EOS])) / max(len(tokens), 1)

    def deletion_entropies(self, tokens: Sequence[str], first: int) -> tuple[float, list[float]]:
        """The entropy of ``tokens`` and, for each of the ``first`` tokens, that without it.

        Deleting a token changes only its own term and the n − 1 terms whose history held it,
        so each deletion costs O(n) look-ups instead of a rescoring of the whole sequence.
        """
        n = self.order
        padded = [BOS, *tokens, EOS]
        terms = self._terms(padded)  # terms[i - 1] predicts padded[i]
        total = sum(terms)
        full = -total / max(len(tokens), 1)
        remaining = max(len(tokens) - 1, 1)
        deleted = []
        for at in range(1, first + 1):
            last = min(at + n - 1, len(padded) - 1)
            changed = total - sum(terms[at - 1 : last])
            for i in range(at + 1, last + 1):
                history = (*padded[max(i - n, 0) : at], *padded[at + 1 : i])
                changed += self.log_prob(history, padded[i])
            deleted.append(-changed / remaining)
        return full, deleted

    def _terms(self, padded: list[str]) -> list[float]:
        """log10 P of each token after the start marker, given the n − 1 before it."""
        n = self.order
        return [
            self.log_prob(tuple(padded[max(i - n + 1, 0) : i]), padded[i])
            for i in range(1, len(padded))
        ]


# lmplz --discount_fallback: the discounts for adjusted counts 1, 2 and 3+ when the counts of
# counts cannot give them.
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


def kneser_ney_discounts(counts: dict[tuple[str, ...], int]) -> tuple[float, float, float]:
    """D1, D2, D3+ from the numbers n1..n4 of n-grams seen once to four times (Chen & Goodman):
    Y = n1 / (n1 + 2·n2), D_i = i − (i + 1)·Y·n_(i+1) / n_i."""
    seen = [0, 0, 0, 0]
    for count in counts.values():
        if count <= 4:
            seen[count - 1] += 1
    if min(seen) == 0:
        return FALLBACK_DISCOUNTS
    y = seen[0] / (seen[0] + 2 * seen[1])
    discounts = tuple(i - (i + 1) * y * seen[i] / seen[i - 1] for i in (1, 2, 3))
    # lmplz rejects discounts outside [0, i] for adjusted count i.
    if any(not 0.0 <= d <= i for i, d in zip((1, 2, 3), discounts, strict=True)):
        return FALLBACK_DISCOUNTS
    return discounts  # type: ignore[return-value]
