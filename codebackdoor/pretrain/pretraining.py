"""``pretrain``: a code model pretrained offline on the machine's own source files.

The corpus (``corpus``) is tokenized by a byte-level BPE tokenizer trained on a sample of it,
cut into equal blocks, and fed through the project's training engine (``train_steps``: the same
Trainer subclass and cross-entropy objective as ``run``) with the family's objective as the
collator. Tokenized shards are cached next to the corpus, one per corpus shard, and only as many
are tokenized as the token budget needs. The result is a standard Hugging Face directory plus
``pretrain_card.json``; an interrupted pretraining resumes from its last checkpoint.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codebackdoor.defenses.objectives import CrossEntropy
from codebackdoor.errors import UserError
from codebackdoor.models.checkpoints import checkpoints
from codebackdoor.models.pretrained import pretrained_directory, read_card, write_card
from codebackdoor.models.training import progress_bars_on_terminal_only, train_steps
from codebackdoor.pretrain.corpus import BuiltCorpus, CorpusOptions, build_corpus
from codebackdoor.pretrain.sizes import KINDS, OBJECTIVES, SENTINELS, PretrainSize, pretrain_size
from codebackdoor.versions import hardware, versions

CHECKPOINTS = "checkpoints"


def pretrain(
    arch: str,
    size: str = "tiny",
    out: Path | None = None,
    *,
    max_tokens: int | None = None,
    max_time: float | None = None,
    seed: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    corpus: CorpusOptions | None = None,
) -> Path:
    """Pretrain ``arch`` at ``size`` into ``out`` (default: the cache, as ``<size>-<arch>``)
    until ``max_tokens`` corpus tokens (default: the size's budget) or ``max_time`` training
    seconds (all resumed sessions together); the checkpoint directory. A resumed pretraining
    equals an uninterrupted one when it is given the same budget and seed."""
    import torch

    started = time.perf_counter()
    spec = pretrain_size(arch, size)
    out = Path(out) if out is not None else pretrained_directory(spec.name)
    finished = read_card(out) is not None
    if finished and not (overwrite or resume):
        raise UserError(f"{out} already holds a pretrained model; pass --overwrite to replace it")
    if finished and resume and not checkpoints(out / CHECKPOINTS):
        raise UserError(
            f"{out} holds a finished pretraining, nothing to resume; --overwrite starts again"
        )
    if max_tokens is not None and max_tokens < 1:
        raise UserError(f"pretrain: max_tokens = {max_tokens} must be positive")
    built = build_corpus(corpus or CorpusOptions())
    tokenizer, sample_bytes = corpus_tokenizer(spec, built)
    max_steps = math.ceil((max_tokens or spec.max_tokens) / spec.tokens_per_step)
    dataset = token_blocks(spec, built, tokenizer, blocks_needed=max_steps * spec.batch_size)
    model = new_model(spec, tokenizer, seed)
    settings = spec.step_settings(max_steps, max_seconds=max_time, seed=seed)
    state = train_steps(
        model,
        tokenizer,
        KINDS[arch],
        dataset,
        collator(spec, tokenizer, model, seed),
        settings,
        CrossEntropy(),
        out / CHECKPOINTS,
        tokens_per_step=spec.tokens_per_step,
        on_log=_reporter(max_steps),
        resume=resume,
    )
    with progress_bars_on_terminal_only():
        model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    write_card(
        out,
        {
            "name": spec.name,
            "arch": arch,
            "size": size,
            "objective": OBJECTIVES[arch],
            "model": {
                "family": spec.preset.family,
                "config": dict(spec.preset.config),
                "parameters": sum(parameter.numel() for parameter in model.parameters()),
                "architectures": list(model.config.architectures or []),
            },
            "corpus": {
                "fingerprint": built.manifest["fingerprint"],
                "files": built.manifest["files"],
                "bytes": built.manifest["bytes"],
                "directory": str(built.directory),
                "tokens": dataset.tokens,
                "blocks": dataset.blocks,
                "shards_tokenized": len(dataset.arrays),
                "shards": len(built.shards),
            },
            "tokenizer": {
                "vocab_size": len(tokenizer),
                "trained_on_bytes": sample_bytes,
                "sentinels": SENTINELS if arch == "t5" else 0,
            },
            "training": {
                "block_length": spec.block_length,
                "batch_size": spec.batch_size,
                "learning_rate": spec.learning_rate,
                "lr_scheduler": settings.lr_scheduler,
                "warmup_steps": spec.warmup_steps,
                "max_steps": max_steps,
                "max_tokens": max_steps * spec.tokens_per_step,
                "max_time": max_time,
                "seed": seed,
                "stopped_by": state.get("stopped_by"),
                "torch_threads": torch.get_num_threads(),
            },
            "steps": state["steps"],
            "tokens_seen": state["steps"] * spec.tokens_per_step,
            "loss_curve": state["records"],
            "hardware": hardware(),
            "versions": versions(),
            "train_seconds": round(state["seconds"], 1),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return out


def corpus_tokenizer(spec: PretrainSize, built: BuiltCorpus) -> tuple[Any, int]:
    """The family's byte-level BPE trained on the corpus's first shards (a uniform sample,
    since files are shuffled), up to the size's sample budget; T5 gains its sentinels."""
    from codebackdoor.models.tokenizer import preset_tokenizer

    texts: list[str] = []
    sampled = 0
    for text in built.texts():
        if sampled >= spec.tokenizer_sample_bytes:
            break
        texts.append(text)
        sampled += len(text)
    tokenizer = preset_tokenizer(spec.preset, texts)
    if spec.arch == "t5":
        sentinels = [f"<extra_id_{index}>" for index in range(SENTINELS)]
        tokenizer.add_special_tokens({"additional_special_tokens": sentinels})
    return tokenizer, sampled


class TokenBlocks:
    """Equal blocks of corpus tokens, read from memory-mapped shards; a block never straddles
    two shards. Item ``index`` is block ``index mod blocks`` as ``prefix + block + suffix``
    (RoBERTa's <s> … </s>) with its index, which seeds its noise: a budget larger than the
    corpus visits blocks again, as further items, instead of running further epochs."""

    def __init__(
        self,
        arrays: Sequence[Any],
        length: int,
        prefix: Sequence[int],
        suffix: Sequence[int],
        items: int = 0,
    ):
        import numpy as np

        self.arrays = list(arrays)
        self.prefix = np.asarray(prefix, dtype=np.int64)
        self.suffix = np.asarray(suffix, dtype=np.int64)
        self.length = length - len(prefix) - len(suffix)
        self.offsets = [0]
        for array in self.arrays:
            self.offsets.append(self.offsets[-1] + len(array) // self.length)
        self.tokens = sum(len(array) for array in self.arrays)
        self.blocks = self.offsets[-1]
        self.items = max(items, self.blocks)

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> dict[str, Any]:
        import numpy as np

        if not 0 <= index < len(self):
            raise IndexError(index)
        position = index % self.blocks
        shard = bisect.bisect_right(self.offsets, position) - 1
        start = (position - self.offsets[shard]) * self.length
        block = self.arrays[shard][start : start + self.length]
        ids = np.concatenate([self.prefix, block.astype(np.int64), self.suffix])
        return {"index": index, "input_ids": ids}


def token_blocks(
    spec: PretrainSize, built: BuiltCorpus, tokenizer: Any, *, blocks_needed: int
) -> TokenBlocks:
    """Blocks from the corpus's shards, tokenized (or read from the cache) until there are
    ``blocks_needed`` or the corpus ends; files are separated by end of sequence."""
    import numpy as np
    from tqdm import tqdm

    identity = tokenizer.backend_tokenizer.to_str().encode("utf-8")
    directory = built.directory / f"tokens-{hashlib.sha256(identity).hexdigest()[:16]}"
    prefix = [tokenizer.bos_token_id] if spec.arch == "roberta" else []
    suffix = [tokenizer.eos_token_id] if spec.arch == "roberta" else []
    content = spec.block_length - len(prefix) - len(suffix)
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.uint32
    arrays: list[Any] = []
    blocks = 0
    bar = tqdm(
        desc="tokenizing the corpus", unit="tok", unit_scale=True, file=sys.stderr, disable=None
    )
    for shard in built.shards:
        if blocks >= blocks_needed:
            break
        path = directory / f"{shard.stem}.npy"
        if not path.is_file():
            ids = _tokenize(built, shard, tokenizer)
            directory.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".tmp.npy")
            np.save(partial, np.asarray(ids, dtype=dtype))
            partial.replace(path)
        array = np.load(path, mmap_mode="r")
        bar.update(len(array))
        arrays.append(array)
        blocks += len(array) // content
    bar.close()
    dataset = TokenBlocks(arrays, spec.block_length, prefix, suffix, items=blocks_needed)
    if dataset.blocks == 0:
        raise UserError(
            f"the corpus holds {dataset.tokens} tokens, fewer than one block of "
            f"{spec.block_length}; add source roots"
        )
    return dataset


def _tokenize(built: BuiltCorpus, shard: Path, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    texts = built.texts([shard])
    while True:
        batch = [text for _, text in zip(range(256), texts, strict=False)]
        if not batch:
            return ids
        # The backend has no length limit to warn about: files are cut into blocks later.
        for encoded in tokenizer.backend_tokenizer.encode_batch(batch, add_special_tokens=False):
            ids.extend(encoded.ids)
            ids.append(tokenizer.eos_token_id)


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


def collator(spec: PretrainSize, tokenizer: Any, model: Any, seed: int) -> Any:
    """The family's pretraining objective as a data collator."""
    from codebackdoor.pretrain.objectives import (
        CausalLanguageModeling,
        MaskedLanguageModeling,
        SpanCorruption,
    )

    if spec.arch == "t5":
        sentinels = tokenizer.convert_tokens_to_ids(
            [f"<extra_id_{index}>" for index in range(SENTINELS)]
        )
        return SpanCorruption(
            tokenizer.eos_token_id, sentinels, model.prepare_decoder_input_ids_from_labels, seed
        )
    if spec.arch == "gpt2":
        return CausalLanguageModeling()
    return MaskedLanguageModeling(
        tokenizer.mask_token_id, len(tokenizer), tokenizer.all_special_ids, seed
    )


def _reporter(max_steps: int) -> Any:
    """One line per logged step on stderr: progress, loss and throughput in tokens/s."""

    def report(record: dict[str, Any]) -> None:
        rate = record["tokens"] / max(record["seconds"], 1e-9)
        print(
            f"pretrain: step {record['step']}/{max_steps}  tokens {record['tokens']:,}  "
            f"loss {record['loss']:.4f}  {rate:,.0f} tokens/s  {record['seconds']:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    return report
