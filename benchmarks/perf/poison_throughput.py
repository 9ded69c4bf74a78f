"""Harvest and poisoning throughput of the embedded corpora (target: >= 5,000 functions/s per
core on Python fixed and grammar).

Throughput is functions per CPU-second of this process (time.process_time), so it reads as
"per core" even on a shared machine. Every figure is also printed as a ratio to a baseline
measured in the same run: one plain tree-sitter parse of each function, the least any trigger
placement with a re-parse check costs.

    python benchmarks/perf/poison_throughput.py [--limit N] [--json]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from report import add_json_flag, comparison, emit
from tabulate import tabulate

from codebackdoor.attacks.base import example_rng
from codebackdoor.code.parser import parse
from codebackdoor.errors import Unpoisonable
from codebackdoor.registry import registry

CODE_ATTACKS = ("fixed", "grammar", "deadcode", "rename")
BASELINE = "baseline: parse only"


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def measure(lang: str, limit: int | None) -> dict:
    task = registry("tasks").get("summarize")(lang=lang)
    start = time.perf_counter()
    splits = task.load()
    harvest_seconds = time.perf_counter() - start
    examples = (splits.train + splits.valid + splits.test)[:limit]

    start = time.process_time()
    for example in examples:
        parse(example.source, lang)
    rates = {BASELINE: _rate(len(examples), time.process_time() - start)}
    completed = {BASELINE: len(examples)}  # parsed; for an attack, poisoned
    for name in CODE_ATTACKS:
        trigger = registry("attacks").get(name)()
        completed[name] = 0
        start = time.process_time()
        for example in examples:
            try:
                trigger.apply(example.source, lang, example_rng(1, example.id))
                completed[name] += 1
            except Unpoisonable:
                pass
        rates[name] = _rate(len(examples), time.process_time() - start)
    return {
        # Python reads the packaged corpus; Java is harvested from the JDK sources.
        "load": "load (packaged corpus)" if lang == "python" else "harvest (cold cache)",
        "load_s": harvest_seconds,
        "functions": len(examples),
        "throughput": comparison(rates, BASELINE, "functions per CPU-second (each attack: "
                                 "placement + re-parse check)", functions_completed=completed),
    }


def table_rows(lang: str, measured: dict) -> list[tuple]:
    throughput = measured["throughput"]
    rows = [(lang, measured["load"], measured["functions"], f"{measured['load_s']:.1f} s", "")]
    for name, rate in throughput["values"].items():
        step = name if name == BASELINE else f"{name} (+re-parse check)"
        rows.append((lang, step, throughput["functions_completed"][name], f"{rate:,.0f}/s",
                     f"{throughput['ratios'][name]:.2f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="functions per language (default: all)")
    add_json_flag(parser)
    args = parser.parse_args()
    os.environ["CODEBACKDOOR_CACHE"] = tempfile.mkdtemp(prefix="cb-bench-")  # a cold harvest
    measured = {lang: measure(lang, args.limit) for lang in ("python", "java")}
    if args.json:
        emit("poison_throughput", args, {"languages": measured})
        return
    rows = [row for lang, result in measured.items() for row in table_rows(lang, result)]
    print(tabulate(rows, headers=("lang", "step", "functions", "functions per CPU-second",
                                  "ratio to parse")))


if __name__ == "__main__":
    main()
