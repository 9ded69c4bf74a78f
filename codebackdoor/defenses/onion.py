"""ONION: delete the units of a test input whose removal makes it much more fluent.

The suspicion of a unit (a word of text, a token or line of code) is PPL(input) minus
PPL(input without the unit) under a causal LM; every unit whose suspicion exceeds the threshold
is removed. A rare-word trigger is what the LM finds least expected, so dropping it lowers the
perplexity most.

All leave-one-out variants of many inputs, with the inputs themselves, go through the LM
together: sorted by length and cut into padded batches of a bounded number of tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codebackdoor.defenses.base import DefenseContext, PurifyDefense
from codebackdoor.defenses.units import GRANULARITIES, Unit, units, without
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.models.objective import IGNORE_INDEX

# Texts scored per group of inputs: bounds the variant strings and token ids held at once.
GROUP_TEXTS = 4096

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
    # validation data; any value is allowed.
    threshold: float = 0.0
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
    perplexities = iter(scorer.perplexities(texts))
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
    """A causal LM and its tokenizer, scoring texts that follow ``prefix``.

    ``prefix`` is the context every text is scored after: the separator a preset was trained
    to continue, or a pretrained tokenizer's begin-of-text token. With no prefix the first
    token has no context and is not scored (as in ONION's and OpenBackdoor's GPT-2 scoring).
    """

    model: Any
    tokenizer: Any
    prefix: list[int]
    max_length: int
    batch_tokens: int

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
        return cls(victim.model, victim.tokenizer, prefix, max_length, onion.batch_tokens)

    def perplexities(self, texts: Sequence[str]) -> list[float]:
        """exp(mean token NLL) of each text; NaN for a text with no scored token.

        Identical texts are scored once. Rows are sorted by length and padded on the right,
        where a causal LM's real tokens never see the padding.
        """
        import torch

        from codebackdoor.models.objective import next_token_labels
        from codebackdoor.models.tokenizer import pad
        from codebackdoor.models.training import padding_id

        if not texts:
            return []
        unique = list(dict.fromkeys(texts))
        room = max(1, self.max_length - len(self.prefix))
        encoded = self.tokenizer(
            unique, add_special_tokens=False, truncation=True, max_length=room
        )["input_ids"]
        sequences = [self.prefix + ids for ids in encoded]
        values = [math.nan] * len(unique)
        # Position j holds a scored token when it has context: after the prefix, and never
        # position 0. Texts with none stay NaN and take no part in the forward passes.
        first_scored = max(1, len(self.prefix))
        order = sorted(
            (row for row in range(len(unique)) if len(sequences[row]) > first_scored),
            key=lambda row: -len(sequences[row]),
        )
        device = next(self.model.parameters()).device
        pad_id = padding_id(self.tokenizer)
        with torch.inference_mode():
            start = 0
            while start < len(order):
                longest = len(sequences[order[start]])
                rows = order[start : start + max(1, self.batch_tokens // longest)]
                start += len(rows)
                batch = [sequences[row] for row in rows]
                ids = pad(batch, pad_id).to(device)
                mask = pad([[1] * len(sequence) for sequence in batch], 0).to(device)
                labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
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
                for row, value in zip(rows, means.exp().tolist(), strict=True):
                    values[row] = value
        by_text = dict(zip(unique, values, strict=True))
        return [by_text[text] for text in texts]
