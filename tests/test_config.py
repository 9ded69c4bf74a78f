"""One config path: a TOML file and flags are checked by the same typed builder, and a mistake is
one line that names the field and what it should be."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import error_line

from codebackdoor.cli import main
from codebackdoor.config import RunConfig, make_config, resolve_config
from codebackdoor.errors import UserError
from codebackdoor.models.training import TrainingSettings
from codebackdoor.registry import KINDS


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('rate = "0.05"', "rate = '0.05' must be of type float"),
        ('epochs = "3"', "epochs = '3' must be of type int"),
        ('selection = "firts"', "selection = 'firts' is not one of 'random', 'first'"),
        ('lang = "rust"', "lang = 'rust' is not one of 'python', 'java'"),
        ("defenses = [3]", "defenses"),
        ("trust_remote_code = 1", "must be of type bool"),
        ("rate = 2.0", "rate must be in (0, 1]"),
        ("colour = 1", "no parameter 'colour'"),
    ],
)
def test_a_wrong_config_file_value_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, expected: str
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(line + "\n", encoding="utf-8")
    err = error_line(capsys, ["run", "--config", str(config), "--out", str(tmp_path / "out")])
    assert expected in err
    assert str(config) in err or "rate must be" in err
    assert not (tmp_path / "out").exists()


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('epochs = 3\nseed = 7\nattack_params = {position = "last"}\n')
    resolved = resolve_config(config, {"epochs": 5, "seed": None,
                                       "attack_params": {"token": "x"}})
    assert resolved.epochs == 5  # the flag
    assert resolved.seed == 7  # the file
    assert resolved.batch_size == RunConfig.batch_size  # the default
    assert resolved.attack_params == {"position": "last", "token": "x"}  # merged


def test_none_is_a_clean_run_in_every_path(tmp_path: Path) -> None:
    assert make_config({"attack": "none"}).attack is None
    assert resolve_config(None, {"attack": "none"}).attack is None


def test_the_engine_takes_the_run_defaults() -> None:
    engine, run = TrainingSettings(), RunConfig()
    for name in ("epochs", "batch_size", "learning_rate", "max_source_length",
                 "max_target_length", "generation_max_length", "seed", "precision",
                 "gradient_checkpointing"):
        assert getattr(engine, name) == getattr(run, name), name


def test_flag_values_reach_the_config_under_their_field_names(tmp_path: Path) -> None:
    from codebackdoor.cli import config_from_args, make_parser

    args = make_parser().parse_args(
        ["run", "--revision", "abc", "--defense", "dece", "--defense", "onion",
         "--batch-size", "8", "--selection", "first", "--token", "t", "--param", "count=2"])
    config = config_from_args(args)
    assert config.data_revision == "abc"
    assert config.defenses == ["dece", "onion"]
    assert config.batch_size == 8 and config.selection == "first"
    assert config.attack_params == {"count": "2", "token": "t"}


def test_wrong_flag_values_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = error_line(capsys, ["run", "--selection", "firts", "--out", str(tmp_path)])
    assert "selection = 'firts' is not one of 'random', 'first'" in err


def test_list_as_json_names_every_kind_with_its_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["entries"]
    kinds = {entry["kind"] for entry in listed}
    assert kinds == {kind.singular for kind in KINDS.values()}
    assert {"task", "attack", "payload", "defense", "model", "metric"} == kinds
    by_name = {(entry["kind"], entry["name"]): entry for entry in listed}
    assert by_name[("model", "small-t5")]["origin"] == "built-in"
    assert by_name[("payload", "sql-injection")]["description"]
    assert by_name[("metric", "codebleu")]["origin"] == "built-in"


def test_python_dash_m_runs_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "codebackdoor", "--help"], capture_output=True,
                          text=True, check=True, timeout=60)
    assert "usage: codebackdoor" in done.stdout


def test_a_registered_object_of_the_wrong_kind_is_oneerror_line(monkeypatch) -> None:
    from codebackdoor.registry import Entry

    entry = Entry("payloads", "odd", "codebackdoor.models.presets:TINY_T5", "built-in")
    with pytest.raises(UserError, match=r"payload 'odd' from built-in is .*not a subclass of"):
        entry.load()
