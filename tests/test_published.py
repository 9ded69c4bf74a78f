"""leaderboard/published.json against the transcriptions in ../shared/published, and how
`leaderboard compare` and the HTML page put published rows beside local ones."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from conftest import SHARED, read_csv_rows

from codebackdoor.cli import main
from codebackdoor.leaderboard.compare import compare, report, setting_differences
from codebackdoor.leaderboard.html import page
from codebackdoor.leaderboard.published import comparable, read_published
from codebackdoor.metrics.classification import subtoken_f1_distinct

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "leaderboard" / "published.json"
TRANSCRIPTIONS = SHARED / "published"
KBC_TASKS = {"Defect": "Defect Detection", "Clone": "Clone Detection", "Search": "Code Search",
             "Repair": "Code Repair"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return read_published(PUBLISHED)


def transcription(name: str) -> list[dict[str, str]]:
    path = TRANSCRIPTIONS / name
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return read_csv_rows(path)


def _by_prefix(rows: list[dict], prefix: str) -> list[dict]:
    return [row for row in rows if row["id"].startswith(prefix)]


def test_killbadcode_rows_equal_the_table_xiv_transcription(rows: list[dict]) -> None:
    published = {(r["source"]["row"], r["source"]["column"]): r
                 for r in _by_prefix(rows, "killbadcode-table14-")}
    lines = transcription("killbadcode_table14.csv")
    assert len(lines) == len(published) == 120
    for line in lines[::7]:  # a sample spread over all four tasks and five defenses
        row = published[(f"{KBC_TASKS[line['task']]} / {line['attack']}", line["defense"])]
        hours, minutes = re.fullmatch(r"(\d+)h(\d+)m", line["time"]).groups()
        assert {name: row["metrics"][name]["value"] for name in
                ("fpr", "recall", "precision", "f1", "time_minutes")} == {
            "fpr": float(line["fpr"]), "recall": float(line["recall"]),
            "precision": float(line["precision"]), "f1": float(line["f1"]),
            "time_minutes": 60 * int(hours) + int(minutes)}
        assert row["metrics"]["time_minutes"]["reported_as"] == f"Time ({line['time']})"


def test_ramakrishnan_rows_equal_the_log_transcription(rows: list[dict]) -> None:
    published = {row["rate"]: row for row in _by_prefix(rows, "ramakrishnan-java-small-")}
    lines = transcription("ramakrishnan_java_small_eval_results.csv")
    assert len(published) == 6 and len(lines) == 12
    for line in lines:
        metrics = published[round(float(line["x"]) / 100, 6)]["metrics"]
        suffix = "" if line["test_set"] == "clean test" else "_poisoned"
        success = "backdoor_success_clean" if suffix == "" else "backdoor_success"
        assert metrics[f"f1{suffix}"]["value"] == float(line["f1"])
        assert metrics[f"exact_match{suffix}"]["value"] == float(line["exact_match"])
        assert metrics[success]["value"] == float(line["backdoor_success_rate"])


def test_afraidoor_rows_equal_the_results_md_transcription(rows: list[dict]) -> None:
    published = {row["source"]["row"]: row for row in _by_prefix(rows, "afraidoor-results-md-")}
    lines = transcription("afraidoor_results_md.csv")
    assert len(lines) == len(published) == 7
    for line in lines:
        metrics = published[f"Type {line['type']}, alpha {line['alpha']}"]["metrics"]
        assert metrics["f1"]["value"] == float(line["f1_clean"])
        if line["f1_poison"] == "–":
            assert "f1_poisoned" not in metrics
        else:
            assert metrics["f1_poisoned"]["value"] == float(line["f1_poison"])


def test_every_row_is_verified_with_full_provenance(rows: list[dict]) -> None:
    assert len(rows) > 100 and len({row["id"] for row in rows}) == len(rows)
    counts = {prefix: len(_by_prefix(rows, prefix)) for prefix in
              ("dece-", "killbadcode-", "ramakrishnan-", "afraidoor-", "codexglue-")}
    assert counts == {"dece-": 7, "killbadcode-": 120, "ramakrishnan-": 6, "afraidoor-": 7,
                      "codexglue-": 42}
    for row in rows:
        assert row["verified"] and row["verification"]
        assert re.fullmatch(r"[0-9a-f]{40}", row["source"]["commit"])
        assert all(metric["definition"] for metric in row["metrics"].values())
    # The settings the suite cannot run stay, marked.
    clone = next(r for r in rows if r["id"] == "killbadcode-table14-clone-bnc-fixed-ac")
    assert clone["unrunnable"] == "clone detection is not a task of the suite"
    # Both schema paths are one file (the package ships it; the leaderboard folder shows it).
    assert ((ROOT / "leaderboard" / "published.schema.json").read_bytes()
            == (ROOT / "codebackdoor" / "schemas" / "published.schema.json").read_bytes())


def _local_defect_row() -> dict:
    """A real leaderboard row (KillBadCode on method names) relabelled as a defect-detection
    cell, so that it has the detection metrics and definitions the suite writes."""
    board = json.loads((ROOT / "leaderboard" / "method-name.json").read_text())
    row = copy.deepcopy(next(r for r in board["rows"] if r["defense"] == "killbadcode"))
    row.update(task="defect", key="0123456789abcdef")
    return row


def test_a_metric_is_compared_only_where_computed_alike(rows: list[dict]) -> None:
    local = _local_defect_row()
    kbc = next(r for r in rows if r["id"] == "killbadcode-table14-defect-bnc-fixed-killbadcode")
    entry, how = comparable(kbc["metrics"]["fpr"], local)
    assert entry == local["metrics"]["detection.fpr"] and how == "detection.fpr"
    assert comparable(kbc["metrics"]["time_minutes"], local) == (
        None, "computed differently in the source")
    redefined = copy.deepcopy(local)
    redefined["identity"]["definitions"]["detection"] = "detection-v2: another rule"
    entry, why = comparable(kbc["metrics"]["fpr"], redefined)
    assert entry is None and why.startswith("local detection.fpr is defined as detection-v2")


def test_compare_prints_differences_and_unmatched_rows(rows: list[dict]) -> None:
    local = _local_defect_row()
    comparison = compare(rows, [local])
    matched = {published["id"] for published, _ in comparison.pairs}
    # Same task, attack and defense; the published row's C falls back to the local Python.
    assert matched == {"killbadcode-table14-defect-bnc-fixed-killbadcode"}
    published = next(p for p, _ in comparison.pairs)
    assert setting_differences(published, local) == [
        "model CodeBERT vs tiny-t5", "data code_x_glue_cc_defect_detection vs embedded-python",
        "language c vs python", "rate 2% vs 5%",
        "rate counted differently (published rate_definition)"]
    text = report(comparison, "table")
    fpr = local["metrics"]["detection.fpr"]["mean"]
    line = next(x for x in text.splitlines() if "fpr (F (%))" in x)
    assert f"{fpr - 3.03:+.2f}" in line and "model CodeBERT vs tiny-t5" in line
    assert "time_minutes (Time (0h20m))" in text and "computed differently" in text
    assert ("killbadcode-table14-clone-bnc-fixed-ac: clone (java) on "
            "code_x_glue_cc_clone_detection_big_clone_bench" in text)
    assert "the suite cannot run it: clone detection is not a task of the suite" in text
    # Of several local rates, the nearest to the published 2% is the counterpart.
    at_two = copy.deepcopy(local)
    at_two.update(key="fedcba9876543210", rate=0.02)
    assert [row["key"] for _, row in compare(rows, [local, at_two]).pairs] == [at_two["key"]]
    # A clean reference row compares data quality: it never matches another language.
    clean_python = copy.deepcopy(local)
    clean_python.update(task="generate", attack="none", rate=None, defense="none")
    assert not [p for p, _ in compare(rows, [clean_python]).pairs
                if p["id"].startswith("codexglue-concode-")]


def test_page_marks_published_rows_as_their_own_series(rows: list[dict]) -> None:
    local = _local_defect_row()
    html = page([local], "test", rows)
    assert 'class="published"' in html
    assert 'data-published="killbadcode-table14-defect-bnc-fixed-killbadcode"' in html
    detection = re.search(r'<svg[^>]*aria-label="defect: detection recall vs FPR".*?</svg>', html)
    assert detection and "<polygon" in detection.group(0)
    assert "published: KillBadCode" in detection.group(0)
    assert 'data-published' not in page([local], "test", [])


def test_compare_on_the_committed_leaderboards(capsys: pytest.CaptureFixture[str]) -> None:
    for board in sorted((ROOT / "leaderboard").glob("*.json")):
        if board.name in ("published.json", "schema.json", "published.schema.json"):
            continue
        assert main(["leaderboard", "compare", "--leaderboard", str(board), "--against",
                     str(PUBLISHED)]) == 0
        assert "published row(s) have no local counterpart yet" in capsys.readouterr().out


@pytest.mark.parametrize(("suite", "cells"), [("killbadcode-detection", 72),
                                              ("ramakrishnan-method-name", 21)])
def test_the_mirror_suites_plan(suite: str, cells: int,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(ROOT / "benchmarks" / f"{suite}.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{cells} cells" in out


def test_seq2seq_f1_stays_apart_from_subtoken_f1_distinct(rows: list[dict]) -> None:
    """Ramakrishnan's and AFRAIDOOR's evaluator counts distinct subtokens as
    subtoken-f1-distinct does, but on whitespace tokens of vocabulary-mapped references
    (docs/published.md), so their F1 is shown alone."""
    seq2seq_f1 = [metric for row in rows if row["id"].startswith(("ramakrishnan-", "afraidoor-"))
                  for name, metric in row["metrics"].items() if name.startswith("f1")]
    assert len(seq2seq_f1) == 25
    assert not [metric for metric in seq2seq_f1 if "local" in metric]
    assert all("'<unk>'" in metric["definition"] for metric in seq2seq_f1)
    # The tokenisation difference the page gives: their whitespace tokens score 1 of 2 here.
    assert subtoken_f1_distinct(["utf8 stream"], ["utf8 reader"])["precision"] == (
        pytest.approx(100 * 2 / 3))
