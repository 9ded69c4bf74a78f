"""The one path from a configuration to a result file: load, poison, defend, train, evaluate.

Every other entry point (the default comparison, benchmark suites) calls ``run``; nothing else
trains or scores a victim.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codebackdoor import cost
from codebackdoor.attacks.base import Attack
from codebackdoor.attacks.build import build_attack
from codebackdoor.config import RunConfig
from codebackdoor.defenses.base import STAGES, DefenseContext, FilterDecision, load_defense
from codebackdoor.defenses.objectives import CrossEntropy
from codebackdoor.errors import UserError
from codebackdoor.evaluate import (
    Scorer,
    detection_metrics,
    sampled_metrics,
    write_predictions,
)
from codebackdoor.examples import Example
from codebackdoor.identity import identity, identity_hash
from codebackdoor.io import atomic_write_json
from codebackdoor.locks import exclusive
from codebackdoor.models.training import TrainingSettings
from codebackdoor.models.victim import load_victim
from codebackdoor.params import build_dataclass
from codebackdoor.poison import poison, write_poisoned
from codebackdoor.registry import registry
from codebackdoor.results import SCHEMA_VERSION, file_sha256, read_result, write_result
from codebackdoor.versions import hardware, versions

RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.jsonl"
# A LoRA run keeps its trained adapters here (peft's format), next to the result.
ADAPTER_DIR = "adapter"


@dataclass
class RunOutcome:
    result: dict[str, Any]
    path: Path
    reused: bool  # the result existed already and was read, not recomputed
    # False in the other processes of a data-parallel launch: the main one wrote the result,
    # and ``result`` here holds only the run id and the metrics this process computed.
    main: bool = True


def build_task(config: RunConfig) -> Any:
    """The config's task, its parameters checked against the task's fields."""
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


def attack_for(config: RunConfig, task: Any) -> Attack:
    """The config's attack on ``task`` (a preset's values under the config's overrides)."""
    if config.attack is None:
        raise UserError("no attack configured")
    return build_attack(
        config.attack, task, params=config.attack_params, payload=config.payload,
        payload_params=config.payload_params, selection=config.selection,
    )


def build_defenses(config: RunConfig, task: Any) -> DefensePlan:
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


@dataclass
class _Data:
    """What the run trains and tests on, after poisoning (clean where there is no attack)."""

    splits: Any
    train: list[Example]
    triggered: list[Example]
    fingerprints: dict[str, str]
    attack: Attack | None = None
    poisoned: Any = None  # the poisoned data set, written into the run directory

    @property
    def poisoned_ids(self) -> set[str]:
        return set(self.poisoned.manifest["poisoned_ids"]) if self.poisoned else set()


def run(
    config: RunConfig,
    out: Path,
    *,
    resume: bool = False,
    on_start: Callable[[], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run ``config`` into ``out/<run_id>/``. A finished run is read back, never recomputed or
    overwritten; an interrupted one continues only with ``resume``. ``on_start`` is called once
    every input has been checked, just before training; ``on_stage(name)`` as each stage
    (``cost.Meter``'s names) begins.

    The phases: prepare the data, poison it, build the victim, defend the training data
    (filter), defend the test inputs (purify), train, evaluate, write the result."""
    values = identity(config)
    run_name = identity_hash(values)
    processes = _Processes.of_this_launch()
    # One process per run: a second one (two shards started by mistake, a requeued job whose
    # first copy still runs) is refused instead of training beside it. The lock file sits
    # beside the run directory, which a run that fails its checks must not leave behind. The
    # processes of one data-parallel launch are one run: their main process holds the lock.
    lock = (exclusive(Path(out) / f".{run_name}.lock", wait=False, what=f"run {run_name}")
            if processes.main else contextlib.nullcontext())
    with lock:
        return _run(config, values, Path(out) / run_name, processes, resume=resume,
                    on_start=on_start, on_stage=on_stage)


@dataclass
class _Processes:
    """The processes one run is spread over by ``torchrun`` or ``accelerate launch``: each
    computes everything (the Trainer shares out the training batches), the main one alone
    writes files."""

    state: Any = None  # accelerate's PartialState, None in a single process

    @classmethod
    def of_this_launch(cls) -> _Processes:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        # On CPU, accelerate spreads a launch over processes only when told to (gloo).
        return cls(PartialState(cpu=not torch.cuda.is_available()))

    @property
    def main(self) -> bool:
        return self.state is None or self.state.is_main_process

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def _run(config: RunConfig, values: dict[str, Any], directory: Path, processes: _Processes, *,
         resume: bool, on_start: Callable[[], None] | None,
         on_stage: Callable[[str], None] | None) -> RunOutcome:
    run_name = directory.name
    result_path = directory / RESULT_FILE
    if result_path.exists():
        return RunOutcome(read_result(result_path), result_path, reused=True)
    if directory.exists() and not resume:
        raise UserError(
            f"an unfinished run exists in {directory}: pass --resume to finish it, or remove it"
        )
    processes.wait()  # every process has looked before the main one makes the directory
    timer = cost.Meter(on_stage if processes.main else None)
    started = time.perf_counter()
    with timer("load"):
        task = build_task(config)
        plan = build_defenses(config, task)
        splits = _load_splits(task)
    with timer("poison"):
        data = _poison_phase(config, task, splits)
    settings = _training_settings(config, plan)
    with timer("load_model"):
        victim = _new_victim(config, task, data.train)
    if config.samples and victim.kind == "classifier":
        raise UserError("--samples needs a generative victim; a classifier outputs one label")
    # Only now, with every user input checked, does the run get its directory: a mistake
    # leaves nothing behind that a later run would take for an interrupted one.
    if processes.main:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "config.json", values)
        if data.poisoned is not None:
            write_poisoned(data.poisoned, directory / "poison", overwrite=True)
        if on_start is not None:
            on_start()
    processes.wait()

    def context(stage: str) -> DefenseContext:
        return DefenseContext(task=task, clean=splits.valid, seed=config.seed,
                              workdir=directory / stage)

    train, detection = data.train, None
    if plan.filter is not None:
        with timer("filter"):
            train, detection = _filter_stage(
                plan.filter, train, victim if plan.filter.needs_victim else None,
                replace(settings, learning_rate=config.learning_rate), context("filter"),
                data.poisoned_ids, resume=resume, write=processes.main,
            )
            victim = _new_victim(config, task, train)
    test_inputs, triggered_inputs, purification = splits.test, data.triggered, None
    if plan.purify is not None:
        with timer("purify"):
            test_inputs, triggered_inputs, purification = _purify_stage(
                plan.purify, train, splits.test, data.triggered, context("purify")
            )
    scorer = Scorer(task, data.attack, splits.test, data.triggered)
    curve_clean = test_inputs[: config.curve_size]
    curve_triggered = triggered_inputs[: config.curve_size]

    def on_epoch_end(epoch: int) -> dict[str, Any]:
        if not config.curve_size:
            return {}
        return scorer.curve_point(victim, curve_clean, curve_triggered)

    with timer("train"):
        curve = victim.fit(train, settings, plan.objective, directory / "train",
                           on_epoch_end=on_epoch_end, resume=resume)
    with timer("evaluate"):
        clean_predictions = victim.predict([e.source for e in test_inputs])
        triggered_predictions = victim.predict([e.source for e in triggered_inputs])
        metrics = scorer.final_metrics(train, clean_predictions, triggered_predictions)
        if config.samples:
            metrics["sampling"] = sampled_metrics(
                task, data.attack, splits.test,
                victim.sample([e.source for e in test_inputs], config.samples,
                              config.temperature, config.seed),
                data.triggered,
                victim.sample([e.source for e in triggered_inputs], config.samples,
                              config.temperature, config.seed),
                clean_predictions, config.temperature)
    if detection is not None:
        metrics["detection"] = detection
    if purification is not None:
        metrics["purification"] = purification
    if not processes.main:  # the main process writes what every process computed
        return RunOutcome({"run_id": run_name, "metrics": metrics}, result_path, reused=False,
                          main=False)
    if config.lora:
        victim.save_adapter(directory / ADAPTER_DIR)
        victim.spec["lora"]["adapter"] = ADAPTER_DIR
    predictions_path = directory / PREDICTIONS_FILE
    lines = write_predictions(predictions_path, splits.test, test_inputs, clean_predictions,
                              data.triggered, triggered_inputs, triggered_predictions)
    timings = {**timer.seconds, "total": round(time.perf_counter() - started, 3)}

    result = _result_document(
        run_name, values, config, task, plan, splits, data, victim, settings, metrics, curve,
        timings, timer.summary(), predictions_path, lines,
    )
    write_result(result, result_path)
    return RunOutcome(result, result_path, reused=False)


def _result_document(
    run_name: str, values: dict[str, Any], config: RunConfig, task: Any, plan: DefensePlan,
    splits: Any, data: _Data, victim: Any, settings: TrainingSettings, metrics: dict[str, Any],
    curve: list[dict[str, Any]], timings: dict[str, float], spent: dict[str, Any],
    predictions_path: Path, lines: int,
) -> dict[str, Any]:
    """The result file's content (its schema: codebackdoor/schemas/result.schema.json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "task": {"name": task.name, "lang": task.lang, "output_kind": task.output_kind,
                     "metrics": list(task.metrics)},
            "data": splits.source,
            "attack": data.attack.describe() if data.attack else None,
            "rate": config.rate if data.attack else None,
            "defenses": [
                {"method": d.name, "stages": list(d.stages), "citation": d.citation,
                 "params": d.parameters()}
                for d in plan.defenses
            ],
            "objective": plan.objective.name,
            "model": {"spec": config.model, **victim.spec},
            "training": {**settings.__dict__, "loss_path": _loss_path(curve)},
            "seed": config.seed,
            "curve_size": config.curve_size,
            "requested": values,
        },
        "versions": versions(),
        "fingerprints": data.fingerprints,
        "poison": _poison_summary(data.poisoned.manifest) if data.poisoned else None,
        "metrics": metrics,
        "curve": curve,
        "timings": timings,
        "cost": spent,
        "hardware": hardware(),
        "predictions": {"path": PREDICTIONS_FILE, "sha256": file_sha256(predictions_path),
                        "lines": lines},
    }


def _loss_path(curve: list[dict[str, Any]]) -> str | None:
    """How the training losses were computed ("fused", "logits"), from the epoch records."""
    paths = {record["loss_path"] for record in curve if record.get("loss_path")}
    return "+".join(sorted(paths)) or None


def _load_splits(task: Any) -> Any:
    splits = task.load()
    for name in ("train", "test"):
        if not getattr(splits, name):
            raise UserError(f"task '{task.name}': the {name} split is empty")
    return splits


def _poison_phase(config: RunConfig, task: Any, splits: Any) -> _Data:
    """The training data and triggered test inputs: poisoned by the config's attack, or the
    clean training split and no triggered inputs for a clean run."""
    fingerprints = splits.fingerprints()
    if config.attack is None:
        return _Data(splits, splits.train, [], fingerprints)
    attack = attack_for(config, task)
    poisoned = poison(splits, task, attack, config.rate, config.seed)
    for name in ("train_poisoned", "test_triggered"):
        fingerprints[name] = poisoned.manifest["fingerprints"][name]
    return _Data(splits, poisoned.train, poisoned.triggered_test, fingerprints, attack, poisoned)


def _training_settings(config: RunConfig, plan: DefensePlan) -> TrainingSettings:
    return TrainingSettings(
        epochs=config.epochs, batch_size=config.batch_size,
        learning_rate=plan.objective.learning_rate(config.learning_rate),
        max_source_length=config.max_source_length, max_target_length=config.max_target_length,
        generation_max_length=config.generation_max_length, seed=config.seed,
        precision=config.precision, gradient_checkpointing=config.gradient_checkpointing,
        fused=config.fused, length_grouped=config.length_grouped,
    )


def _new_victim(config: RunConfig, task: Any, train: list[Example]) -> Any:
    """A fresh victim of the config's model (a preset trains its tokenizer on ``train``)."""
    return load_victim(
        config.model, task.output_kind, train, revision=config.model_revision,
        trust_remote_code=config.trust_remote_code, lora=config.lora,
        precision=config.precision, seed=config.seed,
    )


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


def _filter_stage(
    defense: Any, train: list[Example], victim: Any, settings: Any, context: Any,
    poisoned_ids: set[str], *, resume: bool, write: bool = True,
) -> tuple[list[Example], dict[str, Any]]:
    """The kept training examples and the detection record. The victim the filter inspects is
    trained on the poisoned data with plain cross-entropy: the defenses assume a model trained
    the usual way. The decision is saved so that a resumed run does not score again."""
    decision_path = context.workdir / "decision.json"
    if resume and decision_path.is_file():
        saved = json.loads(decision_path.read_text(encoding="utf-8"))
        decision = FilterDecision(saved["keep"], saved["scores"], saved["details"])
    else:
        if victim is not None:
            with cost.stage("filter_train"):
                victim.fit(train, settings, CrossEntropy(), context.workdir / "train",
                           resume=resume)
        decision = defense.filter(train, victim, context)
        if len(decision.keep) != len(train):
            raise RuntimeError(
                f"defense '{defense.name}' decided on {len(decision.keep)} of {len(train)} "
                "training examples"
            )
        if write:
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
