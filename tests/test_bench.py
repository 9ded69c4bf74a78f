"""Benchmark suites: reading and checking, cells and shards, and a real sweep that resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codebackdoor.bench import Shard, Suite, run_suite
from codebackdoor.cli import main
from codebackdoor.errors import UserError
from codebackdoor.identity import run_id

ROOT = Path(__file__).resolve().parents[1]

TINY = """
name = "tiny"
[base]
task = "package"
task_params = {max_examples = {train = 60, valid = 10, test = 12}}
model = "tiny-roberta"
epochs = 1
max_source_length = 32
curve_size = 4
attack = "fixed"
"""


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_cells_are_the_union_of_grid_products_named_by_their_values(tmp_path: Path) -> None:
    path = _suite(tmp_path, TINY + """
[[grid]]
rate = [0.05, 0.1]
defenses = [[], ["dece"]]
seed = [1, 2]
[[grid]]
rate = 0.05
defenses = []
seed = 1
[[grid]]
rate = 0.05
seed = [1, 3]
""")
    suite = Suite.read(path)
    cells = suite.cells()
    # The second grid repeats a cell of the first; the third one again, with `defenses` left
    # to its default (another name, the same run), and adds one (seed 3).
    assert len(cells) == 9
    assert len({run_id(c.config) for c in cells}) == 9
    assert [c.run for c in cells] == [run_id(c.config) for c in cells]
    assert suite.varying() == ["rate", "seed", "defenses"]
    assert {tuple(c.config.defenses) for c in cells} == {(), ("dece",)}
    # Names depend on the values only: another copy of the suite names its cells alike.
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    assert [c.name for c in Suite.read(_suite(copy, path.read_text())).cells()] == [
        c.name for c in cells
    ]


def test_shards_split_the_grid_without_overlap(tmp_path: Path) -> None:
    suite = Suite.read(_suite(tmp_path, TINY + "[[grid]]\nseed = [1, 2, 3, 4, 5, 6, 7]\n"
                              "rate = [0.05, 0.1, 0.2]\n"))
    names = [cell.name for cell in suite.cells()]
    parts = [[c.name for c in suite.cells() if Shard(i, 4).takes(c)] for i in range(1, 5)]
    assert sorted(name for part in parts for name in part) == sorted(names)
    assert all(parts)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\nepochs = 2\n', "unknown keys \\['epochs'\\]"),
        ('[base]\ntask = "package"\n', "needs name"),
        ('name = "x"\n[[grid]]\nepoch = [1]\n', "unknown run settings \\['epoch'\\]"),
        ('name = "x"\n[[grid]]\nrate = [0.1, 2.0]\n', "grid 1: poisoning rate must be in"),
        ('name = "x"\n[base]\nattack = "presets/nowhere.toml"\n', "not found \\(paths are"),
        ('name = "x"\n[base]\nmodel = "./no-model"\n', "./no-model not found"),
        ('name = "x"\n[base]\ndefenses = [[], ["dece"]]\n', "a sweep .* goes in a \\[\\[grid"),
    ],
)
def test_bad_suites_are_refused_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        Suite.read(_suite(tmp_path, text))


@pytest.mark.parametrize("text", ["3", "0/2", "3/2", "a/b", "1/0"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(UserError, match="--shard expects i/n"):
        Shard.parse(text)


def test_sweep_records_failures_goes_on_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], one_cpu_thread: None
) -> None:
    path = _suite(tmp_path, TINY + """
[[grid]]
seed = [1, 2]
[[grid]]
attack = "badpre"
""")
    out = tmp_path / "results"
    summary = run_suite(Suite.read(path), out)
    assert [o.status for o in summary.outcomes] == ["done", "done", "failed"]
    assert "badpre" in summary.failed()[0].error
    saved = json.loads((out / "bench-tiny.json").read_text())
    assert [cell["status"] for cell in saved["cells"]] == ["done", "done", "failed"]
    assert len(list(out.glob("*/result.json"))) == 2

    # Run again through the command line: finished cells are read back, the failure is retried
    # and listed, and the exit code says something failed.
    assert main(["bench", str(path), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "0 run, 2 already done, 1 failed" in printed
    assert "failed cell" in printed and "attack=badpre" in printed


def test_smoke_suite_covers_every_registered_attack_and_defense() -> None:
    from codebackdoor.registry import BUILTINS

    suite = Suite.read(ROOT / "benchmarks" / "smoke.toml")
    attacks = {c.config.attack for c in suite.cells()}
    defenses = {d for c in suite.cells() for d in c.config.defenses}
    assert attacks == set(BUILTINS["attacks"])
    assert defenses | {"ce"} == set(BUILTINS["defenses"])


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_suite_reads_and_names_its_cells(path: Path) -> None:
    suite = Suite.read(path)
    cells = suite.cells()
    assert cells and len({cell.name for cell in cells}) == len(cells)
