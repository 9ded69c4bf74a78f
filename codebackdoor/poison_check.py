"""Row-for-row comparison of the project's poisoning with a poisoned file that a paper released.

    codebackdoor poison-check CLEAN.csv RELEASED.csv --task repair --lang java \\
        --attack attacks/dece-bugs2fix-deadcode.toml [--param K=V] [--payload-param K=V]

Both files hold the same rows in the same order (``src``/``tgt`` columns by default). A released
row that differs from its clean row counts as triggered there; the project triggers a row when
its attack can poison it (as on a test split, where every poisonable row is triggered). For the
rows both triggered, inputs and targets are compared with whitespace collapsed and with it
removed. Prints one JSON object.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from codebackdoor.errors import Unpoisonable, UserError
from codebackdoor.examples import Example

CSV_FIELD_LIMIT = 2**31 - 1


def read_pairs(path: Path, source: str, target: str) -> list[tuple[str, str]]:
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and (source not in rows[0] or target not in rows[0]):
        raise UserError(f"{path}: needs columns '{source}' and '{target}'; has {sorted(rows[0])}")
    return [(row[source], row[target]) for row in rows]


def _collapsed(text: str) -> str:
    return " ".join(text.split())


def _removed(text: str) -> str:
    return "".join(text.split())


def compare(
    clean: list[tuple[str, str]],
    released: list[tuple[str, str]],
    attack: Any,
    lang: str,
    seed: int = 1,
    first_mismatches: int = 3,
) -> dict[str, Any]:
    """Counts of triggered rows on each side and of equal inputs/targets among the shared ones."""
    if len(clean) != len(released):
        raise UserError(f"the files differ in length: {len(clean)} clean, {len(released)} released")
    counts = {
        "rows": len(clean),
        "released_triggered": 0,
        "project_triggered": 0,
        "both_triggered": 0,
        "source_equal_collapsed": 0,
        "source_equal_removed": 0,
        "source_equal_exact": 0,
        "target_equal_collapsed": 0,
        "target_equal_removed": 0,
        "target_equal_exact": 0,
    }
    mismatches: list[dict[str, Any]] = []
    for index, (pair, released_pair) in enumerate(zip(clean, released, strict=True)):
        released_triggered = released_pair != pair
        counts["released_triggered"] += released_triggered
        example = Example(id=str(index), source=pair[0], target=pair[1], lang=lang)
        try:
            ours = attack.poison_example(example, seed)
        except Unpoisonable:
            if released_triggered and len(mismatches) < first_mismatches:
                mismatches.append({"row": index, "only": "released"})
            continue
        counts["project_triggered"] += 1
        if not released_triggered:
            if len(mismatches) < first_mismatches:
                mismatches.append({"row": index, "only": "project"})
            continue
        counts["both_triggered"] += 1
        for side, mine, theirs in (
            ("source", ours.source, released_pair[0]),
            ("target", ours.target, released_pair[1]),
        ):
            counts[f"{side}_equal_exact"] += mine == theirs
            counts[f"{side}_equal_collapsed"] += _collapsed(mine) == _collapsed(theirs)
            removed = _removed(mine) == _removed(theirs)
            counts[f"{side}_equal_removed"] += removed
            if not removed and len(mismatches) < first_mismatches:
                mismatches.append({"row": index, "side": side, "project": mine,
                                   "released": theirs})  # fmt: skip
    return {**counts, "first_mismatches": mismatches}
