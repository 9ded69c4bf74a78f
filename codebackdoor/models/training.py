"""The training engine: a Hugging Face ``Trainer`` whose loss is the defense's objective.

One checkpoint is saved per epoch. Beside each goes the per-epoch record list (mean training
loss and whatever the caller measured at the end of the epoch), written atomically after the
Trainer has finished the checkpoint, so a checkpoint directory holding it is complete. A resumed
fit starts from the newest complete checkpoint: the Trainer restores the weights, optimizer,
scheduler and random states, and the data order depends only on the seed and the epoch, so on
CPU the result equals an uninterrupted fit.

``train_steps`` is the same engine for a step-budgeted fit on a ready dataset and collator
(pretraining): a checkpoint every ``save_steps`` with the loss curve beside it, stopped by a
step or a wall-time budget.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codebackdoor.config import RunConfig
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.io import atomic_write_json
from codebackdoor.models.checkpoints import (
    EPOCHS_FILE,
    STEPS_FILE,
    latest_checkpoint,
    remove_checkpoints,
)
from codebackdoor.models.objective import IGNORE_INDEX, Objective
from codebackdoor.models.tokenizer import input_ids, pad, target_ids

if TYPE_CHECKING:
    from torch import Tensor

PRECISIONS = ("auto", "fp32", "bf16", "fp16")

@dataclass
class TrainingSettings:
    """How a victim is trained and how it generates. The defaults are the run's
    (``RunConfig``): one set of defaults for a run and for the engine."""

    epochs: int = RunConfig.epochs
    batch_size: int = RunConfig.batch_size  # per device
    learning_rate: float = RunConfig.learning_rate
    weight_decay: float = 0.0
    max_source_length: int = RunConfig.max_source_length
    max_target_length: int = RunConfig.max_target_length
    seed: int = RunConfig.seed
    generation_max_length: int = RunConfig.generation_max_length  # new tokens per output
    eval_batch_size: int = 64
    # transformers' scheduler names; "linear" decays to 0 over the planned epochs, so a fit
    # resumed with more epochs than it was started with follows a different schedule.
    lr_scheduler: str = "linear"
    # Only the newest complete checkpoint is needed to resume; the one before it survives
    # until the next is complete. 0 keeps every epoch's checkpoint.
    keep_checkpoints: int = 2
    # "auto": bf16 mixed precision on a GPU that supports it, float32 elsewhere.
    precision: str = RunConfig.precision
    gradient_checkpointing: bool = RunConfig.gradient_checkpointing
    # The loss fused with the output layer where the objective and the model family allow it
    # (models.fused_loss); each epoch record says which path trained ("loss_path").
    fused: bool = RunConfig.fused
    length_grouped: bool = RunConfig.length_grouped

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"training: precision = {self.precision!r}; valid: "
                            + ", ".join(PRECISIONS))
        for name in (
            "epochs",
            "batch_size",
            "max_source_length",
            "max_target_length",
            "generation_max_length",
            "eval_batch_size",
        ):
            if getattr(self, name) < 1:
                raise UserError(f"training: {name} = {getattr(self, name)} must be at least 1")
        if self.learning_rate <= 0:
            raise UserError(f"training: learning_rate = {self.learning_rate} must be positive")
        if self.keep_checkpoints < 0:
            raise UserError(f"training: keep_checkpoints = {self.keep_checkpoints} must be >= 0")

    def source_length(self, kind: str, model_max_length: int) -> int:
        """Longest input in tokens. A causal LM's window also holds the answer it writes."""
        if kind != "causal":
            return min(self.max_source_length, model_max_length)
        room = model_max_length - max(self.max_target_length, self.generation_max_length)
        return max(1, min(self.max_source_length, room))


def training_features(
    tokenizer: Any,
    kind: str,
    examples: Sequence[Example],
    settings: TrainingSettings,
    labels: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """Token ids and labels per example. Causal LMs learn only the answer: the prompt's
    positions carry IGNORE_INDEX."""
    limit = settings.source_length(kind, tokenizer.model_max_length)
    inputs = input_ids(tokenizer, kind, [example.source for example in examples], limit)
    if kind == "classifier":
        index = {label: position for position, label in enumerate(labels or ())}
        unknown = sorted({example.target for example in examples} - set(index))
        if unknown:
            raise UserError(
                f"training labels {unknown} are not among the model's labels {list(index)}"
            )
        return [
            {"input_ids": ids, "labels": index[example.target]}
            for ids, example in zip(inputs, examples, strict=True)
        ]
    targets = target_ids(
        tokenizer, kind, [example.target for example in examples], settings.max_target_length
    )
    if kind == "seq2seq":
        return [
            {"input_ids": ids, "labels": target}
            for ids, target in zip(inputs, targets, strict=True)
        ]
    return [
        {"input_ids": prompt + target, "labels": [IGNORE_INDEX] * len(prompt) + target}
        for prompt, target in zip(inputs, targets, strict=True)
    ]


@dataclass
class Collator:
    """Pads a list of features into a batch (right padding; labels padded with IGNORE_INDEX).

    ``decoder_inputs`` is a seq2seq model's own labels-to-decoder-inputs shift, so the model
    can run without labels and the objective computes the only loss.
    """

    kind: str
    pad_id: int
    decoder_inputs: Callable[..., Tensor] | None = None

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        import torch

        ids = [feature["input_ids"] for feature in features]
        batch = {
            "input_ids": pad(ids, self.pad_id),
            "attention_mask": pad([[1] * len(sequence) for sequence in ids], 0),
        }
        if self.kind == "classifier":
            batch["labels"] = torch.tensor([feature["labels"] for feature in features])
        else:
            batch["labels"] = pad([feature["labels"] for feature in features], IGNORE_INDEX)
        if self.decoder_inputs is not None:
            batch["decoder_input_ids"] = self.decoder_inputs(labels=batch["labels"])
        return batch


def training_arguments(settings: TrainingSettings, output_dir: Path) -> Any:
    """The Trainer's arguments for ``settings``: one checkpoint and one loss record per epoch."""
    return _trainer_arguments(
        settings, output_dir, num_train_epochs=settings.epochs, save_strategy="epoch",
        logging_strategy="epoch", precision=settings.precision,
        gradient_checkpointing=settings.gradient_checkpointing,
    )


def autocast_dtype(precision: str) -> Any:
    """The torch dtype mixed precision computes in (None: float32 throughout)."""
    import torch

    if precision == "auto":
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16 else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _trainer_arguments(
    settings: Any, output_dir: Path, *, precision: str = "auto",
    gradient_checkpointing: bool = False, **schedule: Any,
) -> Any:
    """What every fit shares (optimizer, seeds, precision, checkpoint count, quiet logging),
    plus the epoch or step ``schedule``."""
    import torch
    from transformers import TrainingArguments

    dtype = autocast_dtype(precision)
    try:
        return TrainingArguments(
            output_dir=str(output_dir),
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            weight_decay=settings.weight_decay,
            lr_scheduler_type=settings.lr_scheduler,
            seed=settings.seed,
            data_seed=settings.seed,
            bf16=dtype == torch.bfloat16,
            fp16=dtype == torch.float16,
            # transformers 5's name for gradient checkpointing. Non-reentrant checkpointing
            # also back-propagates into LoRA adapters whose inputs (frozen embeddings) need no
            # gradient.
            activation_checkpointing=gradient_checkpointing,
            activation_checkpointing_kwargs={"use_reentrant": False} if gradient_checkpointing
            else None,
            # Without a GPU, a torchrun launch trains data-parallel over CPU processes (gloo).
            use_cpu=not torch.cuda.is_available(),
            save_total_limit=settings.keep_checkpoints or None,
            eval_strategy="no",
            report_to="none",
            disable_tqdm=not sys.stderr.isatty(),
            dataloader_num_workers=0,
            dataloader_pin_memory=torch.cuda.is_available(),
            # The features are plain dicts the collator understands; nothing to prune.
            remove_unused_columns=False,
            **schedule,
        )
    except ValueError as error:  # e.g. fp16 where the device has no fp16 autocast
        raise UserError(f"training: precision {precision}: {error}") from error


def train(
    model: Any,
    tokenizer: Any,
    kind: str,
    examples: Sequence[Example],
    labels: Sequence[str] | None,
    settings: TrainingSettings,
    objective: Objective,
    output_dir: Path,
    *,
    on_epoch_end: Callable[[int], dict] | None = None,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """Train ``model`` in place; the per-epoch records (epoch, loss, on_epoch_end's values)."""
    if not examples:
        raise UserError("cannot train on an empty training set")
    features = training_features(tokenizer, kind, examples, settings, labels)
    trainer = build_trainer(model, tokenizer, kind, features, settings, objective, output_dir)

    def recorder(saved: Any) -> tuple[Any, list[dict[str, Any]]]:
        records = list(saved or [])
        callback = trainer_module().EpochRecorder(
            records, on_epoch_end, Path(output_dir), getattr(trainer, "take_loss_paths", None)
        )
        return callback, records

    return _fit(trainer, Path(output_dir), EPOCHS_FILE, recorder, resume=resume)


def _fit(
    trainer: Any,
    output_dir: Path,
    marker: str,
    recorder: Callable[[Any], tuple[Any, Any]],
    *,
    resume: bool,
) -> Any:
    """What every fit shares: clear the checkpoints a fresh fit must not resume from, find the
    newest complete one when resuming, train with ``recorder``'s callback (given the saved
    marker content, it returns the callback and the state it fills), and write that state as
    the fit's marker file."""
    from accelerate import PartialState

    processes = PartialState()
    if processes.is_main_process:
        # A fresh fit drops an earlier run's checkpoints, which a later resume would take for
        # its own; a resumed one drops those a crash left incomplete, which the Trainer's
        # rotation would otherwise count as the newest.
        remove_checkpoints(output_dir, incomplete_only=resume, marker=marker)
    processes.wait_for_everyone()
    checkpoint, saved = latest_checkpoint(output_dir, marker) if resume else (None, None)
    callback, state = recorder(saved)
    trainer.add_callback(callback)
    with without_transformers_bars():
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if processes.is_main_process:
        atomic_write_json(output_dir / marker, state)
    return state


@dataclass
class StepSettings:
    """A step-budgeted fit. The default schedule, inverse square root after a linear warm-up
    (Raffel et al., JMLR 2020, §3.1.2), does not depend on the planned number of steps, so a
    fit stopped by its time budget, resumed, or extended follows the same curve."""

    max_steps: int
    batch_size: int = 32  # per device
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.0
    lr_scheduler: str = "inverse_sqrt"
    save_steps: int = 200
    logging_steps: int = 20
    # Training seconds, all resumed sessions together; None: only max_steps stops the fit.
    max_seconds: float | None = None
    seed: int = 1
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise UserError(f"training: {name} = {getattr(self, name)} must be at least 1")
        if self.learning_rate <= 0:
            raise UserError(f"training: learning_rate = {self.learning_rate} must be positive")
        if self.warmup_steps < 0 or self.keep_checkpoints < 0:
            raise UserError("training: warmup_steps and keep_checkpoints must be >= 0")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise UserError(f"training: max_seconds = {self.max_seconds} must be positive")


def step_arguments(settings: StepSettings, output_dir: Path) -> Any:
    """The Trainer's arguments for a step-budgeted fit."""
    return _trainer_arguments(
        settings, output_dir, max_steps=settings.max_steps, warmup_steps=settings.warmup_steps,
        save_strategy="steps", save_steps=settings.save_steps, logging_strategy="steps",
        logging_steps=settings.logging_steps, logging_first_step=True,
    )


def train_steps(
    model: Any,
    tokenizer: Any,
    kind: str,
    dataset: Any,
    collator: Callable[[list[Any]], dict[str, Tensor]],
    settings: StepSettings,
    objective: Objective | None,
    output_dir: Path,
    *,
    tokens_per_step: int,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train ``model`` in place on ``dataset`` (batched by ``collator``) until ``max_steps`` or
    ``max_seconds``; returns the loss curve (one record per logging step: step, tokens, loss,
    seconds), the steps done and the training seconds. With ``objective`` None the model
    computes its own loss (transformers' plain Trainer; the throughput benchmark's baseline)."""
    output_dir = Path(output_dir)
    trainer = _new_trainer(model, tokenizer, kind, step_arguments(settings, output_dir), dataset,
                           collator, objective)

    def recorder(saved: Any) -> tuple[Any, dict[str, Any]]:
        state = {"records": [], "seconds": 0.0, **(saved or {})}
        callback = trainer_module().StepRecorder(state, output_dir, settings.max_seconds,
                                                 tokens_per_step, on_log)
        return callback, state

    return _fit(trainer, output_dir, STEPS_FILE, recorder, resume=resume)


def build_trainer(
    model: Any,
    tokenizer: Any,
    kind: str,
    features: list[dict[str, Any]],
    settings: TrainingSettings,
    objective: Objective | None,
    output_dir: Path,
) -> Any:
    """The Trainer for ``features``; with ``objective`` None, transformers' plain Trainer and its
    model-computed loss (the baseline of the overhead benchmark)."""

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    collator = Collator(
        kind,
        padding_id(tokenizer),
        base.prepare_decoder_input_ids_from_labels if kind == "seq2seq" else None,
    )
    return _new_trainer(model, tokenizer, kind, training_arguments(settings, output_dir),
                        features, collator, objective, fused=settings.fused,
                        length_grouped=settings.length_grouped)


def _new_trainer(
    model: Any,
    tokenizer: Any,
    kind: str,
    arguments: Any,
    dataset: Any,
    collator: Callable[[list[Any]], dict[str, Tensor]],
    objective: Objective | None,
    *,
    fused: bool = False,
    length_grouped: bool = False,
) -> Any:
    """transformers' plain Trainer when ``objective`` is None (the model computes its loss),
    else the Trainer whose loss is the objective's, fused with the output layer if ``fused``
    and supported, in length-grouped batches if ``length_grouped``. Step fits (pretraining)
    keep the logits path and their equal-length blocks in random order."""
    from transformers import Trainer

    common = {
        "model": model,
        "args": arguments,
        "train_dataset": dataset,
        "data_collator": collator,
        "processing_class": tokenizer,
    }
    if objective is None:
        return Trainer(**common)
    return trainer_module().ObjectiveTrainer(**common, objective=objective, kind=kind,
                                             fused=fused, length_grouped=length_grouped)


@contextlib.contextmanager
def without_transformers_bars() -> Iterator[None]:
    """Hide transformers' own progress bars (loading weights, writing shards at every epoch's
    checkpoint), on a terminal too: there the training bar alone shows the run's progress
    (``models.trainer.QuietProgress``, its own tqdm bar)."""
    from transformers.utils import logging

    if not logging.is_progress_bar_enabled():
        yield
        return
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.enable_progress_bar()


def padding_id(tokenizer: Any) -> int:
    """The id that fills short rows; decoder-only tokenizers without padding reuse eos."""
    value = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if value is None:
        raise UserError("the tokenizer has neither a padding nor an end-of-sequence token")
    return value


def trainer_module() -> Any:
    """The Trainer subclass and callbacks, imported on first use: they import torch, and
    importing this module must not."""
    from codebackdoor.models import trainer

    return trainer
