"""Published rows beside the local rows of the same setting, with what differs, and the
published rows that have no local counterpart.

A published row matches the local rows with the same task, attack and defense; of those, the
ones in its language where there are any, and of those, the ones at the poisoning rate nearest
to its own. A clean reference row (no attack) measures how well a model learns the data, so it
matches only local rows in its language; a poisoned row measures an attack and a defense, which
the offline mirrors reproduce on other data, so it falls back to the other languages. Model,
data, language and rate are shown, not matched: a paper's CodeBERT on Devign (C) against a local
tiny model on the embedded Python corpus is the comparison the mirrors make, with the
differences printed beside every pair. A metric is compared number to number only where the
published metric names the local metric computed the same way
(``codebackdoor.leaderboard.published.comparable``); otherwise it is shown alone, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codebackdoor.leaderboard.published import comparable
from codebackdoor.leaderboard.rows import attack_method, defense_method, model_name
from codebackdoor.leaderboard.show import mean_std, rate_text, render


def same_setting(published: dict[str, Any], local: dict[str, Any]) -> bool:
    return (published["task"] == local["task"]
            and (published["attack"] or "none") == attack_method(local)
            and published["defense"] == defense_method(local))


def counterparts(published: dict[str, Any],
                 local: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The local rows a published row is compared with (rule in the module docstring)."""
    found = [row for row in local if same_setting(published, row)]
    same_lang = [row for row in found if published["lang"] in (None, row["lang"])]
    found = same_lang if same_lang or published["attack"] is None else found
    if published["rate"] is None or not found:
        return found
    distance = {id(row): abs((row["rate"] or 0.0) - published["rate"]) for row in found}
    nearest = min(distance.values())
    return [row for row in found if distance[id(row)] <= nearest + 1e-12]


def setting_differences(published: dict[str, Any], local: dict[str, Any]) -> list[str]:
    """What differs between a published row and a matched local row besides the numbers."""
    out = []
    if published["model"] != model_name(local):
        out.append(f"model {published['model']} vs {local['model']}")
    if published["dataset"] != local["dataset"]:
        out.append(f"data {published['dataset']} vs {local['dataset']}")
    if published["lang"] not in (None, local["lang"]):
        out.append(f"language {published['lang']} vs {local['lang']}")
    rates = (published["rate"], local["rate"])
    if rates[0] is not None and rates[1] is not None and round(rates[0], 6) != round(rates[1], 6):
        out.append(f"rate {rate_text(rates[0])} vs {rate_text(rates[1])}")
    if published.get("rate_definition"):
        out.append("rate counted differently (published rate_definition)")
    return out


@dataclass
class Comparison:
    pairs: list[tuple[dict[str, Any], dict[str, Any]]]  # (published row, local row)
    unmatched: list[dict[str, Any]]  # published rows with no local counterpart


def compare(published: Sequence[dict[str, Any]], local: Sequence[dict[str, Any]]) -> Comparison:
    pairs, unmatched = [], []
    for row in published:
        found = counterparts(row, local)
        pairs.extend((row, match) for match in found)
        if not found:
            unmatched.append(row)
    return Comparison(pairs, unmatched)


NO_LOCAL = "no local row yet"
HEADERS = ("task", "lang", "attack", "rate", "defense", "published model", "local model",
           "metric", "published", "local", "n", "delta (local - published)",
           "setting differences")


def lines(comparison: Comparison) -> list[list[Any]]:
    """One line per published metric of each matched pair; a metric the suite computes
    differently shows the reason in place of a local number and a delta."""
    out = []
    for published, local in comparison.pairs:
        differences = "; ".join(setting_differences(published, local)) or "none"
        for name, metric in published["metrics"].items():
            entry, why = comparable(metric, local)
            delta = None if entry is None else entry["mean"] - metric["value"]
            out.append([
                published["task"], published["lang"] or "–", published["attack"] or "none",
                rate_text(published["rate"]), published["defense"], published["model"],
                local["model"], f"{name} ({metric['reported_as']})", f"{metric['value']:g}",
                mean_std(entry) if entry else f"– ({why})",
                "–" if entry is None else str(entry["n"]),
                "–" if delta is None else f"{delta:+.2f}", differences,
            ])
    return out


def unmatched_text(comparison: Comparison) -> str:
    if not comparison.unmatched:
        return "every published row has a local counterpart"
    unrunnable = sum("unrunnable" in row for row in comparison.unmatched)
    described = [
        f"  {row['id']}: {row['task']} ({row['lang'] or '–'}) on {row['dataset']}, attack "
        f"{row['attack'] or 'none'} @ {rate_text(row['rate'])}, defense {row['defense']} "
        f"({row['model']})" + (f"; the suite cannot run it: {row['unrunnable']}"
                               if "unrunnable" in row else "")
        for row in comparison.unmatched
    ]
    return (f"{len(comparison.unmatched)} published row(s) have no local counterpart yet "
            f"({unrunnable} of them in settings the suite cannot run):\n" + "\n".join(described))


def as_json(comparison: Comparison) -> dict[str, Any]:
    def metric_json(metric: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
        entry, why = comparable(metric, local)
        return {"published": metric["value"], "local": entry,
                "compared_as" if entry else "not_compared": why}

    return {
        "pairs": [
            {"published": published["id"], "local": local["key"],
             "differences": setting_differences(published, local),
             "metrics": {name: metric_json(metric, local)
                         for name, metric in published["metrics"].items()}}
            for published, local in comparison.pairs
        ],
        "unmatched": [row["id"] for row in comparison.unmatched],
    }


def report(comparison: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(as_json(comparison), indent=2, sort_keys=True)
    table = render(HEADERS, lines(comparison), fmt)
    return table if fmt == "csv" else f"{table}\n\n{unmatched_text(comparison)}"
