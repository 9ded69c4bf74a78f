"""Row identity and merging rules: the one place that decides which runs form one cell.

- A cell is identified by the task (name, language, output kind); the dataset (its alias and the
  fingerprints of the clean train, valid and test splits); the model (spec, revision, LoRA
  settings, and for a model built outside the run, a ``pretrained:`` checkpoint or a local
  directory, the fingerprint of its files, a checkpoint's card aside: a rebuild with other weights
  is another victim, so its runs never join the seeds of the old one); the training settings
  except the seed (precision and gradient checkpointing only when set); the attack (method,
  trigger parameters, payload and its parameters, selection rule) or none; the poisoning rate; the
  defenses (method and parameters, in order; ``ce`` is the default objective, so it counts as no
  defense); and the definition id of every metric. The seed is not part of it: the seeds of a cell
  aggregate.
- The dataset alias is how published rows name data: a local source is named by its directory
  (the path itself, or the folder holding a single file), a Hugging Face source by the last part
  of its id, the embedded corpus as ``embedded-<lang>``; all lower case.
- A run is counted once per run id, whatever file it was read from (the first source is kept).
- Every number under a result's ``metrics`` aggregates as mean, sample standard deviation
  (n - 1; null for a single run), n and the 95% t-interval of the mean over seeds (``ci95``;
  null for a single run); a ``value`` is named after its parent, so
  ``metrics.clean.sbleu.value`` becomes ``clean.sbleu`` and ``metrics.asr.value`` becomes ``asr``.
  A result's ``cost`` numbers aggregate the same way, named ``cost.…``.
- The curve aggregates per epoch over the runs that reached that epoch.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from codebackdoor.identity import identity_hash, without_later_defaults
from codebackdoor.stats import T_SEEDS, t_interval

CLEAN_SPLITS = ("train", "valid", "test")
# Training settings that do not change what is learned.
NOT_IDENTITY_TRAINING = ("seed", "eval_batch_size", "keep_checkpoints")
# Attack description keys that only describe (citation, preset name and text).
ATTACK_IDENTITY = ("method", "params", "payload", "selection")
NO_DEFENSE = "ce"


def dataset_alias(data: dict[str, Any], lang: str | None) -> str:
    """The short dataset name published rows match on (rule in the module docstring)."""
    kind = data.get("kind")
    if kind == "local":
        path = PurePath(data["path"])
        one_file = data.get("layout") != "split files"
        return (path.parent.name if one_file else path.name).lower()
    if kind == "huggingface":
        return str(data["id"]).rstrip("/").rsplit("/", 1)[-1].lower()
    return f"{kind}-{lang}".lower()


def metric_values(metrics: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """Every number under ``metrics`` by dotted name, and every metric definition id."""
    values: dict[str, float] = {}
    definitions: dict[str, str] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        for key, item in node.items():
            name = path if key == "value" else f"{path}.{key}" if path else key
            if isinstance(item, dict):
                walk(item, name)
            elif key == "definition" and isinstance(item, str):
                definitions[path] = item
            elif isinstance(item, int | float) and not isinstance(item, bool):
                values[name] = float(item)

    walk(metrics, "")
    return values, definitions


def cell_identity(result: dict[str, Any]) -> dict[str, Any]:
    config = result["config"]
    task = config["task"]
    model = config["model"]
    attack = config["attack"]
    _, definitions = metric_values(result["metrics"])
    return {
        "task": {key: task.get(key) for key in ("name", "lang", "output_kind")},
        "dataset": {
            "alias": dataset_alias(config["data"], task.get("lang")),
            "fingerprints": {split: result["fingerprints"][split] for split in CLEAN_SPLITS},
        },
        "model": _model_identity(model, config.get("requested", {})),
        "training": without_later_defaults({
            key: value for key, value in config["training"].items()
            if key not in NOT_IDENTITY_TRAINING
        }),
        "attack": None if attack is None else {
            key: _without_citation(attack.get(key)) for key in ATTACK_IDENTITY
        },
        "rate": config["rate"] if attack is not None else None,
        "defenses": [
            {"method": d["method"], "params": d.get("params", {})}
            for d in config["defenses"] if d["method"] != NO_DEFENSE
        ],
        "definitions": definitions,
    }


def _model_identity(model: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    identity = {"spec": model["spec"], "revision": model.get("revision"),
                "lora": model.get("lora")}
    # Only when present, so that the rows of presets and hub ids keep their keys.
    if requested.get("model_files") is not None:
        identity["files"] = requested["model_files"]
    return identity


def _without_citation(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if key != "citation"}
    return value


def cell_key(identity: dict[str, Any]) -> str:
    """A cell's key: hashed from its identity as a run id is from the run's."""
    return identity_hash(identity)


def labels(identity: dict[str, Any]) -> dict[str, Any]:
    """The short names a person reads, filters and matches published rows on."""
    spec = identity["model"]["spec"]
    # A checkpoint directory is named by its last part; a hub id or preset as given.
    model = PurePath(spec).name if spec.startswith(("/", ".", "~")) else spec
    lora = identity["model"].get("lora")
    if lora:  # adapters trained on a frozen model are another victim than the model itself
        model += f" (LoRA r={lora['r']})"
    files = identity["model"].get("files")
    if files is not None:  # two builds of one pretrained name or directory read apart
        model += f" @{cell_key(files)[:8]}"
    attack = identity["attack"]
    return {
        "task": identity["task"]["name"],
        "lang": identity["task"]["lang"],
        "dataset": identity["dataset"]["alias"],
        "model": model,
        "attack": attack["method"] if attack else "none",
        "rate": identity["rate"],
        "defense": "+".join(d["method"] for d in identity["defenses"]) or "none",
    }


@dataclass(frozen=True)
class RunRecord:
    """What the leaderboard keeps of one run: enough to re-aggregate its cell later."""

    run_id: str
    seed: int
    source: str
    identity: dict[str, Any]
    primary: str | None
    values: dict[str, float]
    curve: list[dict[str, float]]

    @classmethod
    def from_result(cls, result: dict[str, Any], source: str) -> RunRecord:
        values, _ = metric_values(result["metrics"])
        # What the run cost aggregates like a metric (``cost.cpu_s``, ``cost.stages.train.cpu_s``).
        values.update(metric_values({"cost": result.get("cost", {})})[0])
        primary = result["metrics"].get("primary")
        curve = [
            {key: point[key] for key in ("epoch", "loss", primary, "asr")
             if isinstance(point.get(key), int | float)}
            for point in result["curve"]
        ]
        return cls(result["run_id"], result["config"]["seed"], source, cell_identity(result),
                   primary, values, curve)

    def as_run(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "seed": self.seed, "source": self.source,
                "values": self.values, "curve": self.curve}


def summary(values: list[float]) -> dict[str, Any]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    interval = t_interval(mean, std, len(values))
    return {"mean": mean, "std": std, "n": len(values),
            "ci95": None if interval is None else list(interval), "ci95_method": T_SEEDS}


def _aggregate(series: Iterable[dict[str, float]], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    collected: dict[str, list[float]] = defaultdict(list)
    for values in series:
        for name, value in values.items():
            if name not in skip:
                collected[name].append(value)
    return {name: summary(collected[name]) for name in sorted(collected)}


def make_row(records: list[RunRecord]) -> dict[str, Any]:
    """One leaderboard row from the runs of one cell (already de-duplicated by run id)."""
    records = sorted(records, key=lambda r: r.run_id)
    first = records[0]
    by_epoch: dict[int, list[dict[str, float]]] = defaultdict(list)
    for record in records:
        for point in record.curve:
            by_epoch[int(point["epoch"])].append(point)
    return {
        "key": cell_key(first.identity),
        **labels(first.identity),
        "primary": first.primary,
        "n": len(records),
        "seeds": sorted({r.seed for r in records}),
        "run_ids": [r.run_id for r in records],
        "metrics": _aggregate(r.values for r in records),
        "curve": [{"epoch": epoch, **_aggregate(by_epoch[epoch], skip=("epoch",))}
                  for epoch in sorted(by_epoch)],
        "identity": first.identity,
        "runs": [r.as_run() for r in records],
    }


def records_of_row(row: dict[str, Any]) -> list[RunRecord]:
    return [
        RunRecord(run["run_id"], run["seed"], run["source"], row["identity"], row["primary"],
                  run["values"], run["curve"])
        for run in row["runs"]
    ]


def merge(records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """Rows sorted by their labels and key; a run id seen twice keeps its first record."""
    seen: set[str] = set()
    cells: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.run_id not in seen:
            seen.add(record.run_id)
            cells[cell_key(record.identity)].append(record)
    rows = [make_row(cell) for cell in cells.values()]
    return sorted(rows, key=sort_key)


def defense_method(row: dict[str, Any]) -> str:
    """The defense's method names (``dece``, ``onion+bki``), whatever its label."""
    return row.get("defense_method", row["defense"])


def _defense_parameters(row: dict[str, Any]) -> dict[str, Any]:
    defenses = row["identity"]["defenses"]
    return {f"{d['method']}.{name}" if len(defenses) > 1 else name: value
            for d in defenses for name, value in d["params"].items()}


def attack_method(row: dict[str, Any]) -> str:
    """The attack's method name (``badpre``), whatever its label."""
    return row.get("attack_method", row["attack"])


def _attack_settings(row: dict[str, Any]) -> dict[str, Any]:
    attack = row["identity"]["attack"] or {}
    settings = dict(attack.get("params") or {})
    settings.update({f"payload.{name}": value
                     for name, value in (attack.get("payload") or {}).items()})
    if attack.get("selection") is not None:
        settings["selection"] = attack["selection"]
    return settings


def model_name(row: dict[str, Any]) -> str:
    """The victim's name (``pretrained:tiny-t5 @4214c8b3``), whatever its label."""
    return row.get("model_name", row["model"])


def _differing(settings: Sequence[dict[str, Any]]) -> list[str]:
    """The names whose values are not the same in all of ``settings``."""
    return sorted({name for s in settings for name in s
                   if len({repr(other.get(name)) for other in settings}) > 1})


def _detail(names: Sequence[str], settings: dict[str, Any]) -> str:
    return ",".join(f"{name}={settings[name]}" for name in names if name in settings)


def _labels(rows: Sequence[dict[str, Any]], group: Callable[[dict[str, Any]], Any],
            settings: Callable[[dict[str, Any]], dict[str, Any]],
            name: Callable[[dict[str, Any]], str]) -> dict[int, str]:
    """Each row's ``name``, with the ``settings`` that differ among the rows of its ``group``
    added, ``name[a=1,b=2]``; by ``id`` of the row."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[group(row)].append(row)
    labels: dict[int, str] = {}
    for members in groups.values():
        values = [settings(row) for row in members]
        differing = _differing(values)
        for row, own in zip(members, values, strict=True):
            detail = _detail(differing, own)
            labels[id(row)] = f"{name(row)}[{detail}]" if detail else name(row)
    return labels


def label_defenses(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, each ``defense`` a label that tells its parameters apart: where rows of one
    defense differ in them (DeCE's presets), the differing ones are added,
    ``dece[beta=0.985,epsilon=0.05]``, so that no two settings print alike or are taken for one
    another as a baseline; ``defense_method`` keeps the bare name. Idempotent."""
    labels = _labels(rows, defense_method, _defense_parameters, defense_method)
    return [{**row, "defense": labels[id(row)], "defense_method": defense_method(row)}
            for row in rows]


def label_attacks(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, each ``attack`` a label that tells an attack's variants apart: where rows of one
    attack on one task and data differ in its settings (BadPre with one `bb` and with three),
    the differing ones are added, ``badpre[count=3]``, so that no two variants print alike or
    share a chart's legend entry; ``attack_method`` keeps the bare name (published rows are
    matched on it). Idempotent."""
    labels = _labels(rows, lambda row: (row["task"], row["dataset"], attack_method(row)),
                     _attack_settings, attack_method)
    return [{**row, "attack": labels[id(row)], "attack_method": attack_method(row)}
            for row in rows]


def label_training(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, each ``model`` a label that tells training schedules apart: where rows of one
    victim and one defense differ in their training settings (a longer schedule), every row of
    that victim on that task and data adds the differing settings, ``tiny-t5 [epochs=20]``, so
    that the two schedules neither print alike nor share a chart. Settings a defense itself
    changes for all its rows (moderate fitting's learning rate) are not a schedule and add
    nothing; ``model_name`` keeps the bare name. Idempotent."""
    by_victim: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_victim[(row["task"], row["dataset"], model_name(row))].append(row)
    labels: dict[int, str] = {}
    for (_, _, model), members in by_victim.items():
        by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in members:
            by_method[defense_method(row)].append(row["identity"]["training"])
        differing = sorted({name for trainings in by_method.values()
                            for name in _differing(trainings)})
        for row in members:
            detail = _detail(differing, row["identity"]["training"])
            labels[id(row)] = f"{model} [{detail}]" if detail else model
    return [{**row, "model": labels[id(row)], "model_name": model_name(row)} for row in rows]


def label_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as every command that reads a leaderboard shows them: attack variants, defenses
    and training schedules told apart by label (``label_attacks``, ``label_defenses``,
    ``label_training``), in the order of their labels."""
    return sorted(label_training(label_defenses(label_attacks(rows))), key=sort_key)


def sort_key(row: dict[str, Any]) -> tuple:
    return (row["task"], row["dataset"], row["lang"] or "", row["model"], row["attack"],
            row["rate"] or 0.0, row["defense"], row["key"])
