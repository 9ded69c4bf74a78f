"""Leaderboard rows as a table (text, Markdown, CSV) or JSON: filters, sorting, formatting.

Every statistic reads ``mean ± std [low, high]`` over seeds, the bracket being the 95%
t-interval of the mean (absent for a single seed)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.leaderboard.rows import attack_method, defense_method
from codebackdoor.stats import t_interval

FORMATS = ("table", "markdown", "csv", "json")
SORTS = ("asr", "clean")


def stat(row: dict[str, Any], metric: str) -> dict[str, Any] | None:
    return row["metrics"].get(metric)


def clean_metric(row: dict[str, Any]) -> dict[str, Any] | None:
    return stat(row, f"clean.{row['primary']}") if row["primary"] else None


def trivial_metric(row: dict[str, Any]) -> dict[str, Any] | None:
    """The primary metric of the task's trivial baseline on the same test set (the input copied
    for code to code, the most frequent training target otherwise): a clean number at or below
    it means the task was not learned."""
    return stat(row, f"trivial_baseline.{row['primary']}") if row["primary"] else None


def seed_interval(entry: dict[str, Any] | None) -> tuple[float, float] | None:
    """The 95% t-interval over seeds of a row statistic; rows built before intervals were
    stored get it from their mean, std and n (the same formula)."""
    if entry is None:
        return None
    if "ci95" in entry:
        return None if entry["ci95"] is None else (entry["ci95"][0], entry["ci95"][1])
    return t_interval(entry["mean"], entry["std"], entry["n"])


def mean_std(entry: dict[str, Any] | None) -> str:
    """``mean ± std [low, high]``: the interval is the 95% t-interval over seeds (none for one
    seed)."""
    if entry is None:
        return "–"
    if entry["std"] is None:
        return f"{entry['mean']:.2f}"
    text = f"{entry['mean']:.2f} ± {entry['std']:.2f}"
    interval = seed_interval(entry)
    return text if interval is None else f"{text} [{interval[0]:.1f}, {interval[1]:.1f}]"


def rate_text(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:g}%"


def select(rows: Sequence[dict[str, Any]], *, task: str | None = None,
           attack: str | None = None, defense: str | None = None) -> list[dict[str, Any]]:
    return [row for row in rows if task in (None, row["task"])
            and attack in (None, row["attack"], attack_method(row))
            and defense in (None, row["defense"], defense_method(row))]


def order(rows: Sequence[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    """Best first: lowest ASR, or highest clean metric; rows without the number go last."""
    if sort is None:
        return list(rows)
    if sort not in SORTS:
        raise UserError(f"unknown sort '{sort}'; choose one of {', '.join(SORTS)}")
    sign = 1 if sort == "asr" else -1

    def key(row: dict[str, Any]) -> tuple[bool, float]:
        entry = stat(row, "asr") if sort == "asr" else clean_metric(row)
        return (entry is None, sign * entry["mean"] if entry else 0.0)

    return sorted(rows, key=key)


HEADERS = ("task", "lang", "dataset", "model", "attack", "rate", "defense", "metric", "clean",
           "trivial", "ASR %", "false triggers %", "detection recall %", "detection precision %",
           "n")


def row_statistics(row: dict[str, Any]) -> list[dict[str, Any] | None]:
    """The statistics shown for a row: clean metric, its trivial baseline, ASR, false triggers,
    and a filter defense's detection recall and precision (None where a row has no such
    number)."""
    return [clean_metric(row), trivial_metric(row), stat(row, "asr"),
            stat(row, "false_trigger_rate"), stat(row, "detection.recall"),
            stat(row, "detection.precision")]


def display_cells(row: dict[str, Any]) -> list[str]:
    clean, trivial, *others = row_statistics(row)
    # A trivial baseline that every seed shares (the same test set) is one number.
    baseline = (f"{trivial['mean']:.2f}" if trivial is not None and not trivial["std"]
                else mean_std(trivial))
    return [row["task"], row["lang"] or "–", row["dataset"], row["model"], row["attack"],
            rate_text(row["rate"]), row["defense"], row["primary"] or "–", mean_std(clean),
            baseline, *(mean_std(entry) for entry in others), str(row["n"])]


CSV_STATISTICS = ("clean", "trivial", "asr", "false_trigger", "detection_recall",
                  "detection_precision")
CSV_HEADERS = ("key", "task", "lang", "dataset", "model", "attack", "rate", "defense", "metric",
               *(f"{name}_{part}" for name in CSV_STATISTICS
                 for part in ("mean", "std", "ci95_low", "ci95_high")), "n")


def csv_cells(row: dict[str, Any]) -> list[Any]:
    numbers: list[Any] = []
    for entry in row_statistics(row):
        interval = seed_interval(entry) or (None, None)
        numbers += [entry["mean"], entry["std"], *interval] if entry else [None] * 4
    return [row["key"], row["task"], row["lang"], row["dataset"], row["model"], row["attack"],
            row["rate"], row["defense"], row["primary"], *numbers, row["n"]]


def render(headers: Sequence[str], cells: Sequence[Sequence[Any]], fmt: str) -> str:
    """A table in ``fmt`` (table, markdown or csv); ``None`` becomes an empty CSV field."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(["" if c is None else c for c in line] for line in cells)
        return buffer.getvalue().rstrip("\n")
    from tabulate import tabulate

    return tabulate(cells, headers=headers, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True)


# What a run cost (codebackdoor/cost.py), shown with --cost: totals over the run's stages.
COST = (("trainings", "cost.trainings"), ("inputs run", "cost.inference_inputs"),
        ("CPU s", "cost.cpu_s"), ("wall s", "cost.wall_s"))


def cost_cells(row: dict[str, Any], fmt: str) -> list[Any]:
    entries = [stat(row, name) for _, name in COST]
    if fmt == "csv":
        return [value for entry in entries
                for value in ((entry["mean"], entry["std"]) if entry else (None, None))]
    return [mean_std(entry) for entry in entries]


def show(rows: Sequence[dict[str, Any]], fmt: str, *, cost: bool = False) -> str:
    """The rows in ``fmt``; ``cost`` adds what each row's runs cost beside their effect."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2, sort_keys=True, ensure_ascii=False)
    if fmt == "csv":
        headers = [*CSV_HEADERS, *(f"{name.split('.')[1]}_{part}" for _, name in COST
                                   for part in ("mean", "std"))] if cost else CSV_HEADERS
        return render(headers, [csv_cells(row) + (cost_cells(row, fmt) if cost else [])
                                for row in rows], fmt)
    headers = [*HEADERS, *(title for title, _ in COST)] if cost else HEADERS
    return render(headers, [display_cells(row) + (cost_cells(row, fmt) if cost else [])
                            for row in rows], fmt)
