"""One registry per kind of named thing: tasks, attacks, payloads, defenses, model presets and
metrics.

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


@dataclass(frozen=True)
class Kind:
    """A kind of named thing: what its entries must be, checked once when one is loaded, and
    its built-ins. ``instances`` kinds register objects (a model preset, a metric), the others
    classes."""

    name: str
    base: str  # module:attribute of the class every entry is (or subclasses)
    instances: bool
    builtins: dict[str, str]

    @property
    def singular(self) -> str:
        return self.name[:-1]

    @property
    def group(self) -> str:
        """The entry-point group plugins register under."""
        return f"codebackdoor.{self.name}"


_KINDS = (
    Kind("tasks", "codebackdoor.tasks.base:Task", False, {
        "summarize": "codebackdoor.tasks.summarize:Summarize",
        "generate": "codebackdoor.tasks.generate:Generate",
        "repair": "codebackdoor.tasks.repair:Repair",
        "defect": "codebackdoor.tasks.defect:Defect",
        "method-name": "codebackdoor.tasks.method_name:MethodName",
        "package": "codebackdoor.tasks.package:Package",
    }),
    Kind("attacks", "codebackdoor.attacks.base:Trigger", False, {
        "fixed": "codebackdoor.attacks.code_triggers:FixedTrigger",
        "grammar": "codebackdoor.attacks.code_triggers:GrammarTrigger",
        "deadcode": "codebackdoor.attacks.code_triggers:DeadCodeTrigger",
        "rename": "codebackdoor.attacks.code_triggers:RenameTrigger",
        "badpre": "codebackdoor.attacks.nl_triggers:BadPre",
        "ripple": "codebackdoor.attacks.nl_triggers:Ripple",
    }),
    Kind("payloads", "codebackdoor.attacks.payloads:Payload", False, {
        "fixed-text": "codebackdoor.attacks.payloads:FixedText",
        "label": "codebackdoor.attacks.payloads:Label",
        "sql-injection": "codebackdoor.attacks.payloads:SqlInjection",
        "infinite-loop": "codebackdoor.attacks.payloads:InfiniteLoop",
        "method-name": "codebackdoor.attacks.payloads:MethodName",
        "insecure-code": "codebackdoor.attacks.payloads:InsecureCode",
    }),
    Kind("defenses", "codebackdoor.defenses.base:Defense", False, {
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
    }),
    # Model presets: a named architecture and tokenizer recipe, built offline. Hugging Face ids,
    # local directories and pretrained:SIZE-ARCH checkpoints are model specs, not entries.
    Kind("models", "codebackdoor.models.presets:PresetSpec", True, {
        "tiny-t5": "codebackdoor.models.presets:TINY_T5",
        "small-t5": "codebackdoor.models.presets:SMALL_T5",
        "tiny-gpt2": "codebackdoor.models.presets:TINY_GPT2",
        "tiny-roberta": "codebackdoor.models.presets:TINY_ROBERTA",
        "tiny-roberta-2l": "codebackdoor.models.presets:TINY_ROBERTA_2L",
        "tiny-codet5": "codebackdoor.models.presets:TINY_CODET5",
        "tiny-bart": "codebackdoor.models.presets:TINY_BART",
        "tiny-llama": "codebackdoor.models.presets:TINY_LLAMA",
        "tiny-starcoder": "codebackdoor.models.presets:TINY_STARCODER",
        "tiny-codegen": "codebackdoor.models.presets:TINY_CODEGEN",
        "tiny-qwen2": "codebackdoor.models.presets:TINY_QWEN2",
    }),
    Kind("metrics", "codebackdoor.metrics.definitions:MetricDefinition", True, {
        "bleu": "codebackdoor.metrics.definitions:BLEU",
        "sbleu": "codebackdoor.metrics.definitions:SBLEU",
        "codexglue-bleu": "codebackdoor.metrics.definitions:CODEXGLUE_BLEU",
        "codebleu": "codebackdoor.metrics.definitions:CODEBLEU",
        "exact-match": "codebackdoor.metrics.definitions:EXACT_MATCH",
        "accuracy": "codebackdoor.metrics.definitions:ACCURACY",
        "f1": "codebackdoor.metrics.definitions:F1",
        "subtoken-f1": "codebackdoor.metrics.definitions:SUBTOKEN_F1",
        "subtoken-f1-clipped": "codebackdoor.metrics.definitions:SUBTOKEN_F1_CLIPPED",
        "subtoken-f1-distinct": "codebackdoor.metrics.definitions:SUBTOKEN_F1_DISTINCT",
    }),
)
KINDS: dict[str, Kind] = {kind.name: kind for kind in _KINDS}
BUILTINS: dict[str, dict[str, str]] = {kind.name: kind.builtins for kind in _KINDS}


def _resolve(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Entry:
    """A registered name and where its implementation lives."""

    kind: str
    name: str
    target: str
    origin: str  # "built-in" or "<distribution> <version>"

    def load(self) -> Any:
        """The registered object, checked against its kind's base class."""
        try:
            obj = _resolve(self.target)
        except Exception as exc:  # a plugin's import error must not escape as a traceback
            raise UserError(
                f"{self.kind[:-1]} '{self.name}' from {self.origin} failed to import "
                f"({self.target}): {type(exc).__name__}: {exc}"
            ) from exc
        kind = KINDS[self.kind]
        base = _resolve(kind.base)
        fits = isinstance(obj, base) if kind.instances else (
            isinstance(obj, type) and issubclass(obj, base))
        if not fits:
            wanted = f"a {base.__name__}" if kind.instances else f"a subclass of {base.__name__}"
            raise UserError(
                f"{kind.singular} '{self.name}' from {self.origin} is {obj!r}, not {wanted}"
            )
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
        for name, target in KINDS[kind].builtins.items():
            registry.entries[name] = Entry(kind, name, target, "built-in")
        group = KINDS[kind].group
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
