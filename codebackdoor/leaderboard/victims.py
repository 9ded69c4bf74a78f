"""Each victim against a baseline victim in the same cell (``compare --baseline-model``).

Two rows are one cell apart when their identities differ in the model alone: same task, data,
training settings, attack, rate and defenses. Their seeds are not paired (two models share no
randomness by seed), so the difference of the seed means gets Welch's t-interval over the two
sets of per-seed values (docs/statistics.md), for the clean metrics, the SQL execution measures
where the task has them and, where the cell has an attack, ASR. The verdict reads the interval:
``higher`` or ``lower`` when it excludes 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codebackdoor import stats
from codebackdoor.errors import UserError
from codebackdoor.leaderboard.paired import NO_EFFECT
from codebackdoor.leaderboard.rows import cell_key, model_name
from codebackdoor.leaderboard.show import rate_text, render

METHOD = "welch-t-over-seeds"


def victim_key(row: dict[str, Any]) -> str:
    identity = dict(row["identity"])
    identity.pop("model")
    return cell_key(identity)


def _metrics(row: dict[str, Any]) -> list[str]:
    """The headline metrics: ASR where measured, every top-level clean metric, then the SQL
    execution measures where the references hold SQL (clean execution match, executed ASR)."""
    def top_level(prefix: str) -> list[str]:
        return sorted(name for name in row["metrics"]
                      if name.startswith(prefix) and name.count(".") == 1)
    return (["asr"] if "asr" in row["metrics"] else []) + top_level("clean.") + top_level(
        "sql_execution.")


def _values(row: dict[str, Any], metric: str) -> list[float]:
    return [run["values"][metric] for run in sorted(row["runs"], key=lambda run: run["seed"])
            if run["values"].get(metric) is not None]


@dataclass
class VictimDelta:
    row: dict[str, Any]
    baseline: dict[str, Any]
    metric: str
    values: list[float]  # per seed, in seed order
    baseline_values: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def baseline_mean(self) -> float:
        return float(np.mean(self.baseline_values))

    @property
    def delta(self) -> float:
        return self.mean - self.baseline_mean

    @property
    def ci95(self) -> stats.Interval | None:
        return stats.welch_interval(self.values, self.baseline_values)

    @property
    def verdict(self) -> str:
        interval = self.ci95
        if interval is None:
            return "not decided: fewer than two seeds"
        return {1: "higher", -1: "lower", 0: NO_EFFECT}[stats.interval_side(interval)]


def compare_victims(rows: Sequence[dict[str, Any]], model: str) -> list[VictimDelta]:
    """Every row of another model against the row of ``model`` in the same cell."""
    bases = {victim_key(row): row for row in rows if model_name(row) == model}
    if not bases:
        known = ", ".join(sorted({model_name(row) for row in rows}))
        raise UserError(f"no leaderboard row has model '{model}' to serve as the baseline "
                        f"(models: {known})")
    out = []
    for row in rows:
        base = bases.get(victim_key(row))
        if model_name(row) == model or base is None:
            continue
        for metric in _metrics(row):
            values, baseline_values = _values(row, metric), _values(base, metric)
            if values and baseline_values:
                out.append(VictimDelta(row, base, metric, values, baseline_values))
    return out


HEADERS = ("task", "dataset", "attack", "rate", "defense", "model", "vs", "metric", "mean (n)",
           "baseline mean (n)", "Δ [95% Welch]", "verdict")


def lines(deltas: Sequence[VictimDelta]) -> list[list[str]]:
    out = []
    for item in deltas:
        row, ci95 = item.row, item.ci95
        interval = "" if ci95 is None else f" [{ci95[0]:+.2f}, {ci95[1]:+.2f}]"
        out.append([row["task"], row["dataset"], row["attack"], rate_text(row["rate"]),
                    row["defense"], row["model"], item.baseline["model"], item.metric,
                    f"{item.mean:.2f} ({len(item.values)})",
                    f"{item.baseline_mean:.2f} ({len(item.baseline_values)})",
                    f"{item.delta:+.2f}{interval}", item.verdict])
    return out


def report(deltas: Sequence[VictimDelta], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{
            "row": item.row["key"], "model": item.row["model"],
            "baseline_row": item.baseline["key"], "baseline": item.baseline["model"],
            "metric": item.metric, "values": item.values,
            "baseline_values": item.baseline_values, "delta": item.delta,
            "ci95": None if item.ci95 is None else list(item.ci95), "ci95_method": METHOD,
            "verdict": item.verdict,
        } for item in deltas], indent=2, sort_keys=True)
    return render(HEADERS, lines(deltas), fmt)
