"""What a defense is, and how one is built from a registry name or a TOML preset.

A defense declares the pipeline stages it takes part in; the runner composes the stages, so a
defense never reimplements training or evaluation. This module imports no torch: `codebackdoor
list` describes defenses through their class attributes alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from codebackdoor.errors import UserError
from codebackdoor.models.victim import REPRESENTATIONS
from codebackdoor.params import build_dataclass
from codebackdoor.presets import Preset, is_preset_path
from codebackdoor.registry import registry

if TYPE_CHECKING:
    from torch import Tensor

    from codebackdoor.examples import Example
    from codebackdoor.models.victim import Victim

STAGES = ("filter", "objective", "purify")


@dataclass
class Defense:
    """Base of every defense; subclasses are dataclasses whose fields are the parameters."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    stages: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = [stage for stage in cls.stages if stage not in STAGES]
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown stages {unknown}; valid: {STAGES}")

    def check_applies(self, task: Any) -> None:
        """Raise UserError saying why this defense cannot be used on ``task``; default: it can."""

    def parameters(self) -> dict[str, Any]:
        """The parameter values, for the result file."""
        return dataclasses.asdict(self)


@dataclass
class ObjectiveDefense(Defense):
    """A defense that replaces the training loss."""

    stages: ClassVar[tuple[str, ...]] = ("objective",)

    def learning_rate(self, run_learning_rate: float) -> float:
        """The learning rate to train with; the run's unless the defense changes it."""
        return run_learning_rate

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor:
        """Mean loss over the positions whose label is not IGNORE_INDEX (0 when there are none).

        ``logits`` are (..., V) and ``labels`` (...): seq2seq decoder logits, causal-LM logits
        already shifted against their labels, and classifier logits alike. ``epoch`` is 1-based
        and whole: the epoch being trained, not the Trainer's fractional progress.
        """
        raise NotImplementedError

    def denominator(self, labels: Tensor) -> Tensor:
        """What the summed loss is divided by: the number of non-ignored labels (at least 1).

        An objective that also defines ``closed_form`` (``models.objective.ClosedFormObjective``)
        trains fused with the output layer, and the fused path divides by this.
        """
        from codebackdoor.models.objective import valid_count

        return valid_count(labels)


@dataclass
class DefenseContext:
    """What the runner hands a filter or purify defense besides the data it works on.

    ``clean`` is the small clean sample a defender is assumed to hold: the task's validation
    split, which is never poisoned. ``workdir`` is the defense's own directory inside the run
    directory, for models it trains and caches (it survives an interrupted run).
    """

    task: Any
    clean: list[Example]
    seed: int
    workdir: Path


@dataclass
class FilterDecision:
    """A filter's verdict on every training example, in the order it was given them."""

    keep: list[bool]
    # Suspicion per example (higher = more suspicious), where the method has one.
    scores: list[float] | None = None
    # What the method found (keywords, threshold, cluster sizes …), for the result file.
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class FilterDefense(Defense):
    """A defense that removes suspected poisoned training examples before the final training.

    When ``needs_victim`` is true the runner first trains a victim on the poisoned data (the
    run's own model, objective and settings) and passes it in.
    """

    stages: ClassVar[tuple[str, ...]] = ("filter",)
    needs_victim: ClassVar[bool] = True

    def check_representation(self, representation: str) -> None:
        """Refuse a ``representation`` that Victim.representations does not know."""
        if representation not in REPRESENTATIONS:
            raise UserError(
                f"{self.name}: representation = {representation!r} must be one of "
                + ", ".join(repr(r) for r in REPRESENTATIONS)
            )

    def filter(
        self, train: list[Example], victim: Victim | None, context: DefenseContext
    ) -> FilterDecision:
        raise NotImplementedError


@dataclass
class PurifyDefense(Defense):
    """A defense that rewrites test inputs before the victim sees them (e.g. ONION).

    ``fit`` sees the poisoned training data and the clean sample once; ``purify`` is then
    called on clean and triggered test inputs alike, which it cannot tell apart.
    """

    stages: ClassVar[tuple[str, ...]] = ("purify",)

    def fit(self, train: list[Example], context: DefenseContext) -> None:
        """Prepare (e.g. train the scoring model); the default needs nothing."""

    def purify(self, sources: list[str]) -> list[str]:
        raise NotImplementedError


def load_defense(spec: str) -> Defense:
    """A defense from a registry name (its paper defaults) or from a TOML preset's path."""
    if is_preset_path(spec):
        preset = Preset.read(Path(spec), "defense")
        return build_defense(preset.method, preset.params, origin=str(preset.path))
    return build_defense(spec, {}, origin=f"defense '{spec}'")


def build_defense(method: str, parameters: dict[str, Any], *, origin: str) -> Defense:
    """The registered defense ``method`` built from ``parameters``, checked against its fields."""
    cls = registry("defenses").get(method)
    return build_dataclass(
        cls, parameters, what=f"{origin}: defense '{method}'", convert_strings=False
    )
