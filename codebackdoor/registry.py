"""One registry per kind (tasks, attacks, defenses, models).

Built-ins are listed here as ``module:attribute`` strings and plugins come from the entry-point
groups ``codebackdoor.<kind>``; both are imported only when an entry is first used. A plugin that
fails to import is reported by name without breaking the others, and a plugin may not take the
name of a built-in.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from codebackdoor.errors import UserError

KINDS = ("tasks", "attacks", "defenses", "models")

BUILTINS: dict[str, dict[str, str]] = {
    "tasks": {
        "summarize": "codebackdoor.tasks.summarize:Summarize",
        "generate": "codebackdoor.tasks.generate:Generate",
        "repair": "codebackdoor.tasks.repair:Repair",
        "defect": "codebackdoor.tasks.defect:Defect",
        "method-name": "codebackdoor.tasks.method_name:MethodName",
        "package": "codebackdoor.tasks.package:Package",
    },
    "attacks": {
        "fixed": "codebackdoor.attacks.code_triggers:FixedTrigger",
        "grammar": "codebackdoor.attacks.code_triggers:GrammarTrigger",
        "deadcode": "codebackdoor.attacks.code_triggers:DeadCodeTrigger",
        "rename": "codebackdoor.attacks.code_triggers:RenameTrigger",
        "badpre": "codebackdoor.attacks.nl_triggers:BadPre",
        "ripple": "codebackdoor.attacks.nl_triggers:Ripple",
    },
    "defenses": {
        "ce": "codebackdoor.defenses.objectives:CrossEntropy",
        "label-smoothing": "codebackdoor.defenses.objectives:LabelSmoothing",
        "dece": "codebackdoor.defenses.dece:DeCE",
        "gce": "codebackdoor.defenses.robust_losses:GeneralizedCrossEntropy",
        "in-trust": "codebackdoor.defenses.robust_losses:InTrust",
        "moderate": "codebackdoor.defenses.objectives:ModerateFitting",
        "spectral": "codebackdoor.defenses.spectral:SpectralSignatures",
        "ac": "codebackdoor.defenses.activation_clustering:ActivationClustering",
        "bki": "codebackdoor.defenses.bki:BKI",
        "killbadcode": "codebackdoor.defenses.killbadcode:KillBadCode",
        "onion": "codebackdoor.defenses.onion:ONION",
    },
    "models": {
        "tiny-t5": "codebackdoor.models.presets:TINY_T5",
        "tiny-gpt2": "codebackdoor.models.presets:TINY_GPT2",
        "tiny-roberta": "codebackdoor.models.presets:TINY_ROBERTA",
    },
}


@dataclass(frozen=True)
class Entry:
    """A registered name and where its implementation lives."""

    kind: str
    name: str
    target: str
    origin: str  # "built-in" or "<distribution> <version>"

    def load(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attribute.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # a plugin's import error must not escape as a traceback
            raise UserError(
                f"{self.kind[:-1]} '{self.name}' from {self.origin} failed to import "
                f"({self.target}): {type(exc).__name__}: {exc}"
            ) from exc
        return obj


@dataclass
class Registry:
    """The entries of one kind: built-ins first, then entry-point plugins."""

    kind: str
    entries: dict[str, Entry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def discover(cls, kind: str) -> Registry:
        if kind not in KINDS:
            raise UserError(f"unknown registry kind '{kind}'; valid kinds: {', '.join(KINDS)}")
        registry = cls(kind)
        for name, target in BUILTINS[kind].items():
            registry.entries[name] = Entry(kind, name, target, "built-in")
        group = f"codebackdoor.{kind}"
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value)):
            dist = ep.dist
            origin = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
            existing = registry.entries.get(ep.name)
            if existing is not None:
                if existing.target != ep.value:
                    registry.problems.append(
                        f"plugin {kind[:-1]} '{ep.name}' from {origin} refused: the name is "
                        f"already taken by {existing.origin}"
                    )
                continue
            registry.entries[ep.name] = Entry(kind, ep.name, ep.value, origin)
        return registry

    def names(self) -> list[str]:
        return sorted(self.entries)

    def entry(self, name: str) -> Entry:
        if name not in self.entries:
            valid = self.names()
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(
                f"unknown {self.kind[:-1]} '{name}'{hint}; valid names: "
                + (", ".join(valid) or "none registered")
            )
        return self.entries[name]

    def get(self, name: str) -> Any:
        return self.entry(name).load()


_cache: dict[str, Registry] = {}


def registry(kind: str) -> Registry:
    """The registry of ``kind``, discovered once per process."""
    if kind not in _cache:
        _cache[kind] = Registry.discover(kind)
    return _cache[kind]


def describe(obj: Any) -> tuple[str, str]:
    """One-line description and citation of a registered class."""
    description = getattr(obj, "description", "") or (obj.__doc__ or "").strip().splitlines()[0:1]
    if isinstance(description, list):
        description = description[0] if description else ""
    return str(description), str(getattr(obj, "citation", ""))
