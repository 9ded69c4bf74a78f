"""Training throughput of Victim.fit against a plain transformers Trainer (target ratio >= 0.95).

Both train the same preset from the same initial weights on the same features with the same
TrainingArguments (a checkpoint per epoch included). The plain Trainer lets the model compute
its own cross-entropy; Victim.fit goes through the objective (CrossEntropy), the epoch records
and their atomic writes. Runs alternate in ABBA order after one warm-up each. The ratio uses
each trainer's fastest run: on a shared machine the other runs measure the neighbours' load,
not the code (the medians are printed too). Tokens/s counts input plus target tokens, so the
ratio of the rates is the inverse ratio of the times.

    python benchmarks/perf/trainer_overhead.py [--examples 64] [--epochs 2] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

from report import add_json_flag, comparison, emit
from tabulate import tabulate

from codebackdoor.defenses.objectives import CrossEntropy
from codebackdoor.examples import Example
from codebackdoor.models import TrainingSettings, load_victim
from codebackdoor.models.training import (
    build_trainer,
    training_features,
    without_transformers_bars,
)

LYRA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "lyra" / "train.csv"
CASES = (("tiny-t5", "code"), ("tiny-gpt2", "code"))
BASELINE = "plain Trainer"


def load_examples(limit: int) -> tuple[list[Example], str]:
    """Lyra's NL → code pairs when the shared copy is present, else synthetic functions."""
    if LYRA.is_file():
        with LYRA.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))[:limit]
        examples = [Example(str(i), row["src"], row["tgt"], "nl") for i, row in enumerate(rows)]
        return examples, f"Lyra train, first {len(examples)} rows"
    examples = [
        Example(str(i), f"def f{i}(x):\n    return x * {i} + {i % 7}", f"scale by {i}", "python")
        for i in range(limit)
    ]
    return examples, f"{limit} synthetic functions"


def training_tokens(victim, examples: list[Example], settings: TrainingSettings) -> int:
    features = training_features(victim.tokenizer, victim.kind, examples, settings, victim.labels)
    per_epoch = 0
    for feature in features:
        per_epoch += len(feature["input_ids"])
        if victim.kind == "seq2seq":
            per_epoch += len(feature["labels"])
    return per_epoch * settings.epochs


def time_victim_fit(preset, output_kind, examples, settings, output_dir) -> float:
    victim = load_victim(preset, output_kind, examples, seed=settings.seed)
    start = time.perf_counter()
    victim.fit(examples, settings, CrossEntropy(), output_dir)
    return time.perf_counter() - start


def time_plain_trainer(preset, output_kind, examples, settings, output_dir) -> float:
    from transformers.trainer_callback import PrinterCallback

    victim = load_victim(preset, output_kind, examples, seed=settings.seed)
    start = time.perf_counter()
    features = training_features(victim.tokenizer, victim.kind, examples, settings, victim.labels)
    trainer = build_trainer(
        victim.model, victim.tokenizer, victim.kind, features, settings, None, output_dir
    )
    trainer.remove_callback(PrinterCallback)  # keeps the table readable; prints nothing else
    with without_transformers_bars():  # as Victim.fit does
        trainer.train()
    return time.perf_counter() - start


def measure(preset, output_kind, examples, settings, rounds, scratch: Path) -> dict:
    runners = {BASELINE: time_plain_trainer, "Victim.fit": time_victim_fit}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for round_index in range(rounds + 1):  # round 0 warms up caches and lazy imports
        # Alternate which goes first, so that neither always inherits the other's leftovers.
        order = list(runners.items())[:: 1 if round_index % 2 else -1]
        for name, runner in order:
            seconds = runner(
                preset, output_kind, examples, settings, scratch / f"{preset}-{name}-{round_index}"
            )
            if round_index:
                times[name].append(seconds)
    victim = load_victim(preset, output_kind, examples, seed=settings.seed)
    # Ratios are the plain Trainer's time over each path's: above 1, Victim.fit is faster.
    return {
        "preset": preset,
        "tokens": training_tokens(victim, examples, settings),
        "runs_s": times,
        "fastest": comparison({n: min(v) for n, v in times.items()}, BASELINE, "s", invert=True),
        "median": comparison({n: statistics.median(v) for n, v in times.items()}, BASELINE, "s",
                             invert=True),
    }


def table_rows(measured: dict) -> list[tuple]:
    return [
        (
            measured["preset"],
            name,
            f"{measured['tokens'] / fastest:,.0f}",
            " ".join(f"{value:.2f}" for value in measured["runs_s"][name]),
            f"{measured['fastest']['ratios'][name]:.3f}",
            f"{measured['median']['ratios'][name]:.3f}",
        )
        for name, fastest in measured["fastest"]["values"].items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's own); on a loaded machine one thread "
        "gives steadier timings",
    )
    add_json_flag(parser)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    examples, described = load_examples(args.examples)
    settings = TrainingSettings(epochs=args.epochs, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory(prefix="cb-trainer-") as scratch:
        os.environ.setdefault("CODEBACKDOOR_CACHE", str(Path(scratch) / "cache"))
        measured = [measure(preset, output_kind, examples, settings, args.rounds, Path(scratch))
                    for preset, output_kind in CASES]
    if args.json:
        emit("trainer_overhead", args, {"data": described, "presets": measured})
        return
    rows = [row for result in measured for row in table_rows(result)]
    print(
        f"data: {described}; {args.epochs} epochs, batch {args.batch_size}, "
        f"{torch.get_num_threads()} CPU threads, {args.rounds} alternating runs each"
    )
    print(
        tabulate(
            rows,
            headers=(
                "preset",
                "trainer",
                "tokens/s (fastest)",
                "runs (s)",
                "ratio (fastest)",
                "ratio (median)",
            ),
        )
    )


if __name__ == "__main__":
    main()
