"""Which eligible training rows get poisoned."""

from __future__ import annotations

import random

from codebackdoor.config import check_rate
from codebackdoor.errors import UserError


def select(eligible: list[int], total: int, rate: float, rule: str, seed: int) -> list[int]:
    """Row indices to poison, in file order.

    ``random``: exactly round(rate × eligible) rows, sampled with a generator seeded by ``seed``.
    ``first``: the DeCE scripts' rule: walk the rows in file order and poison each eligible row
    while fewer than rate × total rows are poisoned (total counts every row, eligible or not).
    """
    check_rate(rate)
    if rule == "random":
        count = round(rate * len(eligible))
        return sorted(random.Random(seed).sample(eligible, count))
    if rule == "first":
        chosen: list[int] = []
        for index in eligible:
            if not len(chosen) < rate * total:
                break
            chosen.append(index)
        return chosen
    raise UserError(f"selection '{rule}' is not one of: random, first")
