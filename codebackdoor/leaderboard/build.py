"""Merge result files into the leaderboard file, safely when several processes build at once.

Result files are read and validated before the lock is taken (the slow part); under an
exclusive lock on ``<leaderboard>.lock`` the current leaderboard is read, merged with the new
runs, and replaced by an atomic rename. A file that is not valid JSON or fails the result
schema is reported by path and skipped, never merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.io import atomic_write_json, read_json
from codebackdoor.leaderboard.rows import RunRecord, merge, records_of_row
from codebackdoor.locks import exclusive
from codebackdoor.results import read_result

LEADERBOARD_VERSION = 1
RESULT_FILE = "result.json"


@dataclass
class BuildReport:
    path: Path
    read: int = 0
    rows: int = 0
    runs: int = 0
    skipped: list[str] = field(default_factory=list)  # one line per skipped file


def result_files(paths: Sequence[Path]) -> list[Path]:
    """The result files named directly, or found anywhere under the directories given."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(path.rglob(RESULT_FILE)))
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"no such result file or directory: {path}")
    if not files:
        raise UserError("no result.json found under " + ", ".join(map(str, paths)))
    return files


def read_records(files: Sequence[Path]) -> tuple[list[RunRecord], list[str]]:
    records, skipped = [], []
    for path in files:
        try:
            records.append(RunRecord.from_result(read_result(path), str(path)))
        except UserError as exc:  # its message starts with the path
            skipped.append(str(exc))
    return records, skipped


def load_leaderboard(path: Path) -> dict[str, Any]:
    """The leaderboard file, or an empty one when it does not exist yet."""
    path = Path(path)
    if not path.exists():
        return {"schema_version": LEADERBOARD_VERSION, "rows": []}
    board = read_json(path, "leaderboard")
    if not (isinstance(board, dict) and board.get("schema_version") == LEADERBOARD_VERSION
            and isinstance(board.get("rows"), list)):
        raise UserError(f"{path}: not a leaderboard file (schema_version {LEADERBOARD_VERSION} "
                        "with a list of rows expected)")
    return board


def board_records(board: dict[str, Any], path: Path) -> list[RunRecord]:
    records = []
    for index, row in enumerate(board["rows"]):
        try:
            records.extend(records_of_row(row))
        except (KeyError, TypeError) as exc:
            raise UserError(f"{path}: rows/{index} is not a leaderboard row ({exc!r} missing "
                            "or malformed); rebuild it from the result files") from exc
    return records


def locked(path: Path) -> AbstractContextManager[None]:
    """The exclusive lock on ``<path>.lock``, waited for: other builders (cluster shards on a
    shared file system too) merge one after another."""
    return exclusive(path.with_name(path.name + ".lock"))


def build(paths: Sequence[Path], out: Path) -> BuildReport:
    """Merge the results under ``paths`` into the leaderboard at ``out``; idempotent."""
    out = Path(out)
    records, skipped = read_records(result_files(paths))
    report = BuildReport(out, read=len(records), skipped=skipped)
    with locked(out):
        board = load_leaderboard(out)
        existing = board_records(board, out)
        rows = merge([*existing, *records])
        atomic_write_json(out, {"schema_version": LEADERBOARD_VERSION, "rows": rows})
    report.rows = len(rows)
    report.runs = sum(row["n"] for row in rows)
    return report
