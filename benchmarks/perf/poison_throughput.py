"""Harvest and poisoning throughput of the embedded corpora (target: >= 5,000 functions/s per
core on Python fixed and grammar).

Throughput is functions per CPU-second of this process (time.process_time), so it reads as
"per core" even on a shared machine. Every figure is also printed as a ratio to a baseline
measured in the same run: one plain tree-sitter parse of each function, the least any trigger
placement with a re-parse check costs.

    python benchmarks/perf/poison_throughput.py [--limit N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from tabulate import tabulate

from codebackdoor.attacks.base import example_rng
from codebackdoor.code.parser import parse
from codebackdoor.errors import Unpoisonable
from codebackdoor.registry import registry

CODE_ATTACKS = ("fixed", "grammar", "deadcode", "rename")


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def measure(lang: str, limit: int | None) -> list[tuple]:
    task = registry("tasks").get("summarize")(lang=lang)
    start = time.perf_counter()
    splits = task.load()
    harvest_seconds = time.perf_counter() - start
    examples = (splits.train + splits.valid + splits.test)[:limit]

    start = time.process_time()
    for example in examples:
        parse(example.source, lang)
    parse_rate = _rate(len(examples), time.process_time() - start)

    # Python reads the packaged corpus; Java is harvested from the JDK sources.
    first = "load (packaged corpus)" if lang == "python" else "harvest (cold cache)"
    rows = [(lang, first, len(examples), f"{harvest_seconds:.1f} s", "")]
    rows.append((lang, "baseline: parse only", len(examples), f"{parse_rate:,.0f}/s", "1.00"))
    for name in CODE_ATTACKS:
        trigger = registry("attacks").get(name)()
        poisoned = 0
        start = time.process_time()
        for example in examples:
            try:
                trigger.apply(example.source, lang, example_rng(1, example.id))
                poisoned += 1
            except Unpoisonable:
                pass
        rate = _rate(len(examples), time.process_time() - start)
        rows.append((lang, f"{name} (+re-parse check)", poisoned, f"{rate:,.0f}/s",
                     f"{rate / parse_rate:.2f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="functions per language (default: all)")
    args = parser.parse_args()
    os.environ["CODEBACKDOOR_CACHE"] = tempfile.mkdtemp(prefix="cb-bench-")  # a cold harvest
    rows = []
    for lang in ("python", "java"):
        rows.extend(measure(lang, args.limit))
    print(tabulate(rows, headers=("lang", "step", "functions", "functions per CPU-second",
                                  "ratio to parse")))


if __name__ == "__main__":
    main()
