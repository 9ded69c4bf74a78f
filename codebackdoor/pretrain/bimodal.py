"""T5 pretraining that mixes span corruption (or BART's text infilling) with CodeT5's bimodal
dual generation.

CodeT5 (Wang et al., EMNLP 2021, §3.3) aligns natural language with code by training on
documented functions in both directions: NL -> code (generate the function from its comment)
and code -> NL (generate the comment from the function). Here the pairs are the harvested
functions of the embedded corpus (``codebackdoor.data.harvest``): the docstring's or Javadoc's
first sentence (``summary``) as NL, the function without its docstring (``undocumented``) as
code, so the comment is never visible in the code. Only the embedded corpus's ``train`` split
is used, so the summarize and method-name tasks' valid/test targets never reach pretraining.

A mix such as ``span=0.5,nl2code=0.25,code2nl=0.25`` fixes how many items of each batch serve
each objective (largest remainder over the batch size). The Trainer draws items in a seeded
random order; the collator gives the batch's first positions to the block objectives (span
corruption, text infilling: on the item's corpus block) and the rest to the pair objectives,
the pair picked by the item's index in a seeded permutation of the pairs. So each batch holds
the mix exactly, and a batch depends only on its items' indices and the seed, as in
``objectives`` (a resumed pretraining sees the same batches). As the fine-tuning tasks give no
task prefix, the pair inputs carry none either: the input's modality tells the direction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codebackdoor.errors import UserError
from codebackdoor.models.objective import IGNORE_INDEX
from codebackdoor.pretrain.objectives import SpanCorruption, TextInfilling, item_generator

if TYPE_CHECKING:
    from torch import Tensor

SPAN = "span"
DENOISE = "denoise"
NL2CODE = "nl2code"
CODE2NL = "code2nl"
T5_OBJECTIVES = (SPAN, DENOISE, NL2CODE, CODE2NL)
PAIR_OBJECTIVES = (NL2CODE, CODE2NL)
# The objectives that read corpus blocks (the rest read documented functions' pairs).
BLOCK_OBJECTIVES = (SPAN, DENOISE)
# Half denoising, half dual generation split evenly between the two directions. CodeT5 runs
# dual generation as a stage after denoising; one mixed stage lets a single time budget
# cover both, and keeps the denoising that the code-to-code tasks (repair) draw on.
DEFAULT_MIX = {SPAN: 0.5, NL2CODE: 0.25, CODE2NL: 0.25}
# The old recipe: span corruption alone (Raffel et al. 2020).
SPAN_ONLY = {SPAN: 1.0}
# A docstring's first sentence holds at most 30 words (harvest.SUMMARY_WORDS).
NL_TOKENS = 64


def parse_mix(text: str) -> dict[str, float]:
    """``span=0.5,nl2code=0.25,code2nl=0.25`` as a dict; shares must sum to 1."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        match = re.fullmatch(r"\s*([a-z0-9]+)\s*=\s*(\d+(?:\.\d*)?|\.\d+)\s*", part)
        if not match:
            raise UserError(
                f"--mix: cannot read {part.strip()!r}; write OBJECTIVE=SHARE,... "
                f"(e.g. span=0.5,nl2code=0.25,code2nl=0.25)"
            )
        name, share = match[1], float(match[2])
        if name in mix:
            raise UserError(f"--mix: {name} given twice")
        mix[name] = share
    return check_mix(mix)


def check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """``mix`` with known objectives and positive shares summing to 1, else a UserError."""
    unknown = sorted(set(mix) - set(T5_OBJECTIVES))
    if unknown:
        raise UserError(
            f"--mix: unknown objective {', '.join(unknown)}; valid: {', '.join(T5_OBJECTIVES)}"
        )
    if any(share <= 0 for share in mix.values()):
        raise UserError("--mix: every share must be positive (leave an objective out instead)")
    if abs(sum(mix.values()) - 1.0) > 1e-6:
        raise UserError(f"--mix: shares sum to {sum(mix.values()):g}, not 1")
    return {name: float(mix[name]) for name in T5_OBJECTIVES if name in mix}


def objective_name(mix: Mapping[str, float]) -> str:
    """The card's name of a mix's objectives: ``span-corruption+dual-generation`` for the
    default, the two pair directions named once."""
    names = {SPAN: "span-corruption", DENOISE: "text-infilling"}
    parts = dict.fromkeys(names.get(name, "dual-generation") for name in mix)
    return "+".join(parts)


def batch_slots(mix: Mapping[str, float], batch_size: int) -> list[str]:
    """The objective of each position of a batch: the mix's shares of ``batch_size`` rounded
    by largest remainder, in the order of ``T5_OBJECTIVES``."""
    names = list(mix)
    exact = [mix[name] * batch_size for name in names]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(names)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: batch_size - sum(counts)]:
        counts[i] += 1
    empty = [name for name, count in zip(names, counts, strict=True) if count == 0]
    if empty:
        raise UserError(
            f"--mix: {', '.join(empty)} gets no item of a batch of {batch_size}; raise its share"
        )
    return [name for name, count in zip(names, counts, strict=True) for _ in range(count)]


@dataclass(frozen=True)
class Pair:
    """One documented function: its comment's first sentence and its code without it."""

    lang: str
    nl: str
    code: str


def pairs_from_functions(functions: Iterable[Any]) -> list[Pair]:
    """Pairs of harvested functions (``HarvestedFunction``) of the ``train`` split."""
    return [Pair(fn.lang, fn.summary, fn.undocumented) for fn in functions if fn.split == "train"]


def embedded_pairs(java: bool = True) -> tuple[list[Pair], dict[str, Any]]:
    """The pairs of the embedded corpora (the standard library; the JDK's core modules where
    its sources are installed) and where they came from."""
    from codebackdoor.data.harvest import find_jdk_sources, java_corpus, python_corpus

    corpora = [python_corpus()]
    if java:
        try:
            find_jdk_sources()
            corpora.append(java_corpus())
        except UserError:
            pass  # Python pairs only where no JDK sources are installed
    pairs = [pair for corpus in corpora for pair in pairs_from_functions(corpus.functions)]
    source = {
        "from": "embedded corpus, train split (valid/test left out)",
        "nl": "summary (the docstring's or Javadoc's first sentence)",
        "code": "undocumented (the function without its docstring)",
        "cache_files": [corpus.source["cache_file"] for corpus in corpora],
    }
    return pairs, source


@dataclass
class TokenizedPairs:
    """Token ids of the pairs (NL cut at ``NL_TOKENS``, code at the block length), without
    end of sequence."""

    langs: list[str]
    nl: list[list[int]]
    code: list[list[int]]

    @classmethod
    def build(cls, pairs: Sequence[Pair], tokenizer: Any, code_tokens: int) -> TokenizedPairs:
        if not pairs:
            raise UserError("--mix: the pair objectives need documented functions; none found")
        backend = tokenizer.backend_tokenizer

        def ids(texts: list[str], limit: int) -> list[list[int]]:
            encoded = backend.encode_batch(texts, add_special_tokens=False)
            return [item.ids[:limit] for item in encoded]

        return cls(
            [pair.lang for pair in pairs],
            ids([pair.nl for pair in pairs], NL_TOKENS),
            ids([pair.code for pair in pairs], code_tokens),
        )

    def __len__(self) -> int:
        return len(self.nl)

    def mean_tokens(self) -> float:
        """Mean NL plus code tokens of a pair: what one pair item covers."""
        return sum(len(a) + len(b) for a, b in zip(self.nl, self.code, strict=True)) / len(self)


@dataclass
class MixedObjectives:
    """The collator of a mix: span corruption and text infilling on corpus blocks, dual
    generation on pairs, batches padded (inputs with ``pad_id``, labels with IGNORE_INDEX) with
    an attention mask. ``pairs`` and ``infilling`` are needed only where the slots use them."""

    slots: Sequence[str]
    span: SpanCorruption
    pairs: TokenizedPairs | None
    pad_id: int
    eos_id: int
    seed: int = 1
    infilling: TextInfilling | None = None

    def __post_init__(self) -> None:
        import torch

        if self.pairs is None and set(self.slots) & set(PAIR_OBJECTIVES):
            raise UserError("--mix: nl2code and code2nl need documented functions' pairs")
        if self.infilling is None and DENOISE in self.slots:
            raise UserError("--mix: denoise needs its text infilling settings")
        # One seeded order of the pairs; item i takes pair order[i mod pairs].
        generator = torch.Generator().manual_seed(self.seed)
        count = len(self.pairs) if self.pairs is not None else 0
        self.order = torch.randperm(count, generator=generator).tolist()

    def example(self, objective: str, item: dict[str, Any]) -> tuple[list[int], list[int]]:
        """(input ids, label ids) of ``item`` under ``objective``."""
        import torch

        index = item["index"]
        if objective in BLOCK_OBJECTIVES:
            block = torch.as_tensor(item["input_ids"], dtype=torch.int64)
            noise = self.span if objective == SPAN else self.infilling
            source, target = noise.corrupt(block, item_generator(self.seed, index))
            return source.tolist(), target.tolist()
        pair = self.order[index % len(self.pairs)]
        nl, code = self.pairs.nl[pair], self.pairs.code[pair]
        source, target = (nl, code) if objective == NL2CODE else (code, nl)
        return [*source, self.eos_id], [*target, self.eos_id]

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        from codebackdoor.models.tokenizer import pad

        slots = zip(self.slots, items, strict=False)
        examples = [self.example(objective, item) for objective, item in slots]
        sources = [source for source, _ in examples]
        batch = {
            "input_ids": pad(sources, self.pad_id),
            "attention_mask": pad([[1] * len(source) for source in sources], 0),
            "labels": pad([target for _, target in examples], IGNORE_INDEX),
        }
        if self.span.decoder_inputs is not None:
            batch["decoder_input_ids"] = self.span.decoder_inputs(labels=batch["labels"])
        return batch


def objective_report(
    mix: Mapping[str, float], slots: Sequence[str], steps: int, block_tokens: int,
    pairs: TokenizedPairs | None, infilling_window: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per objective: its share, items per batch, items seen and tokens seen in ``steps``.
    A span item covers one block of corpus tokens and a denoise item its window of one (exact);
    a pair item covers its NL and code tokens, counted as the pairs' mean (pairs are drawn
    uniformly, so the mean is unbiased)."""
    per_item = {SPAN: block_tokens, DENOISE: min(infilling_window or 0, block_tokens)}
    report = {}
    for name, share in mix.items():
        per_batch = slots.count(name)
        items = per_batch * steps
        report[name] = {
            "share": share,
            "items_per_batch": per_batch,
            "items_seen": items,
            "tokens_seen": round(items * (per_item.get(name) or pairs.mean_tokens())),
            "tokens_counted": (
                "exact: block tokens" if name in BLOCK_OBJECTIVES else "items x mean pair tokens"
            ),
        }
    return report
