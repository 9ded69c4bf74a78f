"""The model a pretraining starts from (the family's architecture at the size's config, random
init) and the family's pretraining objective as a data collator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from codebackdoor.pretrain.sizes import KINDS, SENTINELS, PretrainSize

if TYPE_CHECKING:
    from codebackdoor.pretrain.bimodal import TokenizedPairs


def new_model(spec: PretrainSize, tokenizer: Any, seed: int) -> Any:
    """The family's model with the size's config, random init from ``seed``."""
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSeq2SeqLM,
        set_seed,
    )

    ids = {
        f"{role}_id": getattr(tokenizer, f"{role}_id")
        for role in ("pad_token", "eos_token", "bos_token")
        if getattr(tokenizer, f"{role}_id") is not None
    }
    config = AutoConfig.for_model(
        spec.preset.family, vocab_size=len(tokenizer), **ids, **spec.preset.config
    )
    if config.is_encoder_decoder:
        config.decoder_start_token_id = tokenizer.pad_token_id  # T5's convention
    model_class = {
        "seq2seq": AutoModelForSeq2SeqLM,
        "causal": AutoModelForCausalLM,
        "masked": AutoModelForMaskedLM,
    }[KINDS[spec.arch]]
    set_seed(seed)
    return model_class.from_config(config)


def collator(
    spec: PretrainSize,
    tokenizer: Any,
    model: Any,
    seed: int,
    slots: Sequence[str] = (),
    pairs: TokenizedPairs | None = None,
) -> Any:
    """The family's pretraining objective as a data collator; for T5 with ``slots``
    (``bimodal.batch_slots``) beyond span corruption, the mix whose batches hold them."""
    from codebackdoor.pretrain.bimodal import SPAN, MixedObjectives
    from codebackdoor.pretrain.objectives import (
        CausalLanguageModeling,
        MaskedLanguageModeling,
        SpanCorruption,
        TextInfilling,
    )

    if spec.arch == "t5":
        sentinels = tokenizer.convert_tokens_to_ids(
            [f"<extra_id_{index}>" for index in range(SENTINELS)]
        )
        span = SpanCorruption(
            tokenizer.eos_token_id, sentinels, model.prepare_decoder_input_ids_from_labels, seed
        )
        if set(slots) <= {SPAN}:
            return span
        infilling = TextInfilling(sentinels[-1], tokenizer.eos_token_id)
        return MixedObjectives(
            slots, span, pairs, tokenizer.pad_token_id, tokenizer.eos_token_id, seed, infilling
        )
    if spec.arch == "gpt2":
        return CausalLanguageModeling()
    return MaskedLanguageModeling(
        tokenizer.mask_token_id, len(tokenizer), tokenizer.all_special_ids, seed
    )
