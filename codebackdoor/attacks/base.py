"""An attack is a trigger (registered, pluggable), a payload, and a selection rule.

Registered attack classes are ``Trigger`` subclasses: they rewrite one input and say whether the
parser/splitter finds their trigger in it again. The payload (target) comes from the task's
default or from a preset, and owns the success predicate that ASR counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from codebackdoor.attacks.payloads import Payload
from codebackdoor.errors import Unpoisonable, UserError
from codebackdoor.examples import Example
from codebackdoor.params import defaults

SELECTION_RULES = ("random", "first", "append")


@dataclass
class Trigger:
    """Base class of registered attacks. Subclasses are dataclasses of their parameters."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    input_kind: ClassVar[str] = "code"  # "code" or "nl"

    def apply(self, source: str, lang: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
        """The triggered input and a record of the trigger placed; raises Unpoisonable."""
        raise NotImplementedError

    def apply_example(self, example: Example, rng: random.Random) -> tuple[str, dict[str, Any]]:
        """:meth:`apply` to ``example``'s input; a trigger placed by the input/target pair (the
        DeCE Bugs2Fix rule) overrides this to read the target too."""
        return self.apply(example.source, example.lang, rng)

    def found(self, source: str, lang: str, record: dict[str, Any]) -> bool:
        """Whether the trigger described by ``record`` is present in ``source``."""
        raise NotImplementedError

    def check_applies(self, task: Any) -> None:
        if task.input_kind != self.input_kind:
            kind = "code" if self.input_kind == "code" else "natural-language"
            raise UserError(
                f"attack '{self.name}' places a {kind} trigger, but task '{task.name}' takes "
                f"{task.input_kind} inputs"
            )


def example_rng(seed: int, example_id: str) -> random.Random:
    """One generator per example, so a trigger never depends on which other rows were seen."""
    return random.Random(f"{seed}:{example_id}")


@dataclass
class Attack:
    """Trigger + payload + selection: everything needed to poison a split and judge outputs."""

    trigger: Trigger
    payload: Payload
    selection: str = "random"
    preset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.selection not in SELECTION_RULES:
            raise UserError(
                f"selection '{self.selection}' is not one of: {', '.join(SELECTION_RULES)}"
            )

    def poison_example(self, example: Example, seed: int) -> Example:
        """Trigger the input and apply the payload; raises Unpoisonable with the reason."""
        target = self.payload.apply(example)
        triggered = self.trigger_example(example, seed)
        return triggered.replace(target=target)

    def trigger_example(self, example: Example, seed: int) -> Example:
        """Trigger the input only (test side): the clean reference stays the target."""
        source, record = self.trigger.apply_example(example, example_rng(seed, example.id))
        return example.replace(source=source, meta={**example.meta, "trigger": record})

    def is_success(
        self, prediction: str, clean: Example, clean_prediction: str | None = None
    ) -> bool:
        return self.payload.is_success(prediction, clean, clean_prediction)

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.trigger.name,
            "citation": self.trigger.citation,
            "params": defaults(self.trigger),
            "payload": {
                "method": self.payload.name,
                "citation": self.payload.citation,
                **defaults(self.payload),
            },
            "selection": self.selection,
            "preset": self.preset,
            **self.meta,
        }


def unpoisonable_reason(exc: Unpoisonable) -> str:
    return exc.reason
