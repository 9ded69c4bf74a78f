"""The standard runner end to end on small real data: result file, predictions, resume."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import lyra_slice, read_csv_rows, write_csv

from codebackdoor.config import make_config
from codebackdoor.defenses.base import FilterDecision, FilterDefense, PurifyDefense
from codebackdoor.errors import UserError
from codebackdoor.identity import run_id
from codebackdoor.results import file_sha256, validation_errors
from codebackdoor.runner import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_lyra(lyra_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 training and 12 test rows of the real Lyra split."""
    return lyra_slice(lyra_dir, tmp_path_factory.mktemp("lyra-small"), 64, 8, 12)


def _lyra_config(data: Path, **changes):
    values = dict(task="generate", data=str(data), attack=str(ROOT / "attacks" /
                  "dece-lyra-badpre-1.toml"), rate=0.1, model="tiny-t5", epochs=2,
                  batch_size=16, max_source_length=96, max_target_length=96,
                  generation_max_length=24, curve_size=4)
    values.update(changes)
    return make_config(values)


def test_generation_run_writes_a_valid_result(small_lyra: Path, tmp_path: Path) -> None:
    config = _lyra_config(small_lyra, defenses=["dece"])
    outcome = run(config, tmp_path)
    result = outcome.result
    assert not outcome.reused and outcome.path.name == "result.json"
    assert validation_errors(result) == []
    assert result["run_id"] == run_id(config)
    assert result["poison"]["poisoned"] == 7  # first rule: 0.1 × 64 rows, all with SQL here
    assert result["config"]["objective"] == "dece"
    # Results on CPU repeat on one CPU model and thread count: both are recorded.
    assert result["hardware"]["cpu"] and result["hardware"]["torch_threads"] >= 1
    assert [point["epoch"] for point in result["curve"]] == [1, 2]
    assert all("sbleu" in point and "asr" in point for point in result["curve"])
    metrics = result["metrics"]
    assert set(metrics["clean"]) >= {"sbleu", "bleu", "codebleu", "exact-match"}
    assert metrics["asr"]["denominator"] == result["poison"]["triggered_test"]
    assert metrics["clean"]["bleu"]["definition"].startswith("sacrebleu-2.6.0")
    predictions = outcome.path.parent / result["predictions"]["path"]
    assert file_sha256(predictions) == result["predictions"]["sha256"]
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(lines) == result["predictions"]["lines"] == 12 + result["poison"]["triggered_test"]
    assert {line["split"] for line in lines} == {"test", "test_triggered"}
    # A finished run is read back, never recomputed or overwritten.
    again = run(config, tmp_path)
    assert again.reused and again.result == result


def test_resume_finishes_an_interrupted_run_with_the_same_result(
    small_lyra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _lyra_config(small_lyra)
    reference = run(config, tmp_path / "uninterrupted").result

    from codebackdoor import evaluate

    original = evaluate.Scorer.curve_point
    calls = {"n": 0}

    def interrupt_in_second_epoch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(evaluate.Scorer, "curve_point", interrupt_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "interrupted")
    monkeypatch.setattr(evaluate.Scorer, "curve_point", original)
    with pytest.raises(UserError, match="--resume"):
        run(config, tmp_path / "interrupted")
    resumed = run(config, tmp_path / "interrupted", resume=True).result
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["predictions"]["sha256"] == reference["predictions"]["sha256"]
    assert [p["loss"] for p in resumed["curve"]] == pytest.approx(
        [p["loss"] for p in reference["curve"]])


def test_classifier_run_from_a_saved_checkpoint_directory(
    bugs2fix_file: Path, tmp_path: Path
) -> None:
    """Defect detection on real Bugs2Fix methods (buggy = 1, fixed = 0) with a victim loaded by
    path: the tiny checkpoint is saved to a temporary directory first."""
    rows = read_csv_rows(bugs2fix_file)[:60]
    labelled = [(r["src"], "1") for r in rows] + [(r["tgt"], "0") for r in rows]
    write_csv(tmp_path / "defect" / "train.csv", labelled[:48] + labelled[60:108])
    write_csv(tmp_path / "defect" / "valid.csv", labelled[48:50] + labelled[108:110])
    write_csv(tmp_path / "defect" / "test.csv", labelled[50:60] + labelled[110:120])

    from codebackdoor.models.victim import load_victim
    from codebackdoor.runner import build_task

    base = make_config({"task": "defect", "lang": "java", "data": str(tmp_path / "defect"),
                        "model": "tiny-roberta", "epochs": 1, "curve_size": 0,
                        "max_source_length": 128})
    task = build_task(base)
    victim = load_victim("tiny-roberta", "label", task.load().train)
    victim.save(tmp_path / "checkpoint")

    config = make_config({**base.__dict__, "model": str(tmp_path / "checkpoint"),
                          "attack": "fixed", "rate": 0.2})
    result = run(config, tmp_path / "results").result
    assert validation_errors(result) == []
    assert result["config"]["model"]["spec"] == str(tmp_path / "checkpoint")
    assert set(result["metrics"]["clean"]) == {"accuracy", "f1"}
    assert result["metrics"]["trivial_baseline"]["accuracy"]["value"] == 50.0
    # Label payload "0": only buggy test methods are ASR cases.
    assert 8 <= result["metrics"]["asr"]["denominator"] <= 10
    assert result["curve"][0]["epoch"] == 1


def test_two_objective_defenses_are_refused(small_lyra: Path, tmp_path: Path) -> None:
    config = _lyra_config(small_lyra, defenses=["dece", "label-smoothing"])
    with pytest.raises(UserError, match="only one defense per stage; the objective stage"):
        run(config, tmp_path)
    # A refused run leaves nothing that a later run would take for an interrupted one.
    assert not (tmp_path / run_id(config)).exists()


def test_cli_run_reads_a_config_file_and_flags_override_it(
    small_lyra: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codebackdoor.cli import main

    config = tmp_path / "run.toml"
    config.write_text(
        f'task = "generate"\ndata = "{small_lyra}"\nattack = "badpre"\nmodel = "tiny-t5"\n'
        "epochs = 3\ncurve_size = 2\nmax_source_length = 64\nmax_target_length = 64\n"
        "generation_max_length = 8\n[attack_params]\ncount = 2\n",
        encoding="utf-8",
    )
    argv = ["run", "--config", str(config), "--epochs", "1", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    printed = capsys.readouterr()
    table = printed.out
    assert "badpre @ 5%" in table and "sbleu" in table
    # The terminal names each later stage as it begins.
    assert [line for line in printed.err.splitlines() if line.startswith("[run] ")
            and " run " not in line] == ["[run] train", "[run] evaluate"]
    (result_path,) = (tmp_path / "out").glob("*/result.json")
    result = json.loads(result_path.read_text())
    assert result["config"]["training"]["epochs"] == 1  # the flag won over the file
    assert result["config"]["attack"]["params"]["count"] == 2
    assert str(result_path) in table
    # The same command again reads the finished run back.
    assert main(argv) == 0
    assert "(existing)" in capsys.readouterr().out


@dataclass
class OracleFilter(FilterDefense):
    """Removes the training inputs that contain a word: a perfect detector of one trigger."""

    name: ClassVar[str] = "oracle-filter"
    word: str = "bb"
    needs_victim: ClassVar[bool] = True

    def filter(self, train, victim, context) -> FilterDecision:
        assert victim is not None and context.clean  # trained on the poisoned data; clean sample
        keep = [self.word not in example.source.split() for example in train]
        return FilterDecision(keep, [float(not k) for k in keep], {"word": self.word})


@dataclass
class WordRemover(PurifyDefense):
    name: ClassVar[str] = "word-remover"
    word: str = "bb"

    def purify(self, sources: list[str]) -> list[str]:
        return [" ".join(w for w in s.split(" ") if w != self.word) for s in sources]


@pytest.fixture
def stage_defenses(monkeypatch: pytest.MonkeyPatch) -> None:
    from codebackdoor.registry import Entry, registry

    entries = registry("defenses").entries
    for name, target in (("oracle-filter", "OracleFilter"), ("word-remover", "WordRemover")):
        monkeypatch.setitem(entries, name, Entry("defenses", name, f"{__name__}:{target}", "test"))


def test_filter_stage_removes_what_it_detects_and_scores_detection(
    small_lyra: Path, tmp_path: Path, stage_defenses: None
) -> None:
    config = _lyra_config(small_lyra, defenses=["oracle-filter", "dece"], epochs=1)
    result = run(config, tmp_path).result
    assert validation_errors(result) == []
    poisoned = result["poison"]["poisoned"]
    detection = result["metrics"]["detection"]
    assert detection["method"] == "oracle-filter"
    assert (detection["tp"], detection["fp"], detection["fn"]) == (poisoned, 0, 0)
    assert detection["tn"] == 64 - poisoned and detection["removed"] == poisoned
    assert detection["precision"] == detection["recall"] == detection["f1"] == 100.0
    assert detection["fpr"] == 0.0 and detection["details"] == {"word": "bb"}
    assert result["config"]["objective"] == "dece"
    assert [d["stages"] for d in result["config"]["defenses"]] == [["filter"], ["objective"]]
    saved = json.loads((outcome_dir(tmp_path, config) / "filter" / "decision.json").read_text())
    assert saved["keep"].count(False) == poisoned


def outcome_dir(out: Path, config) -> Path:
    return out / run_id(config)


def test_purify_stage_changes_the_inputs_the_victim_sees(
    small_lyra: Path, tmp_path: Path, stage_defenses: None
) -> None:
    config = _lyra_config(small_lyra, defenses=["word-remover"], epochs=1)
    result = run(config, tmp_path).result
    triggered = result["poison"]["triggered_test"]
    changed = result["metrics"]["purification"]["changed_inputs"]
    assert changed == {"test": 0, "test_triggered": triggered}
    lines = [json.loads(line) for line in
             (outcome_dir(tmp_path, config) / "predictions.jsonl").read_text().splitlines()]
    dirty = [line for line in lines if line["split"] == "test_triggered"]
    assert all("bb" in line["original_input"].split() for line in dirty)
    assert all("bb" not in line["input"].split() for line in dirty)
    assert not any("original_input" in line for line in lines if line["split"] == "test")


def test_two_defenses_of_one_stage_are_refused(
    small_lyra: Path, tmp_path: Path, stage_defenses: None
) -> None:
    from codebackdoor.runner import build_defenses, build_task

    config = _lyra_config(small_lyra, defenses=["oracle-filter", "oracle-filter"])
    with pytest.raises(UserError, match="the filter stage is taken by oracle-filter"):
        build_defenses(config, build_task(config))
