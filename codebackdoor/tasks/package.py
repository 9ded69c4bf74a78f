"""Package identification: which package of the standard library (or the JDK) a function comes
from. A label task that a small model trained from scratch learns from lexical cues within CPU
minutes (prototypes found summarization, method names and defect detection stuck at their
trivial baselines in that budget), which makes it the embedded default's clean task."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from codebackdoor.data import stratify
from codebackdoor.data.harvest import HarvestedFunction, corpus
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.tasks.base import Splits, Task, embedded_splits

# A package is a class only if its files, split whole, give valid and test each at least this
# fraction of their share of its functions.
MIN_SHARE = 0.5


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
        "code → the package it comes from (the most frequent packages of the embedded corpus "
        "that split 80/10/10 by file)"
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
        files: dict[str, Counter[str]] = {}
        for fn in corpus(self.lang).functions:
            if (package := package_of(fn)) is not None:
                files.setdefault(package, Counter())[fn.file] += 1
        # Ties are broken by name so the label set is the same on every machine with this corpus.
        ranked = sorted(files, key=lambda package: (-files[package].total(), package))
        kept: list[str] = []
        unsplittable: list[str] = []
        split_of_file: dict[str, str] = {}
        for package in ranked:
            if len(kept) == self.classes:
                break
            assigned = stratify.split_files(files[package])
            shares = stratify.shares(files[package], assigned)
            # A package of a few large files cannot give valid and test their share without
            # splitting a file; kept, it would be missing from one of them.
            if min(shares["valid"], shares["test"]) < MIN_SHARE * stratify.SHARES["test"]:
                unsplittable.append(package)
                continue
            kept.append(package)
            split_of_file.update(assigned)

        if len(kept) < self.classes:
            raise UserError(
                f"task 'package': only {len(kept)} packages of the {self.lang} corpus split "
                f"80/10/10 by file; ask for at most {len(kept)} classes"
            )

        def make(fn: HarvestedFunction) -> Example | None:
            package = package_of(fn)
            if package not in kept:
                return None
            return Example(fn.id, fn.undocumented, package, fn.lang,
                           {"file": fn.file, "function": fn.name})

        splits = embedded_splits(self.lang, make, split_of_file)
        splits.source.update(
            classes=sorted(kept), unsplittable=unsplittable,
            split="per package: its files, largest first, each to the split furthest below "
                  "80/10/10 of the package's functions",
        )
        return splits

    def load(self) -> Splits:
        if self.data is not None:
            raise UserError("task 'package' uses the embedded corpus only; drop --data")
        return super().load()
