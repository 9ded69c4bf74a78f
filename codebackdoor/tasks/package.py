"""Package identification: which package of the standard library (or the JDK) a function comes
from. A label task that a small model trained from scratch learns from lexical cues within CPU
minutes (prototypes found summarization, method names and defect detection stuck at their
trivial baselines in that budget), which makes it the embedded default's clean task."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from codebackdoor.data.harvest import HarvestedFunction, corpus
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.tasks.base import Splits, Task, embedded_splits


def package_of(fn: HarvestedFunction) -> str | None:
    """Python: the top-level package directory (modules outside a package have none);
    Java: the first two components of the package, e.g. ``java.util``."""
    parts = fn.file.split("/")
    if fn.lang == "python":
        return parts[0] if len(parts) > 1 else None
    return ".".join(parts[1:3]) if len(parts) > 3 else None


@dataclass
class Package(Task):
    name: ClassVar[str] = "package"
    description: ClassVar[str] = (
        "code → the package it comes from (the most frequent packages of the embedded corpus)"
    )
    citation: ClassVar[str] = (
        "codebackdoor's embedded default; the classification setting of the backdoor study by "
        "Ramakrishnan & Albarghouthi, ICPR 2022 uses a fixed trigger with a target label"
    )
    input_kind: ClassVar[str] = "code"
    output_kind: ClassVar[str] = "label"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    default_payload: ClassVar[str] = "label"
    langs: ClassVar[tuple[str, ...]] = ("python", "java")

    classes: int = 9

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classes < 2:
            raise UserError(f"task 'package': classes must be at least 2, got {self.classes}")

    def load_default(self) -> Splits:
        counts = Counter(p for fn in corpus(self.lang).functions if (p := package_of(fn)))
        # Ties are broken by name so the label set is the same on every machine with this corpus.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = {name for name, _ in ranked[: self.classes]}

        def make(fn: HarvestedFunction) -> Example | None:
            package = package_of(fn)
            if package not in kept:
                return None
            return Example(fn.id, fn.undocumented, package, fn.lang,
                           {"file": fn.file, "function": fn.name})

        splits = embedded_splits(self.lang, make)
        splits.source["classes"] = sorted(kept)
        return splits

    def load(self) -> Splits:
        if self.data is not None:
            raise UserError("task 'package' uses the embedded corpus only; drop --data")
        return super().load()
