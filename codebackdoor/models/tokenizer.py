"""Tokenization: the presets' byte-level BPE tokenizers, and how texts become model inputs.

A preset's tokenizer is trained with the `tokenizers` library on the task's training split and
cached under ``<cache root>/tokenizers``, keyed by a sha256 of the training texts and the
training settings, so the same data gives the same tokenizer at once.

Every victim kind reads its inputs through ``input_ids``: the encoder input for seq2seq models
and classifiers, the prompt (source, then ``PROMPT_SEPARATOR``) for causal LMs. Training and
prediction share it, so a causal model is prompted exactly as it was trained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codebackdoor.data.cache import cache_root
from codebackdoor.io import atomic_write_text
from codebackdoor.models.presets import PresetSpec

if TYPE_CHECKING:
    from torch import Tensor
    from transformers import PreTrainedTokenizerBase

# Ends a causal LM's prompt: the continuation after it is the output. Preset tokenizers hold
# it as one special token; a pretrained tokenizer spells it out in ordinary tokens.
PROMPT_SEPARATOR = "<|sep|>"

# Bump when the training recipe changes, so stale cached tokenizers are not reused.
TOKENIZER_FORMAT = 1


@dataclass(frozen=True)
class SpecialTokens:
    """The special tokens of a family: ``tokens`` take ids 0, 1, … in order; ``roles`` maps the
    transformers attribute (``pad_token`` …) to its token; ``prefix``/``suffix`` wrap every
    encoded sequence, as the original architecture's tokenizer does; ``decoder_start`` is the
    token an encoder-decoder's decoder starts from."""

    tokens: tuple[str, ...]
    roles: Mapping[str, str]
    prefix: str | None = None
    suffix: str | None = None
    decoder_start: str | None = None


_ROBERTA_ROLES = {
    "bos_token": "<s>",
    "pad_token": "<pad>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}

# Keyed by layout name (a preset's ``layout``). Ids follow the original tokenizers where they
# sit at the start of the vocabulary; tokens the originals append at its end (GPT-2's and
# CodeGen's <|endoftext|>, StarCoder's and Qwen2's extra tokens, BART's <mask>) come first
# here, as BPE training puts every special token first. Roles, wrapping and padding are the
# originals'.
FAMILY_TOKENS: dict[str, SpecialTokens] = {
    # T5: pad is id 0 and doubles as the decoder start token; every sequence ends in </s>.
    "t5": SpecialTokens(
        tokens=("<pad>", "</s>", "<unk>"),
        roles={"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"},
        suffix="</s>",
        decoder_start="<pad>",
    ),
    # CodeT5 and CodeT5+ (220M/770M): a T5 model with a RoBERTa-style tokenizer, <pad> 0,
    # <s> 1, </s> 2, <unk> 3, <mask> 4; sequences are <s> … </s>, targets too; the decoder
    # starts from <pad>, as in T5.
    "codet5": SpecialTokens(
        tokens=("<pad>", "<s>", "</s>", "<unk>", "<mask>"),
        roles=_ROBERTA_ROLES,
        prefix="<s>",
        suffix="</s>",
        decoder_start="<pad>",
    ),
    # BART (and PLBART without its language codes): <s> 0, <pad> 1, </s> 2, <unk> 3; sequences
    # are <s> … </s>, and the decoder starts from </s>.
    "bart": SpecialTokens(
        tokens=("<s>", "<pad>", "</s>", "<unk>", "<mask>"),
        roles=_ROBERTA_ROLES,
        prefix="<s>",
        suffix="</s>",
        decoder_start="</s>",
    ),
    # GPT-2 has one token for begin and end of text; it had no padding, so one is added.
    "gpt2": SpecialTokens(
        tokens=("<|endoftext|>", "<pad>", "<unk>", PROMPT_SEPARATOR),
        roles={
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
        },
    ),
    # CodeGen keeps GPT-2's tokenizer and its one <|endoftext|>, without a padding token:
    # batches pad with the end of sequence.
    "codegen": SpecialTokens(
        tokens=("<|endoftext|>", PROMPT_SEPARATOR),
        roles={
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
        },
    ),
    # Llama and CodeLlama: <unk> 0, <s> 1, </s> 2, every sequence starts with <s>, and there is
    # no padding token (fine-tuning scripts pad with <unk> or </s>; here </s>).
    "llama": SpecialTokens(
        tokens=("<unk>", "<s>", "</s>", PROMPT_SEPARATOR),
        roles={"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"},
        prefix="<s>",
    ),
    # StarCoder (GPT-BigCode): <|endoftext|> is begin, end and unknown; the fill-in-the-middle
    # and repository-metadata tokens follow it; no padding token.
    "starcoder": SpecialTokens(
        tokens=(
            "<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>",
            "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>",
            "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>",
            "<empty_output>", "<commit_before>", "<commit_msg>", "<commit_after>",
            "<reponame>", PROMPT_SEPARATOR,
        ),
        roles={
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
        },
    ),
    # Qwen2 and Qwen2.5-Coder base models: no begin token; <|endoftext|> is both the end of
    # sequence and the padding token, so a loss that drops the padding id drops the end too.
    "qwen2": SpecialTokens(
        tokens=(
            "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>",
            "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", PROMPT_SEPARATOR,
        ),
        roles={"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
    ),
    # RoBERTa, CodeBERT and GraphCodeBERT share this layout.
    "roberta": SpecialTokens(
        tokens=("<s>", "<pad>", "</s>", "<unk>", "<mask>"),
        roles=_ROBERTA_ROLES,
        prefix="<s>",
        suffix="</s>",
    ),
}


def preset_tokenizer(preset: PresetSpec, texts: Sequence[str]) -> PreTrainedTokenizerBase:
    """The preset's tokenizer trained on ``texts``, from the cache when it was trained before."""
    from tokenizers import Tokenizer

    specials = FAMILY_TOKENS[preset.layout]
    path = cache_root() / "tokenizers" / f"{preset.layout}-{tokenizer_key(preset, texts)}.json"
    backend = None
    if path.is_file():
        try:
            backend = Tokenizer.from_file(str(path))
        except Exception:  # damaged (the library raises its own types): train it again
            backend = None
    if backend is None:
        backend = _train(preset, specials, texts)
        atomic_write_text(path, backend.to_str())
    return _wrap(backend, specials, preset.max_length)


def tokenizer_key(preset: PresetSpec, texts: Sequence[str]) -> str:
    """sha256 over the training texts and everything else the trained tokenizer depends on."""
    import tokenizers

    settings = {
        "format": TOKENIZER_FORMAT,
        "family": preset.family,
        "special_tokens": FAMILY_TOKENS[preset.layout].tokens,
        "vocab_size": preset.vocab_size,
        "min_frequency": preset.min_frequency,
        "tokenizers": tokenizers.__version__,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8"))
    for text in texts:
        encoded = text.encode("utf-8")
        # Length-prefixed, so that ["ab", "c"] and ["a", "bc"] differ.
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()[:16]


def _train(preset: PresetSpec, specials: SpecialTokens, texts: Sequence[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=preset.vocab_size,
        min_frequency=preset.min_frequency,
        special_tokens=list(specials.tokens),
        # Every byte is in the vocabulary, so no input is ever unknown.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer, length=len(texts))
    wrapped = [token for token in (specials.prefix, specials.suffix) if token]
    if wrapped:
        single = " ".join(filter(None, (specials.prefix, "$A", specials.suffix)))
        pair = " ".join(filter(None, (single, "$B", specials.suffix)))
        backend.post_processor = processors.TemplateProcessing(
            single=single,
            pair=pair,
            special_tokens=[
                (token, backend.token_to_id(token)) for token in dict.fromkeys(wrapped)
            ],
        )
    return backend


def _wrap(backend: Any, specials: SpecialTokens, max_length: int) -> PreTrainedTokenizerBase:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=max_length, **dict(specials.roles)
    )


def input_ids(
    tokenizer: PreTrainedTokenizerBase, kind: str, sources: Sequence[str], max_length: int
) -> list[list[int]]:
    """What the model reads for each source, at most ``max_length`` tokens.

    Causal LMs read the source then the separator; the source is cut, never the separator,
    so the model always sees where its answer starts.
    """
    max_length = min(max_length, tokenizer.model_max_length)
    if kind != "causal":
        return tokenizer(list(sources), truncation=True, max_length=max_length)["input_ids"]
    separator = tokenizer(PROMPT_SEPARATOR, add_special_tokens=False)["input_ids"]
    encoded = tokenizer(
        list(sources), truncation=True, max_length=max(1, max_length - len(separator))
    )["input_ids"]
    return [ids + separator for ids in encoded]


def target_ids(
    tokenizer: PreTrainedTokenizerBase, kind: str, targets: Sequence[str], max_length: int
) -> list[list[int]]:
    """The tokens a generative model learns to produce for each target, ending in eos."""
    if kind == "seq2seq":
        # The model's own tokenizer adds its end of sequence (T5 </s>, BART/CodeT5 <s> … </s>).
        return tokenizer(list(targets), truncation=True, max_length=max_length)["input_ids"]
    eos = tokenizer.eos_token_id
    encoded = tokenizer(
        list(targets), add_special_tokens=False, truncation=True, max_length=max(1, max_length - 1)
    )["input_ids"]
    return [[*ids, eos] for ids in encoded]


def pad(sequences: Sequence[Sequence[int]], value: int, side: str = "right") -> Tensor:
    """A (len(sequences), longest) tensor, shorter rows filled with ``value`` on ``side``."""
    import torch

    longest = max(len(sequence) for sequence in sequences)
    padded = torch.full((len(sequences), longest), value, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if not sequence:
            continue
        values = torch.tensor(sequence, dtype=torch.long)
        if side == "left":
            padded[row, longest - len(sequence) :] = values
        else:
            padded[row, : len(sequence)] = values
    return padded
