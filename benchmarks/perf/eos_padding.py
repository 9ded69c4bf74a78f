"""Does a causal victim whose padding token is its end of sequence learn to stop?

Trains ``tiny-qwen2`` (padding = ``<|endoftext|>`` = eos) on the 16 toy methods of
``tests/conftest.py`` twice per seed: with this project's labels (padding ignored by position)
and with the released DeCE scripts' rule (every label equal to the padding id ignored, the real
end of sequence included). Prints, per seed, how many of the 16 prompts the model ends with eos
within ``--limit`` new tokens. ``tests/test_models_families.py`` asserts on one seed with the
margin this spread allows. A measurement of behaviour, not of speed: there is no timing
baseline and no ratio.

    python benchmarks/perf/eos_padding.py [--seeds 1 2 3] [--epochs 20] [--limit 12] [--json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from codebackdoor.defenses.objectives import CrossEntropy
from codebackdoor.examples import Example
from codebackdoor.models import TrainingSettings, load_victim, training
from codebackdoor.models.objective import IGNORE_INDEX
from codebackdoor.models.tokenizer import input_ids, pad
from codebackdoor.models.training import padding_id

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
# The shared reporting module sits beside this file; tests load this file by path, not as a script.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import TOY_METHODS
from report import add_json_flag, emit

PRESET = "tiny-qwen2"


def released_rule(original: Any) -> Any:
    """``training_features`` as the released DeCE scripts label: the padding id is ignored
    wherever it occurs."""

    def features(tokenizer: Any, *args: Any) -> list[dict[str, Any]]:
        rows = original(tokenizer, *args)
        for row in rows:
            row["labels"] = [IGNORE_INDEX if label == tokenizer.pad_token_id else label
                             for label in row["labels"]]
        return rows

    return features


def stopping(victim: Any, examples: list[Example], limit: int) -> int:
    """How many of ``examples``' prompts the victim ends with eos within ``limit`` new tokens."""
    tokenizer = victim.tokenizer
    ids = input_ids(tokenizer, "causal", [example.source for example in examples], 64)
    batch = {"input_ids": pad(ids, padding_id(tokenizer), "left"),
             "attention_mask": pad([[1] * len(row) for row in ids], 0, "left")}
    victim.model.eval()
    with torch.no_grad():
        output = victim.model.generate(**batch, max_new_tokens=limit, do_sample=False,
                                       pad_token_id=tokenizer.eos_token_id,
                                       eos_token_id=tokenizer.eos_token_id)
    new = output[:, batch["input_ids"].shape[1] :]
    return sum(bool((row == tokenizer.eos_token_id).any()) for row in new)


def trained(seed: int, epochs: int, workdir: Path) -> Any:
    victim = load_victim(PRESET, "code", TOY_METHODS, seed=seed)
    settings = TrainingSettings(epochs=epochs, batch_size=8, learning_rate=3e-3, seed=seed)
    victim.fit(TOY_METHODS, settings, CrossEntropy(), workdir)
    return victim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--limit", type=int, default=12)
    add_json_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    original = training.training_features
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            counts = []
            for name, features in (("ours", original), ("released", released_rule(original))):
                training.training_features = features
                try:
                    victim = trained(seed, args.epochs, Path(work) / f"{name}-{seed}")
                finally:
                    training.training_features = original
                counts.append(stopping(victim, TOY_METHODS, args.limit))
            rows.append([seed, *counts])
    if args.json:
        emit("eos_padding", args, {
            "preset": PRESET, "prompts": len(TOY_METHODS),
            "baseline": None, "ratios": None,
            "note": "prompts ended with eos within --limit new tokens, per seed and labelling "
                    "rule; a count of behaviour, with no timing baseline",
            "ended_with_eos": [{"seed": seed, "labels by position": ours, "released rule": theirs}
                               for seed, ours, theirs in rows],
        })
        return
    total = len(TOY_METHODS)
    rows = [[seed, f"{ours}/{total}", f"{theirs}/{total}"] for seed, ours, theirs in rows]
    print(f"{PRESET}, {args.epochs} epochs: prompts ended with eos within {args.limit} tokens")
    print(tabulate(rows, headers=["seed", "labels by position", "released rule"]))


if __name__ == "__main__":
    main()
