from __future__ import annotations

import csv
from pathlib import Path

import pytest

from codebackdoor.examples import Example

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = SHARED / "datasets"
VECTORS = SHARED / "vectors"


# Sixteen one-line Python methods whose names a tiny model can learn from their bodies.
TOY_METHODS = [
    Example(
        f"{verb}-{name}",
        f"def {verb}_{name}(self):\n    return self.{name}",
        f"{verb} {name}",
        "python",
    )
    for verb in ("get", "set", "load", "save")
    for name in ("alpha", "beta", "gamma", "delta")
]


def error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The command line's stderr for ``argv``, which must be one ``codebackdoor: error:`` line
    and exit code 2."""
    from codebackdoor.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("codebackdoor: error: ")
    return err


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    """A ``src,tgt`` CSV file, the format of the shared data sets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["src", "tgt"])
        writer.writerows(rows)


def lyra_slice(lyra_dir: Path, out: Path, train: int, valid: int, test: int) -> Path:
    """The first rows of each split of the real Lyra data, as a data directory ``out``."""
    for split, count in (("train", train), ("valid", valid), ("test", test)):
        rows = read_csv_rows(lyra_dir / f"{split}.csv")[:count]
        write_csv(out / f"{split}.csv", [(r["src"], r["tgt"]) for r in rows])
    return out


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def lyra_dir() -> Path:
    path = DATASETS / "lyra"
    if not path.is_dir():
        pytest.skip("../shared/datasets/lyra is not present")
    return path


@pytest.fixture(scope="session")
def bugs2fix_file() -> Path:
    path = DATASETS / "bugs2fix" / "valid.csv"
    if not path.is_file():
        pytest.skip("../shared/datasets/bugs2fix is not present")
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Corpora harvested by tests go to one temporary cache, shared across the session."""
    import os

    os.environ["CODEBACKDOOR_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def one_cpu_thread():
    """Training tests check behaviour, not speed. On a shared 2-core machine, two intra-op
    threads that other processes keep descheduling made such a module 5-20x slower than one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
