"""Filter defenses: BKI's batched victim calls against one sequence at a time, and spectral
signatures and activation clustering on 50,000 representations.

    python benchmarks/perf/filter_defenses.py [--examples 40] [--units 32] [--rows 50000] [--json]

(a) BKI: the same `BKI.deltas` code three ways, on an untrained tiny RoBERTa and the embedded
Python corpus: one sequence per forward pass (the baseline, as ONION's benchmark), one example's
variants per call (OpenBackdoor's BKIDefender), and all examples at once (one victim call per
chunk of variants); target >= 10x against the baseline.
(b) spectral (k = 1 and 10) and AC (ICA and PCA) on random representations of width 128, one
group; times are printed as ratios to a baseline measured in the same run (one float64 matrix
product Xᵀ X), since the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import time

from report import add_json_flag, comparison, emit
from tabulate import tabulate

BASELINE = "Xᵀ X float64 (baseline)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    # Rows per forward pass of BKI's batched path (None: the victim's evaluation batch size).
    parser.add_argument("--batch-size", type=int, default=None)
    add_json_flag(parser)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    load = round(os.getloadavg()[0], 2)
    if not args.json:
        print(f"{args.threads} CPU threads; load average {load:.2f} on {os.cpu_count()} CPUs",
              flush=True)
    measured = {"load_average_before": load, "bki": bki(args),
                "representations": representations(args)}
    if args.json:
        emit("filter_defenses", args, measured)


def bki(args: argparse.Namespace) -> dict:
    from codebackdoor.defenses.bki import BKI
    from codebackdoor.defenses.units import units
    from codebackdoor.models.victim import load_victim
    from codebackdoor.registry import registry

    task = registry("tasks").get("package")(lang="python")
    train = task.load().train[: args.examples]
    victim = load_victim("tiny-roberta", "label", train)
    defense = BKI(max_units=args.units, batch_size=args.batch_size)
    per_sequence = BKI(max_units=args.units, batch_size=1)
    sources = [e.source for e in train]
    pieces = [units(e.source, e.lang)[: args.units] for e in train]
    inputs = sum(len(p) + 1 for p in pieces)
    paths = {
        "one sequence per call (baseline)": lambda: per_sequence.deltas(victim, sources, pieces),
        "one example per call": lambda: [
            defense.deltas(victim, [s], [p])[0] for s, p in zip(sources, pieces, strict=True)
        ],
        "batched": lambda: defense.deltas(victim, sources, pieces),
    }

    # One untimed pass of each first: a GPU's first calls at new shapes set up kernels and
    # workspaces, which would otherwise be charged to whichever path runs first. Then rounds in
    # rotating order; the fastest of each path counts.
    results = {name: run() for name, run in paths.items()}
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            paths[name]()
            times[name].append(time.perf_counter() - start)
    worst = max(
        abs(a - b)
        for scored in results.values()
        for x, y in zip(results["batched"], scored, strict=True)
        for a, b in zip(x, y, strict=True)
    )
    fastest = comparison({name: min(times[name]) for name in names}, names[0],
                         "s (fastest round)", invert=True, examples=len(train), inputs=inputs,
                         max_difference=worst, runs_s=times)
    if args.json:
        return fastest
    print(
        f"\n(a) BKI on {len(train)} examples, {inputs} victim inputs "
        f"(max difference between the paths {worst:.1e}; fastest of {args.rounds} rounds)"
    )
    rows = []
    for name in names:
        seconds = fastest["values"][name]
        rows.append([name, f"{seconds:.2f}", f"{inputs / seconds:.0f}",
                     f"{fastest['ratios'][name]:.1f}x"])
    print(
        tabulate(rows, headers=["path", "time (s)", "inputs/s", "speed-up"], disable_numparse=True),
        flush=True,
    )
    return fastest


def representations(args: argparse.Namespace) -> dict:
    import numpy as np

    from codebackdoor.defenses.activation_clustering import ActivationClustering
    from codebackdoor.defenses.spectral import SpectralSignatures

    vectors = np.random.default_rng(0).normal(size=(args.rows, args.width)).astype(np.float32)
    groups = {"all": list(range(args.rows))}
    start = time.perf_counter()
    as_float64 = vectors.astype(np.float64)
    as_float64.T @ as_float64
    base = time.perf_counter() - start
    methods = {
        "spectral k=1": lambda: SpectralSignatures().decide(vectors, groups),
        "spectral k=10": lambda: SpectralSignatures(k=10).decide(vectors, groups),
        "ac ica": lambda: ActivationClustering().decide(vectors, groups, seed=1),
        "ac pca": lambda: ActivationClustering(reduction="pca").decide(vectors, groups, seed=1),
    }
    seconds = {BASELINE: base}
    for name, run in methods.items():
        start = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - start
    timed = comparison(seconds, BASELINE, "s")
    if args.json:
        return timed
    rows = [[name, f"{value:.3f}", f"{timed['ratios'][name]:.1f}x"]
            for name, value in seconds.items()]
    print(f"\n(b) {args.rows} x {args.width} random representations, one group")
    print(tabulate(rows, headers=["method", "time (s)", "/ baseline"], disable_numparse=True))
    return timed


if __name__ == "__main__":
    main()
