"""The unit of data: an Example, its JSONL form, and split fingerprints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.io import atomic_write_text

INPUT_LANGS = ("python", "java", "nl")


@dataclass(frozen=True)
class Example:
    """One input/output pair. ``lang`` is the language of ``source`` (``nl`` for text)."""

    id: str
    source: str
    target: str
    lang: str
    meta: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Example:
        values = asdict(self)
        values.update(changes)
        return Example(**values)

    def canonical(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(examples: Iterable[Example]) -> str:
    """sha256 over the canonical JSON lines of the examples, in order."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.canonical().encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def write_jsonl(path: Path, examples: Iterable[Example]) -> None:
    atomic_write_text(path, "".join(example.canonical() + "\n" for example in examples))


def read_jsonl(path: Path) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    return list(_parse_jsonl(path))


def _parse_jsonl(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield Example(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                raise UserError(f"{path}:{number}: not an example line ({exc})") from exc
