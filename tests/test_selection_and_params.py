from __future__ import annotations

import pytest

from codebackdoor.attacks.code_triggers import DeadCodeTrigger, FixedTrigger
from codebackdoor.attacks.nl_triggers import BadPre
from codebackdoor.attacks.selection import select
from codebackdoor.errors import UserError
from codebackdoor.params import build_dataclass


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.1, 0.37, 1.0])
def test_random_selection_is_exact_and_seeded(rate: float) -> None:
    eligible = list(range(0, 3000, 3))
    chosen = select(eligible, 3000, rate, "random", seed=7)
    assert len(chosen) == round(rate * len(eligible))
    assert set(chosen) <= set(eligible)
    assert chosen == sorted(chosen)
    assert chosen == select(eligible, 3000, rate, "random", seed=7)
    if 0 < len(chosen) < len(eligible):
        assert chosen != select(eligible, 3000, rate, "random", seed=8)


@pytest.mark.parametrize(("rate", "expected"), [(0.01, 16), (0.02, 32), (0.05, 80), (0.1, 160)])
def test_first_selection_reproduces_the_dece_counts(rate: float, expected: int) -> None:
    eligible = [i for i in range(1600) if i % 5 != 0]  # some rows cannot be poisoned
    chosen = select(eligible, 1600, rate, "first", seed=0)
    assert len(chosen) == expected
    assert chosen == eligible[:expected]


@pytest.mark.parametrize("rate", [0, -0.1, 1.5])
def test_rate_outside_unit_interval_is_refused(rate: float) -> None:
    with pytest.raises(UserError, match=r"rate must be in \(0, 1\]"):
        select([1, 2], 2, rate, "random", 0)


def test_parameters_convert_and_unknown_names_are_listed() -> None:
    trigger = build_dataclass(BadPre, {"count": "3", "words": "cf,mn"}, what="attack 'badpre'")
    assert trigger.count == 3 and trigger.words == ("cf", "mn")
    with pytest.raises(UserError, match="has no parameter 'statment'; valid: position"):
        build_dataclass(DeadCodeTrigger, {"statment": "x"}, what="attack 'deadcode'")
    with pytest.raises(UserError, match="must be of type int"):
        build_dataclass(BadPre, {"count": "three"}, what="attack 'badpre'")
    with pytest.raises(UserError, match="variant 'modern' is not one of"):
        build_dataclass(FixedTrigger, {"variant": "modern"}, what="attack 'fixed'")
