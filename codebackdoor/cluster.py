"""Suites on a cluster through submitit, the library the field submits Python jobs to SLURM
with: one job array per suite, one cell per array task. ``local`` runs the same jobs as
subprocesses of this machine (submitit's local executor), which is how the path is tested.

The rules of ``bench`` hold: a cell whose result exists is not submitted; a cell stopped by a
time limit or preemption is requeued and resumes from its last epoch checkpoint; a cell that
fails is recorded and does not stop the others. ``status`` reads the state of every cell from
the output folder alone, so it can be asked at any time, from any node.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from codebackdoor.bench import Cell, Suite
from codebackdoor.errors import UserError
from codebackdoor.io import atomic_write_json
from codebackdoor.locks import exclusive
from codebackdoor.runner import RESULT_FILE, run

Executor = Literal["local", "slurm"]
# Beside the suite's results: the jobs' logs and pickles, and one record per failed cell.
JOBS_DIR = "submitit"
FAILED_DIR = "failed-cells"
STATES = ("done", "running", "interrupted", "failed", "pending")


@dataclass
class SchedulerOptions:
    """What a cluster user sets per job (SLURM's sbatch options; ``extra`` passes any other
    ``--key=value`` through). ``time_min`` is the time limit of one cell."""

    partition: str | None = None
    time_min: int = 24 * 60
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    mem_gb: int | None = None
    array_parallelism: int = 256
    extra: dict[str, str] = field(default_factory=dict)


class CellJob:
    """One cell as a job: runs it (resuming what a killed copy left) and records a failure.
    Its ``checkpoint`` is what submitit calls on a time limit or preemption: the same job is
    requeued, and the run resumes from its last complete epoch checkpoint."""

    def __call__(self, suite_path: str, data_root: str | None, cell_name: str, out: str) -> str:
        suite = Suite.read(Path(suite_path), Path(data_root) if data_root else None)
        (cell,) = [cell for cell in suite.cells() if cell.name == cell_name]
        failure = Path(out) / FAILED_DIR / f"{cell.name}.json"
        try:
            outcome = run(cell.config, Path(out), resume=True)
        except Exception as exc:
            atomic_write_json(failure, {
                "cell": cell.name, "label": cell.label(suite.varying()),
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=-3),
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
            })
            raise
        failure.unlink(missing_ok=True)
        return str(outcome.path)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


def make_executor(kind: Executor, folder: Path, options: SchedulerOptions) -> Any:
    """submitit's executor of ``kind``, its logs under ``folder``."""
    try:
        import submitit
    except ImportError as exc:
        raise UserError("--executor needs submitit: pip install 'codebackdoor[cluster]'") from exc
    if kind == "local":
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=options.time_min)
        return executor
    if kind != "slurm":
        raise UserError(f"--executor {kind!r} is not one of 'local', 'slurm'")
    try:
        executor = submitit.SlurmExecutor(folder=str(folder))
    except RuntimeError as exc:  # submitit's check that srun exists
        raise UserError(f"--executor slurm: {exc}") from exc
    parameters: dict[str, Any] = {
        "time": options.time_min,
        "array_parallelism": options.array_parallelism,
        "job_name": "codebackdoor",
    }
    for name, value in (("partition", options.partition), ("gpus_per_task",
                        options.gpus_per_task), ("cpus_per_task", options.cpus_per_task)):
        if value is not None:
            parameters[name] = value
    if options.mem_gb is not None:
        parameters["mem"] = f"{options.mem_gb}GB"
    if options.extra:
        parameters["additional_parameters"] = dict(options.extra)
    executor.update_parameters(**parameters)
    return executor


def submit(suite: Suite, out: Path, cells: list[Cell], kind: Executor,
           options: SchedulerOptions) -> list[Any]:
    """Submit every cell of ``cells`` that has no result and is not running, as one job array;
    the jobs (submitit Job objects)."""
    pending = [cell for cell in cells if cell_state(cell, out) not in ("done", "running")]
    if not pending:
        return []
    executor = make_executor(kind, Path(out) / JOBS_DIR, options)
    job = CellJob()
    data_root = str(suite.data_root) if suite.data_root else None
    with executor.batch():
        jobs = [executor.submit(job, str(suite.path.resolve()), data_root, cell.name,
                                str(Path(out).resolve())) for cell in pending]
    return jobs


def cell_state(cell: Cell, out: Path) -> str:
    """``done`` (its result exists), ``running`` (a process holds its run's lock), ``failed``
    (its last attempt raised), ``interrupted`` (begun, not finished, nobody on it) or
    ``pending``."""
    name = cell.run
    directory = Path(out) / name
    if (directory / RESULT_FILE).is_file():
        return "done"
    lock = Path(out) / f".{name}.lock"
    if lock.exists():
        try:
            with exclusive(lock, wait=False):
                pass
        except UserError:
            return "running"
    if (Path(out) / FAILED_DIR / f"{cell.name}.json").is_file():
        return "failed"
    return "interrupted" if directory.exists() else "pending"


def status(suite: Suite, out: Path, cells: list[Cell]) -> list[dict[str, Any]]:
    """One record per cell: its name, settings, state and, for a failed one, the error."""
    varying = suite.varying()
    records = []
    for cell in cells:
        state = cell_state(cell, out)
        record = {"cell": cell.name, "settings": cell.label(varying), "state": state}
        if state == "failed":
            failure = json.loads((Path(out) / FAILED_DIR / f"{cell.name}.json").read_text())
            record["error"] = failure["error"]
        records.append(record)
    return records
