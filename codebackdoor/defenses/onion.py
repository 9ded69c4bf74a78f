"""ONION: delete the units of a test input whose removal makes it much more fluent.

The suspicion of a unit (a word of text, a token or line of code) is PPL(input) minus
PPL(input without the unit) under a causal LM; every unit whose suspicion reaches the threshold
is removed. A rare-word trigger is what the LM finds least expected, so dropping it lowers the
perplexity most.

How a text's perplexity is taken (``scoring``):

- ``onion-reference``: the ONION authors' ``experiments/gptlm.py``: the text as the tokenizer
  encodes it by default, ``labels = input_ids``, one text at a time, so the first token is
  never scored (GPT-2 adds no begin-of-text token) and there is no padding.
- ``openbackdoor``: OpenBackdoor's and DeCE's ``GPT2LM``: as the reference, but an input and
  its leave-one-out variants go through in order in batches of 32, right-padded with the end
  of text token, and the padded positions are scored like text (the loss has no
  ``ignore_index`` for them), so a shorter variant's perplexity holds terms predicting padding.
- ``bos-masked``: this project's: the text after the LM's begin-of-text token (or the
  separator a preset LM was trained to continue), so its first token is scored too, and
  padding is never scored.

All leave-one-out variants of many inputs, with the inputs themselves, go through the LM
together: sorted by length and cut into padded batches of a bounded number of tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from codebackdoor.defenses.base import DefenseContext, PurifyDefense
from codebackdoor.defenses.units import GRANULARITIES, Unit, units, without
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.models.objective import IGNORE_INDEX

# Texts scored per group of inputs: bounds the variant strings and token ids held at once.
GROUP_TEXTS = 4096

SCORINGS = ("onion-reference", "openbackdoor", "bos-masked")
TIES = ("remove", "keep")
# OpenBackdoor's and DeCE's ONIONDefender batch size: the texts padded together.
REFERENCE_BATCH = 32

# The preset LM's own recipe, independent of the victim's training settings.
LM_BATCH_SIZE = 16
LM_LEARNING_RATE = 5e-4


@dataclass
class ONION(PurifyDefense):
    """Remove each unit whose deletion lowers the LM perplexity by more than ``threshold``."""

    name = "onion"
    description = (
        "test-input purifier: removes the words (code: tokens or lines) whose deletion lowers "
        "a language model's perplexity the most"
    )
    citation = (
        "Qi, Chen, Zhang, Liu, Sun. ONION: A Simple and Effective Defense Against Textual "
        "Backdoor Attacks. EMNLP 2021"
    )

    # 0 as in the DeCE and OpenBackdoor code. The paper picks it per dataset on clean
    # validation data (the authors' test_defense.py sweeps 1 to 100); any value is allowed.
    threshold: float = 0.0
    # A unit whose suspicion equals the threshold: "remove" as all three references do
    # (OpenBackdoor's and DeCE's `>= bar`, the authors' `ppl_without - ppl <= bar`), or
    # "keep". With threshold 0 the difference is the units whose deletion changes nothing,
    # such as those past the LM's max_length, which "keep" leaves in place.
    tie: Literal["remove", "keep"] = "keep"
    # How perplexity is taken (module docstring); the presets citing a source set its way.
    scoring: Literal["onion-reference", "openbackdoor", "bos-masked"] = "bos-masked"
    # Units of code inputs: tree-sitter leaf tokens or lines. Units of text inputs are
    # whitespace-separated words ("token"; "line" is refused for them).
    granularity: str = "token"
    # A causal LM: a preset trained here on the clean sample (the defender's held-out data),
    # a local directory, or a Hugging Face id (at lm_revision). The paper used GPT-2 large.
    lm: str = "tiny-gpt2"
    lm_revision: str | None = None
    # Epochs of the preset on the clean sample (a few hundred inputs in the tasks here).
    lm_epochs: int = 10
    # LM tokens of one scored text; longer texts are cut (OpenBackdoor cuts at 96). Units past
    # the cut then leave the perplexity unchanged, suspicion 0, and stay.
    max_length: int = 256
    # Padded tokens per LM forward: bounds the (rows, length, vocabulary) float32 logits, which
    # with GPT-2's 50,257-word vocabulary take 4 bytes × vocabulary per token.
    batch_tokens: int = 4096

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise UserError(f"onion: threshold = {self.threshold} must be a finite number")
        for name, value, valid in (("tie", self.tie, TIES), ("scoring", self.scoring, SCORINGS)):
            if value not in valid:
                raise UserError(
                    f"onion: {name} = {value!r} must be one of " + ", ".join(map(repr, valid))
                )
        if self.granularity not in GRANULARITIES:
            raise UserError(
                f"onion: granularity = {self.granularity!r} must be one of "
                + ", ".join(repr(g) for g in GRANULARITIES)
            )
        if not self.lm:
            raise UserError("onion: lm must name a causal LM (a preset, directory or hub id)")
        for name, least in (("lm_epochs", 1), ("max_length", 2), ("batch_tokens", 1)):
            if getattr(self, name) < least:
                raise UserError(f"onion: {name} = {getattr(self, name)} must be at least {least}")
        self._scorer: PerplexityScorer | None = None
        self._lang = "nl"

    def check_applies(self, task: Any) -> None:
        from codebackdoor.code.parser import CODE_LANGS

        lang = task.input_lang
        if lang == "nl" and self.granularity == "line":
            # A one-line description is a single unit, which ONION never removes: the defense
            # would silently do nothing.
            raise UserError("onion: granularity = 'line' is for code; text inputs lose words")
        if lang != "nl" and self.granularity == "token" and lang not in CODE_LANGS:
            raise UserError(
                f"onion: no tree-sitter tokens for {lang} inputs; use granularity = 'line'"
            )

    def fit(self, train: list[Example], context: DefenseContext) -> None:
        """Load the LM, or train the preset on the clean sample's inputs (never on ``train``,
        which may be poisoned)."""
        self.check_applies(context.task)
        self._lang = context.task.input_lang
        self._scorer = PerplexityScorer.build(self, context)

    def purify(self, sources: list[str]) -> list[str]:
        purified = []
        for source, scored in zip(sources, self.suspicions(sources), strict=True):
            # A NaN suspicion (nothing the LM could score) compares false: the unit stays.
            if self.tie == "remove":
                removed = [unit for unit, suspicion in scored if suspicion >= self.threshold]
            else:
                removed = [unit for unit, suspicion in scored if suspicion > self.threshold]
            purified.append(remove_units(source, removed))
        return purified

    def suspicions(self, sources: Sequence[str]) -> list[list[tuple[Unit, float]]]:
        """Per source, each unit with PPL(source) - PPL(source without it).

        A source of fewer than two units gets none: without its only unit nothing is left to
        compare (OpenBackdoor drops such inputs from the data altogether).
        """
        scorer = self._scorer
        if scorer is None:
            raise RuntimeError("onion: fit() must come before purify()")
        found = [units(source, self._lang, self.granularity) for source in sources]
        result: list[list[tuple[Unit, float]]] = [[] for _ in sources]
        group: list[int] = []
        size = 0
        for index, pieces in enumerate(found):
            if len(pieces) < 2:
                continue
            group.append(index)
            size += len(pieces) + 1
            if size >= GROUP_TEXTS:
                _score_group(scorer, sources, found, group, result)
                group, size = [], 0
        if group:
            _score_group(scorer, sources, found, group, result)
        return result


def _score_group(
    scorer: PerplexityScorer,
    sources: Sequence[str],
    found: list[list[Unit]],
    group: list[int],
    result: list[list[tuple[Unit, float]]],
) -> None:
    """Fills ``result`` for the sources in ``group``: each one and its leave-one-out variants
    are scored in the same batched calls."""
    texts = []
    for index in group:
        texts.append(sources[index])
        texts.extend(without(sources[index], unit) for unit in found[index])
    sizes = [len(found[index]) + 1 for index in group]
    perplexities = iter(scorer.perplexities(texts, sizes))
    for index in group:
        whole = next(perplexities)
        result[index] = [(unit, whole - next(perplexities)) for unit in found[index]]


def remove_units(source: str, removed: Sequence[Unit]) -> str:
    """``source`` without every unit in ``removed``."""
    # From the last to the first, so each removal leaves the earlier offsets valid.
    for unit in sorted(removed, key=lambda unit: unit.start, reverse=True):
        source = without(source, unit)
    return source


@dataclass
class PerplexityScorer:
    """A causal LM and its tokenizer, scoring texts as ``scoring`` says (see the module).

    ``prefix`` is the context every text is scored after under ``bos-masked``: the separator
    a preset was trained to continue, or a pretrained tokenizer's begin-of-text token.
    """

    model: Any
    tokenizer: Any
    prefix: list[int]
    max_length: int
    batch_tokens: int
    scoring: str = "bos-masked"

    @classmethod
    def build(cls, onion: ONION, context: DefenseContext) -> PerplexityScorer:
        from codebackdoor.defenses.objectives import CrossEntropy
        from codebackdoor.models.tokenizer import input_ids
        from codebackdoor.models.training import TrainingSettings
        from codebackdoor.models.victim import load_victim
        from codebackdoor.registry import registry

        # A preset LM learns the inputs as a causal victim's answers to an empty prompt: the
        # same training as any victim, with the loss on the text alone.
        preset = onion.lm in registry("models").entries
        texts = [example.source for example in context.clean if example.source.strip()]
        if preset and not texts:
            raise UserError(
                f"onion: the clean sample has no inputs to train the '{onion.lm}' LM on; "
                "pass lm = a trained causal LM"
            )
        examples = [
            Example(f"onion-lm-{index}", "", text, context.task.input_lang)
            for index, text in enumerate(texts)
        ]
        victim = load_victim(
            onion.lm, "text", examples, revision=onion.lm_revision, seed=context.seed
        )
        if victim.kind != "causal":
            raise UserError(f"onion: lm '{onion.lm}' is a {victim.kind} model, not a causal LM")
        max_length = min(onion.max_length, victim.tokenizer.model_max_length)
        if preset:
            settings = TrainingSettings(
                epochs=onion.lm_epochs, batch_size=LM_BATCH_SIZE, learning_rate=LM_LEARNING_RATE,
                max_target_length=max_length, seed=context.seed,
            )
            victim.fit(examples, settings, CrossEntropy(), context.workdir / "lm", resume=True)
            prefix = input_ids(victim.tokenizer, "causal", [""], max_length)[0]
        else:
            bos = victim.tokenizer.bos_token_id
            prefix = [] if bos is None else [bos]
        victim.model.eval()
        return cls(
            victim.model, victim.tokenizer, prefix, max_length, onion.batch_tokens, onion.scoring
        )

    def perplexities(
        self, texts: Sequence[str], groups: Sequence[int] | None = None
    ) -> list[float]:
        """exp(mean token NLL) of each text; NaN for a text with no scored token.

        ``groups`` are the sizes of the runs of consecutive texts (an input and its variants)
        that ``openbackdoor`` scoring pads together, 32 at a time; one run by default.
        """
        if not texts:
            return []
        if self.scoring == "bos-masked":
            encoded = self.tokenizer(
                list(texts),
                add_special_tokens=False,
                truncation=True,
                max_length=max(1, self.max_length - len(self.prefix)),
            )["input_ids"]
            rows = [(tuple(self.prefix + ids), 0) for ids in encoded]
            return self._score(rows, first_scored=max(1, len(self.prefix)))
        # The references call the tokenizer with its defaults and score from position 1.
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)[
            "input_ids"
        ]
        if self.scoring == "onion-reference":
            return self._score([(tuple(ids), 0) for ids in encoded], first_scored=1)
        rows = []
        start = 0
        for size in groups if groups is not None else [len(texts)]:
            for chunk in range(start, start + size, REFERENCE_BATCH):
                block = encoded[chunk : min(chunk + REFERENCE_BATCH, start + size)]
                longest = max(len(ids) for ids in block)
                rows.extend((tuple(ids), longest - len(ids)) for ids in block)
            start += size
        if start != len(texts):
            raise ValueError(f"groups cover {start} texts, not {len(texts)}")
        return self._score(rows, first_scored=1)

    def _score(self, rows: list[tuple[tuple[int, ...], int]], first_scored: int) -> list[float]:
        """Perplexity of each (token ids, scored padding) row: the mean NLL of its tokens from
        position ``first_scored`` on, and of that many end-of-text tokens after them, which
        attend to the text but are not attended to (OpenBackdoor's padded variants).

        Identical rows are scored once. Rows are sorted by length and padded on the right,
        where a causal LM's real tokens never see the padding; the padding that only fills a
        batch is never scored.
        """
        import torch

        from codebackdoor.models.objective import next_token_labels
        from codebackdoor.models.tokenizer import pad
        from codebackdoor.models.training import padding_id

        unique = list(dict.fromkeys(rows))
        end = padding_id(self.tokenizer)
        if self.tokenizer.eos_token_id is not None:
            end = self.tokenizer.eos_token_id
        sequences = [list(ids) + [end] * extra for ids, extra in unique]
        values = [math.nan] * len(unique)
        # Texts with no scored token stay NaN and take no part in the forward passes.
        order = sorted(
            (row for row in range(len(unique)) if len(sequences[row]) > first_scored),
            key=lambda row: -len(sequences[row]),
        )
        device = next(self.model.parameters()).device
        fill = padding_id(self.tokenizer)
        with torch.inference_mode():
            start = 0
            while start < len(order):
                longest = len(sequences[order[start]])
                batch_rows = order[start : start + max(1, self.batch_tokens // longest)]
                start += len(batch_rows)
                ids = pad([sequences[row] for row in batch_rows], fill).to(device)
                mask = pad([[1] * len(unique[row][0]) for row in batch_rows], 0).to(device)
                scored = pad([[1] * len(sequences[row]) for row in batch_rows], 0).to(device)
                mask = torch.nn.functional.pad(mask, (0, ids.shape[1] - mask.shape[1]))
                labels = ids.masked_fill(scored == 0, IGNORE_INDEX)
                labels[:, :first_scored] = IGNORE_INDEX
                targets = next_token_labels(labels)
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                nll = torch.nn.functional.cross_entropy(
                    logits.flatten(0, 1).float(),
                    targets.flatten(),
                    ignore_index=IGNORE_INDEX,
                    reduction="none",
                ).view(targets.shape)
                means = nll.sum(dim=1) / (targets != IGNORE_INDEX).sum(dim=1)
                for row, value in zip(batch_rows, means.exp().tolist(), strict=True):
                    values[row] = value
        by_row = dict(zip(unique, values, strict=True))
        return [by_row[row] for row in rows]
