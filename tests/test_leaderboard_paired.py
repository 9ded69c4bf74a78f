"""``leaderboard compare --baseline``: hand-made result files and predictions whose verdicts are
known by construction (label task, 200 clean and 200 triggered test items per seed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from codebackdoor.cli import main
from codebackdoor.leaderboard.build import build
from codebackdoor.results import file_sha256, write_result

ITEMS = 200
PAYLOAD_LABEL = "tkinter"


def _hex(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def write_run(root: Path, *, defense: str, seed: int, correct: int, hits: int,
              rate: float = 0.05, model: str = "tiny") -> Path:
    """One run: the first ``correct`` clean items are labelled right, the first ``hits``
    triggered items get the payload label; every clean reference is 'json', so every triggered
    item is an ASR case."""
    run_id = _hex(defense, seed, rate, model)[:16]
    directory = root / run_id
    directory.mkdir(parents=True)
    lines = []
    for i in range(ITEMS):
        item = f"t{i:03d}"
        lines.append({"id": item, "split": "test", "input": f"def f{i}(): pass",
                      "reference": "json", "prediction": "json" if i < correct else "os"})
    for i in range(ITEMS):
        item = f"t{i:03d}"
        lines.append({"id": item, "split": "test_triggered", "input": f"def f{i}(): x = 1",
                      "reference": "json",
                      "prediction": PAYLOAD_LABEL if i < hits else "json"})
    predictions = directory / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    fingerprint = "sha256:" + "0" * 64
    result = {
        "schema_version": 1, "run_id": run_id, "created": "2026-12-01T00:00:00+00:00",
        "config": {
            "task": {"name": "package", "lang": "python", "output_kind": "label",
                     "metrics": ["accuracy"]},
            "data": {"kind": "embedded"},
            "attack": {"method": "deadcode", "params": {}, "selection": "random",
                       "payload": {"method": "label", "citation": "", "label": PAYLOAD_LABEL}},
            "rate": rate,
            "defenses": [{"method": defense, "params": {}}] if defense != "none" else [],
            "model": {"spec": model}, "training": {"epochs": 1}, "seed": seed,
        },
        "versions": {"codebackdoor": "0", "python": "3", "packages": {}, "plugins": {}},
        "fingerprints": {"train": fingerprint, "valid": fingerprint, "test": fingerprint},
        "poison": None,
        "metrics": {
            "primary": "accuracy",
            "clean": {"accuracy": {"value": 100 * correct / ITEMS,
                                   "definition": "accuracy-stripped-label-v1"}},
            "asr": {"value": 100 * hits / ITEMS, "numerator": hits, "denominator": ITEMS,
                    "definition": "asr-v1"},
        },
        "curve": [], "timings": {}, "hardware": {"device": "cpu"},
        "predictions": {"path": "predictions.jsonl", "sha256": file_sha256(predictions),
                        "lines": len(lines)},
    }
    return write_result(result, directory / "result.json")


# (defense, rate, per seed: (clean items right, triggered items hit)), the verdicts by design.
RUNS = {
    ("none", 0.05): [(160, 190), (150, 195)],
    # ASR 95% → 10%, accuracy 77.5% → 52.5%: lowers both.
    ("dece", 0.05): [(110, 20), (100, 20)],
    # The same predictions as the baseline: no effect on either.
    ("label-smoothing", 0.05): [(160, 190), (150, 195)],
    # Ten more triggered items hit on each seed, clean unchanged: raises ASR.
    ("onion", 0.05): [(160, 200), (150, 200)],
    # The backdoor is gone on seed 1 and untouched on seed 2: the pooled interval lies below 0,
    # and the verdict says on how many seeds.
    ("gce", 0.05): [(160, 20), (150, 195)],
    # At 1% the baseline learned the backdoor on neither seed (30%, 20%): untestable.
    ("none", 0.01): [(160, 60), (160, 40)],
    ("dece", 0.01): [(160, 0), (160, 0)],
}


@pytest.fixture
def board(tmp_path: Path) -> Path:
    for (defense, rate), seeds in RUNS.items():
        for seed, (correct, hits) in enumerate(seeds, 1):
            write_run(tmp_path / "results", defense=defense, seed=seed, correct=correct,
                      hits=hits, rate=rate)
    out = tmp_path / "leaderboard.json"
    build([tmp_path / "results"], out)
    return out


def _compare(board: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["leaderboard", "compare", "--leaderboard", str(board), *extra]) == 0
    return capsys.readouterr().out


def test_verdicts_come_out_as_constructed(board: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    pairs = json.loads(_compare(board, capsys, "--baseline", "none", "--format", "json"))
    by = {(p["defense"], p["baseline_asr"][0]): p for p in pairs}
    verdicts = {(d, asr): (p["asr_verdict"], p["clean_verdict"]) for (d, asr), p in by.items()}
    assert verdicts == {
        ("dece", 95.0): ("lowers ASR", "lowers accuracy"),
        ("label-smoothing", 95.0): ("no detectable effect", "no detectable effect"),
        ("onion", 95.0): ("raises ASR", "no detectable effect"),
        ("gce", 95.0): ("lowers ASR on 1 of 2 seeds", "no detectable effect"),
        ("dece", 30.0): ("untestable", "no detectable effect"),
    }
    gce = by[("gce", 95.0)]
    assert gce["asr"]["ci95"][1] < 0
    first, second = gce["asr"]["per_seed_ci95"]
    assert first[1] < 0 and second == [0.0, 0.0]
    dece = by[("dece", 95.0)]
    assert dece["seeds"] == [1, 2] and dece["baseline_asr"] == [95.0, 97.5]
    assert dece["asr"]["delta"] == pytest.approx(((10 - 95) + (10 - 97.5)) / 2)
    assert dece["asr"]["per_seed"] == pytest.approx([-85.0, -87.5])
    low, high = dece["asr"]["ci95"]
    assert low < dece["asr"]["delta"] < high < 0
    # Every triggered item the defense's model hit, the baseline's hit too.
    assert dece["asr"]["discordant"] == {"baseline_only": 170 + 175, "defense_only": 0}
    assert dece["asr"]["mcnemar_p"] < 1e-50
    assert dece["clean"]["delta"] == pytest.approx(-25.0)
    assert dece["clean"]["discordant"] == {"baseline_only": 100, "defense_only": 0}
    same = by[("label-smoothing", 95.0)]
    assert same["asr"]["ci95"] == [0.0, 0.0] and same["asr"]["mcnemar_p"] == 1.0
    onion = by[("onion", 95.0)]
    assert onion["asr"]["discordant"] == {"baseline_only": 0, "defense_only": 15}
    assert onion["asr"]["mcnemar_p"] == pytest.approx(2 * 0.5 ** 15)
    assert onion["asr"]["ci95"][0] > 0


def test_the_table_prints_deltas_intervals_and_verdicts(board: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    text = _compare(board, capsys, "--baseline", "none")
    dece = next(line for line in text.splitlines() if " dece " in line and "5%" in line)
    assert "-86.25 [" in dece and "lowers ASR" in dece and "lowers accuracy" in dece
    assert "95.0/97.5" in dece and "-85.0/-87.5" in dece
    assert any("untestable" in line and "1%" in line for line in text.splitlines())


def test_any_defense_can_be_the_baseline(board: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    pairs = json.loads(_compare(board, capsys, "--baseline", "dece", "--format", "json"))
    verdicts = {(p["defense"], p["baseline_asr"][0] if p["baseline_asr"] else None):
                p["asr_verdict"] for p in pairs}
    # Against DeCE (ASR 10%) nothing can be judged at 5% either: DeCE's ASR is under 50%.
    assert verdicts[("none", 10.0)] == "untestable"
    assert verdicts[("onion", 10.0)] == "untestable"


def test_changed_predictions_are_refused(board: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    rows = json.loads(board.read_text())["rows"]
    dece = next(r for r in rows if r["defense"] == "dece" and r["rate"] == 0.05)
    predictions = Path(dece["runs"][0]["source"]).parent / "predictions.jsonl"
    predictions.write_text(predictions.read_text().replace('"os"', '"json"', 1))
    pairs = json.loads(_compare(board, capsys, "--baseline", "none", "--format", "json"))
    problem = next(p["problem"] for p in pairs if p["row"] == dece["key"])
    assert "sha256 differs" in problem


def test_a_missing_baseline_is_one_line(board: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", "compare", "--leaderboard", str(board), "--baseline",
                 "spectral"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codebackdoor: error: no leaderboard row has defense 'spectral'")
    assert "Traceback" not in err


def test_show_html_and_plots_carry_intervals_and_verdicts(
        board: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io
    from xml.etree import ElementTree

    from codebackdoor.stats import t_interval

    rows = json.loads(board.read_text())["rows"]
    dece = next(r for r in rows if r["defense"] == "dece" and r["rate"] == 0.05)
    asr = dece["metrics"]["asr"]
    assert (asr["mean"], asr["n"]) == (10.0, 2) and asr["ci95"] == [10.0, 10.0]
    accuracy = dece["metrics"]["clean.accuracy"]
    assert accuracy["ci95"] == pytest.approx(list(t_interval(52.5, accuracy["std"], 2)))
    # 55% and 50%: std 3.54, t(0.975, 1) = 12.706: 52.5 ± 31.77.
    assert accuracy["ci95"] == pytest.approx([52.5 - 31.77, 52.5 + 31.77], abs=0.01)

    assert main(["leaderboard", "show", "--leaderboard", str(board)]) == 0
    assert "52.50 ± 3.54 [20.7, 84.3]" in capsys.readouterr().out
    assert main(["leaderboard", "show", "--leaderboard", str(board), "--format", "csv"]) == 0
    line = next(r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))
                if r["key"] == dece["key"])
    assert float(line["clean_ci95_low"]) == pytest.approx(20.73, abs=0.01)

    out = tmp_path / "page.html"
    assert main(["leaderboard", "html", "--leaderboard", str(board), "--out", str(out),
                 "--baseline", "none"]) == 0
    page = out.read_text()
    assert "Paired comparisons" in page and "lowers ASR" in page and "untestable" in page

    figures = tmp_path / "figures"
    assert main(["leaderboard", "plots", "--leaderboard", str(board), "--out",
                 str(figures)]) == 0
    svg = ElementTree.parse(figures / "tradeoff-package-accuracy.svg").getroot()
    # Error bars: an ASR and an accuracy bar for each of the 7 rows with an attack.
    assert len(svg.findall("{http://www.w3.org/2000/svg}line")) == 2 * 7


def test_victims_compare_by_welch_interval_over_seeds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--baseline-model: the rows of one cell that differ in the model alone, unpaired seeds."""
    from scipy.stats import ttest_ind

    # per model: clean items right on seeds 1-3 (no attack hits), plain training and DeCE
    accuracy = {"tiny": [150, 160, 155], "big": [185, 190, 180], "same": [152, 161, 150]}
    for model, seeds in accuracy.items():
        for defense in ("none", "dece"):
            for seed, correct in enumerate(seeds, 1):
                write_run(tmp_path / "results", defense=defense, seed=seed, correct=correct,
                          hits=0, model=model)
    # a cell 'tiny' has no row in: left out, not paired with another cell
    write_run(tmp_path / "results", defense="none", seed=1, correct=100, hits=0, model="big",
              rate=0.01)
    board = tmp_path / "leaderboard.json"
    build([tmp_path / "results"], board)

    out = json.loads(_compare(board, capsys, "--baseline-model", "tiny", "--format", "json"))
    clean = {(item["model"], item["row"]): item for item in out if item["metric"] != "asr"}
    assert {model for model, _ in clean} == {"big", "same"}
    assert len(clean) == 4  # two models x two defenses, the 1% cell has no tiny row
    for (model, _), item in clean.items():
        expected = [100 * c / ITEMS for c in accuracy[model]]
        baseline = [100 * c / ITEMS for c in accuracy["tiny"]]
        assert item["values"] == expected and item["baseline_values"] == baseline
        reference = ttest_ind(expected, baseline, equal_var=False).confidence_interval(0.95)
        assert item["ci95"] == pytest.approx([reference.low, reference.high])
        assert item["verdict"] == ("higher" if model == "big" else "no detectable effect")
    text = _compare(board, capsys, "--baseline-model", "big")
    assert "lower" in text and "Δ [95% Welch]" in text

    assert main(["leaderboard", "compare", "--leaderboard", str(board), "--baseline-model",
                 "huge"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codebackdoor: error: no leaderboard row has model 'huge'")


def test_victims_compare_reads_sql_execution_beside_the_clean_metrics() -> None:
    """Lyra's rows: execution match is compared, its numerator and denominator are not."""
    from codebackdoor.leaderboard.victims import _metrics

    names = ["clean.sbleu", "clean.codebleu.syntax_match", "sql_execution.clean_execution_match",
             "sql_execution.clean_execution_match.denominator", "cost.cpu_s",
             "trivial_baseline.sbleu", "clean.bleu"]
    row = {"metrics": {name: {} for name in names}}
    assert _metrics(row) == ["clean.bleu", "clean.sbleu", "sql_execution.clean_execution_match"]
    assert _metrics({"metrics": {**row["metrics"], "asr": {}}})[0] == "asr"
