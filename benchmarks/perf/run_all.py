"""Run every performance benchmark in this directory, one after the other, with its defaults.

Each benchmark measures its own baseline in the same process and prints its ratios against it;
this prints their outputs in turn and then one line per benchmark (wall time, exit status).
Extra arguments go to every benchmark's command line only when named here, so each keeps its
own defaults:

    python benchmarks/perf/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="benchmark names (file stems) to run")
    args = parser.parse_args()
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    if args.only:
        unknown = sorted(set(args.only) - {p.stem for p in scripts})
        if unknown:
            parser.error(f"unknown benchmarks {unknown}; valid: {[p.stem for p in scripts]}")
        scripts = [p for p in scripts if p.stem in args.only]
    rows = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        start = time.perf_counter()
        status = subprocess.run([sys.executable, str(script)], check=False).returncode
        rows.append((script.stem, f"{time.perf_counter() - start:.0f} s",
                     "ok" if status == 0 else f"failed ({status})"))
    print()
    print(tabulate(rows, headers=("benchmark", "wall time", "status")))
    return 0 if all(row[2] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
