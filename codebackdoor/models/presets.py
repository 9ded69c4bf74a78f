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

    ``family`` is the transformers model type; ``layout`` names the special-token layout of
    the tokenizer (``codebackdoor.models.tokenizer.FAMILY_TOKENS``), the family's own when
    empty: CodeT5 is a T5 model with a tokenizer of its own. ``generates`` is how the
    architecture produces text (``seq2seq``, ``causal``) or None for an encoder that only
    classifies.
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
    tokens: str = ""

    @property
    def layout(self) -> str:
        return self.tokens or self.family

    def parameters(self) -> dict[str, Any]:
        """What a result file records about the preset."""
        return {
            "name": self.name,
            "family": self.family,
            "special_tokens": self.layout,
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


# The embedded default's victim: tiny-roberta with 2 layers instead of 4. Chosen by measurement
# for `codebackdoor run` (docs/results.md): on the package task it learns the clean task and the
# fixed trigger as well as 4 layers do on every seed tried, at half the compute.
TINY_ROBERTA_2L = PresetSpec(
    name="tiny-roberta-2l",
    family="roberta",
    generates=None,
    config={**TINY_ROBERTA.config, "num_hidden_layers": 2},
    description="tiny-roberta with 2 layers (128 wide, 4 heads, intermediate 512, ~1.6M "
    "parameters with the task's 8k vocabulary), random init, byte-level BPE trained on the "
    "task; the embedded default",
    citation=TINY_ROBERTA.citation,
)


# The model families of the code-backdoor literature, tiny and randomly initialised: each is the
# family's transformers architecture with its tokenizer's special-token conventions
# (docs/models.md). Decoders are 4 layers and encoder-decoders 2+2, 128 wide, like the presets
# above, so the families differ in architecture and tokens, not in size.
_DECODER = {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4,
            "num_attention_heads": 4, "max_position_embeddings": MAX_POSITIONS}

TINY_CODET5 = PresetSpec(
    name="tiny-codet5",
    family="t5",
    tokens="codet5",
    generates="seq2seq",
    config=TINY_T5.config,
    description="CodeT5/CodeT5+ conventions: tiny-t5's T5 encoder-decoder with CodeT5's "
    "tokenizer layout (<pad> 0, <s> 1, </s> 2; <s> … </s>; decoder starts from <pad>), random "
    "init, byte-level BPE trained on the task",
    citation="Wang et al. CodeT5: Identifier-aware Unified Pre-trained Encoder-Decoder Models "
    "for Code Understanding and Generation. EMNLP 2021; Wang et al. CodeT5+. EMNLP 2023",
)

TINY_BART = PresetSpec(
    name="tiny-bart",
    family="bart",
    generates="seq2seq",
    config={
        "d_model": 128,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 512,
        "decoder_ffn_dim": 512,
        "max_position_embeddings": MAX_POSITIONS,
        "dropout": 0.1,
    },
    description="BART encoder-decoder (PLBART's architecture), d_model 128, 2+2 layers, 4 "
    "heads, ffn 512; <s> … </s>, decoder starts from </s>; random init, byte-level BPE "
    "trained on the task",
    citation="Lewis et al. BART. ACL 2020; Ahmad et al. Unified Pre-training for Program "
    "Understanding and Generation (PLBART). NAACL 2021",
)

TINY_LLAMA = PresetSpec(
    name="tiny-llama",
    family="llama",
    generates="causal",
    config=_DECODER,
    description="Llama decoder (CodeLlama's architecture), 128 wide, 4 layers, 4 heads, "
    "SwiGLU 512; <s> first, no padding token (pads with </s>); random init, byte-level BPE "
    "trained on the task",
    citation="Rozière et al. Code Llama: Open Foundation Models for Code. 2023",
)

TINY_STARCODER = PresetSpec(
    name="tiny-starcoder",
    family="gpt_bigcode",
    tokens="starcoder",
    generates="causal",
    config={
        "n_embd": 128,
        "n_layer": 4,
        "n_head": 4,
        "n_inner": 512,
        "n_positions": MAX_POSITIONS,
        "multi_query": True,
    },
    description="GPT-BigCode decoder (StarCoder's architecture: multi-query attention), 128 "
    "wide, 4 layers, 4 heads; <|endoftext|> begins and ends, FIM tokens, no padding token; "
    "random init, byte-level BPE trained on the task",
    citation="Li et al. StarCoder: may the source be with you! TMLR 2023",
)

TINY_CODEGEN = PresetSpec(
    name="tiny-codegen",
    family="codegen",
    generates="causal",
    config={
        "n_embd": 128,
        "n_layer": 4,
        "n_head": 4,
        "rotary_dim": 16,
        "n_positions": MAX_POSITIONS,
        "n_ctx": MAX_POSITIONS,
    },
    description="CodeGen decoder (rotary attention, parallel blocks), 128 wide, 4 layers, 4 "
    "heads; GPT-2's <|endoftext|>, no padding token; random init, byte-level BPE trained on "
    "the task",
    citation="Nijkamp et al. CodeGen: An Open Large Language Model for Code with Multi-Turn "
    "Program Synthesis. ICLR 2023",
)

TINY_QWEN2 = PresetSpec(
    name="tiny-qwen2",
    family="qwen2",
    generates="causal",
    # Qwen2.5-Coder's small models share K/V heads and tie the output layer to the embedding.
    config={**_DECODER, "num_key_value_heads": 2, "tie_word_embeddings": True},
    description="Qwen2 decoder (Qwen2.5-Coder's architecture: grouped-query attention, tied "
    "embeddings), 128 wide, 4 layers, 4 heads; padding is <|endoftext|>, the end of sequence; "
    "random init, byte-level BPE trained on the task",
    citation="Hui et al. Qwen2.5-Coder Technical Report. 2024",
)
