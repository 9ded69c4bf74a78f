"""Wall time of the main job, `codebackdoor run` with no arguments, against its 5-minute budget.

The job runs as a new user runs it: a fresh results directory and a fresh cache directory
(``CODEBACKDOOR_CACHE``), so the first-time corpus and tokenizer work is included. Beside it, in
the same process, a fixed reference workload (training steps of `tiny-roberta`'s shape on
random tokens, on the same threads) is timed before and after the job: the job's time in units
of that workload says how the figure would move on a faster or slower machine, and a large
difference between the two reference timings says the machine's load changed during the job.

    python benchmarks/perf/main_job.py [--budget 300] [--json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import add_json_flag, emit
from tabulate import tabulate

REFERENCE_STEPS = 20


def reference_workload() -> float:
    """Seconds for REFERENCE_STEPS training steps of `tiny-roberta` (4 layers; kept as the
    yardstick when the default became its 2-layer variant, so figures stay comparable) on a
    default batch of random ids at the default input length: a machine-speed yardstick
    independent of the project's code."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from codebackdoor.config import RunConfig
    from codebackdoor.models.presets import TINY_ROBERTA

    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=TINY_ROBERTA.vocab_size, num_labels=9,
                           **TINY_ROBERTA.config)
    model = RobertaForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    shape = (RunConfig.batch_size, RunConfig.max_source_length)
    ids = torch.randint(5, TINY_ROBERTA.vocab_size, shape)
    labels = torch.randint(0, 9, (RunConfig.batch_size,))
    start = time.perf_counter()
    for _ in range(REFERENCE_STEPS):
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - start


def main_job(workdir: Path) -> tuple[float, int, str]:
    """Wall seconds, exit status and the printed table of `codebackdoor run` in ``workdir``."""
    env = {**os.environ, "CODEBACKDOOR_CACHE": str(workdir / "cache")}
    start = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-m", "codebackdoor", "run", "--out", str(workdir / "results")],
        env=env, capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - start
    return wall, finished.returncode, finished.stdout + finished.stderr[-2000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="seconds (default 300)")
    add_json_flag(parser)
    args = parser.parse_args()

    before = reference_workload()
    with tempfile.TemporaryDirectory(prefix="codebackdoor-main-job-") as tmp:
        wall, status, output = main_job(Path(tmp))
    after = reference_workload()
    reference = min(before, after)
    report = {
        "main_job_s": round(wall, 1),
        "exit_status": status,
        "budget_s": args.budget,
        "ratio_to_budget": round(wall / args.budget, 3),
        "reference_s": [round(before, 2), round(after, 2)],
        "ratio_to_reference": round(wall / reference, 1),
    }
    if args.json:
        emit("main_job", args, report)
    else:
        print(output)
        print(tabulate(
            [("main job (3 runs)", f"{wall:.0f} s", f"{wall / args.budget:.2f} of the budget"),
             ("reference workload", f"{before:.2f} s before, {after:.2f} s after",
              f"job = {wall / reference:.0f} × reference")],
            headers=("measure", "time", "ratio"), disable_numparse=True))
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
