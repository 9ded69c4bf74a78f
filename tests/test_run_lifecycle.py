"""A run's life beyond one happy process: one process per run, a clean stop on SIGTERM that a
resume finishes, and a run id that changes when a file the run reads changes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import lyra_slice

from codebackdoor.config import make_config
from codebackdoor.errors import UserError
from codebackdoor.identity import run_id
from codebackdoor.locks import exclusive
from codebackdoor.models.pretrained import CARD_FILE, pretrained_directory
from codebackdoor.runner import run


def _hold(path: str, ready: multiprocessing.Event, release: multiprocessing.Event) -> None:
    with exclusive(Path(path)):
        ready.set()
        release.wait(60)


def test_a_second_process_on_the_same_run_is_refused(tmp_path: Path) -> None:
    config = make_config({"epochs": 1})
    lock = tmp_path / f".{run_id(config)}.lock"
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(str(lock), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(UserError, match=rf"run {run_id(config)} is held by .*\"pid\": "
                                            rf"{holder.pid}"):
            run(config, tmp_path)
        assert not (tmp_path / run_id(config)).exists()  # nothing was started beside it
    finally:
        release.set()
        holder.join(60)


def test_a_pretrained_checkpoint_is_its_weights_not_its_card() -> None:
    """A rebuild that wrote other weights is a new run; one that wrote the same files (the
    card differs: it records when and how fast) is the same victim."""
    directory = pretrained_directory("tiny-t5")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CARD_FILE).write_text('{"created": "first"}')
    (directory / "model.safetensors").write_bytes(b"\0" * 100)
    config = make_config({"model": "pretrained:tiny-t5"})
    first = run_id(config)
    (directory / CARD_FILE).write_text('{"created": "second"}')
    assert run_id(config) == first
    (directory / "model.safetensors").write_bytes(b"\1" * 100)
    assert run_id(config) != first
    assert run_id(make_config({"model": "tiny-t5"})) == run_id(make_config({"model": "tiny-t5"}))


def test_a_changed_local_model_directory_is_a_new_run(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 100)
    config = make_config({"model": str(tmp_path)})
    first = run_id(config)
    (tmp_path / "model.safetensors").write_bytes(b"\1" * 100)
    assert run_id(config) != first


@pytest.fixture
def tiny_lyra(lyra_dir: Path, tmp_path: Path) -> Path:
    return lyra_slice(lyra_dir, tmp_path / "lyra", 48, 4, 6)


def test_sigterm_ends_a_run_with_a_resume_hint_and_resume_finishes_it(
    tiny_lyra: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, "-m", "codebackdoor", "run", "--task", "generate", "--data",
            str(tiny_lyra), "--model", "tiny-t5", "--epochs", "6", "--batch-size", "4",
            "--max-source-length", "48", "--max-target-length", "48",
            "--generation-max-length", "8", "--curve-size", "0", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    # The run announces itself once its inputs are checked, just before training: stop it there.
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith("[run] run "):
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    err = "".join(seen) + err
    assert process.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("codebackdoor: interrupted (SIGTERM)") and "--resume" in last
    assert "Traceback" not in err
    (run_directory,) = [path for path in out.iterdir() if path.is_dir()]
    assert not (run_directory / "result.json").exists()
    # The resumed run finishes every epoch.
    finished = subprocess.run([*argv, "--resume"], capture_output=True, text=True, env=env,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr
    result = json.loads((run_directory / "result.json").read_text())
    assert [point["epoch"] for point in result["curve"]] == list(range(1, 7))


def test_a_release_that_changes_what_runs_compute_makes_new_runs(monkeypatch) -> None:
    from codebackdoor import identity as identity_module

    config = make_config({})
    before = run_id(config)
    monkeypatch.setattr(identity_module, "__version__", "999.0.0")
    assert run_id(config) != before
