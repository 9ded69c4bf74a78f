"""Published reference numbers (``leaderboard/published.json``), validated by their own schema.

A published metric is compared with a local one only where it says which leaderboard metric is
computed the same way (``local``) and the local row's definition id for it matches the pattern
it gives (``local_definition``); every other published number is shown as a metric of its own.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.io import read_json
from codebackdoor.results import validation_errors

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "published.schema.json"


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


def local_definition(row: dict[str, Any], metric: str) -> str | None:
    """The definition id a leaderboard row records for ``metric`` (``detection.fpr`` is defined
    by the id of ``detection``)."""
    definitions = row["identity"]["definitions"]
    parts = metric.split(".")
    for end in range(len(parts), 0, -1):
        found = definitions.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def comparable(metric: dict[str, Any], row: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The local statistic computed as the published ``metric`` is, or None with the reason."""
    if "local" not in metric:
        return None, "computed differently in the source"
    entry = row["metrics"].get(metric["local"])
    if entry is None:
        return None, f"no {metric['local']} in the local row"
    definition = local_definition(row, metric["local"]) or ""
    if not fnmatchcase(definition.split(":", 1)[0], metric["local_definition"]):
        return None, f"local {metric['local']} is defined as {definition or 'nothing'}"
    return entry, metric["local"]
