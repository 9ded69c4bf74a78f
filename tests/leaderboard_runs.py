"""Real result files for the leaderboard tests: tiny runs on a slice of Lyra.

Both leaderboard test modules call ``make_runs`` on the same directory; the runner reads a
finished run back instead of training again, so the runs are made once per test session.
"""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import read_csv_rows

ROOT = Path(__file__).resolve().parents[1]
BADPRE = str(ROOT / "attacks" / "dece-lyra-badpre-1.toml")
# (label, changes): clean, BadPre under CE with two seeds, BadPre under DeCE.
RUNS = (
    ("clean", {"attack": None}),
    ("ce-seed1", {"seed": 1}),
    ("ce-seed2", {"seed": 2}),
    ("dece", {"defenses": ["dece"]}),
)


def small_lyra(lyra_dir: Path, out: Path) -> Path:
    """32 training, 4 validation and 8 test rows of Lyra, in a directory named ``lyra`` so that
    its dataset alias matches the published rows."""
    data = out / "lyra"
    for split, count in (("train", 32), ("valid", 4), ("test", 8)):
        rows = read_csv_rows(lyra_dir / f"{split}.csv")[:count]
        data.mkdir(parents=True, exist_ok=True)
        with (data / f"{split}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["src", "tgt"])
            writer.writerows((r["src"], r["tgt"]) for r in rows)
    return data


def make_runs(lyra_dir: Path, root: Path) -> dict[str, Path]:
    """The result file of each run in ``RUNS``, by label (made once, then read back)."""
    import torch

    from codebackdoor.config import make_config
    from codebackdoor.runner import run

    data = small_lyra(lyra_dir, root)
    base = dict(task="generate", data=str(data), attack=BADPRE, rate=0.05, model="tiny-t5",
                epochs=2, batch_size=16, max_source_length=64, max_target_length=64,
                generation_max_length=12, curve_size=4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see conftest.one_cpu_thread
    try:
        return {label: run(make_config({**base, **changes}), root / "results").path
                for label, changes in RUNS}
    finally:
        torch.set_num_threads(threads)
