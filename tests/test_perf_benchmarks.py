"""benchmarks/perf: every benchmark takes --json, and the shared helper that builds its object
(ratios to a baseline of the same run, settings, machine) and run_all's JSON list."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PERF = ROOT / "benchmarks" / "perf"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def perf(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModuleType]:
    """The helper and the runner, imported as the scripts import them (from beside them)."""
    monkeypatch.syspath_prepend(str(PERF))
    return {name: importlib.import_module(name) for name in ("report", "run_all")}


def test_every_benchmark_accepts_json(perf: dict[str, ModuleType]) -> None:
    scripts = perf["run_all"].benchmark_scripts()
    assert {p.name for p in scripts} == {p.name for p in PERF.glob("*.py")} - {
        "report.py", "run_all.py"}
    for script in [*scripts, PERF / "run_all.py"]:
        shown = subprocess.run([sys.executable, str(script), "--help"], env=_env(),
                               capture_output=True, text=True, check=False, timeout=120)
        assert shown.returncode == 0, (script.name, shown.stderr[-500:])
        assert "--json" in shown.stdout, script.name


def test_ratios_are_to_the_baseline_of_the_same_values(perf: dict[str, ModuleType]) -> None:
    report = perf["report"]
    times = {"base": 2.0, "fast": 0.5, "slow": 4.0}
    assert report.ratios(times, "base") == {"base": 1.0, "fast": 0.25, "slow": 2.0}
    # Inverted: a speed-up, the baseline's time over each.
    assert report.ratios(times, "base", invert=True) == {"base": 1.0, "fast": 4.0, "slow": 0.5}
    # A baseline of 0 (a tiny run's extra memory) has no ratio rather than a division error.
    assert report.ratios({"base": 0, "other": 5}, "base") == {"base": None, "other": None}
    assert report.ratio_text(None) == "–" and report.ratio_text(0.256) == "0.26x"
    compared = report.comparison(times, "base", "s", invert=True, runs=3)
    assert compared["baseline"] == "base" and compared["ratio"] == "base / value"
    assert compared["values"] == times and compared["ratios"]["fast"] == 4.0
    assert compared["runs"] == 3
    with pytest.raises(KeyError):
        report.ratios(times, "absent")


def test_document_holds_settings_and_machine(perf: dict[str, ModuleType]) -> None:
    args = argparse.Namespace(rows=8, json=True, worker=None, method=None)
    document = perf["report"].document("tiny", args, {"measured": 1},
                                       internal=("worker", "method"), torch_threads=3)
    assert document["benchmark"] == "tiny" and document["measured"] == 1
    assert document["settings"] == {"rows": 8}
    machine = document["machine"]
    assert machine["torch_threads"] == 3 and machine["cpu_count"] == os.cpu_count()
    assert machine["processor"] and machine["python"].count(".") == 2 and machine["torch"]
    json.dumps(document)


def test_run_all_prints_one_json_list(perf: dict[str, ModuleType], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Each benchmark runs with --json; one that prints no JSON object fails the run."""
    (tmp_path / "good.py").write_text(
        "import json, sys\nprint(json.dumps({'json': sys.argv[1:] == ['--json']}))\n")
    (tmp_path / "plain.py").write_text("print('a table')\n")
    (tmp_path / "report.py").write_text("raise SystemExit('the helper is not a benchmark')\n")
    run_all = perf["run_all"]
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--json"])
    assert run_all.main() == 1
    runs = json.loads(capsys.readouterr().out)
    assert [(run["benchmark"], run["status"], run["result"]) for run in runs] == [
        ("good", 0, {"json": True}), ("plain", 0, None)]
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--json", "--only", "good"])
    assert run_all.main() == 0


def test_filter_defenses_json_at_a_tiny_size() -> None:
    """The cheapest real benchmark end to end: its stdout is one object whose comparisons
    carry their baseline at ratio 1."""
    finished = subprocess.run(
        [sys.executable, str(PERF / "filter_defenses.py"), "--examples", "1", "--units", "2",
         "--rows", "64", "--width", "4", "--threads", "1", "--rounds", "1", "--json"],
        env=_env(), capture_output=True, text=True, check=False, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    document = json.loads(finished.stdout)
    assert document["benchmark"] == "filter_defenses"
    assert document["settings"]["examples"] == 1 and document["machine"]["torch_threads"] == 1
    for part in ("bki", "representations"):
        compared = document[part]
        assert compared["ratios"][compared["baseline"]] == 1.0
        assert set(compared["ratios"]) == set(compared["values"]) and len(compared["values"]) > 2
    bki = document["bki"]
    for name, seconds in bki["values"].items():
        assert bki["ratios"][name] == pytest.approx(bki["values"][bki["baseline"]] / seconds)
