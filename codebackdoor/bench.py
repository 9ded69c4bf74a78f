"""Benchmark suites: grids of runs read from TOML, run cell by cell through ``runner.run``.

A suite file::

    name = "embedded"
    description = "..."

    [base]                      # RunConfig fields shared by every cell
    task = "package"
    epochs = 10

    [[grid]]                    # one product of values; a suite is the union of its grids
    attack = ["fixed", "grammar"]
    rate = [0.01, 0.05]
    defenses = [[], ["dece"]]
    seed = [1, 2, 3]

In a grid a list is the values to sweep; any other value is fixed for that grid (``defenses``
is swept only as a list of lists). Preset paths are relative to the suite file; a relative
``data`` folder is relative to ``data_root`` (a top-level key, itself relative to the suite
file), which ``--data-root DIR`` overrides.

A cell is named by a hash of its values as written, so every machine that expands the same suite
names its cells alike: ``--shard i/n`` takes the cells whose name falls in residue i-1 modulo n,
with no overlap and nothing left out, and a rerun skips every cell whose result exists.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codebackdoor.config import RunConfig, config_fields, make_config
from codebackdoor.errors import UserError
from codebackdoor.identity import run_id
from codebackdoor.io import atomic_write_json, read_toml

SUITE_KEYS = ("name", "description", "data_root", "base", "grid")
# RunConfig fields whose values may be files relative to the suite.
PATH_FIELDS = ("attack", "model")


@dataclass(frozen=True)
class Cell:
    """One run of a suite: its name, its values as written in the suite, its config, and the id
    of the run it names (its result directory under ``--out``)."""

    name: str
    values: dict[str, Any]
    config: RunConfig
    run: str

    def label(self, varying: list[str]) -> str:
        return " ".join(f"{key}={_short(self.values.get(key))}" for key in varying)


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, sep, count = text.partition("/")
        try:
            shard = cls(int(index), int(count))
        except ValueError:
            shard = None
        if not sep or shard is None or not 1 <= shard.index <= shard.count:
            raise UserError(f"--shard expects i/n with 1 <= i <= n, got '{text}'")
        return shard

    def takes(self, cell: Cell) -> bool:
        return int(cell.name, 16) % self.count == self.index - 1


@dataclass
class Suite:
    name: str
    description: str
    base: dict[str, Any]
    grids: list[dict[str, Any]]
    path: Path
    # Where a relative ``data`` value points: the suite's ``data_root`` (relative to the suite
    # file), or the folder given on the command line (``--data-root``), since the external data
    # sets live in different places on different machines.
    data_root: Path | None = None
    # Computed once: a run id hashes preset files and a local model's files.
    _cells: list[Cell] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def read(cls, path: Path, data_root: Path | None = None) -> Suite:
        """The suite at ``path``; ``data_root`` overrides the suite's own data folder."""
        path = Path(path)
        data = read_toml(path, "benchmark suite")
        unknown = sorted(set(data) - set(SUITE_KEYS))
        if unknown:
            raise UserError(f"suite {path}: unknown keys {unknown}; valid: {', '.join(SUITE_KEYS)}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise UserError(f'suite {path} needs name = "<suite name>"')
        base = data.get("base", {})
        grids = data.get("grid", [{}])
        if not isinstance(base, dict) or not isinstance(grids, list) or not all(
            isinstance(grid, dict) for grid in grids
        ):
            raise UserError(f"suite {path}: [base] must be a table and [[grid]] tables")
        for where, table in [("base", base)] + [(f"grid {i + 1}", g) for i, g in enumerate(grids)]:
            wrong = sorted(set(table) - set(config_fields()))
            if wrong:
                raise UserError(
                    f"suite {path}, {where}: unknown run settings {wrong}; valid: "
                    + ", ".join(config_fields())
                )
        if data_root is None and "data_root" in data:
            data_root = path.parent / str(data["data_root"])
        suite = cls(name, str(data.get("description", "")), base, grids, path,
                    Path(data_root).resolve() if data_root is not None else None)
        suite.cells()  # every cell's config is checked now, before anything runs
        return suite

    def varying(self) -> list[str]:
        """The settings that take more than one value across the suite, in field order."""
        seen: dict[str, set[str]] = {}
        for cell in self.cells():
            for key, value in cell.values.items():
                seen.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
        return [key for key in config_fields() if len(seen.get(key, ())) > 1]

    def cells(self) -> list[Cell]:
        """The suite's cells, each run once: a value written out in one grid and left to its
        default in another (``defenses = []``) names two cells of one run, so the later is
        dropped."""
        if self._cells is None:
            self._cells = self._build_cells()
        return self._cells

    def _build_cells(self) -> list[Cell]:
        cells: dict[str, Cell] = {}
        for number, grid in enumerate(self.grids, start=1):
            axes = [(key, _axis(key, value)) for key, value in grid.items()]
            for combination in itertools.product(*(values for _, values in axes)):
                values = {**self.base, **dict(zip((key for key, _ in axes), combination,
                                                  strict=True))}
                name = hashlib.sha256(
                    json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
                ).hexdigest()[:16]
                if name not in cells:
                    config = self._config(values, number)
                    cells[name] = Cell(name, values, config, run_id(config))
        runs: dict[str, Cell] = {}
        for cell in cells.values():
            runs.setdefault(cell.run, cell)
        return list(runs.values())

    def _config(self, values: dict[str, Any], grid: int) -> RunConfig:
        resolved = dict(values)
        for key in PATH_FIELDS:
            if isinstance(resolved.get(key), str):
                resolved[key] = self._path(resolved[key])
        if isinstance(resolved.get("data"), str):
            resolved["data"] = self._data(resolved["data"])
        if "defenses" in resolved:
            specs = resolved["defenses"]
            if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
                raise UserError(
                    f"suite {self.path}, grid {grid}: defenses must be a list of defense names "
                    "or preset paths; a sweep (a list of such lists) goes in a [[grid]], not in "
                    "[base]"
                )
            resolved["defenses"] = [self._path(spec) for spec in specs]
        try:
            return make_config(resolved)
        except UserError as exc:
            raise UserError(f"suite {self.path}, grid {grid}: {exc}") from exc

    def _data(self, spec: str) -> str:
        """A relative data folder under the data root; hub data and absolute paths as given."""
        if self.data_root is None or spec.startswith("hf:") or Path(spec).is_absolute():
            return self._path(spec)
        path = self.data_root / spec
        if not path.exists():
            raise UserError(f"suite {self.path}: data {spec} not found under the data root "
                            f"{self.data_root} (set it with --data-root DIR)")
        return str(path)

    def _path(self, spec: str) -> str:
        """A preset or data path relative to the suite file, made absolute; names stay names."""
        if not spec.startswith(("./", "../", "/")) and not spec.endswith(".toml"):
            return spec  # a registry name, a hub id (owner/name) or hf:<dataset>
        path = (self.path.parent / spec).resolve()
        if not path.exists():
            raise UserError(
                f"suite {self.path}: {spec} not found (paths are relative to the suite file)"
            )
        return str(path)


def _axis(key: str, value: Any) -> list[Any]:
    """The values a grid sweeps for ``key``."""
    if key == "defenses":
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            return value
        return [value]
    return value if isinstance(value, list) else [value]


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(_short(v) for v in value) or "none"
    if isinstance(value, str) and "/" in value:
        return Path(value).stem
    return "none" if value is None else str(value)


@dataclass
class CellOutcome:
    cell: str
    label: str
    status: str  # "done", "existing", "failed"
    result: str | None = None
    error: str | None = None


@dataclass
class BenchSummary:
    suite: str
    shard: str
    outcomes: list[CellOutcome] = field(default_factory=list)

    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def run_suite(
    suite: Suite,
    out: Path,
    *,
    shard: Shard | None = None,
    on_cell: Callable[[int, int, Cell, str], None] | None = None,
) -> BenchSummary:
    """Run every cell of ``suite`` (of ``shard``) into ``out``. A cell whose result exists is
    read back; an interrupted one resumes; a failing one is recorded and the others go on. The
    summary is written to ``out/bench-<suite>[-<i>-of-<n>].json`` after every cell."""
    from codebackdoor.runner import run

    cells = [cell for cell in suite.cells() if shard is None or shard.takes(cell)]
    varying = suite.varying()
    shard_text = f"{shard.index}/{shard.count}" if shard else "1/1"
    summary = BenchSummary(suite.name, shard_text)
    suffix = f"-{shard.index}-of-{shard.count}" if shard else ""
    summary_path = Path(out) / f"bench-{suite.name}{suffix}.json"
    for number, cell in enumerate(cells, start=1):
        label = cell.label(varying)
        if on_cell is not None:
            on_cell(number, len(cells), cell, label)
        try:
            outcome = run(cell.config, Path(out), resume=True)
        except Exception as exc:  # one failing cell must not stop the grid
            error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, UserError):
                error += "\n" + traceback.format_exc(limit=-3)
            summary.outcomes.append(CellOutcome(cell.name, label, "failed", error=error))
        else:
            summary.outcomes.append(CellOutcome(
                cell.name, label, "existing" if outcome.reused else "done", str(outcome.path)
            ))
        _write_summary(summary, summary_path)
    return summary


def _write_summary(summary: BenchSummary, path: Path) -> None:
    atomic_write_json(path, {
        "suite": summary.suite,
        "shard": summary.shard,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "cells": [vars(outcome) for outcome in summary.outcomes],
    })
