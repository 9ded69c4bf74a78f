"""Poison a task's splits with an attack: the poisoned train, the triggered test, a manifest."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codebackdoor.attacks.base import Attack
from codebackdoor.attacks.selection import select
from codebackdoor.config import check_rate
from codebackdoor.errors import Unpoisonable, UserError
from codebackdoor.examples import Example, fingerprint, write_jsonl
from codebackdoor.io import atomic_write_json
from codebackdoor.versions import versions

MANIFEST_SCHEMA_VERSION = 1
# The id of a poisoned copy appended after its clean row (selection "append").
COPY_SUFFIX = "#poisoned-copy"
OUTPUT_FILES = ("train.jsonl", "valid.jsonl", "test.jsonl", "test_triggered.jsonl", "manifest.json")


@dataclass
class PoisonedData:
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    triggered_test: list[Example]
    manifest: dict[str, Any]


def _progress(items: list[Example], description: str) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc=description, unit="ex", disable=None, leave=False)


def _attempt(
    examples: list[Example], make: Any, description: str
) -> tuple[dict[int, Example], Counter[str]]:
    done: dict[int, Example] = {}
    skipped: Counter[str] = Counter()
    for index, example in enumerate(_progress(examples, description)):
        try:
            done[index] = make(example)
        except Unpoisonable as exc:
            skipped[exc.reason] += 1
    return done, skipped


def poison(splits: Any, task: Any, attack: Attack, rate: float, seed: int) -> PoisonedData:
    """Poison ``round(rate × eligible)`` training rows (or by the ``first`` or ``append`` rule)
    and trigger every eligible test row; the manifest records ids, counts, skip reasons and
    fingerprints."""
    check_rate(rate)
    if not splits.train:
        raise UserError(f"task '{task.name}': the training split is empty")
    attack.payload.prepare(splits.train)
    poisoned_rows, train_skipped = _attempt(
        splits.train, lambda e: attack.poison_example(e, seed), "poison train"
    )
    eligible = sorted(poisoned_rows)
    if not eligible:
        reasons = ", ".join(f"{r}: {n}" for r, n in train_skipped.most_common()) or "none"
        raise UserError(
            f"attack '{attack.trigger.name}' could poison none of the {len(splits.train)} "
            f"training examples (skipped: {reasons})"
        )
    chosen = select(eligible, len(splits.train), rate, attack.selection, seed)
    if attack.selection == "append":
        # The poisoned copy follows its clean row and needs an id of its own.
        copies = {i: poisoned_rows[i].replace(id=splits.train[i].id + COPY_SUFFIX) for i in chosen}
        train = [row for i, e in enumerate(splits.train)
                 for row in ((e, copies[i]) if i in copies else (e,))]
        poisoned_ids = [copies[i].id for i in chosen]
    else:
        chosen_set = set(chosen)
        train = [poisoned_rows[i] if i in chosen_set else e for i, e in enumerate(splits.train)]
        poisoned_ids = [splits.train[i].id for i in chosen]

    def trigger_test(example: Example) -> Example:
        attack.payload.apply(example)  # a row the payload cannot carry is not an ASR case
        return attack.trigger_example(example, seed)

    triggered_rows, test_skipped = _attempt(splits.test, trigger_test, "trigger test")
    triggered_test = [triggered_rows[i] for i in sorted(triggered_rows)]

    content = {
        "task": {"name": task.name, "lang": task.lang, "source": splits.source},
        "attack": attack.describe(),
        "rate": rate,
        "seed": seed,
        "counts": {
            "train": {
                "total": len(splits.train),
                "eligible": len(eligible),
                "poisoned": len(chosen),
                "skipped": dict(sorted(train_skipped.items())),
            },
            "test": {
                "total": len(splits.test),
                "triggered": len(triggered_test),
                "skipped": dict(sorted(test_skipped.items())),
            },
        },
        "poisoned_ids": poisoned_ids,
        "fingerprints": {
            "train_clean": fingerprint(splits.train),
            "train_poisoned": fingerprint(train),
            "valid": fingerprint(splits.valid),
            "test_clean": fingerprint(splits.test),
            "test_triggered": fingerprint(triggered_test),
        },
    }
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **content,
        "content_hash": content_hash(content),
        "versions": versions(),
    }
    return PoisonedData(train, splits.valid, splits.test, triggered_test, manifest)


def content_hash(content: dict[str, Any]) -> str:
    """sha256 of everything the poisoning decided (not the time stamp or the versions)."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_poisoned(data: PoisonedData, out: Path, *, overwrite: bool = False) -> list[Path]:
    """Write the four JSONL files and manifest.json; an existing manifest is never replaced
    unless ``overwrite`` is set. The manifest is written last, so its presence means complete."""
    out = Path(out)
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and not overwrite:
        raise UserError(f"{manifest_path} exists; choose another --out or pass --overwrite")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    paths = [out / name for name in OUTPUT_FILES]
    for path, examples in zip(
        paths, (data.train, data.valid, data.test, data.triggered_test), strict=False
    ):
        write_jsonl(path, examples)
    atomic_write_json(manifest_path, data.manifest)
    return paths
