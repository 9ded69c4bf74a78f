"""The pretraining sizes per architecture: the model, its tokenizer, and the training recipe.

``tiny`` is the built-in presets' architecture (so a pretrained tiny model fine-tunes at the
same cost as the from-scratch preset it is compared with), sized to pretrain on 2 CPU cores in
at most 30 minutes. ``small`` is the published small configuration of each family (T5-small,
GPT-2 small, RoBERTa at 6 layers like DistilRoBERTa) with a 32k vocabulary, meant for a GPU.
This module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.models.presets import (
    SMALL_T5,
    TINY_GPT2,
    TINY_ROBERTA,
    TINY_T5,
    PresetSpec,
)
from codebackdoor.models.training import StepSettings

ARCHITECTURES = ("t5", "gpt2", "roberta")
SIZES = ("tiny", "small")
# How each family is pretrained: the engine's kind and the objective's name.
OBJECTIVES = {"t5": "span-corruption", "gpt2": "causal-lm", "roberta": "masked-lm"}
KINDS = {"t5": "seq2seq", "gpt2": "causal", "roberta": "masked"}
# T5's tokenizer carries 100 sentinels <extra_id_0> … <extra_id_99> (Raffel et al. 2020).
SENTINELS = 100


@dataclass(frozen=True)
class PretrainSize:
    """A model (``preset``: config and tokenizer size) and its pretraining recipe.

    ``block_length`` counts corpus tokens per example; ``max_tokens`` is the default budget in
    corpus tokens (steps × batch × block). Learning rates follow AdamW practice for models of
    this width with the inverse-square-root schedule after ``warmup_steps``.
    """

    arch: str
    size: str
    preset: PresetSpec
    block_length: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    max_tokens: int
    save_steps: int
    logging_steps: int
    tokenizer_sample_bytes: int

    @property
    def name(self) -> str:
        return f"{self.size}-{self.arch}"

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.block_length

    def step_settings(self, max_steps: int, **overrides: Any) -> StepSettings:
        """The engine's settings for ``max_steps`` of this size's schedule."""
        return StepSettings(
            max_steps=max_steps, batch_size=self.batch_size, learning_rate=self.learning_rate,
            warmup_steps=self.warmup_steps, save_steps=self.save_steps,
            logging_steps=self.logging_steps, **overrides,
        )


def _tiny(preset: PresetSpec) -> PretrainSize:
    return PretrainSize(
        arch=preset.family,
        size="tiny",
        preset=preset,
        block_length=256,
        batch_size=16,
        learning_rate=1e-3,
        warmup_steps=200,
        # Sized to finish in well under an hour on a 2-core CPU (throughput measured by
        # benchmarks/perf/pretrain_throughput.py, docs/pretraining.md).
        max_tokens=12_000_000,
        save_steps=200,
        logging_steps=50,
        tokenizer_sample_bytes=20_000_000,
    )


def _small(preset: PresetSpec, config: dict) -> PretrainSize:
    model = replace(
        preset,
        name=f"small-{preset.family}",
        config={**preset.config, **config},
        vocab_size=32_000,
        description=f"{preset.family} small, pretrained on the machine's code",
    )
    return PretrainSize(
        arch=preset.family,
        size="small",
        preset=model,
        block_length=512,
        batch_size=64,
        learning_rate=5e-4,
        warmup_steps=2_000,
        max_tokens=300_000_000,
        save_steps=1_000,
        logging_steps=100,
        tokenizer_sample_bytes=100_000_000,
    )


PRETRAIN_SIZES: dict[tuple[str, str], PretrainSize] = {
    ("t5", "tiny"): _tiny(TINY_T5),
    ("gpt2", "tiny"): _tiny(TINY_GPT2),
    ("roberta", "tiny"): _tiny(TINY_ROBERTA),
    # T5-small's shape, as the from-scratch `small-t5` preset.
    ("t5", "small"): _small(SMALL_T5, {}),
    # GPT-2 small (Radford et al. 2019): 768 wide, 12 layers, 12 heads.
    ("gpt2", "small"): _small(
        TINY_GPT2, {"n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": 3072}
    ),
    # RoBERTa base width at 6 layers (Sanh et al. 2019's DistilRoBERTa shape).
    ("roberta", "small"): _small(
        TINY_ROBERTA,
        {
            "hidden_size": 768,
            "num_hidden_layers": 6,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
        },
    ),
}


def pretrain_size(arch: str, size: str) -> PretrainSize:
    """The recipe for ``arch`` at ``size``; a UserError names the valid choices."""
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown architecture '{arch}'; valid: {', '.join(ARCHITECTURES)}")
    if size not in SIZES:
        raise UserError(f"unknown size '{size}'; valid: {', '.join(SIZES)}")
    return PRETRAIN_SIZES[arch, size]
