"""Result files: validated against the JSON Schema, written atomically, never overwritten."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.io import atomic_write_json, read_json

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "schemas" / "result.schema.json"


@cache
def result_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def validation_errors(document: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Each problem of ``document`` against ``schema`` (default: the result schema) as
    'field: message', the field as a /-separated path."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema or result_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors]


def check_result(result: dict[str, Any], where: str) -> None:
    errors = validation_errors(result)
    if errors:
        raise UserError(f"{where}: invalid result file: {errors[0]}"
                        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))


def read_result(path: Path) -> dict[str, Any]:
    result = read_json(path, "result file")
    check_result(result, str(path))
    return result


def write_result(result: dict[str, Any], path: Path) -> Path:
    """Validate, then write atomically; an existing result is never replaced."""
    check_result(result, str(path))
    try:
        atomic_write_json(path, result, overwrite=False)
    except FileExistsError as exc:
        raise UserError(f"{path} exists; results are never overwritten") from exc
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()
