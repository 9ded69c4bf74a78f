"""Suites through submitit: the SLURM job script a cluster user asks for, and real subprocess
jobs with submitit's local executor (results equal to the in-process run, a killed cell that
finishes when resubmitted, a failing cell that does not stop the others)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import lyra_slice

pytest.importorskip("submitit")

from codebackdoor.bench import Suite, run_suite
from codebackdoor.cli import main
from codebackdoor.cluster import SchedulerOptions, make_executor, status, submit

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def test_the_slurm_job_script_carries_the_scheduler_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import submitit

    # No SLURM here: submitit refuses to build an executor without srun, so pretend it is on
    # the path; the job script itself is written without it.
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", staticmethod(lambda: 1))
    options = SchedulerOptions(partition="gpu", time_min=90, gpus_per_task=1, cpus_per_task=8,
                               mem_gb=64, array_parallelism=16, extra={"account": "lab"})
    script = make_executor("slurm", tmp_path, options)._make_submission_file_text("run", "0")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=90", "#SBATCH --gpus-per-task=1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=64GB", "#SBATCH --account=lab",
                 f"#SBATCH --output={tmp_path}"):
        assert line in script, line


@pytest.fixture
def tiny_suite(lyra_dir: Path, tmp_path: Path) -> Path:
    data = lyra_slice(lyra_dir, tmp_path / "lyra", 32, 4, 6)
    suite = tmp_path / "tiny.toml"
    suite.write_text(f'''name = "tiny"
[base]
task = "generate"
data = "{data}"
model = "tiny-t5"
epochs = 2
batch_size = 8
max_source_length = 48
max_target_length = 48
generation_max_length = 8
curve_size = 0

[[grid]]
seed = [1, 2, 3]

[[grid]]
task_params = {{colour = 1}}
''')
    return suite


def test_local_jobs_equal_the_in_process_run_and_a_failure_stops_nothing(
    tiny_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    good = tmp_path / "good.toml"
    good.write_text(tiny_suite.read_text().split("[[grid]]\ntask_params")[0])
    in_process = run_suite(Suite.read(good), tmp_path / "here")
    assert not in_process.failed()

    suite = Suite.read(tiny_suite)
    out = tmp_path / "jobs"
    jobs = submit(suite, out, suite.cells(), "local", SchedulerOptions(time_min=30))
    assert len(jobs) == 4
    for job in jobs:
        with contextlib.suppress(Exception):  # the failing cell's job raises
            job.result()
    states = {record["settings"]: record for record in status(suite, out, suite.cells())}
    failed = [record for record in states.values() if record["state"] == "failed"]
    assert len(failed) == 1 and "no parameter 'colour'" in failed[0]["error"]
    assert sum(record["state"] == "done" for record in states.values()) == 3
    for outcome in in_process.outcomes:
        mine = json.loads(Path(outcome.result).read_text())
        theirs = json.loads((out / Path(outcome.result).parent.name / "result.json").read_text())
        assert theirs["metrics"] == mine["metrics"]
    # Resubmitting submits only what is not done.
    assert len(submit(suite, out, suite.cells(), "local", SchedulerOptions(time_min=30))) == 1


def test_a_killed_cell_resubmitted_finishes_with_the_uninterrupted_result(
    tiny_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = tmp_path / "one.toml"
    one.write_text(tiny_suite.read_text().split("[[grid]]")[0].replace("epochs = 2",
                                                                          "epochs = 5"))
    suite = Suite.read(one)
    reference = run_suite(suite, tmp_path / "here").outcomes[0]
    out = tmp_path / "jobs"
    (job,) = submit(suite, out, suite.cells(), "local", SchedulerOptions(time_min=30))
    deadline = time.monotonic() + 600
    while not list(out.glob("*/train/checkpoint-*/epochs.json")):
        assert time.monotonic() < deadline and not job.done()
        time.sleep(0.2)
    # As a preempted node: the job's task process and its controller die with no handler run.
    controller = job._process
    children = [int(line.split()[0]) for line in subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(controller.pid)], capture_output=True, text=True
    ).stdout.split("\n") if line.strip()]
    assert children
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    controller.kill()
    controller.wait()
    # The kernel lets go of a killed process's lock once the process is gone.
    deadline = time.monotonic() + 60
    while status(suite, out, suite.cells())[0]["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert [record["state"] for record in status(suite, out, suite.cells())] == ["interrupted"]
    assert main(["bench", str(one), "--out", str(out), "--executor", "local", "--wait"]) == 0
    assert "1 done" in capsys.readouterr().out
    result = json.loads((out / Path(reference.result).parent.name / "result.json").read_text())
    assert result["metrics"] == json.loads(Path(reference.result).read_text())["metrics"]
