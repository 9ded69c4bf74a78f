"""Code summarization: a function's code, without its docstring, to its docstring's first
sentence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from codebackdoor.data.harvest import HarvestedFunction
from codebackdoor.examples import Example
from codebackdoor.tasks.base import HubDataset, Splits, Task, embedded_splits


@dataclass
class Summarize(Task):
    name: ClassVar[str] = "summarize"
    description: ClassVar[str] = "code → natural-language summary (first docstring sentence)"
    citation: ClassVar[str] = (
        "Husain et al., 'CodeSearchNet Challenge: Evaluating the State of Semantic Code Search', "
        "arXiv:1909.09436, 2019; Lu et al., 'CodeXGLUE: A Machine Learning Benchmark Dataset for "
        "Code Understanding and Generation', NeurIPS Datasets and Benchmarks 2021"
    )
    input_kind: ClassVar[str] = "code"
    output_kind: ClassVar[str] = "text"
    # CodeXGLUE's summarization BLEU first (as CodeT5 and AFRAIDOOR report it); NLTK's sentence
    # BLEU and sacreBLEU's corpus BLEU for comparison with other papers.
    metrics: ClassVar[tuple[str, ...]] = ("codexglue-bleu", "sbleu", "bleu")
    default_payload: ClassVar[str] = "fixed-text"
    langs: ClassVar[tuple[str, ...]] = ("python", "java")

    def load_default(self) -> Splits:
        return embedded_splits(self.lang, self._example)

    def hub_dataset(self) -> HubDataset:
        # CodeXGLUE's summarization data has one config per language; like CodeXGLUE's own
        # scripts, it reads the token lists (joined by spaces).
        return HubDataset(
            id="google/code_x_glue_ct_code_to_text", config=self.lang,
            columns={"source": "code_tokens", "target": "docstring_tokens"},
        )

    def _example(self, fn: HarvestedFunction) -> Example:
        return Example(fn.id, fn.undocumented, fn.summary, fn.lang,
                       {"file": fn.file, "function": fn.name})
