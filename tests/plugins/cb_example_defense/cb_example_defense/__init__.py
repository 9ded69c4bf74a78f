"""A confidence penalty: cross-entropy minus β times the entropy of the predicted distribution,
which discourages the over-confident predictions a backdoor trigger produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from codebackdoor.defenses import IGNORE_INDEX, ObjectiveDefense
from codebackdoor.defenses.objectives import mean_cross_entropy

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class ConfidencePenalty(ObjectiveDefense):
    name = "confidence-penalty"
    description = "cross-entropy minus beta x the entropy of the prediction"
    citation = (
        "Pereyra, Tucker, Chorowski, Kaiser, Hinton. Regularizing Neural Networks by Penalizing "
        "Confident Output Distributions. ICLR 2017 workshop"
    )

    beta: float = 0.1

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor:
        log_p = logits.float().log_softmax(dim=-1)
        entropy = -(log_p.exp() * log_p).sum(dim=-1)
        kept = labels != IGNORE_INDEX
        mean_entropy = (entropy * kept).sum() / kept.sum().clamp(min=1)
        return mean_cross_entropy(logits, labels) - self.beta * mean_entropy
