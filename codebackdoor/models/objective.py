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
