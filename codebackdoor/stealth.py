"""How visible an attack's poisoned inputs are (issue 16 §4).

Each poisoned training input is compared with its clean original:

- naturalness: the per-token cross-entropy of both under the modified Kneser-Ney n-gram model
  KillBadCode uses (its 4-gram order), trained on the clean training inputs that are not
  measured here, so that neither side of a pair was seen in training; the mean difference
  carries a Student t interval over the pairs;
- the token edit distance (Levenshtein over the units defenses delete: tree-sitter leaf tokens
  for code, whitespace words for text);
- parse validity (tree-sitter, no ERROR or MISSING node), clean and poisoned;
- for Java, compile validity with ``javac`` when it is on PATH: each method is wrapped in a
  class of its own with ``java.util`` and ``java.io`` imported. A method cut out of its class
  often refers to fields or types the wrapper lacks, so the clean rate is the baseline, and the
  poisoned rate is also given over the pairs whose clean original compiles;
- how well each filter defense separates poisoned from clean training examples: the AUROC of the
  suspicion scores a finished run saved (``filter/decision.json``) against its poison manifest
  (of the removals where the filter has no graded score).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codebackdoor.code.parser import is_valid
from codebackdoor.defenses.killbadcode import NGramModel
from codebackdoor.defenses.units import units
from codebackdoor.errors import UserError
from codebackdoor.examples import Example, read_jsonl
from codebackdoor.io import atomic_write_json
from codebackdoor.poison import COPY_SUFFIX, PoisonedData
from codebackdoor.stats import t_interval, wilson

STEALTH_FILE = "stealth.json"
STEALTH_SCHEMA_VERSION = 1
# KenLM reports log10 probabilities; the tables give bits.
BITS_PER_LOG10 = math.log2(10)
JAVA_WRAPPER_IMPORTS = ("java.util.*", "java.io.*")
# The parts of a manifest's attack record that decide the poisoned data (not the preset's name).
ATTACK_IDENTITY = ("method", "params", "payload", "selection")


@dataclass
class StealthSettings:
    """What is measured. The n-gram order is KillBadCode's (Sun et al., ICSE 2025: a 4-gram
    KenLM model)."""

    # Poisoned rows measured: a sample of those the attack poisoned, drawn with the poisoning
    # seed (0: all).
    sample: int = 200
    order: int = 4
    # Compile Java with javac where it is on PATH.
    compile: bool = True


def token_edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute: 1 each)."""
    previous = list(range(len(b) + 1))
    for i, left in enumerate(a, 1):
        current = [i]
        for j, right in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (left != right)))
        previous = current
    return previous[-1]


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """The area under the ROC curve of ``scores`` (higher = more suspicious) for the
    ``positive`` examples: the Mann–Whitney probability that a positive outscores a negative,
    ties counted half. None when either class is empty."""
    from scipy.stats import rankdata

    if len(scores) != len(positive):
        raise ValueError(f"{len(scores)} scores for {len(positive)} labels")
    n_pos = sum(bool(p) for p in positive)
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    ranks = rankdata(scores)  # ties share their average rank: half a win each way
    rank_sum = sum(r for r, p in zip(ranks, positive, strict=True) if p)
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def poisoned_pairs(clean_train: list[Example], data: PoisonedData) -> list[tuple[Example, Example]]:
    """(clean original, poisoned row) for every poisoned training row, in manifest order."""
    clean = {example.id: example for example in clean_train}
    rows = {example.id: example for example in data.train}
    return [(clean[pid.removesuffix(COPY_SUFFIX)], rows[pid])
            for pid in data.manifest["poisoned_ids"]]


def tokens(example: Example) -> list[str]:
    """The units input-level defenses delete: leaf tokens of code, words of text."""
    return [unit.text for unit in units(example.source, example.lang)]


def measure(clean_train: list[Example], data: PoisonedData,
            settings: StealthSettings | None = None) -> dict[str, Any]:
    """The stealth record of one poisoning of ``clean_train`` (filter AUROC not included)."""
    settings = settings or StealthSettings()
    pairs = poisoned_pairs(clean_train, data)
    if settings.sample and len(pairs) > settings.sample:
        pairs = random.Random(data.manifest["seed"]).sample(pairs, settings.sample)
    lang = clean_train[0].lang
    record: dict[str, Any] = {
        "schema_version": STEALTH_SCHEMA_VERSION,
        "task": data.manifest["task"]["name"],
        "lang": data.manifest["task"]["lang"],
        "input_lang": lang,
        "attack": data.manifest["attack"],
        "rate": data.manifest["rate"],
        "seed": data.manifest["seed"],
        "settings": asdict(settings),
        "poisoned": len(data.manifest["poisoned_ids"]),
        "measured": len(pairs),
    }
    if not pairs:
        return record
    measured = {clean.id for clean, _ in pairs}
    clean_tokens = [tokens(clean) for clean, _ in pairs]
    poisoned_tokens = [tokens(poisoned) for _, poisoned in pairs]
    record["cross_entropy"] = cross_entropy(
        [tokens(e) for e in clean_train if e.id not in measured], clean_tokens, poisoned_tokens,
        settings.order)
    distances = [token_edit_distance(a, b)
                 for a, b in zip(clean_tokens, poisoned_tokens, strict=True)]
    record["edit_distance"] = {
        "unit": "leaf tokens" if lang != "nl" else "words",
        "mean": sum(distances) / len(distances),
        "min": min(distances),
        "max": max(distances),
        "clean_length": sum(map(len, clean_tokens)) / len(clean_tokens),
    }
    if lang != "nl":
        record["parse_valid"] = {
            "clean": share([is_valid(c.source, lang) for c, _ in pairs]),
            "poisoned": share([is_valid(p.source, lang) for _, p in pairs]),
        }
    if lang == "java":
        record["compile_valid"] = (compile_validity(pairs) if settings.compile
                                   else {"skipped": "not asked for"})
    return record


def share(flags: Sequence[bool]) -> dict[str, Any]:
    """A count of true flags with its share and Wilson interval."""
    hits = sum(flags)
    bounds = wilson(hits, len(flags))
    return {"count": hits, "n": len(flags), "share": hits / len(flags) if flags else None,
            "ci95": list(bounds) if bounds else None}


def cross_entropy(training: list[list[str]], clean: list[list[str]], poisoned: list[list[str]],
                  order: int) -> dict[str, Any]:
    """Mean bits per token of the clean and poisoned inputs and of their paired difference."""
    if not training:
        raise UserError("no clean training inputs are left to train the n-gram model on")
    model = NGramModel.train(training, order=order)
    before = [model.entropy(t) * BITS_PER_LOG10 for t in clean]
    after = [model.entropy(t) * BITS_PER_LOG10 for t in poisoned]
    differences = [b - a for a, b in zip(before, after, strict=True)]
    n = len(differences)
    mean = sum(differences) / n
    std = (math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1)) if n > 1 else None)
    bounds = t_interval(mean, std, n)
    return {
        "unit": "bits per token",
        "model": f"{order}-gram modified Kneser-Ney (KillBadCode's), trained on "
                 f"{len(training)} clean training inputs not measured",
        "clean": sum(before) / n,
        "poisoned": sum(after) / n,
        "difference": mean,
        "ci95": list(bounds) if bounds else None,
        "interval": "student-t over pairs",
    }


def compile_validity(pairs: list[tuple[Example, Example]]) -> dict[str, Any]:
    """javac's verdict on each clean and poisoned method, wrapped in a class of its own."""
    javac = shutil.which("javac")
    if javac is None:
        return {"skipped": "javac is not on PATH"}
    verdicts = compiles(javac, [c.source for c, _ in pairs] + [p.source for _, p in pairs])
    clean, poisoned = verdicts[: len(pairs)], verdicts[len(pairs):]
    version = subprocess.run([javac, "-version"], capture_output=True, text=True, check=False)
    return {
        "javac": (version.stdout or version.stderr).strip(),
        "wrapper": "class StealthN { METHOD } with " + ", ".join(
            f"import {name};" for name in JAVA_WRAPPER_IMPORTS),
        "clean": share(clean),
        "poisoned": share(poisoned),
        "poisoned_where_clean_compiles": share([p for c, p in zip(clean, poisoned, strict=True)
                                                if c]),
    }


def compiles(javac: str, methods: list[str]) -> list[bool]:
    """Whether each method compiles in its wrapper. javac skips type checking after a syntax
    error in any file, so the files it names as wrong are dropped and the rest compiled again,
    until a round passes."""
    imports = "".join(f"import {name}; " for name in JAVA_WRAPPER_IMPORTS)
    ok = [True] * len(methods)
    with tempfile.TemporaryDirectory(prefix="codebackdoor-javac-") as folder:
        root = Path(folder)
        files = {}
        for index, method in enumerate(methods):
            name = f"Stealth{index}"
            path = root / f"{name}.java"
            path.write_text(f"{imports}class {name} {{\n{method}\n}}\n", encoding="utf-8")
            files[path.name] = index
        pending = set(files)
        while pending:
            result = subprocess.run(
                [javac, "-d", str(root / "classes"), "-proc:none", "-nowarn",
                 "-Xmaxerrs", str(10 * len(pending) + 100), "-encoding", "UTF-8",
                 *sorted(pending)],
                cwd=root, capture_output=True, text=True, check=False)
            if result.returncode == 0:
                break
            wrong = {line.split(":", 1)[0] for line in result.stderr.splitlines()
                     if ": error:" in line} & pending
            if not wrong:
                raise RuntimeError(f"javac failed without naming a file: {result.stderr[-500:]}")
            for name in wrong:
                ok[files[name]] = False
            pending -= wrong
    return ok


def filter_aurocs(runs: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Per filter defense, the AUROC of its saved scores in every finished run under ``runs``
    that poisoned the same task and language with the same attack and rate as ``record``."""
    if not runs.is_dir():
        raise UserError(f"--runs {runs} is not a directory")
    wanted = {key: record["attack"].get(key) for key in ATTACK_IDENTITY}
    found: dict[str, list[dict[str, Any]]] = {}
    for manifest_path in sorted(runs.glob("*/poison/manifest.json")):
        run = manifest_path.parent.parent
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        decision_path = run / "filter" / "decision.json"
        if not ((run / "result.json").is_file() and decision_path.is_file()
                and manifest["task"]["name"] == record["task"]
                and manifest["task"]["lang"] == record["lang"]
                and math.isclose(manifest["rate"], record["rate"])
                and {k: manifest["attack"].get(k) for k in ATTACK_IDENTITY} == wanted):
            continue
        decision = json.loads(decision_path.read_text(encoding="utf-8"))
        # A filter without a graded score (activation clustering) is scored by its decision:
        # the AUROC of removed = 1, kept = 0 is the mean of its true and false negative rates.
        scores = decision.get("scores")
        graded = scores is not None
        if not graded:
            scores = [0.0 if keep else 1.0 for keep in decision["keep"]]
        poisoned = set(manifest["poisoned_ids"])
        labels = [e.id in poisoned for e in read_jsonl(run / "poison" / "train.jsonl")]
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        found.setdefault(defense_label(config["defenses"]), []).append({
            "run": run.name, "auroc": auroc(scores, labels),
            "score": "graded" if graded else "removal", "poisoned": sum(labels),
            "clean": len(labels) - sum(labels), "seed": manifest["seed"]})
    return {method: {"auroc": mean_auroc(entries), "runs": entries}
            for method, entries in sorted(found.items())}


def defense_label(defenses: list[Any]) -> str:
    """A run's defenses as its config.json names them: a registry name, or a preset's file
    name without ``.toml`` (presets of one method differ in their parameters)."""
    return "+".join(d if isinstance(d, str) else Path(d["preset"]).stem for d in defenses)


def mean_auroc(entries: list[dict[str, Any]]) -> float | None:
    values = [e["auroc"] for e in entries if e["auroc"] is not None]
    return sum(values) / len(values) if values else None


def write_stealth(record: dict[str, Any], out: Path) -> Path:
    path = Path(out) / STEALTH_FILE
    atomic_write_json(path, record)
    return path


def table(records: list[dict[str, Any]], tablefmt: str = "simple") -> str:
    """One row per record: attack, rate, pairs measured, the measures, and an AUROC column per
    filter defense found in any record ("–" where a record has none)."""
    from tabulate import tabulate

    defenses = sorted({d for r in records for d in r.get("filter_auroc") or {}})
    rows = []
    for r in records:
        entropy = r.get("cross_entropy")
        aurocs = r.get("filter_auroc") or {}
        rows.append((
            r.get("attack_spec") or r["attack"]["method"],
            f"{r['task']}/{r['lang']}",
            f"{r['rate']:g}",
            f"{r['measured']}/{r['poisoned']}",
            f"{entropy['clean']:.2f} → {entropy['poisoned']:.2f}" if entropy else "–",
            _difference(entropy),
            f"{r['edit_distance']['mean']:.1f}" if "edit_distance" in r else "–",
            _shares(r.get("parse_valid")),
            _compiled(r.get("compile_valid")),
            *(_area(aurocs.get(d)) for d in defenses),
        ))
    headers = ("attack", "task", "rate", "pairs", "bits/token", "Δ bits/token [95% CI]",
               "token edits", "parses", "compiles (where clean does)",
               *(f"AUROC {d}" for d in defenses))
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def _difference(entropy: dict[str, Any] | None) -> str:
    if not entropy:
        return "–"
    bounds = entropy["ci95"]
    return f"{entropy['difference']:+.2f}" + (
        f" [{bounds[0]:+.2f}, {bounds[1]:+.2f}]" if bounds else "")


def _percent(entry: dict[str, Any]) -> str:
    return "–" if entry["share"] is None else f"{100 * entry['share']:.0f}%"


def _shares(entry: dict[str, Any] | None) -> str:
    return f"{_percent(entry['clean'])} → {_percent(entry['poisoned'])}" if entry else "–"


def _compiled(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "–"
    if "skipped" in entry:
        return f"– ({entry['skipped']})"
    given = entry["poisoned_where_clean_compiles"]
    return f"{_shares(entry)} ({given['count']}/{given['n']})"


def _area(entry: dict[str, Any] | None) -> str:
    if not entry or entry["auroc"] is None:
        return "–"
    runs = len(entry["runs"])
    removals = ", removals" if any(r["score"] == "removal" for r in entry["runs"]) else ""
    return f"{entry['auroc']:.3f} ({runs} run{'s' if runs > 1 else ''}{removals})"
