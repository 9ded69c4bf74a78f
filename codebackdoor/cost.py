"""What a run cost, stage by stage: wall and CPU seconds, model trainings, inputs run through a
model (issue 23 §4). A defense's cost is the difference to the plain-training run of the same
cell: ``leaderboard show --cost`` puts the totals beside the effect.

The runner opens one ``Meter`` per run and enters a stage around each step; a stage entered
inside another (the filter's own victim training inside the filter) is measured on its own,
and the outer stage's time excludes it. Models report their work with ``count``, which goes to
the innermost open stage of the meter in use (none: not counted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

TRAININGS = "trainings"  # model trainings (fit calls), the victim's and a defense's own models
INFERENCE_INPUTS = "inference_inputs"  # inputs run through a model outside training

_ACTIVE: ContextVar[Meter | None] = ContextVar("codebackdoor_meter", default=None)


class Meter:
    """Per stage: exclusive wall seconds, exclusive CPU seconds (this process, all threads) and
    the counts reported while it was the innermost stage."""

    def __init__(self, on_stage: Callable[[str], None] | None = None) -> None:
        """``on_stage(name)`` is told when a stage starts (progress on a terminal)."""
        self.on_stage = on_stage
        self.stages: dict[str, dict[str, float]] = {}
        self._open: list[str] = []
        self._since = (0.0, 0.0)

    def _entry(self, name: str) -> dict[str, float]:
        return self.stages.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, TRAININGS: 0,
                                             INFERENCE_INPUTS: 0})

    def _charge(self) -> None:
        """Add the time since the last switch to the innermost open stage."""
        now = (time.perf_counter(), time.process_time())
        if self._open:
            entry = self._entry(self._open[-1])
            entry["wall_s"] += now[0] - self._since[0]
            entry["cpu_s"] += now[1] - self._since[1]
        self._since = now

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Measure the ``name`` stage while the block runs (and make this the meter in use)."""
        self._charge()
        self._open.append(name)
        self._entry(name)
        if self.on_stage is not None:
            self.on_stage(name)
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)
            self._charge()
            self._open.pop()

    def count(self, kind: str, amount: int) -> None:
        if self._open:
            self._entry(self._open[-1])[kind] += amount

    @property
    def seconds(self) -> dict[str, float]:
        """Wall seconds per stage, rounded to the millisecond (the result's ``timings``)."""
        return {name: round(entry["wall_s"], 3) for name, entry in self.stages.items()}

    def summary(self) -> dict[str, Any]:
        """The result's ``cost``: per stage, and the totals over the stages."""
        stages = {name: {key: round(value, 3) if key.endswith("_s") else int(value)
                         for key, value in entry.items()}
                  for name, entry in self.stages.items()}
        totals = {key: sum(entry[key] for entry in stages.values())
                  for key in ("wall_s", "cpu_s", TRAININGS, INFERENCE_INPUTS)}
        return {"stages": stages,
                **{key: round(value, 3) if key.endswith("_s") else value
                   for key, value in totals.items()}}


@contextmanager
def stage(name: str) -> Iterator[None]:
    """A nested stage of the meter in use; nothing when no meter is open."""
    meter = _ACTIVE.get()
    if meter is None:
        yield
        return
    with meter(name):
        yield


def count(kind: str, amount: int = 1) -> None:
    """Report work to the innermost stage of the meter in use (nothing when none is open)."""
    meter = _ACTIVE.get()
    if meter is not None:
        meter.count(kind, amount)
