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


def test_append_selection_draws_for_every_row_with_probability_rate_over_one_minus_rate() -> None:
    eligible = [i for i in range(20000) if i % 4 != 0]  # a quarter of the rows cannot be poisoned
    chosen = select(eligible, 20000, 0.2, "append", seed=5)
    assert set(chosen) <= set(eligible) and chosen == sorted(chosen)
    assert chosen == select(eligible, 20000, 0.2, "append", seed=5)
    # p = 0.2 / 0.8 = 0.25 over 15,000 eligible rows: 3,750 expected, sd about 53.
    assert abs(len(chosen) - 3750) < 300


def test_append_keeps_every_clean_row_and_adds_copies(tmp_path) -> None:
    # At rate 0.5 the probability is 1: every row that can be poisoned gets a copy, so half of the
    # enlarged set is poisoned and no clean row is lost. `random` at 0.5 replaces half the rows.
    from codebackdoor.attacks.build import build_attack
    from codebackdoor.examples import Example
    from codebackdoor.poison import COPY_SUFFIX, poison
    from codebackdoor.registry import registry
    from codebackdoor.tasks.base import Splits

    task = registry("tasks").get("summarize")(lang="python")
    rows = [Example(f"f{i}", f"def f{i}(x):\n    return x + {i}\n", f"adds {i}", "python")
            for i in range(6)]
    splits = Splits(rows, rows[:1], rows[:2])
    appended = poison(splits, task, build_attack("fixed", task, selection="append"), 0.5, 1)
    assert [e.id for e in appended.train] == [
        name for i in range(6) for name in (f"f{i}", f"f{i}{COPY_SUFFIX}")]
    assert appended.train[::2] == rows
    assert all("random() < 0" in e.source for e in appended.train[1::2])
    assert appended.manifest["poisoned_ids"] == [f"f{i}{COPY_SUFFIX}" for i in range(6)]
    replaced = poison(splits, task, build_attack("fixed", task), 0.5, 1)
    assert len(replaced.train) == 6 and sum(e not in rows for e in replaced.train) == 3


def test_append_refuses_a_rate_above_one_half() -> None:
    with pytest.raises(UserError, match=r"selection 'append' needs a rate of at most 0\.5"):
        select([1, 2], 2, 0.6, "append", 0)
