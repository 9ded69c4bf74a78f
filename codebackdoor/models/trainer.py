"""The Trainer subclass and callbacks of the training engine (``codebackdoor.models.training``).

They subclass transformers classes, so importing this module imports torch; the engine imports
it only when a fit starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Sampler
from transformers import ProgressCallback, Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_pt_utils import get_length_grouped_indices

from codebackdoor.io import atomic_write_json
from codebackdoor.models.checkpoints import EPOCHS_FILE, STEPS_FILE
from codebackdoor.models.fused_loss import fused_linear_loss, supports_closed_form
from codebackdoor.models.objective import Objective, next_token_labels
from codebackdoor.models.output_layer import output_layer


class ObjectiveTrainer(Trainer):
    """A Trainer whose loss is ``objective.loss(logits, labels, epoch)``.

    With ``fused`` (and an objective with a closed form, on a model family whose output layer
    is known) the loss is computed fused with the output layer from the last hidden states
    instead (``models.fused_loss``): the same value and gradients without the batch's logits.
    """

    # The objective returns a mean over its batch; the Trainer still divides it by the
    # number of gradient accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self, *args: Any, objective: Objective, kind: str, fused: bool = True,
        length_grouped: bool = False, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.objective = objective
        self.kind = kind
        self.length_grouped = length_grouped
        self.output_layer = (
            output_layer(self.model, kind)
            if fused and supports_closed_form(objective)
            else None
        )
        # The paths the steps took since the last take_loss_paths().
        self.loss_paths: set[str] = set()
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
        if self.kind == "causal":
            labels = next_token_labels(labels)
        # A wrapped model (DataParallel, DDP) must run through its wrapper: logits path.
        if self.output_layer is not None and model is self.model and not return_outputs:
            self.loss_paths.add("fused")
            head = self.output_layer.layer
            return fused_linear_loss(
                self.output_layer.hidden_states(features), head.weight, head.bias, labels,
                self.objective, self.current_epoch(),
            )
        self.loss_paths.add("logits")
        outputs = model(**features)
        loss = self.objective.loss(outputs.logits, labels, self.current_epoch())
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        if not self.length_grouped:
            return super()._get_train_sampler(train_dataset)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        return LengthGroupedEpochSampler(
            [len(feature["input_ids"]) for feature in dataset],
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    def take_loss_paths(self) -> str | None:
        """How the losses since the last call were computed: "fused", "logits", both joined
        by "+", or None when no step ran."""
        paths, self.loss_paths = self.loss_paths, set()
        return "+".join(sorted(paths)) or None

    def current_epoch(self) -> int:
        # state.epoch is the fractional progress after the last optimizer step: exactly
        # the number of finished epochs at an epoch's first step, below the next integer
        # within it.
        return int(self.state.epoch or 0) + 1

class LengthGroupedEpochSampler(Sampler):
    """transformers' length grouping (shuffle, sort by length within mega-batches of 50
    batches or fewer) with its permutation drawn from ``seed`` and the epoch alone.
    transformers' own ``LengthGroupedSampler`` draws from torch's global generator, so the order
    would depend on what else drew from it before; the Trainer calls ``set_epoch`` at every
    epoch, a resumed fit included, so a resumed epoch sees the same batches as an
    uninterrupted one."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Any:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size,
                                               generator=generator))


class QuietProgress(ProgressCallback):
    """The training bar, named by the epoch it is in (epoch fits), with the last logged loss."""

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any):
        if self.training_bar is not None and args.max_steps <= 0:
            self.training_bar.set_description(
                f"epoch {int(state.epoch or 0) + 1}/{args.num_train_epochs:g}")

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any):
        if self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4g}")

class EpochRecorder(TrainerCallback):
    """Builds one record per epoch and writes the list beside each checkpoint; with
    ``loss_paths``, each record says how its epoch's loss was computed ("loss_path").

    The Trainer's order at an epoch's end is: on_epoch_end (the caller's measurements,
    model in eval mode), on_log (the epoch's mean loss), checkpoint, on_save.
    """

    def __init__(
        self,
        records: list[dict[str, Any]],
        on_epoch_end: Callable[[int], dict] | None,
        output_dir: Path,
        loss_paths: Callable[[], str | None] | None = None,
    ):
        self.records = records
        self.measure = on_epoch_end
        self.output_dir = output_dir
        self.loss_paths = loss_paths
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
            if self.loss_paths is not None:
                self.pending["loss_path"] = self.loss_paths()

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
        max_seconds: float | None,
        tokens_per_step: int,
        on_log: Callable[[dict[str, Any]], None] | None,
    ):
        self.state = state
        self.output_dir = output_dir
        self.max_seconds = max_seconds
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
        self.state["steps"] = state.global_step
        self.state.setdefault("stopped_by", "max_steps")
