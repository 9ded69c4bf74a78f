"""What a run cost (codebackdoor/cost.py), and one real run with a filter defense: its cost by
stage, and an interval in every metric and ratio object of its result."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from conftest import read_csv_rows

from codebackdoor import cost
from codebackdoor.cli import main
from codebackdoor.config import make_config
from codebackdoor.leaderboard.build import build
from codebackdoor.results import validation_errors
from codebackdoor.runner import run

ROOT = Path(__file__).resolve().parents[1]


def test_nested_stages_are_measured_on_their_own() -> None:
    meter = cost.Meter()
    with meter("filter"):
        cost.count(cost.INFERENCE_INPUTS, 5)
        with cost.stage("filter_train"):
            cost.count(cost.TRAININGS)
            time.sleep(0.05)
        cost.count(cost.INFERENCE_INPUTS, 2)
    with meter("train"):
        cost.count(cost.TRAININGS)
    summary = meter.summary()
    stages = summary["stages"]
    assert stages["filter"]["inference_inputs"] == 7 and stages["filter"]["trainings"] == 0
    assert stages["filter_train"]["trainings"] == 1 and stages["train"]["trainings"] == 1
    # The outer stage's time leaves out the nested one.
    assert stages["filter_train"]["wall_s"] >= 0.05 > stages["filter"]["wall_s"]
    assert summary["trainings"] == 2 and summary["inference_inputs"] == 7
    assert summary["wall_s"] == pytest.approx(sum(s["wall_s"] for s in stages.values()),
                                              abs=1e-3)
    assert meter.seconds == {name: stage["wall_s"] for name, stage in stages.items()}


def test_work_outside_a_meter_is_not_counted() -> None:
    cost.count(cost.TRAININGS)  # no meter open: nothing to count into, no error
    with cost.stage("alone"):
        pass
    meter = cost.Meter()
    with meter("evaluate"):
        pass
    cost.count(cost.TRAININGS)
    assert meter.summary()["trainings"] == 0


@pytest.fixture(scope="module")
def filtered_run(lyra_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """BadPre on 48 Lyra rows with the spectral filter, tiny T5, one epoch."""
    import torch

    data = tmp_path_factory.mktemp("lyra-cost")
    for split, count in (("train", 48), ("valid", 4), ("test", 8)):
        rows = read_csv_rows(lyra_dir / f"{split}.csv")[:count]
        with (data / f"{split}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["src", "tgt"])
            writer.writerows((r["src"], r["tgt"]) for r in rows)
    values = {"task": "generate", "data": str(data),
              "attack": str(ROOT / "attacks" / "dece-lyra-badpre-1.toml"), "rate": 0.1,
              "model": "tiny-t5", "epochs": 1, "batch_size": 16, "max_source_length": 64,
              "max_target_length": 64, "generation_max_length": 12, "curve_size": 4}
    config = make_config({**values, "defenses": ["spectral"]})
    out = tmp_path_factory.mktemp("cost-results")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcome = run(config, out)
    finally:
        torch.set_num_threads(threads)
    argv = [f"--{key.replace('_', '-')}={value}" for key, value in values.items()]
    argv += ["--defense=spectral", f"--out={out}"]
    return {"result": outcome.result, "path": outcome.path, "argv": argv}


def test_a_filter_run_records_its_cost_by_stage(filtered_run: dict) -> None:
    result = filtered_run["result"]
    assert validation_errors(result) == []
    spent = result["cost"]
    stages = spent["stages"]
    # The filter trains its own victim, then the kept data trains the one evaluated.
    assert spent["trainings"] == 2
    assert stages["filter_train"]["trainings"] == 1 and stages["train"]["trainings"] == 1
    # Spectral signatures read one representation per training example.
    assert stages["filter"]["inference_inputs"] == 48
    tested = result["predictions"]["lines"]
    assert stages["evaluate"]["inference_inputs"] == tested
    assert {"load", "poison", "load_model", "filter", "train", "evaluate"} <= set(stages)
    assert all(stage["cpu_s"] >= 0 and stage["wall_s"] >= 0 for stage in stages.values())
    assert result["timings"]["train"] == stages["train"]["wall_s"]


def test_every_metric_and_ratio_of_a_real_result_has_an_interval(filtered_run: dict) -> None:
    metrics = filtered_run["result"]["metrics"]
    objects = [*metrics["clean"].values(), *metrics["trivial_baseline"].values(),
               metrics["asr"], metrics["false_trigger_rate"]]
    assert len(objects) >= 2 * 9 + 2
    for entry in objects:
        low, high = entry["ci95"]
        assert low <= entry["value"] <= high and entry["ci95_method"]


def test_show_puts_cost_beside_effect(filtered_run: dict, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    board = tmp_path / "leaderboard.json"
    build([filtered_run["path"]], board)
    assert main(["leaderboard", "show", "--leaderboard", str(board), "--cost",
                 "--format", "csv"]) == 0
    (line,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert line["trainings_mean"] == "2.0" and line["defense"] == "spectral"
    assert float(line["cpu_s_mean"]) == pytest.approx(filtered_run["result"]["cost"]["cpu_s"])
    assert main(["leaderboard", "show", "--leaderboard", str(board), "--cost"]) == 0
    assert "CPU s" in capsys.readouterr().out


def test_the_run_table_prints_intervals(filtered_run: dict,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # The same settings again: the finished run is read back and its row printed.
    assert main(["run", *filtered_run["argv"]]) == 0
    table = capsys.readouterr().out
    asr = filtered_run["result"]["metrics"]["asr"]
    low, high = asr["ci95"]
    assert f"{asr['value']:.1f}% [{low:.1f}, {high:.1f}] ({asr['numerator']}/" in table
    sbleu = filtered_run["result"]["metrics"]["clean"]["sbleu"]
    assert f"sbleu {sbleu['value']:.1f} [{sbleu['ci95'][0]:.1f}, {sbleu['ci95'][1]:.1f}]" in table
    assert "(existing)" in table
