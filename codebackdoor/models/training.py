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
import functools
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.io import atomic_write_json
from codebackdoor.models.objective import IGNORE_INDEX, Objective
from codebackdoor.models.tokenizer import input_ids, pad, target_ids

if TYPE_CHECKING:
    from torch import Tensor

# The per-epoch records: up to its epoch in each checkpoint, all of them in the output directory
# once the fit is done.
EPOCHS_FILE = "epochs.json"
# A step-budgeted fit's loss curve and training seconds, in each checkpoint and at the end.
STEPS_FILE = "steps.json"
CHECKPOINT_DIR = re.compile(r"checkpoint-(\d+)")


@dataclass
class TrainingSettings:
    """How a victim is trained and how it generates. Precision is not a setting: bf16 mixed
    precision on a GPU that supports it, float32 on CPU."""

    epochs: int = 10
    batch_size: int = 16  # per device
    learning_rate: float = 5e-4
    weight_decay: float = 0.0
    max_source_length: int = 256
    max_target_length: int = 64
    seed: int = 1
    generation_max_length: int = 64  # new tokens per generated output
    eval_batch_size: int = 64
    # transformers' scheduler names; "linear" decays to 0 over the planned epochs, so a fit
    # resumed with more epochs than it was started with follows a different schedule.
    lr_scheduler: str = "linear"
    # Only the newest complete checkpoint is needed to resume; the one before it survives
    # until the next is complete. 0 keeps every epoch's checkpoint.
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
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


def next_token_labels(labels: Tensor) -> Tensor:
    """Labels moved one position left, so that position t holds the token logits[t] predicts.

    Shifting the labels instead of the logits avoids copying the (B, T, V) logits.
    """
    import torch.nn.functional as F

    return F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def training_arguments(settings: TrainingSettings, output_dir: Path) -> Any:
    """The Trainer's arguments for ``settings``: one checkpoint and one loss record per epoch."""
    return _trainer_arguments(
        settings, output_dir, num_train_epochs=settings.epochs, save_strategy="epoch",
        logging_strategy="epoch",
    )


def _trainer_arguments(settings: Any, output_dir: Path, **schedule: Any) -> Any:
    """What every fit shares (optimizer, seeds, precision, checkpoint count, quiet logging),
    plus the epoch or step ``schedule``."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        lr_scheduler_type=settings.lr_scheduler,
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
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
    from accelerate import PartialState

    output_dir = Path(output_dir)
    processes = PartialState()
    if processes.is_main_process:
        # A fresh fit drops an earlier run's checkpoints, which a later resume would take for
        # its own; a resumed one drops those a crash left incomplete, which the Trainer's
        # rotation would otherwise count as the newest.
        remove_checkpoints(output_dir, incomplete_only=resume)
    processes.wait_for_everyone()
    checkpoint, records = latest_checkpoint(output_dir) if resume else (None, [])
    features = training_features(tokenizer, kind, examples, settings, labels)
    trainer = build_trainer(model, tokenizer, kind, features, settings, objective, output_dir)
    trainer.add_callback(engine().EpochRecorder(records, on_epoch_end, output_dir))
    with progress_bars_on_terminal_only():
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if processes.is_main_process:
        atomic_write_json(output_dir / EPOCHS_FILE, records)
    return records


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
    from accelerate import PartialState
    from transformers import Trainer

    output_dir = Path(output_dir)
    processes = PartialState()
    if processes.is_main_process:
        remove_checkpoints(output_dir, incomplete_only=resume, marker=STEPS_FILE)
    processes.wait_for_everyone()
    checkpoint, state = latest_checkpoint(output_dir, STEPS_FILE) if resume else (None, {})
    state = {"records": [], "seconds": 0.0, **(state or {})}
    common = {
        "model": model,
        "args": step_arguments(settings, output_dir),
        "train_dataset": dataset,
        "data_collator": collator,
        "processing_class": tokenizer,
    }
    if objective is None:
        trainer = Trainer(**common)
    else:
        trainer = engine().ObjectiveTrainer(**common, objective=objective, kind=kind)
    recorder = engine().StepRecorder(state, output_dir, settings, tokens_per_step, on_log)
    trainer.add_callback(recorder)
    with progress_bars_on_terminal_only():
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    state["steps"] = trainer.state.global_step
    if processes.is_main_process:
        atomic_write_json(output_dir / STEPS_FILE, state)
    return state


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
    from transformers import Trainer

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    collator = Collator(
        kind,
        padding_id(tokenizer),
        base.prepare_decoder_input_ids_from_labels if kind == "seq2seq" else None,
    )
    common = {
        "model": model,
        "args": training_arguments(settings, output_dir),
        "train_dataset": features,
        "data_collator": collator,
        "processing_class": tokenizer,
    }
    if objective is None:
        return Trainer(**common)
    return engine().ObjectiveTrainer(**common, objective=objective, kind=kind)


@contextlib.contextmanager
def progress_bars_on_terminal_only() -> Iterator[None]:
    """Hide transformers' own progress bars (loading weights, writing shards) in logs."""
    from transformers.utils import logging

    if sys.stderr.isatty() or not logging.is_progress_bar_enabled():
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


def latest_checkpoint(output_dir: Path, marker: str = EPOCHS_FILE) -> tuple[Path | None, Any]:
    """The newest complete checkpoint under ``output_dir`` and its ``marker`` file's content
    (the per-epoch records by default); the marker is written last, so it means complete."""
    import json

    for path in sorted(checkpoints(output_dir), key=_step, reverse=True):
        try:
            records = json.loads((path / marker).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # interrupted before it was complete
        return path, records
    return None, []


def checkpoints(output_dir: Path) -> list[Path]:
    if not output_dir.is_dir():
        return []
    return [
        path
        for path in output_dir.iterdir()
        if path.is_dir() and CHECKPOINT_DIR.fullmatch(path.name)
    ]


def remove_checkpoints(
    output_dir: Path, *, incomplete_only: bool = False, marker: str = EPOCHS_FILE
) -> None:
    for path in checkpoints(output_dir):
        if not (incomplete_only and (path / marker).is_file()):
            shutil.rmtree(path)
    if not incomplete_only:
        (output_dir / marker).unlink(missing_ok=True)


def _step(path: Path) -> int:
    return int(CHECKPOINT_DIR.fullmatch(path.name).group(1))


@functools.cache
def engine() -> Any:
    """The Trainer subclass and callbacks. They subclass transformers classes, so they are
    defined on first use: importing this module must not import torch."""
    from types import SimpleNamespace

    from transformers import ProgressCallback, Trainer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    class ObjectiveTrainer(Trainer):
        """A Trainer whose loss is ``objective.loss(logits, labels, epoch)``."""

        # The objective returns a mean over its batch; the Trainer still divides it by the
        # number of gradient accumulation steps.
        loss_is_scaled_for_ga = False

        def __init__(self, *args: Any, objective: Objective, kind: str, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.objective = objective
            self.kind = kind
            # The stock progress callbacks print every log dict to stdout; ours shows the
            # loss on the bar only, and nothing at all when stderr is not a terminal.
            self.remove_callback(PrinterCallback)
            self.remove_callback(ProgressCallback)
            if not self.args.disable_tqdm:
                self.add_callback(QuietProgress)

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            features = {key: value for key, value in inputs.items() if key != "labels"}
            labels = inputs["labels"]
            outputs = model(**features)
            if self.kind == "causal":
                labels = next_token_labels(labels)
            loss = self.objective.loss(outputs.logits, labels, self.current_epoch())
            return (loss, outputs) if return_outputs else loss

        def current_epoch(self) -> int:
            # state.epoch is the fractional progress after the last optimizer step: exactly
            # the number of finished epochs at an epoch's first step, below the next integer
            # within it.
            return int(self.state.epoch or 0) + 1

    class QuietProgress(ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any):
            if self.training_bar is not None and logs and "loss" in logs:
                self.training_bar.set_postfix(loss=f"{logs['loss']:.4g}")

    class EpochRecorder(TrainerCallback):
        """Builds one record per epoch and writes the list beside each checkpoint.

        The Trainer's order at an epoch's end is: on_epoch_end (the caller's measurements,
        model in eval mode), on_log (the epoch's mean loss), checkpoint, on_save.
        """

        def __init__(
            self,
            records: list[dict[str, Any]],
            on_epoch_end: Callable[[int], dict] | None,
            output_dir: Path,
        ):
            self.records = records
            self.measure = on_epoch_end
            self.output_dir = output_dir
            self.pending: dict[str, Any] = {}

        def on_epoch_end(
            self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
        ):
            epoch = round(state.epoch)
            self.pending = {"epoch": epoch}
            if self.measure is not None:
                was_training = model.training
                model.eval()
                try:
                    self.pending.update(self.measure(epoch) or {})
                finally:
                    model.train(was_training)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any):
            if logs and "loss" in logs:
                self.pending["loss"] = logs["loss"]

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any):
            self.records.append(self.pending)
            if state.is_world_process_zero:
                checkpoint = self.output_dir / f"checkpoint-{state.global_step}"
                atomic_write_json(checkpoint / EPOCHS_FILE, self.records)

    class StepRecorder(TrainerCallback):
        """Records the loss curve, stops the fit when its time budget is spent (after saving a
        checkpoint), and writes the curve and the seconds so far beside each checkpoint."""

        def __init__(
            self,
            state: dict[str, Any],
            output_dir: Path,
            settings: StepSettings,
            tokens_per_step: int,
            on_log: Callable[[dict[str, Any]], None] | None,
        ):
            self.state = state
            self.output_dir = output_dir
            self.max_seconds = settings.max_seconds
            self.tokens_per_step = tokens_per_step
            self.report = on_log
            self.before = state["seconds"]
            self.started = time.perf_counter()

        def seconds(self) -> float:
            return self.before + time.perf_counter() - self.started

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any):
            self.started = time.perf_counter()
            self.state.pop("stopped_by", None)  # a resumed fit goes on past the old stop

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any):
            if state.global_step >= state.max_steps:
                control.should_log = True  # the curve ends at the last step
            if self.max_seconds is not None and self.seconds() >= self.max_seconds:
                control.should_training_stop = True
                control.should_save = True
                control.should_log = True
                self.state["stopped_by"] = "max_seconds"

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any):
            if not logs or "loss" not in logs:
                return
            record = {
                "step": state.global_step,
                "tokens": state.global_step * self.tokens_per_step,
                "loss": logs["loss"],
                "seconds": round(self.seconds(), 2),
            }
            self.state["records"].append(record)
            if self.report is not None and state.is_world_process_zero:
                self.report(record)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any):
            self.state["seconds"] = self.seconds()
            if state.is_world_process_zero:
                checkpoint = self.output_dir / f"checkpoint-{state.global_step}"
                atomic_write_json(checkpoint / STEPS_FILE, self.state)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any):
            self.state["seconds"] = self.seconds()
            self.state.setdefault("stopped_by", "max_steps")

    return SimpleNamespace(
        ObjectiveTrainer=ObjectiveTrainer,
        QuietProgress=QuietProgress,
        EpochRecorder=EpochRecorder,
        StepRecorder=StepRecorder,
    )
