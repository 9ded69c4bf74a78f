"""The leaderboard on real result files: row identity, merging, locking, show, compare."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import multiprocessing
import shutil
import statistics
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import error_line
from leaderboard_runs import make_runs

from codebackdoor.cli import main
from codebackdoor.errors import UserError
from codebackdoor.leaderboard.build import build, locked
from codebackdoor.leaderboard.compare import compare
from codebackdoor.leaderboard.published import read_published
from codebackdoor.leaderboard.rows import cell_identity, cell_key, labels
from codebackdoor.leaderboard.show import order, select

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "leaderboard" / "published.json"


@pytest.fixture(scope="session")
def runs(lyra_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_runs(lyra_dir, tmp_path_factory.getbasetemp() / "leaderboard-runs")


@pytest.fixture(scope="session")
def results(runs: dict[str, Path]) -> dict[str, dict]:
    return {label: json.loads(path.read_text()) for label, path in runs.items()}


def _copy_runs(runs: dict[str, Path], labels: list[str], into: Path) -> Path:
    for label in labels:
        shutil.copytree(runs[label].parent, into / runs[label].parent.name)
    return into


def _key(result: dict) -> str:
    return cell_key(cell_identity(result))


def _board(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def board(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("board") / "leaderboard.json"
    build([next(iter(runs.values())).parents[1]], out)
    return out


def test_seeds_share_a_cell_and_everything_else_splits_it(results: dict[str, dict]) -> None:
    assert _key(results["ce-seed1"]) == _key(results["ce-seed2"])
    assert len({_key(results[label]) for label in ("clean", "ce-seed1", "dece")}) == 3
    identity = cell_identity(results["ce-seed1"])
    assert "seed" not in json.dumps(identity["training"])
    assert identity["dataset"]["alias"] == "lyra"
    assert identity["definitions"]["clean.sbleu"].startswith("nltk-")
    assert cell_identity(results["clean"])["rate"] is None

    other_definition = copy.deepcopy(results["ce-seed1"])
    other_definition["metrics"]["clean"]["bleu"]["definition"] = "sacrebleu-9.9.9"
    assert _key(other_definition) != _key(results["ce-seed1"])
    longer = copy.deepcopy(results["ce-seed1"])
    longer["config"]["training"]["epochs"] = 20
    assert _key(longer) != _key(results["ce-seed1"])
    # Cross-entropy named explicitly is the same as no defense.
    explicit_ce = copy.deepcopy(results["ce-seed1"])
    explicit_ce["config"]["defenses"] = [{"method": "ce", "citation": "", "params": {}}]
    assert _key(explicit_ce) == _key(results["ce-seed1"])


def test_two_builds_of_one_pretrained_checkpoint_are_two_cells(results: dict[str, dict]) -> None:
    def built(card_sha256: str) -> dict:
        result = copy.deepcopy(results["ce-seed1"])
        result["config"]["model"]["spec"] = "pretrained:tiny-t5"
        result["config"]["requested"]["model_files"] = {"card_sha256": card_sha256}
        return result

    first, rebuilt = built("a" * 64), built("b" * 64)
    assert _key(first) == _key(built("a" * 64)) != _key(rebuilt)
    # Rows without a recorded checkpoint (presets, hub ids, earlier results) keep their keys.
    assert "files" not in cell_identity(results["ce-seed1"])["model"]
    first_label = labels(cell_identity(first))["model"]
    assert first_label.startswith("pretrained:tiny-t5 @")
    assert first_label != labels(cell_identity(rebuilt))["model"]


def test_build_aggregates_seeds_as_mean_std_n(board: Path, results: dict[str, dict],
                                              runs: dict[str, Path]) -> None:
    rows = {row["key"]: row for row in _board(board)["rows"]}
    assert len(rows) == 3
    ce = rows[_key(results["ce-seed1"])]
    assert (ce["n"], ce["seeds"], ce["attack"], ce["defense"]) == (2, [1, 2], "badpre", "none")
    assert sorted(ce["run_ids"]) == sorted(results[f"ce-seed{s}"]["run_id"] for s in (1, 2))
    assert {run["source"] for run in ce["runs"]} == {str(runs["ce-seed1"]), str(runs["ce-seed2"])}
    values = [results[f"ce-seed{s}"]["metrics"]["clean"]["sbleu"]["value"] for s in (1, 2)]
    sbleu = ce["metrics"]["clean.sbleu"]
    assert sbleu["mean"] == pytest.approx(statistics.fmean(values))
    assert sbleu["std"] == pytest.approx(statistics.stdev(values))
    assert sbleu["n"] == 2
    assert ce["metrics"]["asr.denominator"]["mean"] == results["ce-seed1"]["metrics"]["asr"][
        "denominator"]
    assert [point["epoch"] for point in ce["curve"]] == [1, 2]
    assert ce["curve"][0]["sbleu"]["n"] == 2
    dece = rows[_key(results["dece"])]
    assert dece["n"] == 1 and dece["metrics"]["clean.sbleu"]["std"] is None
    clean = rows[_key(results["clean"])]
    assert clean["attack"] == "none" and clean["rate"] is None and "asr" not in clean["metrics"]


def test_build_is_idempotent_and_counts_a_run_once(board: Path, runs: dict[str, Path],
                                                   tmp_path: Path) -> None:
    out = tmp_path / "leaderboard.json"
    shutil.copy(board, out)
    build([runs["clean"].parents[1]], out)
    assert out.read_bytes() == board.read_bytes()
    # The same run read from a copy elsewhere is still one run.
    copies = _copy_runs(runs, ["ce-seed1"], tmp_path / "copies")
    build([copies], out)
    assert out.read_bytes() == board.read_bytes()


def _build_after(barrier: multiprocessing.synchronize.Barrier, source: str, out: str) -> None:
    barrier.wait()
    build([Path(source)], Path(out))


def test_concurrent_builds_keep_both(runs: dict[str, Path], tmp_path: Path) -> None:
    first = _copy_runs(runs, ["clean", "ce-seed1"], tmp_path / "a")
    second = _copy_runs(runs, ["ce-seed2", "dece"], tmp_path / "b")
    out = tmp_path / "board" / "leaderboard.json"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_build_after, args=(barrier, str(source), str(out)))
               for source in (first, second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    rows = _board(out)["rows"]
    assert sorted(run["run_id"] for row in rows for run in row["runs"]) == sorted(
        json.loads(path.read_text())["run_id"] for path in runs.values())


def test_a_build_waits_for_the_lock(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "leaderboard.json"
    with locked(out):
        worker = multiprocessing.get_context("spawn").Process(
            target=build, args=([runs["dece"].parent], out))
        worker.start()
        time.sleep(3)  # ample for a spawned build that did not wait
        assert worker.is_alive() and not out.exists()
    worker.join(60)
    assert worker.exitcode == 0 and len(_board(out)["rows"]) == 1


def test_corrupt_and_invalid_results_are_reported_by_path_and_skipped(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _copy_runs(runs, ["dece"], tmp_path / "results")
    corrupt = results / "corrupt" / "result.json"
    corrupt.parent.mkdir()
    corrupt.write_text('{"schema_version": 1, ')
    invalid = results / "invalid" / "result.json"
    invalid.parent.mkdir()
    document = json.loads(runs["dece"].read_text())
    dece_run_id = document["run_id"]
    del document["metrics"]
    document["run_id"] = "0" * 16
    invalid.write_text(json.dumps(document))
    out = tmp_path / "leaderboard.json"
    assert main(["leaderboard", "build", str(results), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"skipped: {corrupt}: not valid JSON" in captured.err
    assert f"skipped: {invalid}: invalid result file" in captured.err
    assert "'metrics' is a required property" in captured.err
    assert "1 rows from 1 runs (1 result files read, 2 skipped)" in captured.out
    assert [row["run_ids"] for row in _board(out)["rows"]] == [[dece_run_id]]


def test_show_filters_sorts_and_formats(board: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _board(board)["rows"]
    assert [r["attack"] for r in select(rows, attack="none")] == ["none"]
    assert [r["defense"] for r in select(rows, task="generate", defense="dece")] == ["dece"]
    assert select(rows, task="summarize") == []
    by_clean = [r["metrics"]["clean.sbleu"]["mean"] for r in order(rows, "clean")]
    assert by_clean == sorted(by_clean, reverse=True)
    by_asr = order(rows, "asr")
    assert by_asr[-1]["attack"] == "none"  # no ASR: last
    assert by_asr[0]["metrics"]["asr"]["mean"] <= by_asr[1]["metrics"]["asr"]["mean"]

    base = ["leaderboard", "show", "--leaderboard", str(board)]
    assert main([*base, "--defense", "dece"]) == 0
    table = capsys.readouterr().out
    assert "dece" in table and "badpre" in table and len(table.strip().splitlines()) == 3
    assert main([*base, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out.splitlines()
    assert markdown[0].startswith("| task") and len(markdown) == 2 + 3
    assert main([*base, "--format", "csv", "--sort", "clean"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 3 and float(table[0]["clean_mean"]) >= float(table[1]["clean_mean"])
    ce = next(line for line in table if line["defense"] == "none" and line["attack"] == "badpre")
    assert ce["n"] == "2" and ce["clean_std"] != ""
    # Beside each clean number, the trivial baseline's on the same test set.
    ce_row = next(r for r in rows if r["key"] == ce["key"])
    assert float(ce["trivial_mean"]) == pytest.approx(
        ce_row["metrics"]["trivial_baseline.sbleu"]["mean"])
    assert "trivial" in markdown[0].split("|")[10]
    assert main([*base, "--format", "json", "--attack", "badpre"]) == 0
    assert {row["defense"] for row in json.loads(capsys.readouterr().out)} == {"none", "dece"}


def test_plots_are_standalone_svg_files_of_the_selected_rows(
    board: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures"
    base = ["leaderboard", "plots", "--leaderboard", str(board), "--out", str(out)]
    assert main([*base, "--attack", "badpre", "--prefix", "lyra-"]) == 0
    written = capsys.readouterr().out.split()
    names = sorted(path.name for path in out.iterdir())
    assert sorted(Path(p).name for p in written) == names == [
        "lyra-curve-generate-lyra-asr.svg",
        "lyra-curve-generate-lyra-clean.svg",
        "lyra-tradeoff-generate-sbleu.svg",
    ]
    namespace = "{http://www.w3.org/2000/svg}"
    curve = ElementTree.parse(out / "lyra-curve-generate-lyra-clean.svg").getroot()
    assert curve.tag == f"{namespace}svg"
    # One line per selected row (CE and DeCE under BadPre), the clean run filtered out.
    assert len(curve.findall(f"{namespace}polyline")) == 2
    # The legend names what tells the lines apart: the defense (attack and model are shared).
    legend = {t.text for t in curve.iter(f"{namespace}text")}
    assert {"dece", "none"} <= legend and not any("tiny-t5" in (t or "") for t in legend)
    assert main([*base[:-2], "--out", str(tmp_path / "none"), "--task", "summarize"]) == 0
    assert list((tmp_path / "none").iterdir()) == []


def test_compare_puts_published_rows_beside_local_ones(
    board: Path, results: dict[str, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    published = read_published(PUBLISHED)
    comparison = compare(published, _board(board)["rows"])
    matched = {p["id"]: local for p, local in comparison.pairs}
    assert set(matched) == {"dece-readme-lyra-codellama-7b-clean",
                            "dece-readme-lyra-codellama-7b-badpre-5-ce",
                            "dece-readme-lyra-codellama-7b-badpre-5-dece"}
    dece_unmatched = {p["attack"] for p in comparison.unmatched if p["id"].startswith("dece-")}
    assert dece_unmatched == {"ripple", "grammar"}

    assert main(["leaderboard", "compare", "--leaderboard", str(board), "--against",
                 str(PUBLISHED), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    pair = next(p for p in report["pairs"]
                if p["published"] == "dece-readme-lyra-codellama-7b-badpre-5-dece")
    assert pair["metrics"]["sbleu"]["published"] == 74.36
    local_sbleu = results["dece"]["metrics"]["clean"]["sbleu"]["value"]
    assert pair["metrics"]["sbleu"]["local"]["mean"] == pytest.approx(local_sbleu)

    assert main(["leaderboard", "compare", "--leaderboard", str(board)]) == 0
    text = capsys.readouterr().out
    delta = f"{local_sbleu - 74.36:+.2f}"
    assert any("dece" in line and "sbleu (BLEU)" in line and f" {delta} " in line
               and line.endswith("model CodeLlama-7B vs tiny-t5") for line in text.splitlines())
    assert "published row(s) have no local counterpart yet" in text
    assert ("dece-readme-lyra-codellama-7b-grammar-5-ce: generate (python) on lyra, attack grammar"
            in text)


def test_published_rows_validate_and_carry_provenance() -> None:
    rows = [row for row in read_published(PUBLISHED) if row["id"].startswith("dece-")]
    assert len(rows) == 7 and all(row["verified"] for row in rows)
    assert all(row["source"]["url"] == "https://github.com/NTDXYG/DeCE" for row in rows)
    assert {row["source"]["commit"] for row in rows} == {"175caf04d56abdc6a604d574bee5c07d89fb0cc0"}
    badpre = next(r for r in rows if r["attack"] == "badpre" and r["defense"] == "none")
    assert badpre["metrics"]["asr"]["value"] == 98.79 and badpre["rate"] == 0.05
    assert (ROOT / "leaderboard" / "published.schema.json").resolve().is_file()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["rows"][2].update(rate="five"), "rows/2/rate: 'five' is not of type"),
        (lambda d: d["rows"][0].pop("source"), "rows/0: 'source' is a required property"),
        (lambda d: d["rows"][1]["metrics"]["sbleu"].pop("reported_as"),
         "rows/1/metrics/sbleu: 'reported_as' is a required property"),
        (lambda d: d["rows"][3].update(id=d["rows"][1]["id"]),
         "rows/3/id: 'dece-readme-lyra-codellama-7b-ripple-5-ce' is used by an earlier row"),
    ],
)
def test_a_broken_published_file_names_the_file_and_field(tmp_path: Path, change,
                                                          expected: str) -> None:
    document = json.loads(PUBLISHED.read_text())
    change(document)
    broken = tmp_path / "published.json"
    broken.write_text(json.dumps(document))
    with pytest.raises(UserError) as info:
        read_published(broken)
    assert str(info.value).startswith(f"{broken}: invalid published numbers: {expected}")


def test_leaderboard_mistakes_give_one_line(tmp_path: Path, runs: dict[str, Path], board: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    not_a_board = tmp_path / "results.json"
    not_a_board.write_text('{"rows": {}}')
    broken_row = tmp_path / "broken.json"
    broken_row.write_text('{"schema_version": 1, "rows": [{"key": "x"}]}')
    for argv, expected in (
        (["show", "--leaderboard", str(not_a_board)], "not a leaderboard file"),
        (["build", str(runs["dece"]), "--out", str(broken_row)], "rows/0 is not a leaderboard"),
        (["show", "--leaderboard", str(tmp_path / "none.json")], "leaderboard not found"),
        (["build", str(tmp_path / "nowhere")], "no such result file or directory"),
        (["compare", "--leaderboard", str(tmp_path / "none.json"), "--against",
          str(tmp_path / "p.json")], "published numbers not found"),
        (["plots", "--leaderboard", str(board), "--out", str(not_a_board)], "is a file"),
    ):
        assert main(["leaderboard", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("codebackdoor: error: ") and "\n" not in err and expected in err


def _variant(result_file: Path, directory: Path, change) -> None:
    """Another run of a changed config: ``result_file``'s run copied to ``directory``, its
    config passed through ``change``, a run id of its own."""
    shutil.copytree(result_file.parent, directory)
    result = json.loads((directory / "result.json").read_text())
    change(result["config"])
    result["run_id"] = hashlib.sha256(directory.name.encode()).hexdigest()[:16]
    (directory / "result.json").write_text(json.dumps(result))


def test_plots_draw_each_victim_apart_and_name_presets_by_parameters(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _copy_runs(runs, ["ce-seed1", "dece"], tmp_path / "runs")

    def pretrained(config: dict) -> None:
        config["model"]["spec"] = "pretrained:tiny-t5"
        config["requested"]["model_files"] = {"card_sha256": "a" * 64}

    def faster_decay(config: dict) -> None:
        config["defenses"][0]["params"]["beta"] = 0.9

    _variant(runs["ce-seed1"], source / "ce-pretrained", pretrained)
    _variant(runs["dece"], source / "dece-pretrained", pretrained)
    _variant(runs["dece"], source / "dece-beta-0.9", faster_decay)
    board = tmp_path / "leaderboard.json"
    build([source], board)
    out = tmp_path / "figures"
    assert main(["leaderboard", "plots", "--leaderboard", str(board), "--out", str(out)]) == 0
    capsys.readouterr()
    names = sorted(path.name for path in out.iterdir())
    # Two victims: one chart each, named by the victim (a single victim's stems: the test above).
    scratch = [n for n in names if "curve" in n and "tiny_t5" in n and "pretrained" not in n]
    built = [n for n in names if "curve" in n and "pretrained_tiny_t5" in n]
    assert len(scratch) == len(built) == 2, names
    namespace = "{http://www.w3.org/2000/svg}"
    clean = ElementTree.parse(out / next(n for n in scratch if n.endswith("clean.svg")))
    legend = {t.text for t in clean.getroot().iter(f"{namespace}text")}
    assert len(clean.getroot().findall(f"{namespace}polyline")) == 3
    # The two DeCE rows read apart by the parameter they differ in, not by a hash.
    assert {"dece[beta=0.9]", "dece[beta=0.99]", "none"} <= legend, legend


def test_show_and_compare_tell_presets_apart_and_refuse_an_ambiguous_baseline(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _copy_runs(runs, ["ce-seed1", "dece"], tmp_path / "runs")

    def faster_decay(config: dict) -> None:
        config["defenses"][0]["params"]["beta"] = 0.9

    _variant(runs["dece"], source / "dece-beta-0.9", faster_decay)
    board = tmp_path / "leaderboard.json"
    build([source], board)
    capsys.readouterr()

    assert main(["leaderboard", "show", "--leaderboard", str(board), "--defense", "dece",
                 "--format", "json"]) == 0
    shown = sorted(row["defense"] for row in json.loads(capsys.readouterr().out))
    assert shown == ["dece[beta=0.99]", "dece[beta=0.9]"]
    # The stored rows keep the bare method: labels are made when a leaderboard is read.
    assert {row["defense"] for row in json.loads(board.read_text())["rows"]} == {"none", "dece"}

    error = error_line(capsys, ["leaderboard", "compare", "--leaderboard", str(board),
                                "--baseline", "dece"])
    assert "defense 'dece' has rows with different parameters" in error
    assert "dece[beta=0.9]" in error and "dece[beta=0.99]" in error

    assert main(["leaderboard", "compare", "--leaderboard", str(board), "--baseline",
                 "dece[beta=0.99]", "--format", "json"]) == 0
    pairs = {p["defense"]: p["baseline"] for p in json.loads(capsys.readouterr().out)}
    assert pairs == {"dece[beta=0.9]": "dece[beta=0.99]", "none": "dece[beta=0.99]"}


def test_variants_of_one_attack_read_apart_and_pair_within_their_variant(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _copy_runs(runs, ["ce-seed1", "dece"], tmp_path / "runs")

    def three_words(config: dict) -> None:
        config["attack"]["params"]["count"] = 3

    _variant(runs["ce-seed1"], source / "ce-three", three_words)
    _variant(runs["dece"], source / "dece-three", three_words)
    board = tmp_path / "leaderboard.json"
    build([source], board)
    capsys.readouterr()

    assert main(["leaderboard", "show", "--leaderboard", str(board), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted((row["attack"], row["defense"]) for row in shown) == [
        ("badpre[count=1]", "dece"), ("badpre[count=1]", "none"),
        ("badpre[count=3]", "dece"), ("badpre[count=3]", "none"),
    ]
    assert {row["attack_method"] for row in shown} == {"badpre"}
    assert {row["attack"] for row in json.loads(board.read_text())["rows"]} == {"badpre"}
    for wanted, count in (("badpre", 4), ("badpre[count=3]", 2)):
        assert main(["leaderboard", "show", "--leaderboard", str(board), "--attack", wanted,
                     "--format", "json"]) == 0
        assert len(json.loads(capsys.readouterr().out)) == count

    assert main(["leaderboard", "compare", "--leaderboard", str(board), "--baseline", "none",
                 "--format", "json"]) == 0
    by_key = {row["key"]: row["attack"] for row in shown}
    pairs = json.loads(capsys.readouterr().out)
    assert sorted(p["attack"] for p in pairs) == ["badpre[count=1]", "badpre[count=3]"]
    assert all(by_key[p["baseline_row"]] == p["attack"] for p in pairs), pairs


def test_rows_of_two_schedules_read_apart_and_pair_within_their_schedule(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _copy_runs(runs, ["ce-seed1", "dece"], tmp_path / "runs")

    def longer(config: dict) -> None:
        config["training"]["epochs"] = 20

    def moderate(config: dict) -> None:
        # A defense that changes a training setting for all of its rows is not a schedule.
        config["defenses"] = [{"method": "moderate", "params": {"learning_rate_factor": 0.1}}]
        config["training"]["learning_rate"] *= 0.1

    _variant(runs["ce-seed1"], source / "ce-longer", longer)
    _variant(runs["dece"], source / "dece-longer", longer)
    _variant(runs["dece"], source / "moderate", moderate)
    board = tmp_path / "leaderboard.json"
    build([source], board)
    epochs = json.loads(runs["dece"].read_text())["config"]["training"]["epochs"]
    capsys.readouterr()

    assert main(["leaderboard", "show", "--leaderboard", str(board), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    model = shown[0]["model_name"]
    assert len(shown) == 5 and {(row["defense"], row["model"]) for row in shown} == {
        ("dece", f"{model} [epochs={epochs}]"), ("dece", f"{model} [epochs=20]"),
        ("moderate", f"{model} [epochs={epochs}]"),
        ("none", f"{model} [epochs={epochs}]"), ("none", f"{model} [epochs=20]"),
    }
    assert {row["model"] for row in json.loads(board.read_text())["rows"]} == {model}

    assert main(["leaderboard", "compare", "--leaderboard", str(board), "--baseline", "none",
                 "--format", "json"]) == 0
    by_key = {row["key"]: row["model"] for row in shown}
    pairs = [p for p in json.loads(capsys.readouterr().out) if p["defense"] == "dece"]
    assert len(pairs) == 2
    assert all(by_key[p["baseline_row"]] == p["model"] for p in pairs), pairs

    out = tmp_path / "figures"
    assert main(["leaderboard", "plots", "--leaderboard", str(board), "--out", str(out)]) == 0
    curves = sorted(path.name for path in out.iterdir() if "curve" in path.name)
    assert len(curves) == 4 and sum("epochs_20" in name for name in curves) == 2, curves
