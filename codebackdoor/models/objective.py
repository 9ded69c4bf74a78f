"""The label convention of training and the protocol every training loss follows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import Tensor

# Label value of positions that carry no loss (padding, prompt tokens), as in Hugging Face.
IGNORE_INDEX = -100


class Objective(Protocol):
    """The training loss: mean over positions whose label is not IGNORE_INDEX; epoch 1-based."""

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor: ...


def next_token_labels(labels: Tensor) -> Tensor:
    """Labels moved one position left, so that position t holds the token logits[t] predicts.

    Shifting the labels instead of the logits avoids copying the (B, T, V) logits.
    """
    import torch.nn.functional as F

    return F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


class ClosedFormObjective(Objective, Protocol):
    """An objective that can train fused with the output layer (``models.fused_loss``), so
    that the logits of a whole batch never exist at once.

    ``closed_form`` gets a block of rows of float32 logits (n, V) whose labels (n) are all real
    (none is IGNORE_INDEX) and returns the sum of the rows' losses and its gradient with
    respect to those logits (n, V, float32). The batch's loss is the sum over every block
    divided by ``denominator(labels)``, the number of non-ignored labels unless the objective
    says otherwise. A plugin objective opts in by defining ``closed_form``.
    """

    def closed_form(self, logits: Tensor, labels: Tensor, epoch: int) -> tuple[Tensor, Tensor]: ...

    def denominator(self, labels: Tensor) -> Tensor: ...


def valid_count(labels: Tensor) -> Tensor:
    """The number of labels that are not IGNORE_INDEX, at least 1: the mean's denominator."""
    return (labels != IGNORE_INDEX).sum().clamp(min=1)
