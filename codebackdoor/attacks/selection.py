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
    ``append``: Ramakrishnan & Albarghouthi's rule (``create_backdoor.py``): every row draws once,
    in file order, and with probability rate / (1 − rate) an eligible row gets a poisoned copy
    appended after it (the clean row stays), so that about ``rate`` of the enlarged training set
    is poisoned; a drawn row that cannot be poisoned gets none.
    """
    check_rate(rate)
    if rule == "append":
        if rate > 0.5:
            raise UserError(f"selection 'append' needs a rate of at most 0.5 (rate / (1 - rate) "
                            f"is a probability), got {rate}")
        probability = rate / (1 - rate)
        draws = random.Random(seed)
        wanted = set(eligible)
        return [index for index in range(total)
                if draws.random() < probability and index in wanted]
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
    raise UserError(f"selection '{rule}' is not one of: random, first, append")
