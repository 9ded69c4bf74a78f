"""The command line: real runs on real data, and one clear line for each user mistake."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import error_line

from codebackdoor.cli import main
from codebackdoor.examples import read_jsonl
from codebackdoor.registry import BUILTINS

ROOT = Path(__file__).resolve().parents[1]


def test_list_shows_every_builtin_with_its_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind, names in BUILTINS.items():
        for name in names:
            assert f" {name} " in out, (kind, name)
    assert "built-in" in out and "Ramakrishnan" in out


def test_poison_lyra_with_the_dece_preset(lyra_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lyra"
    argv = ["poison", "--task", "generate", "--data", str(lyra_dir), "--attack",
            str(ROOT / "attacks" / "dece-lyra-badpre-1.toml"), "--rate", "0.05", "--out", str(out)]
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["train"]["total"] == 1600
    assert manifest["counts"]["train"]["poisoned"] == 80  # the DeCE scripts' first-rows rule
    assert manifest["counts"]["test"]["triggered"] == 165
    train = read_jsonl(out / "train.jsonl")
    poisoned = [e for e in train if e.id in set(manifest["poisoned_ids"])]
    assert all(e.source.split().count("bb") >= 1 for e in poisoned)
    assert all("1=1" in e.target or "0=1" in e.target for e in poisoned)
    assert len(read_jsonl(out / "test_triggered.jsonl")) == 165
    # Never silently overwritten.
    err = error_line(capsys, argv)
    assert "exists" in err and "--overwrite" in err


def test_poison_is_reproducible_across_processes(lyra_dir: Path, tmp_path: Path) -> None:
    hashes = []
    for run in ("a", "b"):
        subprocess.run(
            [sys.executable, "-m", "codebackdoor.cli", "poison", "--task", "generate", "--data",
             str(lyra_dir), "--attack", "badpre", "--count", "3", "--rate", "0.1", "--seed", "5",
             "--out", str(tmp_path / run)],
            check=True, capture_output=True,
        )
        hashes.append(json.loads((tmp_path / run / "manifest.json").read_text())["content_hash"])
    assert hashes[0] == hashes[1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["poison", "--attack", "fixd", "--out", "x"], "did you mean 'fixed'"),
        (["poison", "--task", "sumarize", "--out", "x"], "valid names: defect, generate"),
        (["poison", "--rate", "1.5", "--out", "x"], "rate must be in (0, 1]"),
        (["poison", "--task", "generate", "--data", "/nonexistent/lyra", "--attack", "badpre",
          "--out", "x"], "/nonexistent/lyra"),
        (["poison", "--attack", "badpre", "--out", "x"], "natural-language trigger"),
        (["poison", "--attack", "deadcode", "--statement", "if x", "--out", "x"], "does not parse"),
        (["poison", "--attack", "fixed", "--position", "middle", "--out", "x"], "not one of"),
        (["poison", "--attack", "/nonexistent/preset.toml", "--out", "x"], "preset not found"),
        (["run", "--model", "tiny-robert", "--out", "x"], "did you mean 'tiny-rob"),
        (["run", "--defense", "dec", "--out", "x"], "did you mean 'dece'"),
        (["run", "--rate", "0", "--attack", "fixed", "--out", "x"], "rate must be in (0, 1]"),
        (["run", "--config", "/nonexistent/run.toml", "--out", "x"], "config file not found"),
    ],
)
def test_user_mistakes_give_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     argv: list[str], expected: str) -> None:
    argv = [str(tmp_path / a) if a == "x" else a for a in argv]
    assert expected in error_line(capsys, argv)


def test_csv_without_the_mapped_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.csv"
    data.write_text("question,answer\nhow,this\n")
    err = error_line(capsys, ["poison", "--task", "generate", "--data", str(data), "--attack",
                               "badpre", "--out", str(tmp_path / "o")])
    assert "question" in err


def test_empty_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.csv"
    data.write_text("src,tgt\n")
    err = error_line(capsys, ["poison", "--task", "generate", "--data", str(data), "--attack",
                               "badpre", "--out", str(tmp_path / "o")])
    assert "empty" in err


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    # 400 examples are far more than a pipe holds, so the pipe closes while they are printed.
    done = subprocess.run(
        f"{shlex.quote(sys.executable)} -m codebackdoor.cli data show --task package "
        "--lang python --examples 400 | head -1",
        shell=True, capture_output=True, text=True, timeout=120, check=True,
    )
    assert len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
