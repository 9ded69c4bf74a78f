"""The pretraining objectives, as data collators over equal-length blocks of token ids.

Each collator turns a list of items (``{"index", "input_ids"}``) into a batch the model and the
project's cross-entropy objective read: ``labels`` hold IGNORE_INDEX where nothing is
predicted. An item's noise comes from a generator seeded by the pretraining seed and the item's
index, not from torch's global generator: the Trainer's data loader collates one batch ahead of
the step it trains, so global draws would land on the wrong side of a checkpoint, and a resumed
pretraining would corrupt its blocks differently from an uninterrupted one. Indices run over
every visit of a block (see ``TokenBlocks``), so a block seen twice is corrupted anew.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codebackdoor.errors import UserError
from codebackdoor.models.objective import IGNORE_INDEX

if TYPE_CHECKING:
    from torch import Tensor


def _stack(items: Sequence[dict[str, Any]]) -> Tensor:
    import numpy as np
    import torch

    blocks = [np.asarray(item["input_ids"], dtype=np.int64) for item in items]
    return torch.from_numpy(np.stack(blocks))


def item_generator(seed: int, index: int) -> Any:
    """The random generator of the item at ``index`` in a pretraining seeded with ``seed``."""
    import torch

    # 2**40 items per seed is more than any pretraining here reads.
    return torch.Generator().manual_seed((seed << 40) + index)


@dataclass
class SpanCorruption:
    """T5's denoising objective (Raffel et al., JMLR 2020, §3.1.4): 15% of the tokens, in
    spans of mean length 3, are each replaced in the input by one sentinel; the target lists
    every sentinel followed by the tokens it hides, then end of sequence.

    As in the T5 code, noise and kept tokens alternate in spans whose lengths are a random
    partition of their counts, and the first span is kept text. Every block has the same
    length, so every input and every target has the same length too: no padding.
    """

    eos_id: int
    sentinel_ids: Sequence[int]
    decoder_inputs: Callable[..., Tensor] | None = None
    seed: int = 1
    noise_density: float = 0.15
    mean_span_length: float = 3.0

    def __post_init__(self) -> None:
        check_noise("span corruption", self.noise_density, self.mean_span_length)

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        import torch

        rows = _stack(items)
        pairs = [
            self.corrupt(row, item_generator(self.seed, item["index"]))
            for row, item in zip(rows, items, strict=True)
        ]
        batch = {
            "input_ids": torch.stack([source for source, _ in pairs]),
            "labels": torch.stack([target for _, target in pairs]),
        }
        if self.decoder_inputs is not None:
            batch["decoder_input_ids"] = self.decoder_inputs(labels=batch["labels"])
        return batch

    def spans(self, length: int) -> tuple[int, int]:
        """(noise tokens, noise spans) for a block of ``length`` tokens."""
        noise, spans = noise_counts(length, self.noise_density, self.mean_span_length)
        if spans > len(self.sentinel_ids):
            raise UserError(
                f"span corruption: {spans} spans per block need as many sentinels; "
                f"the tokenizer has {len(self.sentinel_ids)}"
            )
        return noise, spans

    def noise_mask(self, length: int, generator: Any) -> Tensor:
        """A boolean mask of ``length`` with the noise spans set, the first span kept text."""
        return span_mask(length, *self.spans(length), generator)

    def corrupt(self, tokens: Tensor, generator: Any) -> tuple[Tensor, Tensor]:
        """(input, target) for one block, drawing from ``generator``."""
        import torch

        mask = self.noise_mask(len(tokens), generator)
        # A span starts where the mask switches on; its number picks its sentinel.
        starts = mask & ~torch.cat([torch.zeros(1, dtype=torch.bool), mask[:-1]])
        span_index = starts.cumsum(0) - 1
        sentinels = torch.tensor(self.sentinel_ids, dtype=tokens.dtype)[span_index.clamp(min=0)]
        eos = torch.tensor([self.eos_id], dtype=tokens.dtype)
        # Input: kept tokens, each noise span's first token turned into its sentinel.
        source = torch.where(starts, sentinels, tokens)[~mask | starts]
        # Target: each span's sentinel, then the span's tokens.
        in_target = torch.stack([starts, mask], 1).reshape(-1)
        values = torch.stack([sentinels, tokens], 1).reshape(-1)
        target = values[in_target]
        return torch.cat([source, eos]), torch.cat([target, eos])


@dataclass
class TextInfilling:
    """BART's text infilling (Lewis et al., ACL 2020, §2.2) at the rates mBART and PLBART, its
    code model, pretrain with (Liu et al. 2020; Ahmad et al., NAACL 2021): 35% of the tokens,
    in spans of mean length 3.5, are each replaced in the input by one mask token, and the
    target is the whole uncorrupted sequence. Unlike span corruption, whose target holds only
    the hidden spans, every kept token is written again in the target, so the decoder learns to
    copy its input: what a code-to-code task (repair) does with most of a method.

    Two departures from BART: span lengths are T5's random partition (as ``SpanCorruption``)
    instead of Poisson draws, and only a block's first ``window`` tokens are used, so a target
    is as long as a repair task's and a batch costs about what span corruption's does. The mask
    is the last sentinel, which span corruption's blocks never reach, so the two objectives'
    inputs stay distinguishable.
    """

    mask_id: int
    eos_id: int
    window: int = 128
    noise_density: float = 0.35
    mean_span_length: float = 3.5

    def __post_init__(self) -> None:
        check_noise("text infilling", self.noise_density, self.mean_span_length)
        if self.window < 2:
            raise UserError(f"text infilling: window {self.window} < 2")

    def corrupt(self, tokens: Tensor, generator: Any) -> tuple[Tensor, Tensor]:
        """(input, target) for the block's first ``window`` tokens, drawing from ``generator``."""
        import torch

        tokens = tokens[: self.window]
        noise, spans = noise_counts(len(tokens), self.noise_density, self.mean_span_length)
        mask = span_mask(len(tokens), noise, spans, generator)
        starts = mask & ~torch.cat([torch.zeros(1, dtype=torch.bool), mask[:-1]])
        masked = torch.where(starts, torch.full_like(tokens, self.mask_id), tokens)
        eos = torch.tensor([self.eos_id], dtype=tokens.dtype)
        return torch.cat([masked[~mask | starts], eos]), torch.cat([tokens, eos])


def check_noise(objective: str, density: float, mean_span_length: float) -> None:
    """A UserError naming ``objective`` unless 0 < ``density`` < 1 and spans average >= 1."""
    if not 0.0 < density < 1.0:
        raise UserError(f"{objective}: noise_density {density} not in (0, 1)")
    if mean_span_length < 1:
        raise UserError(f"{objective}: mean_span_length {mean_span_length} < 1")


def noise_counts(length: int, density: float, mean_span_length: float) -> tuple[int, int]:
    """(noise tokens, noise spans) for ``length`` tokens: at least one of each, and at least
    one kept token, as in T5's ``random_spans_noise_mask``."""
    noise = min(max(round(length * density), 1), length - 1)
    spans = max(1, min(round(noise / mean_span_length), noise, length - noise))
    return noise, spans


def span_mask(length: int, noise: int, spans: int, generator: Any) -> Tensor:
    """A boolean mask of ``length``: ``spans`` noise spans holding ``noise`` tokens in all,
    alternating with kept spans, the first span kept text."""
    import torch

    noise_lengths = _partition(noise, spans, generator)
    kept_lengths = _partition(length - noise, spans, generator)
    flags = torch.tensor([False, True]).repeat(spans)
    lengths = torch.stack([kept_lengths, noise_lengths], 1)
    return flags.repeat_interleave(lengths.reshape(-1))


def _partition(total: int, parts: int, generator: Any) -> Tensor:
    """``parts`` positive integers summing to ``total``, uniformly among such partitions."""
    import torch

    cuts = torch.randperm(total - 1, generator=generator)[: parts - 1] + 1
    edges = torch.cat([torch.tensor([0]), cuts.sort().values, torch.tensor([total])])
    return edges.diff()


@dataclass
class CausalLanguageModeling:
    """Next-token prediction over whole blocks (Radford et al. 2019). The labels are the
    inputs; the engine shifts them, so position t learns token t + 1."""

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        rows = _stack(items)
        return {"input_ids": rows, "labels": rows.clone()}


@dataclass
class MaskedLanguageModeling:
    """BERT's masked LM as RoBERTa trains it (Devlin et al. 2019; Liu et al. 2019): 15% of
    the non-special tokens are chosen anew for every batch (dynamic masking); of those, 80%
    become the mask token, 10% a random token, 10% stay; only chosen positions are labelled."""

    mask_id: int
    vocab_size: int
    special_ids: Sequence[int]
    seed: int = 1
    probability: float = 0.15
    mask_share: float = 0.8
    random_share: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.probability < 1.0:
            raise UserError(f"masked LM: probability {self.probability} not in (0, 1)")
        if self.mask_share < 0 or self.random_share < 0 or self.mask_share + self.random_share > 1:
            raise UserError("masked LM: mask_share and random_share must be >= 0, sum <= 1")

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        import torch

        inputs = _stack(items)
        shape = inputs.shape[1:]
        # Per row: the chance of being chosen, the 80/10/10 draw, and a random replacement.
        draws, replacements = [], []
        for item in items:
            generator = item_generator(self.seed, item["index"])
            draws.append(torch.rand((2, *shape), generator=generator))
            replacements.append(torch.randint(self.vocab_size, shape, generator=generator))
        chance, share = torch.stack(draws, 1)
        special = torch.isin(inputs, torch.tensor(list(self.special_ids), dtype=inputs.dtype))
        chosen = (chance < self.probability) & ~special
        labels = torch.where(chosen, inputs, torch.full_like(inputs, IGNORE_INDEX))
        masked = chosen & (share < self.mask_share)
        randomised = chosen & ~masked & (share < self.mask_share + self.random_share)
        inputs = torch.where(masked, torch.full_like(inputs, self.mask_id), inputs)
        inputs = torch.where(randomised, torch.stack(replacements), inputs)
        return {"input_ids": inputs, "labels": labels}
