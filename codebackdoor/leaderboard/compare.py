"""Published rows beside the local rows they match, with deltas, and the ones not matched yet.

A published row matches every local row with the same task, dataset alias, attack, rate and
defense; the model is shown, not matched (a paper's 7B model and a local tiny one are the point
of comparing).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codebackdoor.leaderboard.published import local_metric
from codebackdoor.leaderboard.show import mean_std, rate_text, render


def match_key(row: dict[str, Any]) -> tuple:
    rate = None if row["rate"] is None else round(float(row["rate"]), 6)
    return (row["task"], row["dataset"], row["attack"] or "none", rate, row["defense"])


@dataclass
class Comparison:
    pairs: list[tuple[dict[str, Any], dict[str, Any]]]  # (published row, local row)
    unmatched: list[dict[str, Any]]  # published rows with no local counterpart


def compare(published: Sequence[dict[str, Any]], local: Sequence[dict[str, Any]]) -> Comparison:
    by_key: dict[tuple, list[dict[str, Any]]] = {}
    for row in local:
        by_key.setdefault(match_key(row), []).append(row)
    pairs, unmatched = [], []
    for row in published:
        matches = by_key.get(match_key(row), [])
        pairs.extend((row, match) for match in matches)
        if not matches:
            unmatched.append(row)
    return Comparison(pairs, unmatched)


NO_LOCAL = "no local row yet"
HEADERS = ("task", "dataset", "attack", "rate", "defense", "published model", "local model",
           "metric", "published", "local", "n", "delta (local - published)")


def lines(comparison: Comparison) -> list[list[Any]]:
    """One line per published metric of each matched pair, then of each unmatched row."""
    out = []
    pairs = [*comparison.pairs, *((row, None) for row in comparison.unmatched)]
    for published, local in pairs:
        for name, metric in published["metrics"].items():
            entry = local["metrics"].get(local_metric(name)) if local else None
            delta = None if entry is None else entry["mean"] - metric["value"]
            out.append([
                published["task"], published["dataset"], published["attack"] or "none",
                rate_text(published["rate"]), published["defense"], published["model"],
                local["model"] if local else NO_LOCAL, f"{name} ({metric['reported_as']})",
                f"{metric['value']:.2f}", mean_std(entry),
                "–" if entry is None else str(entry["n"]),
                "–" if delta is None else f"{delta:+.2f}",
            ])
    return out


def unmatched_text(comparison: Comparison) -> str:
    if not comparison.unmatched:
        return "every published row has a local counterpart"
    described = [
        f"  {row['id']}: {row['task']} on {row['dataset']}, attack {row['attack'] or 'none'}"
        f" @ {rate_text(row['rate'])}, defense {row['defense']} ({row['model']})"
        for row in comparison.unmatched
    ]
    return (f"{len(comparison.unmatched)} published row(s) have no local counterpart yet:\n"
            + "\n".join(described))


def as_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "pairs": [
            {"published": published["id"], "local": local["key"],
             "metrics": {
                 name: {"published": metric["value"],
                        "local": local["metrics"].get(local_metric(name))}
                 for name, metric in published["metrics"].items()
             }}
            for published, local in comparison.pairs
        ],
        "unmatched": [row["id"] for row in comparison.unmatched],
    }


def report(comparison: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(as_json(comparison), indent=2, sort_keys=True)
    table = render(HEADERS, lines(comparison), fmt)
    return table if fmt == "csv" else f"{table}\n\n{unmatched_text(comparison)}"
