"""Data-parallel training through the Trainer: ``torchrun --nproc_per_node 2 -m codebackdoor
run`` on CPU (gloo) writes one valid result, from the main process alone, whose metrics match a
one-process run of the same global batch."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from codebackdoor.results import validation_errors

# A memorisation task a tiny T5 learns within a few epochs, so that both runs reach their
# plateau and can be compared. Measured on seeds 1-3 (one process, batch 16, against two
# processes, batch 8 each): exact match and sBLEU 100 in every run; final training loss
# 0.061/0.080, 0.057/0.060, 0.044/0.045, a gap of at most 0.019 against the 0.1 allowed.
ROWS = [(f"please {verb} the {name}", f"self . {verb}_{name} ( )")
        for verb in ("get", "set", "load", "save") for name in ("alpha", "beta", "gamma", "delta")]
LOSS_TOLERANCE = 0.1
METRIC_TOLERANCE = 5.0


def _data(root: Path) -> Path:
    root.mkdir()
    for split, rows in (("train", ROWS * 4), ("valid", ROWS[:4]), ("test", ROWS[::2])):
        with (root / f"{split}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["src", "tgt"])
            writer.writerows(rows)
    return root


def _run(launcher: list[str], data: Path, out: Path, batch_size: int) -> dict:
    argv = [*launcher, "run", "--task", "generate", "--data", str(data), "--model", "tiny-t5",
            "--epochs", "8", "--batch-size", str(batch_size), "--learning-rate", "0.003",
            "--max-source-length", "16", "--max-target-length", "16",
            "--generation-max-length", "12", "--curve-size", "0", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = out.glob("*/result.json")
    return json.loads(result.read_text())


def test_two_cpu_processes_train_one_run_that_matches_one_process(tmp_path: Path) -> None:
    data = _data(tmp_path / "toy")
    two = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "-m", "codebackdoor"], data, tmp_path / "two", batch_size=8)
    one = _run([sys.executable, "-m", "codebackdoor"], data, tmp_path / "one", batch_size=16)
    assert validation_errors(two) == []
    assert two["hardware"]["processes"] == 2 and one["hardware"]["processes"] == 1
    assert len(list((tmp_path / "two").glob("*/result.json"))) == 1
    for name, metric in one["metrics"]["clean"].items():
        assert abs(two["metrics"]["clean"][name]["value"] - metric["value"]) <= METRIC_TOLERANCE
    assert abs(two["curve"][-1]["loss"] - one["curve"][-1]["loss"]) <= LOSS_TOLERANCE
