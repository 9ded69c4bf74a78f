"""The checkpoint layout of a fit: one ``checkpoint-<step>`` directory per save, and beside
each a marker file written last (the per-epoch records, or a step-budgeted fit's loss curve), so
a checkpoint that holds its marker is complete."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

# The per-epoch records: up to its epoch in each checkpoint, all of them in the output directory
# once the fit is done.
EPOCHS_FILE = "epochs.json"
# A step-budgeted fit's loss curve and training seconds, in each checkpoint and at the end.
STEPS_FILE = "steps.json"
CHECKPOINT_DIR = re.compile(r"checkpoint-(\d+)")


def latest_checkpoint(output_dir: Path, marker: str = EPOCHS_FILE) -> tuple[Path | None, Any]:
    """The newest complete checkpoint under ``output_dir`` and its ``marker`` file's content
    (the per-epoch records by default); the marker is written last, so it means complete."""
    for path in sorted(checkpoints(output_dir), key=_step, reverse=True):
        try:
            records = json.loads((path / marker).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # interrupted before it was complete
        return path, records
    return None, []


def checkpoints(output_dir: Path) -> list[Path]:
    if not output_dir.is_dir():
        return []
    return [
        path
        for path in output_dir.iterdir()
        if path.is_dir() and CHECKPOINT_DIR.fullmatch(path.name)
    ]


def remove_checkpoints(
    output_dir: Path, *, incomplete_only: bool = False, marker: str = EPOCHS_FILE
) -> None:
    for path in checkpoints(output_dir):
        if not (incomplete_only and (path / marker).is_file()):
            shutil.rmtree(path)
    if not incomplete_only:
        (output_dir / marker).unlink(missing_ok=True)


def _step(path: Path) -> int:
    return int(CHECKPOINT_DIR.fullmatch(path.name).group(1))
