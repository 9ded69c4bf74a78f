"""The on-disk cache of harvested corpora: one JSONL file per harvester version and source.

The root is the per-user cache directory ``codebackdoor`` (platformdirs), or
``$CODEBACKDOOR_CACHE`` when set. A file's name carries a hash of everything its content depends
on (the identity), so a new interpreter, JDK or harvester version gets a new file instead of
silently reusing an old one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codebackdoor.io import atomic_write_text

CACHE_ENV = "CODEBACKDOOR_CACHE"


@dataclass
class Cached:
    """Records read from or just written to ``path``; ``hit`` says which."""

    records: list[dict[str, Any]]
    path: Path
    hit: bool


def cache_root() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("codebackdoor"))


def cache_path(name: str, identity: Mapping[str, Any]) -> Path:
    """``<root>/corpora/<name>-<hash of identity>.jsonl``."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return cache_root() / "corpora" / f"{name}-{key}.jsonl"


def load_or_build(
    name: str, identity: Mapping[str, Any], build: Callable[[], list[dict[str, Any]]]
) -> Cached:
    """The cached records for ``identity``, or ``build()``'s, written atomically for next time."""
    path = cache_path(name, identity)
    records = _read(path)
    if records is not None:
        return Cached(records, path, hit=True)
    records = build()
    atomic_write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n"
                                    for record in records))
    return Cached(records, path, hit=False)


def _read(path: Path) -> list[dict[str, Any]] | None:
    """The file's records; None when it is absent or damaged (then it is rebuilt)."""
    try:
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
