"""BKI, backdoor keyword identification: the trigger is the unit whose deletion moves the
poisoned model's representation most, consistently across many training examples.

Follows OpenBackdoor's BKIDefender (the implementation DeCE compares against): for every
training example and every unit, Δ = ‖r(x) − r(x without the unit)‖∞ on the victim trained on
the poisoned data, with r the last encoder layer at position 0 (``victims/plms.py``
``last_hidden_state[:, 0, :]``; DeCE's ``PLM.py`` ``hidden_states[-1][:, 0, :]``); the p units
of largest Δ per example are kept; a unit text seen f times in those lists with mean Δ m scores
m·log10(f); examples whose top-p list holds the top keyword are removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from codebackdoor.defenses.base import DefenseContext, FilterDecision, FilterDefense
from codebackdoor.defenses.units import GRANULARITIES, units, without
from codebackdoor.errors import UserError

if TYPE_CHECKING:
    from codebackdoor.examples import Example
    from codebackdoor.models.victim import Victim

MATCHES = ("top", "contains")


@dataclass
class BKI(FilterDefense):
    """Removes the examples that carry the keyword(s) whose deletion moves the victim most.

    With ``keywords = 1`` (OpenBackdoor, and DeCE's comparison) a multi-unit trigger such as
    ``if random() < 0: raise Exception("fail")`` loses only the examples where the one
    top-ranked unit made their top-p list; raise ``keywords`` for such triggers.
    """

    name = "bki"
    description = (
        "backdoor keyword identification: removes training examples holding the unit(s) whose "
        "deletion changes the poisoned victim's representation most"
    )
    citation = (
        "Chen, Dai. Mitigating backdoor attacks in LSTM-based text classification systems by "
        "Backdoor Keyword Identification. Neurocomputing 2021"
    )

    # Units kept per example (OpenBackdoor's 5).
    top_p: int = 5
    # Keywords whose examples are removed; OpenBackdoor removes one.
    keywords: int = 1
    # "top": an example goes when a keyword is among its own top-p units (OpenBackdoor);
    # "contains": when its text holds a keyword at all (the paper's wording).
    match: Literal["top", "contains"] = "top"
    granularity: Literal["token", "line"] = "token"
    # Only the first units of an example are deleted, which bounds the cost of long code at
    # max_units + 1 victim inputs per example; a victim truncating its inputs at 512 tokens
    # or fewer sees no change from deleting a unit beyond them anyway.
    max_units: int = 256
    # Inputs per victim.representations call: the variants of many examples go together, so
    # that the victim batches them by length; this bounds the memory the call holds.
    chunk_inputs: int = 8192
    # Rows per forward pass inside a call; None: the victim's evaluation batch size.
    batch_size: int | None = None
    # Where r(x) is read (Victim.representations). OpenBackdoor and DeCE read position 0 of
    # the last encoder layer ("first-token", the bki-openbackdoor preset); "mean" pools the
    # real tokens, so a unit's deletion moves r(x) wherever the unit sits.
    representation: Literal["mean", "first-token", "head-input"] = "mean"

    def __post_init__(self) -> None:
        self.check_representation(self.representation)
        for field_name in ("top_p", "keywords", "max_units", "chunk_inputs"):
            if getattr(self, field_name) < 1:
                raise UserError(f"bki: {field_name} = {getattr(self, field_name)} must be >= 1")
        if self.match not in MATCHES:
            raise UserError(f"bki: match = {self.match!r} must be one of {MATCHES}")
        if self.granularity not in GRANULARITIES:
            raise UserError(
                f"bki: granularity = {self.granularity!r} must be one of {GRANULARITIES}"
            )

    def filter(
        self, train: list[Example], victim: Victim | None, context: DefenseContext
    ) -> FilterDecision:
        if victim is None:
            raise ValueError("bki needs the victim trained on the poisoned data")
        pieces = [units(e.source, e.lang, self.granularity)[: self.max_units] for e in train]
        deltas = self.deltas(victim, [e.source for e in train], pieces)
        tops = [
            self.top_units(texts, delta)
            for texts, delta in zip(([u.text for u in p] for p in pieces), deltas, strict=True)
        ]
        ranking = keyword_scores(tops)
        chosen = [text for text, _ in ranking[: self.keywords]]
        keep, scores = [], []
        for example_units, top in zip(pieces, tops, strict=True):
            hits = [d for text, d in top if text in chosen]
            if self.match == "contains":
                present = any(u.text in chosen for u in example_units)
            else:
                present = bool(hits)
            keep.append(not present)
            scores.append(max(hits, default=0.0))
        details: dict[str, Any] = {
            "keywords": [{"text": t, "score": s} for t, s in ranking[: self.keywords]],
            "candidates": [{"text": t, "score": s} for t, s in ranking[:20]],
        }
        return FilterDecision(keep, scores, details)

    def deltas(self, victim: Any, sources: list[str], pieces: list[list[Any]]) -> list[list[float]]:
        """Δ per unit of every source: the L∞ change of its representation without the unit.

        Every source and all its variants go to the victim in large mixed calls, never one
        example at a time.
        """
        import numpy as np

        result: list[list[float]] = []
        start = 0
        while start < len(sources):
            # Whole examples per call, at least one even if it alone exceeds the chunk.
            stop, size = start, 0
            while stop < len(sources) and (
                stop == start or size + len(pieces[stop]) + 1 <= self.chunk_inputs
            ):
                size += len(pieces[stop]) + 1
                stop += 1
            inputs: list[str] = []
            for source, example_units in zip(sources[start:stop], pieces[start:stop], strict=True):
                inputs.append(source)
                inputs.extend(without(source, unit) for unit in example_units)
            vectors = victim.representations(inputs, self.batch_size, self.representation)
            offset = 0
            for example_units in pieces[start:stop]:
                full = vectors[offset]
                variants = vectors[offset + 1 : offset + 1 + len(example_units)]
                result.append(np.abs(variants - full).max(axis=1).tolist() if len(variants) else [])
                offset += 1 + len(example_units)
            start = stop
        return result

    def top_units(self, texts: list[str], delta: list[float]) -> list[tuple[str, float]]:
        """The ``top_p`` (text, Δ) of largest Δ, in OpenBackdoor's order: numpy's ascending
        argsort reversed, so that among equal Δ the order is the reverse of argsort's."""
        import numpy as np

        order = np.argsort(np.asarray(delta, dtype=np.float64))[::-1][: self.top_p]
        return [(texts[i], delta[i]) for i in order.tolist()]


def keyword_scores(tops: list[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    """Unit texts ranked by mean Δ × log10(times in a top-p list), best first (OpenBackdoor).

    A text seen once scores 0: a keyword must recur. Ties keep first-seen order.
    """
    count: dict[str, int] = {}
    total: dict[str, float] = {}
    for top in tops:
        for text, delta in top:
            count[text] = count.get(text, 0) + 1
            total[text] = total.get(text, 0.0) + delta
    scored = [(text, total[text] / count[text] * math.log10(count[text])) for text in count]
    return sorted(scored, key=lambda item: -item[1])
