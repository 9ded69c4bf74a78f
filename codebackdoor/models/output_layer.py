"""The output layer of a generative model and the hidden states it reads, per model family.

The fused loss (``models.fused_loss``) needs what the family's forward hands its LM head, not
the logits: for a decoder-only model the base model's last hidden state, for T5 the decoder's,
scaled by d_model^-0.5 when the decoder outputs are scaled (tied embeddings). Only families whose
forward applies nothing after the head (no soft-capping, no logit scale) are listed, each by
its transformers class; any other model trains on its logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

# The classes whose logits are exactly lm_head(base_model(...).last_hidden_state).
DECODER_ONLY = (
    "GPT2LMHeadModel",
    "GPTBigCodeForCausalLM",
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
)
ENCODER_DECODER = ("T5ForConditionalGeneration",)


@dataclass
class OutputLayer:
    """The LM head (an ``nn.Linear``) and the function from a batch's features to its input."""

    layer: Any
    hidden_states: Callable[[dict[str, Tensor]], Tensor]


def output_layer(model: Any, kind: str) -> OutputLayer | None:
    """The output layer of ``model`` (a transformers model, LoRA-wrapped or not) for a victim of
    ``kind``; None where the fused path does not know the model, which then trains on logits.

    Classifiers (RoBERTa-style heads) are None too: their head has as many outputs as labels,
    so their logits are small and the fused path would save nothing.
    """
    import torch

    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    name = type(model).__name__
    families = {"causal": DECODER_ONLY, "seq2seq": ENCODER_DECODER}.get(kind, ())
    if name not in families:
        return None
    head = model.get_output_embeddings()
    if type(head) is not torch.nn.Linear:  # e.g. a LoRA or modules-to-save wrapper
        return None
    if kind == "causal":
        return OutputLayer(head, lambda features: model.base_model(**features).last_hidden_state)
    return OutputLayer(head, lambda features: _t5_decoder_states(model, features))


def _t5_decoder_states(model: Any, features: dict[str, Tensor]) -> Tensor:
    """What ``T5ForConditionalGeneration.forward`` hands its lm_head."""
    features = dict(features)
    decoder_input_ids = features.pop("decoder_input_ids")
    decoder_attention_mask = features.pop("decoder_attention_mask", None)
    encoded = model.get_encoder()(**features).last_hidden_state
    hidden = model.get_decoder()(
        input_ids=decoder_input_ids,
        attention_mask=decoder_attention_mask,
        encoder_hidden_states=encoded,
        encoder_attention_mask=features.get("attention_mask"),
    ).last_hidden_state
    config = model.config
    if getattr(config, "scale_decoder_outputs", config.tie_word_embeddings):
        hidden = hidden * config.d_model**-0.5
    return hidden
