"""The resolved configuration of one run: plain data, readable from TOML, hashed into the run id."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.io import read_toml


@dataclass
class RunConfig:
    """Everything that decides a run's result. The defaults are the embedded default, chosen by
    measurement (README, "The embedded default"): the 9-class package classifier on the Python
    standard library with a from-scratch tiny RoBERTa, 10 epochs of 128-token inputs."""

    task: str = "package"
    lang: str = "python"
    data: str | None = None
    data_revision: str | None = None
    columns: dict[str, str] | None = None
    task_params: dict[str, Any] = field(default_factory=dict)
    # attack None = a clean run (no poisoning); otherwise a name or a preset path
    attack: str | None = None
    attack_params: dict[str, Any] = field(default_factory=dict)
    payload: str | None = None
    payload_params: dict[str, Any] = field(default_factory=dict)
    selection: str | None = None
    rate: float = 0.05
    seed: int = 1
    defenses: list[str] = field(default_factory=list)
    model: str = "tiny-roberta"
    model_revision: str | None = None
    trust_remote_code: bool = False
    lora: bool = False
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    max_source_length: int = 128
    max_target_length: int = 64
    generation_max_length: int = 64
    # examples of the clean and the triggered test set scored after every epoch (0: no curve)
    curve_size: int = 100

    def identity(self) -> dict[str, Any]:
        """The fields that decide the result, preset files included by content."""
        values = dataclasses.asdict(self)
        for key in ("attack",):
            spec = values[key]
            if spec and Path(spec).suffix == ".toml" and Path(spec).is_file():
                values[key] = {"preset": Path(spec).name, "sha256": _file_hash(Path(spec))}
        values["defenses"] = [
            {"preset": Path(d).name, "sha256": _file_hash(Path(d))}
            if Path(d).suffix == ".toml" and Path(d).is_file() else d
            for d in self.defenses
        ]
        return values

    def run_id(self) -> str:
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML file whose keys are RunConfig fields; unknown keys list the valid ones."""
    values = read_toml(Path(path), "config file")
    unknown = sorted(set(values) - set(config_fields()))
    if unknown:
        raise UserError(f"{path}: unknown keys {unknown}; valid keys: {', '.join(config_fields())}")
    return values


def make_config(values: dict[str, Any]) -> RunConfig:
    try:
        config = RunConfig(**values)
    except TypeError as exc:
        raise UserError(f"run configuration: {exc}") from exc
    if not 0 < config.rate <= 1:
        raise UserError(f"poisoning rate must be in (0, 1], got {config.rate}")
    if config.curve_size < 0:
        raise UserError(f"curve_size must be >= 0, got {config.curve_size}")
    return config
