"""Run every performance benchmark in this directory, one after the other, with its defaults.

Each benchmark measures its own baseline in the same process and prints its ratios against it;
this prints their outputs in turn and then one line per benchmark (wall time, exit status).
With ``--json`` each benchmark runs with ``--json`` too, and this prints one JSON list: per
benchmark its name, exit status, wall time and the object it printed (null, and a failure, if
its output is not one JSON object). Extra arguments go to every benchmark's command line only
when named here, so each keeps its own defaults:

    python benchmarks/perf/run_all.py [--only NAME ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from report import add_json_flag
from tabulate import tabulate

HERE = Path(__file__).resolve().parent
# Files here that are not benchmarks: this runner and the shared --json helper.
NOT_BENCHMARKS = (Path(__file__).name, "report.py")


def benchmark_scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in NOT_BENCHMARKS)


def printed_object(stdout: str) -> dict | None:
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="benchmark names (file stems) to run")
    add_json_flag(parser)
    args = parser.parse_args()
    scripts = benchmark_scripts()
    if args.only:
        unknown = sorted(set(args.only) - {p.stem for p in scripts})
        if unknown:
            parser.error(f"unknown benchmarks {unknown}; valid: {[p.stem for p in scripts]}")
        scripts = [p for p in scripts if p.stem in args.only]
    # With --json, stdout carries only the list; the benchmarks' names go to stderr.
    progress = sys.stderr if args.json else sys.stdout
    runs = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", file=progress, flush=True)
        start = time.perf_counter()
        if args.json:
            finished = subprocess.run([sys.executable, str(script), "--json"],
                                      stdout=subprocess.PIPE, text=True, check=False)
            result = printed_object(finished.stdout)
        else:
            finished = subprocess.run([sys.executable, str(script)], check=False)
            result = None
        runs.append({"benchmark": script.stem, "status": finished.returncode,
                     "wall_s": round(time.perf_counter() - start, 1), "result": result})
    if args.json:
        print(json.dumps(runs, indent=2))
    else:
        print()
        print(tabulate([(run["benchmark"], f"{run['wall_s']:.0f} s",
                         "ok" if run["status"] == 0 else f"failed ({run['status']})")
                        for run in runs], headers=("benchmark", "wall time", "status")))
    failed = [run for run in runs if run["status"] != 0 or (args.json and run["result"] is None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
