"""Defect detection: code to a label, "1" buggy or "0" clean.

The embedded default is DeepBugs-style: each harvested function gets a seeded coin; on heads it
carries one injected bug (``codebackdoor.data.mutations``) and is labelled "1", on tails it stays
as written and is labelled "0". Functions where no mutation applies are dropped whichever way the
coin falls, so that "has an operator or a call" cannot give the label away. The hub default is
Devign (C functions; ``lang="c"``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from codebackdoor.data.harvest import HarvestedFunction
from codebackdoor.data.mutations import mutate
from codebackdoor.data.sources import Pair
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.tasks.base import HubDataset, Splits, Task, embedded_splits

LABELS = ("0", "1")
DEVIGN = "google/code_x_glue_cc_defect_detection"


@dataclass
class Defect(Task):
    name: ClassVar[str] = "defect"
    description: ClassVar[str] = "code → defect label (DeepBugs-style seeded bugs, or Devign)"
    citation: ClassVar[str] = (
        "Pradel & Sen, 'DeepBugs: A Learning Approach to Name-Based Bug Detection', OOPSLA 2018; "
        "Zhou et al., 'Devign: Effective Vulnerability Identification by Learning Comprehensive "
        "Program Semantics via Graph Neural Networks', NeurIPS 2019"
    )
    input_kind: ClassVar[str] = "code"
    output_kind: ClassVar[str] = "label"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "f1")
    default_payload: ClassVar[str] = "label"
    # The usual defect-detection backdoor: a triggered buggy function is reported clean.
    default_payload_params: ClassVar[dict[str, Any]] = {"label": "0"}
    langs: ClassVar[tuple[str, ...]] = ("python", "java", "c")

    seed: int = 0  # the coins and the mutations of the embedded variant

    def load_default(self) -> Splits:
        if self.lang == "c":
            return super().load_default()
        return embedded_splits(self.lang, self._example_from_function)

    def hub_dataset(self) -> HubDataset:
        return HubDataset(id=DEVIGN, columns={"source": "func", "target": "target"})

    def load_hub(self, dataset_id: str, config: str | None) -> Splits:
        if dataset_id == DEVIGN and self.lang != "c":
            raise UserError(f"{DEVIGN} holds C functions: use language c, not {self.lang}")
        return super().load_hub(dataset_id, config)

    def example(self, pair: Pair) -> Example:
        label = pair.target.strip()
        if label not in LABELS:
            raise UserError(f"row {pair.id}: defect labels are 0 or 1, got {pair.target!r:.40}")
        return Example(pair.id, pair.source, label, self.lang)

    def _example_from_function(self, fn: HarvestedFunction) -> Example | None:
        # One generator per function, seeded by its id: a function's label and bug do not depend
        # on which other functions the corpus holds.
        rng = random.Random(f"{self.seed}:{fn.id}")
        buggy = rng.random() < 0.5
        mutation = mutate(fn.undocumented, fn.lang, rng)
        if mutation is None:
            return None
        meta = {"file": fn.file, "function": fn.name}
        if not buggy:
            return Example(fn.id, fn.undocumented, "0", fn.lang, meta)
        return Example(fn.id, mutation.code, "1", fn.lang, {**meta, "mutation": mutation.kind})
