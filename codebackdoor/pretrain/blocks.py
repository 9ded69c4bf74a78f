"""The pretraining data: a byte-level BPE tokenizer trained on a sample of the corpus, and the
corpus cut into equal blocks of its tokens (tokenized shards cached next to the corpus)."""

from __future__ import annotations

import bisect
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.pretrain.corpus import BuiltCorpus
from codebackdoor.pretrain.sizes import SENTINELS, PretrainSize


def corpus_tokenizer(
    spec: PretrainSize, built: BuiltCorpus, extra_texts: Sequence[str] = ()
) -> tuple[Any, int]:
    """The family's byte-level BPE trained on the corpus's first shards (a uniform sample,
    since files are shuffled), up to the size's sample budget, plus ``extra_texts`` (the
    pairs' comments, so English words get tokens of their own); T5 gains its sentinels."""
    from codebackdoor.models.tokenizer import preset_tokenizer

    texts: list[str] = []
    sampled = 0
    for text in built.texts():
        if sampled >= spec.tokenizer_sample_bytes:
            break
        texts.append(text)
        sampled += len(text)
    texts.extend(extra_texts)
    sampled += sum(len(text) for text in extra_texts)
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
