"""The built-in victims: random-init architectures (tiny ones train on a laptop CPU).

A preset is a transformers config plus a recipe for its tokenizer, which is trained on the
task's own training split so that nothing has to be downloaded. This module imports no torch:
`codebackdoor list` reads the presets' descriptions alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Room for the longest causal sequence (prompt + separator + target) at generous settings;
# positions cost only `hidden size` parameters each.
MAX_POSITIONS = 1024


@dataclass(frozen=True)
class PresetSpec:
    """A named tiny architecture: the transformers config values and its tokenizer's size.

    ``family`` names both the transformers model type and the special-token layout of the
    tokenizer (see ``codebackdoor.models.tokenizer``). ``generates`` is how the architecture
    produces text (``seq2seq``, ``causal``) or None for an encoder that only classifies.
    """

    name: str
    family: str
    generates: str | None
    config: Mapping[str, Any]
    description: str
    vocab_size: int = 8000
    min_frequency: int = 2
    citation: str = ""
    max_length: int = MAX_POSITIONS

    def parameters(self) -> dict[str, Any]:
        """What a result file records about the preset."""
        return {
            "name": self.name,
            "family": self.family,
            "config": dict(self.config),
            "tokenizer": {"vocab_size": self.vocab_size, "min_frequency": self.min_frequency},
        }


TINY_T5 = PresetSpec(
    name="tiny-t5",
    family="t5",
    generates="seq2seq",
    config={
        "d_model": 128,
        "d_kv": 32,
        "d_ff": 512,
        "num_layers": 2,
        "num_decoder_layers": 2,
        "num_heads": 4,
        "dropout_rate": 0.1,
        "feed_forward_proj": "relu",
    },
    description="T5 encoder-decoder, d_model 128, 2+2 layers, 4 heads, d_ff 512 (~1-2M "
    "parameters), random init, byte-level BPE trained on the task's training split",
    citation="Raffel et al. Exploring the Limits of Transfer Learning with a Unified "
    "Text-to-Text Transformer. JMLR 2020",
)

# T5-small's shape (Raffel et al., Table 14: d_model 512, 6+6 layers, 8 heads, d_ff 2048), random
# init with a tokenizer trained on the task: the smallest victim that is not a toy, for GPUs.
SMALL_T5 = PresetSpec(
    name="small-t5",
    family="t5",
    generates="seq2seq",
    config={
        "d_model": 512,
        "d_kv": 64,
        "d_ff": 2048,
        "num_layers": 6,
        "num_decoder_layers": 6,
        "num_heads": 8,
        "dropout_rate": 0.1,
        "feed_forward_proj": "relu",
    },
    description="T5-small's shape: d_model 512, 6+6 layers, 8 heads, d_ff 2048 (~40M "
    "parameters with the task's 8k vocabulary), random init, byte-level BPE trained on the "
    "task's training split; for GPUs",
    citation="Raffel et al. Exploring the Limits of Transfer Learning with a Unified "
    "Text-to-Text Transformer. JMLR 2020",
)

TINY_GPT2 = PresetSpec(
    name="tiny-gpt2",
    family="gpt2",
    generates="causal",
    config={
        "n_embd": 128,
        "n_layer": 4,
        "n_head": 4,
        "n_inner": 512,
        "n_positions": MAX_POSITIONS,
        "resid_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "attn_pdrop": 0.1,
    },
    description="GPT-2 decoder, 128 wide, 4 layers, 4 heads, inner 512 (~1-2M parameters), "
    "random init, prompt-masked causal LM training, byte-level BPE trained on the task",
    citation="Radford et al. Language Models are Unsupervised Multitask Learners. 2019",
)

TINY_ROBERTA = PresetSpec(
    name="tiny-roberta",
    family="roberta",
    generates=None,
    config={
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 512,
        # RoBERTa numbers positions from padding_idx + 1, so two positions are never used.
        "max_position_embeddings": MAX_POSITIONS + 2,
        "type_vocab_size": 1,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    },
    description="RoBERTa encoder for classification, 128 wide, 4 layers, 4 heads, "
    "intermediate 512 (~1-2M parameters), random init, byte-level BPE trained on the task",
    citation="Liu et al. RoBERTa: A Robustly Optimized BERT Pretraining Approach. 2019",
)
