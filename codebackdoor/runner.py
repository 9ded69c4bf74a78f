"""The one path from a configuration to a result file: load, poison, defend, train, evaluate.

Every other entry point (the default comparison, benchmark suites) calls ``run``; nothing else
trains or scores a victim.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codebackdoor.config import RunConfig
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.io import atomic_write_json, atomic_write_text
from codebackdoor.poison import write_poisoned
from codebackdoor.results import SCHEMA_VERSION, file_sha256, read_result, write_result
from codebackdoor.versions import versions

RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.jsonl"


@dataclass
class RunOutcome:
    result: dict[str, Any]
    path: Path
    reused: bool  # the result existed already and was read, not recomputed


def build_task(config: RunConfig) -> Any:
    from codebackdoor.params import build_dataclass
    from codebackdoor.registry import registry

    params = {"lang": config.lang, **config.task_params}
    if config.data is not None:
        params["data"] = config.data
    if config.data_revision is not None:
        params["revision"] = config.data_revision
    if config.columns:
        params["columns"] = config.columns
    return build_dataclass(registry("tasks").get(config.task), params,
                           what=f"task '{config.task}'")


@dataclass
class DefensePlan:
    """The run's defenses by stage: at most one per stage, composed by ``run``."""

    objective: Any  # the training loss: cross-entropy unless a defense replaces it
    filter: Any | None
    purify: Any | None
    defenses: list[Any]


def build_defenses(config: RunConfig, task: Any) -> DefensePlan:
    from codebackdoor.defenses.base import STAGES, load_defense
    from codebackdoor.defenses.objectives import CrossEntropy

    defenses = [load_defense(spec) for spec in config.defenses]
    by_stage: dict[str, list[Any]] = {stage: [] for stage in STAGES}
    for defense in defenses:
        defense.check_applies(task)
        for stage in defense.stages:
            by_stage[stage].append(defense)
    for stage, taking in by_stage.items():
        if len(taking) > 1:
            raise UserError(
                f"only one defense per stage; the {stage} stage is taken by "
                + ", ".join(d.name for d in taking)
                + " (defenses of different stages combine, e.g. --defense spectral --defense dece)"
            )
    first = {stage: taking[0] if taking else None for stage, taking in by_stage.items()}
    return DefensePlan(first["objective"] or CrossEntropy(), first["filter"], first["purify"],
                       defenses)


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
    }
    if torch.cuda.is_available():
        info["device"] = "cuda"
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def cpu_model() -> str:
    """The CPU's model name: float results on CPU repeat on one CPU model and thread count,
    and may differ on another (different instruction sets, different rounding)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str) -> _Timer:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self._name] = round(time.perf_counter() - self._start, 3)


def run_dir(config: RunConfig, out: Path) -> Path:
    return Path(out) / config.run_id()


def run(
    config: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    on_start: Callable[[], None] | None = None,
) -> RunOutcome:
    """Run ``config`` into ``out/<run_id>/``. A finished run is read back, never recomputed or
    overwritten; an interrupted one continues only with ``resume``. ``on_start`` is called once
    every input has been checked, just before training."""
    directory = run_dir(config, out)
    result_path = directory / RESULT_FILE
    if result_path.exists():
        return RunOutcome(read_result(result_path), result_path, reused=True)
    if directory.exists() and not resume:
        raise UserError(
            f"an unfinished run exists in {directory}: pass --resume to finish it, or remove it"
        )
    timer = _Timer()
    started = time.perf_counter()
    with timer("load"):
        task = build_task(config)
        plan = build_defenses(config, task)
        splits = task.load()
    for name in ("train", "test"):
        if not getattr(splits, name):
            raise UserError(f"task '{task.name}': the {name} split is empty")

    attack = None
    train, triggered = splits.train, []
    poison_summary = None
    fingerprints = splits.fingerprints()
    if config.attack is not None:
        from codebackdoor.attacks.build import build_attack
        from codebackdoor.poison import poison

        with timer("poison"):
            attack = build_attack(
                config.attack, task, params=config.attack_params, payload=config.payload,
                payload_params=config.payload_params, selection=config.selection,
            )
            poisoned = poison(splits, task, attack, config.rate, config.seed)
        train, triggered = poisoned.train, poisoned.triggered_test
        poison_summary = _poison_summary(poisoned.manifest)
        fingerprints["train_poisoned"] = poisoned.manifest["fingerprints"]["train_poisoned"]
        fingerprints["test_triggered"] = poisoned.manifest["fingerprints"]["test_triggered"]

    from codebackdoor.models.training import TrainingSettings
    from codebackdoor.models.victim import load_victim

    settings = TrainingSettings(
        epochs=config.epochs, batch_size=config.batch_size,
        learning_rate=plan.objective.learning_rate(config.learning_rate),
        max_source_length=config.max_source_length, max_target_length=config.max_target_length,
        generation_max_length=config.generation_max_length, seed=config.seed,
    )

    def new_victim(examples: list[Example]) -> Any:
        return load_victim(
            config.model, task.output_kind, examples, revision=config.model_revision,
            trust_remote_code=config.trust_remote_code, lora=config.lora, seed=config.seed,
        )

    with timer("load_model"):
        victim = new_victim(train)
    # Only now, with every user input checked, does the run get its directory: a mistake
    # leaves nothing behind that a later run would take for an interrupted one.
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_json(directory / "config.json", config.identity())
    if attack is not None:
        write_poisoned(poisoned, directory / "poison", overwrite=True)
    if on_start is not None:
        on_start()

    from codebackdoor.defenses.base import DefenseContext

    def context(stage: str) -> DefenseContext:
        return DefenseContext(task=task, clean=splits.valid, seed=config.seed,
                              workdir=directory / stage)

    detection = None
    if plan.filter is not None:
        with timer("filter"):
            poisoned_ids = set(poisoned.manifest["poisoned_ids"]) if attack is not None else set()
            train, detection = _filter_stage(
                plan.filter, train, victim if plan.filter.needs_victim else None,
                replace(settings, learning_rate=config.learning_rate), context("filter"),
                poisoned_ids, resume=resume,
            )
            victim = new_victim(train)
    test, triggered_inputs = splits.test, triggered
    purification = None
    if plan.purify is not None:
        with timer("purify"):
            test, triggered_inputs, purification = _purify_stage(
                plan.purify, train, splits.test, triggered, context("purify")
            )
    scorer = _Scorer(task, attack, splits.test, triggered)
    curve_clean = test[: config.curve_size]
    curve_triggered = triggered_inputs[: config.curve_size]

    def on_epoch_end(epoch: int) -> dict[str, Any]:
        if not config.curve_size:
            return {}
        return scorer.curve_point(victim, curve_clean, curve_triggered)

    with timer("train"):
        curve = victim.fit(train, settings, plan.objective, directory / "train",
                           on_epoch_end=on_epoch_end, resume=resume)
    with timer("evaluate"):
        clean_predictions = victim.predict([e.source for e in test])
        triggered_predictions = victim.predict([e.source for e in triggered_inputs])
        metrics = scorer.final_metrics(train, clean_predictions, triggered_predictions)
    if detection is not None:
        metrics["detection"] = detection
    if purification is not None:
        metrics["purification"] = purification
    predictions_path = directory / PREDICTIONS_FILE
    lines = _write_predictions(predictions_path, splits.test, test, clean_predictions,
                               triggered, triggered_inputs, triggered_predictions)
    timer.seconds["total"] = round(time.perf_counter() - started, 3)

    result = {
        "schema_version": SCHEMA_VERSION,
        "run_id": config.run_id(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "task": {"name": task.name, "lang": task.lang, "output_kind": task.output_kind,
                     "metrics": list(task.metrics)},
            "data": splits.source,
            "attack": attack.describe() if attack else None,
            "rate": config.rate if attack else None,
            "defenses": [
                {"method": d.name, "stages": list(d.stages), "citation": d.citation,
                 "params": d.parameters()}
                for d in plan.defenses
            ],
            "objective": plan.objective.name,
            "model": {"spec": config.model, **victim.spec},
            "training": {**settings.__dict__},
            "seed": config.seed,
            "curve_size": config.curve_size,
            "requested": config.identity(),
        },
        "versions": versions(),
        "fingerprints": fingerprints,
        "poison": poison_summary,
        "metrics": metrics,
        "curve": curve,
        "timings": timer.seconds,
        "hardware": hardware(),
        "predictions": {"path": PREDICTIONS_FILE, "sha256": file_sha256(predictions_path),
                        "lines": lines},
    }
    write_result(result, result_path)
    return RunOutcome(result, result_path, reused=False)


def _poison_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    train = manifest["counts"]["train"]
    ids = "\n".join(manifest["poisoned_ids"]).encode("utf-8")
    return {
        "eligible": train["eligible"],
        "poisoned": train["poisoned"],
        "total": train["total"],
        "skipped": train["skipped"],
        "triggered_test": manifest["counts"]["test"]["triggered"],
        "test_skipped": manifest["counts"]["test"]["skipped"],
        "poisoned_ids_sha256": "sha256:" + hashlib.sha256(ids).hexdigest(),
        "manifest": "poison/manifest.json",
        "manifest_content_hash": manifest["content_hash"],
    }


class _Scorer:
    """Turns predictions into the result's metrics and curve points."""

    def __init__(self, task: Any, attack: Any, test: list[Example],
                 triggered: list[Example]) -> None:
        self.task = task
        self.attack = attack
        self.clean_by_id = {example.id: example for example in test}
        self.triggered = triggered
        self.primary = task.metrics[0]

    def curve_point(self, victim: Any, clean: list[Example],
                    triggered: list[Example]) -> dict[str, Any]:
        from codebackdoor.evaluate import attack_rates, clean_metrics

        predictions = victim.predict([e.source for e in clean])
        point: dict[str, Any] = {
            self.primary: clean_metrics(self.task, predictions, [e.target for e in clean])[
                self.primary]["value"],
            "clean_examples": len(clean),
        }
        if self.attack is not None and triggered:
            known = {e.id: p for e, p in zip(clean, predictions, strict=True)}
            missing = [e for e in triggered if e.id not in known]
            extra = victim.predict([self.clean_by_id[e.id].source for e in missing])
            known.update({e.id: p for e, p in zip(missing, extra, strict=True)})
            rates = attack_rates(self.attack, self.clean_by_id, known, triggered,
                                 victim.predict([e.source for e in triggered]))
            point["asr"] = rates.asr["value"]
            point["asr_cases"] = rates.asr["denominator"]
        return point

    def final_metrics(self, train: list[Example], clean_predictions: list[str],
                      triggered_predictions: list[str]) -> dict[str, Any]:
        from codebackdoor.evaluate import (
            TRIVIAL_DEFINITION,
            attack_rates,
            clean_metrics,
            trivial_predictions,
            trivial_rule,
        )

        test = list(self.clean_by_id.values())
        references = [e.target for e in test]
        trivial = clean_metrics(self.task, trivial_predictions(self.task, train, test), references)
        rule = trivial_rule(self.task)
        metrics: dict[str, Any] = {
            "clean": clean_metrics(self.task, clean_predictions, references),
            "trivial_baseline": {
                name: {"value": value["value"],
                       "definition": f"{TRIVIAL_DEFINITION[rule]}; {value['definition']}"}
                for name, value in trivial.items()
            },
            "primary": self.primary,
        }
        if self.attack is not None:
            by_id = {e.id: p for e, p in zip(test, clean_predictions, strict=True)}
            rates = attack_rates(self.attack, self.clean_by_id, by_id, self.triggered,
                                 triggered_predictions)
            metrics["asr"] = rates.asr
            metrics["false_trigger_rate"] = rates.false_trigger_rate
        return metrics


def _filter_stage(
    defense: Any, train: list[Example], victim: Any, settings: Any, context: Any,
    poisoned_ids: set[str], *, resume: bool,
) -> tuple[list[Example], dict[str, Any]]:
    """The kept training examples and the detection record. The victim the filter inspects is
    trained on the poisoned data with plain cross-entropy: the defenses assume a model trained
    the usual way. The decision is saved so that a resumed run does not score again."""
    from codebackdoor.defenses.base import FilterDecision
    from codebackdoor.defenses.objectives import CrossEntropy
    from codebackdoor.evaluate import detection_metrics

    decision_path = context.workdir / "decision.json"
    if resume and decision_path.is_file():
        saved = json.loads(decision_path.read_text(encoding="utf-8"))
        decision = FilterDecision(saved["keep"], saved["scores"], saved["details"])
    else:
        if victim is not None:
            victim.fit(train, settings, CrossEntropy(), context.workdir / "train", resume=resume)
        decision = defense.filter(train, victim, context)
        if len(decision.keep) != len(train):
            raise RuntimeError(
                f"defense '{defense.name}' decided on {len(decision.keep)} of {len(train)} "
                "training examples"
            )
        atomic_write_json(decision_path, {"keep": decision.keep, "scores": decision.scores,
                                          "details": decision.details})
    kept = [example for example, keep in zip(train, decision.keep, strict=True) if keep]
    if not kept:
        raise UserError(f"defense '{defense.name}' removed every training example")
    detection = {"method": defense.name,
                 **detection_metrics(train, decision.keep, poisoned_ids),
                 "details": decision.details}
    return kept, detection


def _purify_stage(
    defense: Any, train: list[Example], test: list[Example], triggered: list[Example],
    context: Any,
) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """Test inputs as the victim will see them, and how many the defense changed."""
    defense.fit(train, context)
    sources = defense.purify([e.source for e in test] + [e.source for e in triggered])
    purified = [e.replace(source=source) for e, source in zip(test + triggered, sources,
                                                              strict=True)]
    clean, dirty = purified[: len(test)], purified[len(test):]
    changed = {
        name: sum(a.source != b.source for a, b in zip(before, after, strict=True))
        for name, before, after in (("test", test, clean), ("test_triggered", triggered, dirty))
    }
    return clean, dirty, {"method": defense.name, "changed_inputs": changed}


def _write_predictions(
    path: Path, test: list[Example], test_inputs: list[Example], clean_predictions: list[str],
    triggered: list[Example], triggered_inputs: list[Example], triggered_predictions: list[str],
) -> int:
    """One line per test input; ``input`` is what the victim saw, ``original_input`` is there
    when a purify defense changed it."""
    rows = []
    for split, originals, inputs, predictions in (
        ("test", test, test_inputs, clean_predictions),
        ("test_triggered", triggered, triggered_inputs, triggered_predictions),
    ):
        for original, seen, prediction in zip(originals, inputs, predictions, strict=True):
            row = {"id": original.id, "split": split, "input": seen.source,
                   "reference": original.target, "prediction": prediction}
            if seen.source != original.source:
                row["original_input"] = original.source
            rows.append(row)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)
