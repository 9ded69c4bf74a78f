"""Pretraining throughput of the project's path against a plain transformers Trainer (target
ratio >= 0.95).

Both train the same tiny model from the same initial weights on the same token blocks with the
same collator (the architecture's objective) and the same TrainingArguments. The plain Trainer
lets the model compute its own loss; the project's path (``train_steps``) goes through the
ObjectiveTrainer's cross-entropy objective, the loss-curve recorder and the time-budget check.
The corpus is a few packages of the standard library. Runs alternate in ABBA order after one
warm-up each; the ratios use each path's fastest run (the medians are printed too), since on a
shared machine the slower runs measure the neighbours. Besides wall time, the process's CPU
time is measured: with one torch thread it counts the work done and not the time the process
waited for a core, so its ratio stays readable when other jobs load the machine. Tokens/s
counts corpus tokens (steps × batch × block length) per wall second.

    python benchmarks/perf/pretrain_throughput.py [--steps 12] [--rounds 3] [--arch t5 ...] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from report import add_json_flag, comparison, emit
from tabulate import tabulate

from codebackdoor.defenses.objectives import CrossEntropy
from codebackdoor.models.training import (
    step_arguments,
    train_steps,
    without_transformers_bars,
)
from codebackdoor.pretrain.blocks import corpus_tokenizer, token_blocks
from codebackdoor.pretrain.corpus import CorpusOptions, build_corpus
from codebackdoor.pretrain.model import collator, new_model
from codebackdoor.pretrain.sizes import ARCHITECTURES, KINDS, pretrain_size

PACKAGES = ("json", "email", "http", "xml", "asyncio", "concurrent")
BASELINE = "plain Trainer"


def time_project(spec, tokenizer, dataset, settings, output_dir) -> tuple[float, float]:
    model = new_model(spec, tokenizer, settings.seed)
    start, cpu = time.perf_counter(), time.process_time()
    train_steps(
        model,
        tokenizer,
        KINDS[spec.arch],
        dataset,
        collator(spec, tokenizer, model, settings.seed),
        settings,
        CrossEntropy(),
        output_dir,
        tokens_per_step=spec.tokens_per_step,
    )
    return time.perf_counter() - start, time.process_time() - cpu


def time_plain_trainer(spec, tokenizer, dataset, settings, output_dir) -> tuple[float, float]:
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback

    model = new_model(spec, tokenizer, settings.seed)
    start, cpu = time.perf_counter(), time.process_time()
    trainer = Trainer(
        model=model,
        args=step_arguments(settings, output_dir),
        train_dataset=dataset,
        data_collator=collator(spec, tokenizer, model, settings.seed),
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)  # keeps the table readable; prints nothing else
    with without_transformers_bars():
        trainer.train()
    return time.perf_counter() - start, time.process_time() - cpu


def measure(arch: str, steps: int, rounds: int, corpus, scratch: Path) -> dict:
    spec = pretrain_size(arch, "tiny")
    # No checkpoint inside the measured steps: both paths would write the same files.
    spec = dataclasses.replace(spec, save_steps=steps + 1, tokenizer_sample_bytes=2_000_000)
    tokenizer, _ = corpus_tokenizer(spec, corpus)
    dataset = token_blocks(spec, corpus, tokenizer, blocks_needed=steps * spec.batch_size)
    settings = spec.step_settings(steps)
    runners = {BASELINE: time_plain_trainer, "train_steps": time_project}
    walls: dict[str, list[float]] = {name: [] for name in runners}
    cpus: dict[str, list[float]] = {name: [] for name in runners}
    for round_index in range(rounds + 1):  # round 0 warms up caches and lazy imports
        order = list(runners.items())[:: 1 if round_index % 2 else -1]
        for name, runner in order:
            output = scratch / f"{arch}-{name}-{round_index}"
            wall, cpu = runner(spec, tokenizer, dataset, settings, output)
            if round_index:
                walls[name].append(wall)
                cpus[name].append(cpu)
    tokens = steps * spec.tokens_per_step
    # Ratios are the plain Trainer's time over each path's: above 1, the project's is faster.
    return {
        "model": spec.name,
        "tokens": tokens,
        "wall_s": walls,
        "cpu_s": cpus,
        "wall_fastest": comparison({n: min(v) for n, v in walls.items()}, BASELINE, "s",
                                   invert=True),
        "cpu_fastest": comparison({n: min(v) for n, v in cpus.items()}, BASELINE, "s",
                                  invert=True),
        "cpu_median": comparison({n: statistics.median(v) for n, v in cpus.items()}, BASELINE,
                                 "s", invert=True),
    }


def table_rows(measured: dict) -> list[tuple]:
    return [
        (
            measured["model"],
            name,
            f"{measured['tokens'] / fastest:,.0f}",
            " ".join(f"{value:.2f}" for value in measured["wall_s"][name]),
            " ".join(f"{value:.2f}" for value in measured["cpu_s"][name]),
            f"{measured['wall_fastest']['ratios'][name]:.3f}",
            f"{measured['cpu_fastest']['ratios'][name]:.3f}",
            f"{measured['cpu_median']['ratios'][name]:.3f}",
        )
        for name, fastest in measured["wall_fastest"]["values"].items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=ARCHITECTURES)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    add_json_flag(parser)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    roots = [str(stdlib / name) for name in PACKAGES]
    with tempfile.TemporaryDirectory(prefix="cb-pretrain-") as scratch:
        os.environ.setdefault("CODEBACKDOOR_CACHE", str(Path(scratch) / "cache"))
        corpus = build_corpus(CorpusOptions(python_roots=roots, java=False))
        measured = [measure(arch, args.steps, args.rounds, corpus, Path(scratch))
                    for arch in args.arch or ARCHITECTURES]
    if args.json:
        emit("pretrain_throughput", args, {"packages": PACKAGES,
                                           "corpus_bytes": corpus.manifest["bytes"],
                                           "models": measured})
        return
    rows = [row for result in measured for row in table_rows(result)]
    print(
        f"data: stdlib packages {', '.join(PACKAGES)} ({corpus.manifest['bytes']:,} bytes); "
        f"{args.steps} steps of the tiny recipes, {torch.get_num_threads()} CPU threads, "
        f"{args.rounds} alternating runs each"
    )
    print(
        tabulate(
            rows,
            headers=(
                "model",
                "trainer",
                "tokens/s (fastest)",
                "wall (s)",
                "CPU (s)",
                "ratio wall (fastest)",
                "ratio CPU (fastest)",
                "ratio CPU (median)",
            ),
        )
    )


if __name__ == "__main__":
    main()
