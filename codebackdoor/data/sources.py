"""Task data from files: a local CSV/JSONL layout or a Hugging Face dataset, as id/source/target
pairs per split.

Both kinds go through the same column map ({"source": <column>, "target": <column>}) and the same
splitting rule. A source that ships a single table (Bugs2Fix's one ``valid.csv``, or a hub dataset
with only a ``train`` split) is split 80/10/10 by ``split_by_hash`` of the row index, so every
machine gets the same rows in the same split without storing the split anywhere.

Row ids are ``<split>-<row index>``; for a single table the index is the row's position in that
table (so ids within a split have gaps), for split files it is the position in that split's file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError

SPLITS = ("train", "valid", "test")
FILE_FORMATS = ("csv", "jsonl")
DEFAULT_COLUMNS = {"source": "src", "target": "tgt"}
# Hub datasets name their validation split in more than one way.
HUB_SPLIT_NAMES = {"train": ("train",), "valid": ("validation", "valid", "dev"), "test": ("test",)}
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# Fields hold whole functions; the csv module's default limit (128 KiB) is too small for some.
CSV_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class Pair:
    """One row of a data source, before a task turns it into an Example."""

    id: str
    source: str
    target: str


@dataclass
class PairSplits:
    """The rows of each split, and a JSON-able record of where they came from."""

    splits: dict[str, list[Pair]]
    source: dict[str, Any] = field(default_factory=dict)


def split_by_hash(key: str) -> str:
    """``train``, ``valid`` or ``test`` in the ratio 80/10/10, from sha256 of ``key``."""
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 100
    if bucket < 80:
        return "train"
    return "valid" if bucket < 90 else "test"


def column_map(
    columns: Mapping[str, str] | None, defaults: Mapping[str, str] = DEFAULT_COLUMNS
) -> dict[str, str]:
    """``defaults`` overridden by ``columns``; only the keys ``source`` and ``target`` exist."""
    unknown = sorted(set(columns or {}) - {"source", "target"})
    if unknown:
        raise UserError(
            f"unknown column-map key(s) {', '.join(unknown)}; the keys are source and target"
        )
    return {**defaults, **(columns or {})}


def load_local(path: str | Path, columns: Mapping[str, str] | None = None) -> PairSplits:
    """Rows from a directory of ``{train,valid,test}.{csv,jsonl}`` or from one CSV/JSONL file."""
    path = Path(path).expanduser()
    mapping = column_map(columns)
    if not path.exists():
        raise UserError(f"data path not found: {path}")
    record: dict[str, Any] = {
        "kind": "local", "path": str(path.resolve()), "revision": None, "config": None,
        "columns": mapping, "cache_file": None,
    }
    if path.is_dir():
        files = _split_files(path)
        splits = {split: _pairs(split, enumerate(_read_rows(file, mapping))) for split, file in
                  files.items()}
        for split, pairs in splits.items():
            if not pairs:
                raise UserError(f"{files[split]} has no rows")
        record.update(layout="split files", files={s: f.name for s, f in files.items()})
    else:
        rows = _read_rows(path, mapping)
        if not rows:
            raise UserError(f"{path} has no rows")
        splits = _split_one_table(rows, str(path))
        record.update(layout="one file, split 80/10/10 by sha256 of the row index")
    return PairSplits(splits, record)


def load_hub(
    dataset_id: str,
    *,
    revision: str | None,
    config: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> PairSplits:
    """Rows of a Hugging Face dataset at a pinned commit, through the ``datasets`` library."""
    if not revision:
        raise UserError(
            f"the Hugging Face dataset {dataset_id} needs a pinned revision: pass --revision "
            f"<commit sha> (the commit list is at https://huggingface.co/datasets/{dataset_id}"
            "/commits/main)"
        )
    if not COMMIT_SHA.fullmatch(revision):
        raise UserError(
            f"revision '{revision}' is not a full 40-character commit sha; branch and tag names "
            "move, so results would not be reproducible"
        )
    mapping = column_map(columns)
    import datasets

    where = f"{dataset_id} (config {config or 'default'}, revision {revision})"
    try:
        loaded = datasets.load_dataset(dataset_id, name=config, revision=revision)
    except Exception as exc:  # network, missing config, missing files: all a wrong --data value
        detail = " ".join(str(exc).split())  # a UserError is one line
        raise UserError(f"could not load {where}: {type(exc).__name__}: {detail}") from exc
    tables = _hub_tables(loaded, where)
    for name, table in tables.items():
        missing = [column for column in mapping.values() if column not in table.column_names]
        if missing:
            raise UserError(_missing_columns_message(f"{where} split {name}", missing,
                                                     table.column_names, mapping))
    record: dict[str, Any] = {
        "kind": "huggingface", "id": dataset_id, "revision": revision, "config": config,
        "columns": mapping, "cache_file": _first_cache_file(tables), "hub_splits": list(tables),
    }
    rows_of = {name: _hub_rows(table, mapping, f"{where} split {name}")
               for name, table in tables.items()}
    if len(rows_of) == 1:
        splits = _split_one_table(next(iter(rows_of.values())), where)
        record["layout"] = "one split, split 80/10/10 by sha256 of the row index"
    else:
        splits = {split: _pairs(split, enumerate(rows)) for split, rows in
                  zip(SPLITS, rows_of.values(), strict=True)}
        record["layout"] = "hub splits"
    for split, pairs in splits.items():
        if not pairs:
            raise UserError(f"{where}: the {split} split has no rows")
    return PairSplits(splits, record)


def _split_files(directory: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for split in SPLITS:
        candidates = [directory / f"{split}.{fmt}" for fmt in FILE_FORMATS]
        present = [candidate for candidate in candidates if candidate.is_file()]
        if len(present) > 1:
            raise UserError(f"{directory} holds both {present[0].name} and {present[1].name}; "
                            "keep one per split")
        if present:
            found[split] = present[0]
    if not found:
        raise UserError(
            f"{directory} holds no split files: expected train, valid and test as .csv or .jsonl"
        )
    missing = [split for split in SPLITS if split not in found]
    if missing:
        names = ", ".join(file.name for file in found.values())
        raise UserError(
            f"{directory} holds {names} but no {', '.join(missing)} file; give all three splits, "
            "or point --data at one file to split it 80/10/10"
        )
    return found


def _read_rows(path: Path, mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    """(source, target) per row of a CSV or JSONL file, through the column map."""
    if path.suffix not in (".csv", ".jsonl"):
        raise UserError(f"{path}: unsupported file type '{path.suffix}'; use .csv or .jsonl")
    try:
        # newline="": line ends inside quoted CSV fields stay as written (no \r\n → \n).
        with path.open(encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not text.strip():
        raise UserError(f"{path} is empty")
    if path.suffix == ".csv":
        return _csv_rows(path, text, mapping)
    return _jsonl_rows(path, text, mapping)


def _csv_rows(path: Path, text: str, mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [column for column in mapping.values() if column not in header]
    if missing:
        raise UserError(_missing_columns_message(str(path), missing, header, mapping))
    rows = []
    for row in reader:
        values = [row[mapping["source"]], row[mapping["target"]]]
        if None in values:
            raise UserError(f"{path}:{reader.line_num}: the row has fewer fields than the header")
        rows.append((values[0], values[1]))
    return rows


def _jsonl_rows(path: Path, text: str, mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    rows = []
    # Only "\n" ends a JSON line: str.splitlines would also cut at U+2028 inside strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not a JSON line ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        missing = [column for column in mapping.values() if column not in obj]
        if missing:
            raise UserError(_missing_columns_message(f"{path}:{number}", missing, list(obj),
                                                     mapping))
        where = f"{path}:{number}"
        rows.append((_as_text(obj[mapping["source"]], where), _as_text(obj[mapping["target"]],
                                                                        where)))
    return rows


def _missing_columns_message(where: str, missing: list[str], found: Iterable[str],
                             mapping: Mapping[str, str]) -> str:
    wanted = ", ".join(f"{key}={column}" for key, column in mapping.items())
    return (f"{where} lacks the column(s) {', '.join(missing)} (column map: {wanted}); columns "
            f"found: {', '.join(found) or 'none'}; pass a column map such as "
            "--columns source=<col> target=<col>")


def _as_text(value: Any, where: str) -> str:
    """A cell as text: booleans become the labels "1"/"0", token lists are joined by spaces."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return " ".join(value)
    raise UserError(f"{where}: expected text, a label or a token list, got {value!r:.60}")


def _pairs(split: str, rows: Iterable[tuple[int, tuple[str, str]]]) -> list[Pair]:
    return [Pair(f"{split}-{index}", source, target) for index, (source, target) in rows]


def _split_one_table(rows: list[tuple[str, str]], where: str) -> dict[str, list[Pair]]:
    assigned: dict[str, list[tuple[int, tuple[str, str]]]] = {split: [] for split in SPLITS}
    for index, row in enumerate(rows):
        assigned[split_by_hash(str(index))].append((index, row))
    empty = [split for split in SPLITS if not assigned[split]]
    if empty:
        raise UserError(f"splitting the {len(rows)} rows of {where} 80/10/10 left the "
                        f"{', '.join(empty)} split empty; it needs more rows")
    return {split: _pairs(split, assigned[split]) for split in SPLITS}


def _hub_tables(loaded: Any, where: str) -> dict[str, Any]:
    """The hub's tables in train/valid/test order, or its only table."""
    names = list(loaded)
    if len(names) == 1:
        return {names[0]: loaded[names[0]]}
    chosen = {}
    for split in SPLITS:
        name = next((n for n in HUB_SPLIT_NAMES[split] if n in loaded), None)
        if name is None:
            raise UserError(f"{where} has the splits {', '.join(names)}; expected train, "
                            "validation and test, or a single split to divide 80/10/10")
        chosen[name] = loaded[name]
    return chosen


def _hub_rows(table: Any, mapping: Mapping[str, str], where: str) -> list[tuple[str, str]]:
    # Column-wise through Arrow: iterating rows as dicts is slow on the larger CodeXGLUE sets.
    columns = table.select_columns(sorted(set(mapping.values()))).to_dict()
    pairs = zip(columns[mapping["source"]], columns[mapping["target"]], strict=True)
    return [(_as_text(source, f"{where} row {index}"), _as_text(target, f"{where} row {index}"))
            for index, (source, target) in enumerate(pairs)]


def _first_cache_file(tables: Mapping[str, Any]) -> str | None:
    for table in tables.values():
        for entry in table.cache_files:
            return entry["filename"]
    return None
