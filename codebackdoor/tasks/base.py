"""The Task interface: what a task takes and produces, where its data comes from, how it is scored.

``Task.data`` picks the source: None for the task's default (the embedded corpus where the task
has one, else its Hugging Face dataset), a local path (see ``codebackdoor.data.sources``), or
``hf:<dataset id>`` / ``hf:<dataset id>:<config>``. A hub dataset needs a pinned commit
(``revision``); for a task's own hub dataset the config and column map default to the right ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from codebackdoor.data import stratify
from codebackdoor.data.harvest import HarvestedFunction, corpus
from codebackdoor.data.sources import SPLITS, Pair, PairSplits, load_hub, load_local
from codebackdoor.errors import UserError
from codebackdoor.examples import Example, fingerprint

HUB_PREFIX = "hf:"


@dataclass
class Splits:
    """The examples of each split and how they were obtained (kind, path or id, revision, config,
    column map, cache file)."""

    train: list[Example]
    valid: list[Example]
    test: list[Example]
    source: dict[str, Any] = field(default_factory=dict)

    def fingerprints(self) -> dict[str, str]:
        return {name: fingerprint(getattr(self, name)) for name in ("train", "valid", "test")}


@dataclass(frozen=True)
class HubDataset:
    """A task's dataset on the Hugging Face hub. ``revision`` is None where no commit has been
    verified; the user must then pass one."""

    id: str
    columns: dict[str, str]
    config: str | None = None
    revision: str | None = None


@dataclass
class Task:
    """A task: its input and output kinds, languages, data sources and metrics."""

    name: ClassVar[str]
    description: ClassVar[str]
    citation: ClassVar[str]
    input_kind: ClassVar[str]  # "code" or "nl"
    output_kind: ClassVar[str]  # "text", "code" or "label"
    metrics: ClassVar[tuple[str, ...]]
    default_payload: ClassVar[str]
    # Parameters of the default payload where the task fixes them (e.g. the target label).
    default_payload_params: ClassVar[dict[str, Any]] = {}
    langs: ClassVar[tuple[str, ...]]  # the code languages the task can be set to

    lang: str = "python"
    data: str | None = None
    revision: str | None = None
    columns: dict[str, str] | None = None
    # At most this many examples per split, for small grids (the smoke suite) and quick looks at
    # large data: a sample fixed by the examples' ids (the first in split order could all share
    # one label), stratified by label for label tasks, kept in split order. The result's
    # fingerprints are of what is kept.
    max_examples: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.lang not in self.langs:
            raise UserError(
                f"task '{self.name}' does not support language '{self.lang}'; valid languages: "
                + ", ".join(self.langs)
            )
        for split, limit in (self.max_examples or {}).items():
            if split not in SPLITS:
                raise UserError(f"task '{self.name}': max_examples has unknown split '{split}'; "
                                f"valid: {', '.join(SPLITS)}")
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise UserError(f"task '{self.name}': max_examples.{split} = {limit!r} must be "
                                "a positive integer")

    @property
    def input_lang(self) -> str:
        """The language of ``Example.source``: "nl" for text input, else the code language."""
        return "nl" if self.input_kind == "nl" else self.lang

    @property
    def output_lang(self) -> str:
        """The language of the targets: "nl", "python", "java" (the code language) or "label"."""
        if self.output_kind == "label":
            return "label"
        return "nl" if self.output_kind == "text" else self.lang

    def load(self) -> Splits:
        if self.data is None:
            splits = self.load_default()
        elif self.data.startswith(HUB_PREFIX):
            dataset_id, _, config = self.data[len(HUB_PREFIX) :].partition(":")
            splits = self.load_hub(dataset_id, config or None)
        else:
            splits = self.from_pairs(load_local(self.data, self.columns))
        if self.max_examples:
            for split, limit in self.max_examples.items():
                setattr(splits, split, self.sample(getattr(splits, split), limit))
            splits.source = {**splits.source, "max_examples": dict(self.max_examples)}
        return splits

    def load_default(self) -> Splits:
        """The task's default data; here its hub dataset, overridden where a corpus is embedded."""
        hub = self.hub_dataset()
        if hub is None:
            raise UserError(
                f"task '{self.name}' has no default data for {self.lang}: pass --data with a "
                "local directory or file, or hf:<dataset id>"
            )
        return self.load_hub(hub.id, hub.config)

    def hub_dataset(self) -> HubDataset | None:
        """The task's own hub dataset for ``self.lang``, if it has one."""
        return None

    def load_hub(self, dataset_id: str, config: str | None) -> Splits:
        if not dataset_id:
            raise UserError("--data hf: needs a dataset id, e.g. hf:owner/name")
        known = self.hub_dataset()
        columns = self.columns
        revision = self.revision
        if known is not None and dataset_id == known.id:
            config = config or known.config
            columns = {**known.columns, **(columns or {})}
            revision = revision or known.revision
        return self.from_pairs(load_hub(dataset_id, revision=revision, config=config,
                                        columns=columns))

    def from_pairs(self, pairs: PairSplits) -> Splits:
        examples = {split: [self.example(pair) for pair in rows]
                    for split, rows in pairs.splits.items()}
        return Splits(**examples, source=pairs.source)

    def example(self, pair: Pair) -> Example:
        """A row of a file or hub source as an Example; tasks add their conventions."""
        return Example(pair.id, pair.source, pair.target, self.input_lang)


    def sample(self, examples: list[Example], size: int) -> list[Example]:
        """``size`` of ``examples`` in split order: for a label task each label keeps its share
        of the split (largest remainder), so a small slice still holds the split's classes. The
        sample depends on the example ids only, not on the run's seed: every seed of a grid
        trains and scores on the same data, and seeds differ in training alone."""
        labels = [e.target for e in examples] if self.output_kind == "label" else None
        return [examples[i] for i in stratify.sample([e.id for e in examples], labels, size)]


def embedded_splits(
    lang: str,
    make: Callable[[HarvestedFunction], Example | None],
    split_of_file: Mapping[str, str] | None = None,
) -> Splits:
    """The embedded corpus of ``lang`` turned into examples by ``make``; functions it returns None
    for are left out and counted in ``source["dropped"]``. ``split_of_file`` (file → split)
    replaces the corpus's per-file hash split, e.g. by a per-class one."""
    found = corpus(lang)
    splits: dict[str, list[Example]] = {split: [] for split in SPLITS}
    for fn in found.functions:
        example = make(fn)
        if example is not None:
            splits[fn.split if split_of_file is None else split_of_file[fn.file]].append(example)
    dropped = len(found.functions) - sum(len(examples) for examples in splits.values())
    return Splits(**splits, source={**found.source, "dropped": dropped})
