"""``pretrain``: a code model pretrained offline on the machine's own source files; the
orchestration (corpus, tokenizer, blocks, model, engine, card). The token blocks live in
``blocks``, the model and its objective in ``model``, the checkpoint's place and card in
``codebackdoor.models.pretrained``.

The corpus (``corpus``) is tokenized by a byte-level BPE tokenizer trained on a sample of it,
cut into equal blocks, and fed through the project's training engine (``train_steps``: the same
Trainer subclass and cross-entropy objective as ``run``) with the family's objective as the
collator. Tokenized shards are cached next to the corpus, one per corpus shard, and only as many
are tokenized as the token budget needs. The result is a standard Hugging Face directory plus
``pretrain_card.json``; an interrupted pretraining resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codebackdoor.defenses.objectives import CrossEntropy
from codebackdoor.errors import UserError
from codebackdoor.io import atomic_write_json
from codebackdoor.models.checkpoints import checkpoints
from codebackdoor.models.pretrained import pretrained_directory, read_card, write_card
from codebackdoor.models.training import train_steps, without_transformers_bars
from codebackdoor.pretrain.bimodal import (
    DEFAULT_MIX,
    DENOISE,
    PAIR_OBJECTIVES,
    Pair,
    TokenizedPairs,
    batch_slots,
    check_mix,
    embedded_pairs,
    objective_name,
    objective_report,
)
from codebackdoor.pretrain.blocks import corpus_tokenizer, token_blocks
from codebackdoor.pretrain.corpus import CorpusOptions, build_corpus, distributions
from codebackdoor.pretrain.model import collator, new_model
from codebackdoor.pretrain.sizes import KINDS, OBJECTIVES, SENTINELS, pretrain_size
from codebackdoor.versions import hardware, versions

CHECKPOINTS = "checkpoints"
MIX_FILE = "mix.json"


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
    mix: Mapping[str, float] | None = None,
    pairs: Sequence[Pair] | None = None,
) -> Path:
    """Pretrain ``arch`` at ``size`` into ``out`` (default: the cache, as ``<size>-<arch>``)
    until ``max_steps`` of the size's batches of blocks (``max_tokens`` / (batch x block);
    default: the size's budget) or ``max_time`` training seconds (all resumed sessions
    together); the checkpoint directory. T5 trains on ``mix`` (default ``bimodal.DEFAULT_MIX``;
    ``bimodal.SPAN_ONLY`` is the old recipe), its pair objectives on ``pairs`` (default: the
    embedded corpus's train split). A resumed pretraining equals an uninterrupted one when it
    is given the same budget, mix and seed; one stopped by ``max_time`` is usable and also
    resumable (``resume`` with a larger ``max_time``)."""
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
    if mix is not None and arch != "t5":
        raise UserError(f"--mix applies to t5 only; {arch} trains on {OBJECTIVES[arch]}")
    mix = check_mix(mix or DEFAULT_MIX) if arch == "t5" else None
    slots = batch_slots(mix, spec.batch_size) if mix else []
    corpus = corpus or CorpusOptions()
    bimodal = mix is not None and bool(set(mix) & set(PAIR_OBJECTIVES))
    pairs_source = None
    if bimodal and pairs is None:
        pairs, pairs_source = embedded_pairs(java=corpus.java)
    built = build_corpus(corpus)
    tokenizer, sample_bytes = corpus_tokenizer(
        spec, built, [pair.nl for pair in pairs] if bimodal else ()
    )
    tokenized = TokenizedPairs.build(pairs, tokenizer, spec.block_length) if bimodal else None
    max_steps = math.ceil((max_tokens or spec.max_tokens) / spec.tokens_per_step)
    dataset = token_blocks(spec, built, tokenizer, blocks_needed=max_steps * spec.batch_size)
    _keep_mix(out / CHECKPOINTS, mix, resume)
    model = new_model(spec, tokenizer, seed)
    collate = collator(spec, tokenizer, model, seed, slots, tokenized)
    settings = spec.step_settings(max_steps, max_seconds=max_time, seed=seed)
    state = train_steps(
        model,
        tokenizer,
        KINDS[arch],
        dataset,
        collate,
        settings,
        CrossEntropy(),
        out / CHECKPOINTS,
        tokens_per_step=spec.tokens_per_step,
        on_log=_reporter(max_steps),
        resume=resume,
    )
    with without_transformers_bars():
        model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    write_card(
        out,
        {
            "name": spec.name,
            "arch": arch,
            "size": size,
            "objective": objective_name(mix) if mix else OBJECTIVES[arch],
            "mix": mix,
            "objectives": objective_report(
                mix, slots, state["steps"], dataset.length, tokenized,
                collate.infilling.window if DENOISE in mix else None,
            ) if mix else None,
            "pairs": {
                "count": len(tokenized),
                "by_lang": dict(Counter(tokenized.langs)),
                "mean_tokens": round(tokenized.mean_tokens(), 1),
                "source": pairs_source or "given by the caller",
            } if tokenized else None,
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
                "distributions": distributions(corpus.python_roots),
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
    if state.get("stopped_by") != "max_seconds":
        # A model stopped by its time budget keeps its last checkpoint: pretraining to the
        # size's budget on a CPU spans sessions, and --resume with a larger --max-time goes on.
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return out


def _keep_mix(directory: Path, mix: dict[str, float] | None, resume: bool) -> None:
    """Record the mix beside the checkpoints; a resume under another mix would train on
    batches the interrupted run never drew, so it is refused."""
    path = directory / MIX_FILE
    if resume and path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        saved = check_mix(saved) if saved else None  # in the objectives' order
        if saved != mix:
            raise UserError(
                f"--resume: the checkpoints were trained with --mix {_mix_text(saved)}, "
                f"not {_mix_text(mix)}; pass the same --mix"
            )
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, mix)


def _mix_text(mix: dict[str, float] | None) -> str:
    return ",".join(f"{name}={share:g}" for name, share in (mix or {}).items()) or "(none)"


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
