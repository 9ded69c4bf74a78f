"""ONION scoring: all inputs' leave-one-out variants in batched LM calls, against loops.

    python benchmarks/perf/onion.py [--inputs 64] [--threads 1] [--rounds 1] [--json]

Scores the suspicion of every word of the first Lyra test inputs (../shared/datasets/lyra) with
an untrained tiny-gpt2 (the cost does not depend on the weights; its tokenizer is trained on the
Lyra training inputs, so texts have their usual length in tokens) three ways, with the same code:

- baseline, one sequence per LM call: how ONION's own gptlm.py scores (batch_tokens = 1);
- one input per call: OpenBackdoor's ONIONDefender, which batches one input's variants;
- batched: every input's variants together, in padded batches of at most 4096 tokens.

Each method first runs on a few inputs, to warm up and to check that all three give the same
suspicions, then on all inputs in interleaved rounds, so that the shared machine's noise falls
on all alike; the median time is reported with its ratio to the baseline of the same run.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from report import add_json_flag, comparison, emit
from tabulate import tabulate

from codebackdoor.defenses.base import DefenseContext
from codebackdoor.defenses.onion import ONION
from codebackdoor.examples import Example
from codebackdoor.models import load_victim

# Inputs of the warm-up run, whose suspicions the three methods must agree on.
WARM_UP = 4
LYRA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "lyra"
BASELINE = "baseline: one sequence per call"


@dataclass
class NLTask:
    input_lang: str = "nl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=64)
    # One thread: on a shared, busy machine, two intra-op threads that other processes keep
    # descheduling make the many small calls of the loops several times slower still.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    add_json_flag(parser)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    # Other processes on the machine slow the loops' many small calls most; say how busy it was.
    load = os.getloadavg()[0]
    sources = lyra_inputs("test.csv")[: args.inputs]
    with tempfile.TemporaryDirectory() as work:
        saved = Path(work) / "lm"
        train = lyra_inputs("train.csv")
        examples = [Example(str(i), "", text, "nl") for i, text in enumerate(train)]
        load_victim("tiny-gpt2", "text", examples).save(saved)
        context = DefenseContext(NLTask(), [], seed=1, workdir=Path(work) / "onion")
        per_sequence = ONION(lm=str(saved), batch_tokens=1)
        batched = ONION(lm=str(saved))
        for onion in (per_sequence, batched):
            onion.fit([], context)
        methods = {
            BASELINE: per_sequence.suspicions,
            "one input per call": lambda inputs: [batched.suspicions([s])[0] for s in inputs],
            "batched": batched.suspicions,
        }
        # The warm-up on a few inputs also checks that the three agree.
        check_equal({name: run(sources[:WARM_UP]) for name, run in methods.items()})
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.rounds):
            for name, run in methods.items():
                start = time.perf_counter()
                scored = run(sources)
                times[name].append(time.perf_counter() - start)

    texts = sum(len(units) + 1 for units in scored)
    medians = comparison({name: statistics.median(seconds) for name, seconds in times.items()},
                         BASELINE, "s (median)", invert=True, inputs=len(sources), texts=texts,
                         runs_s=times)
    if args.json:
        emit("onion", args, {"load_average_before": round(load, 2), "scoring": medians})
        return
    print(
        f"{len(sources)} Lyra inputs, {texts} texts scored (inputs + leave-one-out variants), "
        f"untrained tiny-gpt2, {args.threads} CPU threads, median of {args.rounds} rounds"
    )
    print(f"load average before: {load:.2f} on {os.cpu_count()} CPUs")
    rows = []
    for name, median in medians["values"].items():
        rows.append([name, f"{median:.2f} s", f"{texts / median:,.0f}",
                     f"{medians['ratios'][name]:.1f}x"])
    print(tabulate(rows, headers=["method", "time", "texts/s", "speed-up vs baseline"]))


def lyra_inputs(filename: str) -> list[str]:
    with (LYRA / filename).open(encoding="utf-8", newline="") as handle:
        return [row["src"] for row in csv.DictReader(handle)]


def check_equal(results: dict[str, list]) -> None:
    reference = results["batched"]
    for name, scored in results.items():
        for left, right in zip(reference, scored, strict=True):
            for (unit, a), (other, b) in zip(left, right, strict=True):
                # The untrained LM's perplexities are in the thousands, and float32 sums over
                # different batch shapes differ in about the sixth digit.
                if unit != other or not math.isclose(a, b, rel_tol=1e-4, abs_tol=0.02):
                    raise SystemExit(f"{name} disagrees with batched on {unit.text!r}: {b} != {a}")


if __name__ == "__main__":
    main()
