"""DeCE loss: forward + backward time and extra peak memory, as ratios to F.cross_entropy.

    python benchmarks/perf/dece_loss.py [--rows 8192] [--vocab 32100 50257] [--threads 2] [--json]

Compared on the same random logits (float32, one position in ten ignored): F.cross_entropy,
the published dense formula in float32, and the lean DeCE loss eager and compiled. Targets:
at most 1.5x CE's time and 1.1x CE's extra peak memory.

Time: one process per vocabulary size runs every method once to warm up (and compile), then
in interleaved rounds, so that the shared machine's noise falls on all methods alike; the
median per method is reported.

Memory: torch's CPU allocations bypass tracemalloc, so the process's resident set is measured
instead, in a fresh process per method and vocabulary size. After allocating the inputs and one
warm-up run, the kernel's peak-RSS counter is reset (writing 5 to /proc/self/clear_refs);
extra peak = VmHWM after one forward + backward minus VmRSS before it. It includes the logits'
gradient, which every method produces. glibc is told to serve every block over 64 KiB by mmap
(MALLOC_MMAP_THRESHOLD_), so freed buffers leave the resident set instead of hiding in the heap.
Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

from report import add_json_flag, comparison, emit, ratio_text

METHODS = ("F.cross_entropy", "dense formula", "DeCE eager", "DeCE compiled")
BASELINE = METHODS[0]
# N×V float32 buffers each method holds at its peak beyond the logits, as measured with
# some margin; only used to skip a measurement that the machine's free memory cannot hold.
BUFFERS_AT_PEAK = {"F.cross_entropy": 4, "dense formula": 7, "DeCE eager": 2, "DeCE compiled": 2}
ALPHA, EPSILON = 0.99, 0.05
GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--vocab", type=int, nargs="+", default=[32100, 50257])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    add_json_flag(parser)
    parser.add_argument("--worker", choices=("time", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)  # comma-separated for "time"
    args = parser.parse_args()
    if args.worker == "memory":
        print(json.dumps(measure_memory(args.method, args.rows, args.vocab[0], args.threads)))
    elif args.worker == "time":
        methods = args.method.split(",")
        print(
            json.dumps(measure_time(methods, args.rows, args.vocab[0], args.threads, args.rounds))
        )
    else:
        report(args)


def report(args: argparse.Namespace) -> None:
    from tabulate import tabulate

    load_before = round(os.getloadavg()[0], 2)
    if not args.json:
        print(f"N = {args.rows}, {args.threads} CPU threads, forward + backward, alpha = {ALPHA}")
        # Other processes on the machine slow the many-kernel methods most; say how busy it was.
        print(f"load average before: {load_before:.2f} on {os.cpu_count()} CPUs", flush=True)
    shapes = []
    for vocab in args.vocab:
        fits = [method for method in METHODS if fits_in_memory(method, args.rows, vocab)]
        times = run_worker("time", ",".join(fits), args, vocab)
        memory = {method: run_worker("memory", method, args, vocab) for method in fits}
        time_ratios = comparison({m: times[m]["median_s"] for m in fits}, BASELINE, "s (median)",
                                 fell_back_to_eager=[m for m in fits if times[m]["fell_back"]])
        memory_ratios = comparison({m: memory[m]["extra_peak_bytes"] for m in fits}, BASELINE,
                                   "extra peak bytes")
        shapes.append({"vocab": vocab, "time": time_ratios, "memory": memory_ratios,
                       "skipped_for_memory": [m for m in METHODS if m not in fits],
                       "load_average_after": round(os.getloadavg()[0], 2)})
        if args.json:
            continue
        rows = []
        for method in METHODS:
            if method not in fits:
                rows.append([method, "skipped: not enough free memory", "", "", ""])
                continue
            label = method + (" (fell back to eager)" if times[method]["fell_back"] else "")
            rows.append(
                [
                    label,
                    f"{time_ratios['values'][method]:.3f}",
                    f"{time_ratios['ratios'][method]:.2f}x",
                    f"{memory_ratios['values'][method] / GIB:.2f}",
                    ratio_text(memory_ratios["ratios"][method]),
                ]
            )
        headers = ["method", "time (s, median)", "time / CE", "extra peak (GiB)", "memory / CE"]
        print(f"\nV = {vocab}")
        print(tabulate(rows, headers=headers, disable_numparse=True))
        print(f"load average after: {shapes[-1]['load_average_after']:.2f}", flush=True)
    if args.json:
        emit("dece_loss", args, {"alpha": ALPHA, "load_average_before": load_before,
                                 "vocabularies": shapes},
             internal=("worker", "method"), torch_threads=args.threads)


def fits_in_memory(method: str, rows: int, vocab: int) -> bool:
    needed = (BUFFERS_AT_PEAK[method] + 1) * rows * vocab * 4
    with open("/proc/meminfo") as handle:
        available_kib = next(int(line.split()[1]) for line in handle if "MemAvailable" in line)
    return needed < 0.8 * available_kib * 1024


def run_worker(mode: str, methods: str, args: argparse.Namespace, vocab: int) -> dict:
    command = [sys.executable, __file__, "--worker", mode, "--method", methods]
    command += ["--rows", str(args.rows), "--vocab", str(vocab), "--threads", str(args.threads)]
    command += ["--rounds", str(args.rounds)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if mode == "memory":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{mode} worker for {methods} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def step_function(method: str, rows: int, vocab: int, threads: int) -> tuple[Callable, list]:
    """A forward + backward of ``method`` on fresh logits, and its compile-fallback warnings."""
    import torch
    import torch.nn.functional as F

    from codebackdoor.defenses.dece import dece_loss, dense_dece_loss

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(rows, vocab, generator=generator).requires_grad_()
    labels = torch.randint(0, vocab, (rows,), generator=generator)
    labels[::10] = -100
    losses = {
        "F.cross_entropy": lambda: F.cross_entropy(logits, labels, ignore_index=-100),
        "dense formula": lambda: dense_dece_loss(logits, labels, alpha=ALPHA, epsilon=EPSILON),
        "DeCE eager": lambda: dece_loss(
            logits, labels, alpha=ALPHA, epsilon=EPSILON, compile=False
        ),
        "DeCE compiled": lambda: dece_loss(
            logits, labels, alpha=ALPHA, epsilon=EPSILON, compile=True
        ),
    }
    caught: list = []

    def step() -> None:
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always", RuntimeWarning)
            losses[method]().backward()
        caught.extend(w for w in raised if "DeCE kernel" in str(w.message))
        logits.grad = None

    return step, caught


def measure_time(methods: list[str], rows: int, vocab: int, threads: int, rounds: int) -> dict:
    steps = {method: step_function(method, rows, vocab, threads) for method in methods}
    for step, _ in steps.values():
        step()
    seconds: dict[str, list[float]] = {method: [] for method in methods}
    for _ in range(rounds):
        for method, (step, _) in steps.items():
            start = time.perf_counter()
            step()
            seconds[method].append(time.perf_counter() - start)
    return {
        method: {"median_s": statistics.median(seconds[method]), "fell_back": bool(caught)}
        for method, (_, caught) in steps.items()
    }


def measure_memory(method: str, rows: int, vocab: int, threads: int) -> dict:
    step, _ = step_function(method, rows, vocab, threads)
    step()  # warm-up: compiles, and loads whatever torch loads lazily
    before = resident_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM to the current resident set
    step()
    return {"extra_peak_bytes": (resident_kib("VmHWM") - before) * 1024}


def resident_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))


if __name__ == "__main__":
    main()
