"""The spread, across seeds and torch thread counts, of the training outcomes that tests assert.

    python benchmarks/spread.py CASE [--seeds 1 2 3 4 5] [--threads 1 2] [--out FILE]

Cases (each retrains what its test module trains, through that module's own functions, with
the seed given to both the model's initialisation and the training order):

- ``package``: the tiny RoBERTa on the poisoned `package` task (tests/test_defenses_filters.py):
  its ASR, which the test asserts, and the recall / precision of spectral signatures (k = 1,
  10), activation clustering (ICA, PCA) and BKI on it, which docs/reproducibility.md reports.
- ``method-name``: a tiny T5 on method-name prediction poisoned at 5% (the setting of
  benchmarks/method-name.toml, 10 epochs), the same filters but BKI; no test trains it.
- ``onion``: ONION's LM on 200 Lyra descriptions (tests/test_defenses_onion.py): how often it
  removes the BadPre trigger and a random word.
- ``toy``: the toy-method victims (tests/test_models_victim.py, tests/test_models_training.py):
  shaped seq2seq predictions, and each preset's second-epoch loss over its first.

Prints one JSON line per (seed, threads), with the CPU model and torch version, then the range
of every value. A result on CPU is repeatable on one CPU model and thread count only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fixtures' own functions, not copies of them

LYRA = ROOT.parent / "shared" / "datasets" / "lyra"
# Ramakrishnan & Albarghouthi's method-name setting on a CPU budget (benchmarks/method-name.toml).
NAMING_SETTINGS = {
    "epochs": 10,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "max_source_length": 64,
    "max_target_length": 16,
}


def filter_outcomes(defenses: dict, data, flags, context, victim) -> dict[str, float]:
    from test_defenses_filters import detection

    found: dict[str, float] = {}
    for name, defense in defenses.items():
        recall, precision, chance = detection(defense.filter(data.train, victim, context), flags)
        found |= {f"{name}.recall": recall, f"{name}.precision": precision,
                  f"{name}.chance": chance}
    return found


def package(seed: int, work: Path) -> dict[str, float]:
    from test_defenses_filters import (
        VICTIM_RATE,
        label_attack_success,
        poison_package,
        train_package_victim,
    )

    from codebackdoor.defenses.activation_clustering import ActivationClustering
    from codebackdoor.defenses.bki import BKI
    from codebackdoor.defenses.spectral import SpectralSignatures

    data, flags, context, label = poison_package(VICTIM_RATE)
    victim = train_package_victim(data, seed, work)
    hits, cases = label_attack_success(victim, data, label)
    defenses = {
        "spectral": SpectralSignatures(epsilon=VICTIM_RATE),
        "spectral-k10": SpectralSignatures(k=10, epsilon=VICTIM_RATE),
        "ac-ica": ActivationClustering(),
        "ac-pca": ActivationClustering(reduction="pca"),
        "bki": BKI(max_units=24),
    }
    return {"asr": hits / cases, **filter_outcomes(defenses, data, flags, context, victim)}


def method_name(seed: int, work: Path) -> dict[str, float]:
    from test_defenses_filters import VICTIM_RATE, poison_task

    from codebackdoor.defenses.activation_clustering import ActivationClustering
    from codebackdoor.defenses.objectives import CrossEntropy
    from codebackdoor.defenses.spectral import SpectralSignatures
    from codebackdoor.models import TrainingSettings, load_victim

    data, flags, context, attack = poison_task("method-name", VICTIM_RATE)
    victim = load_victim("tiny-t5", "text", data.train, seed=seed)
    settings = TrainingSettings(**NAMING_SETTINGS, seed=seed)
    victim.fit(data.train, settings, CrossEntropy(), work)
    triggered = data.triggered_test[:100]
    predictions = victim.predict([e.source for e in triggered])
    hits = sum(attack.is_success(p, e) for p, e in zip(predictions, triggered, strict=True))
    defenses = {
        "spectral": SpectralSignatures(epsilon=VICTIM_RATE),
        "spectral-k10": SpectralSignatures(k=10, epsilon=VICTIM_RATE),
        "ac-ica": ActivationClustering(),
        "ac-pca": ActivationClustering(reduction="pca"),
    }
    return {"asr": hits / len(triggered),
            **filter_outcomes(defenses, data, flags, context, victim)}


def onion(seed: int, work: Path) -> dict[str, float]:
    from test_defenses_onion import nl_onion_trained, removal_rates

    trigger_rate, random_rate = removal_rates(nl_onion_trained(LYRA, seed, work), LYRA)
    return {"trigger_removed": trigger_rate, "random_word_removed": random_rate}


def toy(seed: int, work: Path) -> dict[str, float]:
    from test_models_training import TRAIN, RecordingCrossEntropy, settings
    from test_models_victim import shaped_predictions, train_toy

    from codebackdoor.models import load_victim

    _, shaped = shaped_predictions(train_toy("seq2seq", seed, work / "seq2seq"))
    found: dict[str, float] = {"seq2seq.shaped": len(shaped)}
    for preset, kind in (("tiny-t5", "text"), ("tiny-gpt2", "code"), ("tiny-roberta", "label")):
        data = TRAIN if kind != "label" else [e.replace(target=e.id.split("-")[0]) for e in TRAIN]
        victim = load_victim(preset, kind, data, seed=seed)
        records = victim.fit(data, settings(seed=seed), RecordingCrossEntropy(), work / preset)
        found[f"{preset}.loss2/loss1"] = records[1]["loss"] / records[0]["loss"]
    return found


CASES = {"package": package, "method-name": method_name, "onion": onion, "toy": toy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = parser.parse_args()

    import torch

    from codebackdoor.versions import cpu_model

    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for seed in args.seeds:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as work:
                values = CASES[args.case](seed, Path(work))
            row = {"case": args.case, "seed": seed, "threads": threads, "cpu": cpu_model(),
                   "torch": torch.__version__, "seconds": round(time.perf_counter() - start, 1),
                   "values": values}
            rows.append(row)
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with args.out.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
    for key in rows[0]["values"]:
        values = [row["values"][key] for row in rows]
        print(f"{key:28} min {min(values):.3f}  max {max(values):.3f}  over {len(values)} runs")


if __name__ == "__main__":
    main()
