"""The resolved configuration of one run: plain data, built and checked in one place, hashed
into the run id (``codebackdoor.identity``).

Precedence is decided here and nowhere else: command-line flags over a ``--config`` TOML file
over the defaults below. Every value, from a file or a flag, goes through the same typed
builder (``params.build_dataclass``), so a wrong type or a value outside a closed set is one
error line naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codebackdoor.errors import UserError
from codebackdoor.io import read_toml
from codebackdoor.params import build_dataclass

# The attack of the embedded default, and of `codebackdoor poison` when none is named.
DEFAULT_ATTACK = "fixed"
# What `--attack none` (or attack = "none" in a file or suite) means: a clean run.
NO_ATTACK = "none"
# Settings that merge with the file's table instead of replacing it.
MERGED = ("attack_params", "payload_params", "task_params")


def check_rate(rate: float) -> float:
    """The poisoning rate, which must lie in (0, 1]."""
    if not 0 < rate <= 1:
        raise UserError(f"poisoning rate must be in (0, 1], got {rate}")
    return rate


@dataclass
class RunConfig:
    """Everything that decides a run's result. The defaults are the embedded default, chosen by
    measurement (docs/results.md): the 9-class package classifier on the Python standard
    library with a from-scratch tiny RoBERTa, 10 epochs of 128-token inputs. The training
    engine takes its defaults from here (``models.training.TrainingSettings``)."""

    task: str = "package"
    lang: Literal["python", "java"] = "python"
    data: str | None = None
    data_revision: str | None = None
    columns: dict[str, str] | None = None
    task_params: dict[str, Any] = field(default_factory=dict)
    # None = a clean run (no poisoning); otherwise a registered name or a preset path
    attack: str | None = None
    attack_params: dict[str, Any] = field(default_factory=dict)
    payload: str | None = None
    payload_params: dict[str, Any] = field(default_factory=dict)
    selection: Literal["random", "first", "append"] | None = None
    rate: float = 0.05
    seed: int = 1
    defenses: list[str] = field(default_factory=list)
    # The embedded default's victim and input length, chosen by measurement (docs/results.md):
    # the fixed trigger sits in the first statement, inside the first 64 tokens.
    model: str = "tiny-roberta-2l"
    model_revision: str | None = None
    trust_remote_code: bool = False
    lora: bool = False
    # Mixed precision of training and inference. "auto": bf16 on a GPU that supports it, float32
    # elsewhere; "bf16"/"fp16" ask the Trainer for that autocast; "fp32" for none.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # Recompute activations in the backward pass: less memory for more compute.
    gradient_checkpointing: bool = False
    # Outputs sampled per test input for ASR@k and the clean metric's mean over samples
    # (0: greedy decoding only), at this temperature (evaluate.sampled_metrics).
    samples: int = 0
    temperature: float = 1.0
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    max_source_length: int = 64
    max_target_length: int = 64
    generation_max_length: int = 64
    # examples of the clean and the triggered test set scored after every epoch (0: no curve)
    curve_size: int = 100
    # Train with the loss fused with the output layer where supported (models/fused_loss.py,
    # docs/fused-objectives.md); at its default it stays out of the run identity
    # (codebackdoor.identity.LATER_FIELDS).
    fused: bool = True
    # Batches of similar input length (less padding), in an order drawn per seed and epoch
    # (models/trainer.py); like `fused`, out of the run identity at its default.
    length_grouped: bool = True

    def __post_init__(self) -> None:
        check_rate(self.rate)
        if self.curve_size < 0:
            raise UserError(f"curve_size must be >= 0, got {self.curve_size}")
        if self.samples < 0 or self.temperature <= 0:
            raise UserError(f"samples must be >= 0 and temperature > 0, got {self.samples} and "
                            f"{self.temperature}")


def config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML file whose keys are RunConfig fields (checked when the config is built)."""
    return read_toml(Path(path), "config file")


def make_config(values: dict[str, Any], *, what: str = "run configuration",
                convert_strings: bool = False) -> RunConfig:
    """A RunConfig from typed values (a TOML file, a suite cell); ``attack = "none"`` is a
    clean run. With ``convert_strings`` a string is read as its field's type (flag values)."""
    values = dict(values)
    if values.get("attack") == NO_ATTACK:
        values["attack"] = None
    return build_dataclass(RunConfig, values, what=what, convert_strings=convert_strings)


def resolve_config(file: Path | None, flags: dict[str, Any]) -> RunConfig:
    """Flags over the ``file``'s values over the defaults. A flag that was not given is None;
    the parameter tables (``attack_params`` …) merge key by key."""
    values = read_config_file(file) if file else {}
    what = f"config file {file}" if file else "run configuration"
    for key, value in flags.items():
        if value is None:
            continue
        if key in MERGED:
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
        if file:
            what = f"config file {file} with flags"
    return make_config(values, what=what)
