"""Published reference numbers (``leaderboard/published.json``), validated by their own schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.io import read_json
from codebackdoor.results import validation_errors

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "published.schema.json"
# Published metric keys are this project's names; these two live outside ``metrics.clean``.
RATIO_METRICS = ("asr", "false_trigger_rate")


@cache
def published_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def published_errors(document: Any) -> list[str]:
    """Each problem as 'field: message', the field as a /-separated path."""
    problems = validation_errors(document, published_schema())
    if not problems:
        ids = [row["id"] for row in document["rows"]]
        problems = [f"rows/{i}/id: '{row_id}' is used by an earlier row"
                    for i, row_id in enumerate(ids) if row_id in ids[:i]]
    return problems


def read_published(path: Path) -> list[dict[str, Any]]:
    """The rows of a published-numbers file; any problem names the file and the field."""
    document = read_json(path, "published numbers")
    problems = published_errors(document)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{path}: invalid published numbers: {problems[0]}{more}")
    return document["rows"]


def local_metric(name: str) -> str:
    """The leaderboard metric a published metric key corresponds to."""
    return name if name in RATIO_METRICS else f"clean.{name}"
