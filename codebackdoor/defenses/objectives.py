"""The plain training objectives: cross-entropy (no defense), label smoothing, moderate fitting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from codebackdoor.defenses.base import ObjectiveDefense
from codebackdoor.errors import UserError
from codebackdoor.models.objective import IGNORE_INDEX

if TYPE_CHECKING:
    from torch import Tensor


def mean_cross_entropy(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy averaged over non-ignored positions, 0 (not NaN) when all are ignored.

    ``label_smoothing`` has torch's meaning: the target puts 1 - ε + ε/V on the gold class
    and ε/V on every class.
    """
    import torch.nn.functional as F

    vocab = logits.shape[-1]
    flat_labels = labels.reshape(-1)
    # Half-precision log-softmax over tens of thousands of classes loses the small
    # probabilities; Hugging Face's own loss functions upcast in the same way.
    total = F.cross_entropy(
        logits.reshape(-1, vocab).float(),
        flat_labels,
        ignore_index=IGNORE_INDEX,
        reduction="sum",
        label_smoothing=label_smoothing,
    )
    return total / (flat_labels != IGNORE_INDEX).sum().clamp(min=1)


def cross_entropy_closed_form(
    logits: Tensor, labels: Tensor, label_smoothing: float = 0.0
) -> tuple[Tensor, Tensor]:
    """The summed cross-entropy of rows whose labels are all real, and its gradient on the
    logits (softmax minus the target), with ``mean_cross_entropy``'s label smoothing.

    One rows × V temporary: the log-probabilities become the gradient in place.
    """
    import torch

    gold = labels.unsqueeze(1)
    grad = torch.log_softmax(logits, dim=1)
    loss = -(1.0 - label_smoothing) * grad.gather(1, gold).sum()
    if label_smoothing:
        loss = loss - label_smoothing / logits.shape[1] * grad.sum()
    grad.exp_()
    grad.scatter_add_(1, gold, grad.new_full(gold.shape, label_smoothing - 1.0))
    if label_smoothing:
        grad.sub_(label_smoothing / logits.shape[1])
    return loss, grad


@dataclass
class CrossEntropy(ObjectiveDefense):
    """Token-level cross-entropy: training with no defense."""

    name = "ce"
    description = "no defense: cross-entropy over the non-ignored positions (the default)"
    citation = ""

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor:
        return mean_cross_entropy(logits, labels)

    def closed_form(self, logits: Tensor, labels: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        return cross_entropy_closed_form(logits, labels)


@dataclass
class LabelSmoothing(ObjectiveDefense):
    """Cross-entropy against a label-smoothed target (torch's definition of ε)."""

    name = "label-smoothing"
    description = "cross-entropy with label smoothing; isolates DeCE's smoothing from its blending"
    citation = (
        "Szegedy, Vanhoucke, Ioffe, Shlens, Wojna. Rethinking the Inception Architecture for "
        "Computer Vision. CVPR 2016"
    )

    # Szegedy et al. used 0.1. We default to 0.05 because this defense is the baseline that
    # separates DeCE's two ingredients: with DeCE's own ε = 0.05 (the usage in DeCE's README),
    # the only difference left is DeCE's blending with the epoch-decayed α, which is what DeCE
    # claims makes it a defense.
    epsilon: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon < 1.0:
            raise UserError(f"label-smoothing: epsilon = {self.epsilon} must lie in [0, 1)")

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor:
        return mean_cross_entropy(logits, labels, label_smoothing=self.epsilon)

    def closed_form(self, logits: Tensor, labels: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        return cross_entropy_closed_form(logits, labels, label_smoothing=self.epsilon)


@dataclass
class ModerateFitting(ObjectiveDefense):
    """Cross-entropy at a lower learning rate, so the model fits the clean majority of the data
    before it memorises the rare trigger-target association."""

    name = "moderate"
    description = "moderate fitting: cross-entropy with the run's learning rate scaled down (x0.1)"
    citation = (
        "Zhu, Qin, Zhou, Liu. Moderate-fitting as a Natural Backdoor Defender for Pre-trained "
        "Language Models. NeurIPS 2022"
    )

    # Zhu et al. also reduce the trainable parameters and the epochs; the learning rate is
    # the part that applies to every victim unchanged. Ten times lower is the project's
    # benchmark setting, not a value the paper prescribes for every model.
    learning_rate_factor: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.learning_rate_factor <= 1.0:
            raise UserError(
                f"moderate: learning_rate_factor = {self.learning_rate_factor} must lie in (0, 1]"
            )

    def learning_rate(self, run_learning_rate: float) -> float:
        return run_learning_rate * self.learning_rate_factor

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor:
        return mean_cross_entropy(logits, labels)

    def closed_form(self, logits: Tensor, labels: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        return cross_entropy_closed_form(logits, labels)
