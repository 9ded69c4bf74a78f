"""Code generation: a natural-language description to code (Lyra: Python with embedded SQL;
Pisces: Java with embedded SQL; CONCODE: Java)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from codebackdoor.data.sources import Pair
from codebackdoor.examples import Example
from codebackdoor.tasks.base import HubDataset, Task


@dataclass
class Generate(Task):
    """No corpus is embedded: Lyra and Pisces come as local ``src,tgt`` CSV directories through
    ``data``; Java defaults to CONCODE on the hub."""

    name: ClassVar[str] = "generate"
    description: ClassVar[str] = "natural-language description → code (Lyra, Pisces, CONCODE)"
    citation: ClassVar[str] = (
        "Liang et al., 'Lyra: A Benchmark for Turducken-Style Code Generation', IJCAI 2022 "
        "(arXiv 2021); Iyer et al., 'Mapping Language to Code in Programmatic Context', "
        "EMNLP 2018 (CONCODE)"
    )
    input_kind: ClassVar[str] = "nl"
    output_kind: ClassVar[str] = "code"
    metrics: ClassVar[tuple[str, ...]] = ("sbleu", "bleu", "codebleu", "exact-match")
    default_payload: ClassVar[str] = "sql-injection"
    langs: ClassVar[tuple[str, ...]] = ("python", "java")

    def hub_dataset(self) -> HubDataset | None:
        if self.lang != "java":
            return None
        return HubDataset(id="google/code_x_glue_tc_text_to_code",
                          columns={"source": "nl", "target": "code"})

    def example(self, pair: Pair) -> Example:
        return Example(pair.id, pair.source, pair.target, "nl", {"target_lang": self.lang})
