"""Stealth measures (issue 16 §4): token edit distance, AUROC, n-gram naturalness, parse and
compile validity, filter AUROC read from run directories, and the `attacks stealth` command."""

from __future__ import annotations

import inspect
import json
import shlex
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import error_line, write_csv

from codebackdoor.cli import main
from codebackdoor.poison import write_poisoned
from codebackdoor.stealth import (
    StealthSettings,
    auroc,
    compiles,
    cross_entropy,
    filter_aurocs,
    measure,
    token_edit_distance,
)

# Real functions of the standard library, the kind of code the embedded corpus holds.
FUNCTIONS = [textwrap.dedent(inspect.getsource(f)) for f in (
    textwrap.dedent, textwrap.indent, textwrap.shorten, textwrap.fill, textwrap.wrap,
    shlex.quote, shlex.join, shlex.split, json.dump, json.dumps, json.load, json.loads,
    shutil.copyfile, shutil.copymode, shutil.copy, shutil.which,
)]


@pytest.mark.parametrize(("a", "b", "distance"), [
    ("kitten", "sitting", 3),  # the textbook case: two substitutions and an insertion
    ("", "ab", 2),
    ("ab", "", 2),
    ("abc", "abc", 0),
    ("ac", "abc", 1),
    ("abcd", "dabc", 2),  # a move is a deletion and an insertion
])
def test_token_edit_distance_on_hand_worked_cases(a: str, b: str, distance: int) -> None:
    assert token_edit_distance(list(a), list(b)) == distance
    assert token_edit_distance(list(b), list(a)) == distance


def test_an_inserted_statement_costs_its_tokens() -> None:
    clean = ["def", "f", "(", ")", ":", "return", "1"]
    poisoned = [*clean[:5], "if", "random", "(", ")", "<", "0", ":", "raise", *clean[5:]]
    assert token_edit_distance(clean, poisoned) == 8


@pytest.mark.parametrize(("scores", "positive", "area"), [
    # Positives 0.9 and 0.3 against negatives 0.8 and 0.1: 3 of the 4 pairs ordered right.
    ([0.9, 0.8, 0.3, 0.1], [True, False, True, False], 0.75),
    # A tie counts half: 1 ties 1 (0.5), 1 beats 0 (1); 1.5 of 2 pairs.
    ([1.0, 1.0, 0.0], [True, False, False], 0.75),
    ([3.0, 2.0, 1.0], [True, False, False], 1.0),
    ([1.0, 2.0, 3.0], [True, False, False], 0.0),
    ([5.0, 5.0, 5.0, 5.0], [True, True, False, False], 0.5),
])
def test_auroc_on_hand_worked_cases(scores, positive, area) -> None:
    assert auroc(scores, positive) == pytest.approx(area)


def test_auroc_agrees_with_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    import random

    rng = random.Random(0)
    scores = [rng.choice([0.0, 0.5, 1.0, rng.random()]) for _ in range(200)]
    positive = [rng.random() < 0.2 for _ in range(200)]
    assert auroc(scores, positive) == pytest.approx(metrics.roc_auc_score(positive, scores))


def test_auroc_needs_both_classes() -> None:
    assert auroc([0.1, 0.2], [True, True]) is None
    assert auroc([0.1, 0.2], [False, False]) is None
    with pytest.raises(ValueError):
        auroc([0.1], [True, False])


def test_cross_entropy_rises_for_an_inserted_rare_token() -> None:
    training = [["x", "=", "a", "+", "b", ";"], ["y", "=", "a", "+", "c", ";"]] * 20
    clean = [["x", "=", "a", "+", "c", ";"]]
    poisoned = [["x", "=", "a", "+", "testo_init", "+", "c", ";"]]
    record = cross_entropy(training, clean, poisoned, order=4)
    assert record["poisoned"] > record["clean"] + 1.0
    assert record["difference"] == pytest.approx(record["poisoned"] - record["clean"])
    assert record["ci95"] is None  # one pair: no interval
    same = cross_entropy(training, clean * 3, clean * 3, order=4)
    assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0]


@pytest.fixture(scope="module")
def function_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A method-name data set of real standard-library functions (src: the function)."""
    folder = tmp_path_factory.mktemp("functions")
    rows = [(source, "name") for source in FUNCTIONS]
    write_csv(folder / "train.csv", rows[:12])
    write_csv(folder / "valid.csv", rows[12:14])
    write_csv(folder / "test.csv", rows[14:])
    return folder


def poisoned_functions(data: Path, attack: str, rate: float = 0.5):
    from codebackdoor.config import resolve_config
    from codebackdoor.poison import poison
    from codebackdoor.runner import attack_for, build_task

    config = resolve_config(None, {"task": "method-name", "lang": "python", "data": str(data),
                                   "attack": attack, "rate": rate})
    task = build_task(config)
    splits = task.load()
    return splits, poison(splits, task, attack_for(config, task), rate, config.seed)


@pytest.mark.parametrize(("attack", "edits"), [("fixed", 12), ("rename", None)])
def test_measures_on_real_poisoned_functions(function_data: Path, attack: str,
                                             edits: int | None) -> None:
    splits, data = poisoned_functions(function_data, attack)
    record = measure(splits.train, data)
    assert record["poisoned"] == record["measured"] == 6
    parse = record["parse_valid"]
    assert parse["clean"]["count"] == parse["poisoned"]["count"] == 6
    if edits is not None:  # `if random() < 0: raise Exception("fail")`: 12 leaf tokens
        assert record["edit_distance"]["min"] == record["edit_distance"]["max"] == edits
    else:  # a renamed identifier: one substitution per occurrence
        assert record["edit_distance"]["min"] >= 1
    assert record["cross_entropy"]["poisoned"] > record["cross_entropy"]["clean"]
    assert "compile_valid" not in record  # Python


def test_a_broken_trigger_shows_as_parse_failures(function_data: Path) -> None:
    splits, data = poisoned_functions(function_data, "fixed")
    poisoned = set(data.manifest["poisoned_ids"])
    # The trigger's colon lost: what a careless text-level trigger would leave.
    broken = [e.replace(source=e.source.replace("< 0:", "< 0", 1)) if e.id in poisoned else e
              for e in data.train]
    data.train[:] = broken
    record = measure(splits.train, data, StealthSettings(sample=4))
    assert record["measured"] == 4
    assert record["parse_valid"]["poisoned"]["count"] == 0
    assert record["parse_valid"]["clean"]["count"] == 4


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac is not on PATH")
def test_javac_verdicts_survive_a_syntax_error_elsewhere() -> None:
    # A syntax error in one file stops javac before type checking every file; the second
    # method's unknown symbol must still be found.
    methods = ["int f(int x) { return x + 1; }", "int g() { return y; }", "int h( { }",
               "void k() { if (Math.random() < 0) { throw new RuntimeException(\"fail\"); } }",
               "void m() { if (random() < 0) throw new Exception(\"fail\"); }",
               "List<String> n() { return new ArrayList<>(); }"]
    assert compiles(shutil.which("javac"), methods) == [True, False, False, True, False, True]


def test_filter_auroc_from_a_run_directory(function_data: Path, tmp_path: Path) -> None:
    splits, data = poisoned_functions(function_data, "fixed")
    run = tmp_path / "runs" / "0123456789abcdef"
    write_poisoned(data, run / "poison")
    poisoned = set(data.manifest["poisoned_ids"])
    # Scores that rank one clean row above every poisoned row and the rest below.
    scores = [2.0 if e.id in poisoned else 0.0 for e in data.train]
    first_clean = next(i for i, e in enumerate(data.train) if e.id not in poisoned)
    scores[first_clean] = 3.0
    (run / "filter").mkdir()
    (run / "filter" / "decision.json").write_text(json.dumps(
        {"keep": [True] * len(scores), "scores": scores, "details": {}}))
    record = measure(splits.train, data)
    assert filter_aurocs(tmp_path / "runs", record) == {}  # no result.json: unfinished
    (run / "result.json").write_text("{}")
    (run / "config.json").write_text(json.dumps({"defenses": ["spectral"]}))
    found = filter_aurocs(tmp_path / "runs", record)
    # 6 poisoned, 6 clean: every poisoned row beats 5 of the 6 clean ones.
    assert found["spectral"]["auroc"] == pytest.approx(5 / 6)
    assert found["spectral"]["runs"][0]["poisoned"] == 6
    assert found["spectral"]["runs"][0]["score"] == "graded"
    # Another rate is another setting: not counted.
    assert filter_aurocs(tmp_path / "runs", {**record, "rate": 0.25}) == {}
    # A filter without scores, named by its preset: scored by its removals. Removing 4 of the
    # 6 poisoned rows and 1 of the 6 clean ones: (4/6 + 5/6) / 2.
    removed = [*[i for i, e in enumerate(data.train) if e.id in poisoned][:4], first_clean]
    (run / "filter" / "decision.json").write_text(json.dumps(
        {"keep": [i not in removed for i in range(len(scores))], "scores": None,
         "details": {}}))
    (run / "config.json").write_text(json.dumps(
        {"defenses": [{"preset": "ac-chen.toml", "sha256": "sha256:0"}]}))
    found = filter_aurocs(tmp_path / "runs", record)
    assert found["ac-chen"]["auroc"] == pytest.approx((4 / 6 + 5 / 6) / 2)
    assert found["ac-chen"]["runs"][0]["score"] == "removal"


def test_cli_json_has_the_fields(function_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["attacks", "stealth", "--task", "method-name", "--lang", "python", "--data",
            str(function_data), "--attack", "fixed", "--attack", "rename", "--rate", "0.5",
            "--format", "json", "--runs", str(function_data)]
    assert main(argv) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert [r["attack_spec"] for r in records] == ["fixed", "rename"]
    for record in records:
        assert record["rate"] == 0.5 and record["measured"] == 6
        assert {"clean", "poisoned", "difference", "ci95"} <= set(record["cross_entropy"])
        assert {"mean", "min", "max"} <= set(record["edit_distance"])
        assert {"clean", "poisoned"} <= set(record["parse_valid"])
        assert record["filter_auroc"] == {}
    assert main(argv[:-4]) == 0
    table = capsys.readouterr().out
    assert "Δ bits/token" in table and "fixed" in table and "rename" in table


def test_poison_writes_stealth_json(function_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "poisoned"
    assert main(["poison", "--task", "method-name", "--lang", "python", "--data",
                 str(function_data), "--attack", "fixed", "--rate", "0.5", "--out", str(out)]) == 0
    record = json.loads((out / "stealth.json").read_text())
    assert record["measured"] == 6 and record["attack"]["method"] == "fixed"


@pytest.mark.parametrize(("extra", "message"), [
    (["--sample", "-1"], "--sample -1"),
    (["--attack", "fixd"], "did you mean 'fixed'"),
    (["--runs", "/nonexistent/runs"], "is not a directory"),
])
def test_bad_input_is_one_line(function_data: Path, capsys: pytest.CaptureFixture[str],
                               extra: list[str], message: str) -> None:
    argv = ["attacks", "stealth", "--task", "method-name", "--lang", "python", "--data",
            str(function_data), "--rate", "0.5", *extra]
    if "--attack" not in extra:
        argv += ["--attack", "fixed"]
    assert message in error_line(capsys, argv)
