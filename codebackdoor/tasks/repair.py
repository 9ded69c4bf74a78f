"""Program repair: a buggy Java method to its fixed version (Bugs2Fix)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from codebackdoor.tasks.base import HubDataset, Task


@dataclass
class Repair(Task):
    """Defaults to the CodeXGLUE "small" Bugs2Fix data on the hub; a local ``src,tgt`` CSV (or a
    single file, split 80/10/10) works through ``data``."""

    name: ClassVar[str] = "repair"
    description: ClassVar[str] = "buggy Java method → fixed method (Bugs2Fix)"
    citation: ClassVar[str] = (
        "Tufano et al., 'An Empirical Study on Learning Bug-Fixing Patches in the Wild via Neural "
        "Machine Translation', ACM TOSEM 2019"
    )
    input_kind: ClassVar[str] = "code"
    output_kind: ClassVar[str] = "code"
    metrics: ClassVar[tuple[str, ...]] = ("sbleu", "bleu", "codebleu", "exact-match")
    default_payload: ClassVar[str] = "infinite-loop"
    langs: ClassVar[tuple[str, ...]] = ("java",)

    lang: str = "java"

    def hub_dataset(self) -> HubDataset:
        return HubDataset(id="google/code_x_glue_cc_code_refinement", config="small",
                          columns={"source": "buggy", "target": "fixed"})
