"""Noise-robust losses that the DeCE paper compares against: GCE and the in-trust loss.

Both treat poisoned examples as noisy labels: they bound how hard a single wrong target can
pull on the model. Each is computed in float32 (float64 stays float64) and averaged over the
non-ignored positions
(the released comparison scripts average over every position, crash on ignored labels, or
both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from codebackdoor.defenses.base import ObjectiveDefense
from codebackdoor.defenses.dece import PROBABILITY_FLOOR
from codebackdoor.defenses.objectives import mean_cross_entropy
from codebackdoor.errors import UserError
from codebackdoor.models.objective import IGNORE_INDEX

if TYPE_CHECKING:
    from torch import Tensor

# The in-trust code clamps the one-hot label to [1e-4, 1] before taking the log of the blend,
# so the off-target tokens read 1e-4 (the same floor as the A = -4 of symmetric cross-entropy);
# part of the published loss, not a numerical guard.
LABEL_FLOOR = 1e-4


@dataclass
class GeneralizedCrossEntropy(ObjectiveDefense):
    """GCE: L = (1 - p_y^q) / q, between cross-entropy (q -> 0) and MAE (q = 1)."""

    name = "gce"
    description = (
        "generalized cross-entropy (1 - p^q)/q: bounded per-token loss that down-weights "
        "targets the model finds improbable"
    )
    citation = (
        "Zhang, Sabuncu. Generalized Cross Entropy Loss for Training Deep Neural Networks with "
        "Noisy Labels. NeurIPS 2018"
    )

    # The paper's recommended q, and the one DeCE's comparison (defense_loss.py GCELoss) uses.
    q: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.q <= 1.0:
            raise UserError(f"gce: q = {self.q} must lie in (0, 1]")

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor:
        return gce_loss(logits, labels, q=self.q)

    def closed_form(self, logits: Tensor, labels: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        return gce_closed_form(logits, labels, q=self.q)


@dataclass
class InTrust(ObjectiveDefense):
    """In-trust loss: α·CE + β·DCE, with the distrust cross-entropy
    DCE = -Σ_i p_i log(δ p_i + (1 - δ) q_i) per position, p the prediction (clamped to
    >= 1e-7, as in the released code) and q the one-hot label clamped to >= 1e-4."""

    name = "in-trust"
    description = (
        "in-trust loss: cross-entropy plus a term that trusts a blend of the label and the "
        "model's own prediction"
    )
    citation = (
        "Huang et al. Named Entity Recognition via Noise Aware Training Mechanism with Data "
        "Filter. Findings of ACL-IJCNLP 2021"
    )

    # α = 0.2, β = 0.8, δ = 0.5: the setting of DeCE's comparison (NTDXYG/DeCE
    # defense_loss.py, In_trust_Loss). The in-trust authors' own code defaults to α = 1.
    alpha: float = 0.2
    beta: float = 0.8
    delta: float = 0.5

    def __post_init__(self) -> None:
        for field in ("alpha", "beta"):
            if getattr(self, field) < 0.0:
                raise UserError(f"in-trust: {field} = {getattr(self, field)} must be >= 0")
        if self.alpha == 0.0 and self.beta == 0.0:
            raise UserError("in-trust: alpha and beta are both 0, which leaves no loss")
        if not 0.0 <= self.delta <= 1.0:
            raise UserError(f"in-trust: delta = {self.delta} must lie in [0, 1]")

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor:
        return in_trust_loss(logits, labels, alpha=self.alpha, beta=self.beta, delta=self.delta)

    def closed_form(self, logits: Tensor, labels: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        return in_trust_closed_form(
            logits, labels, alpha=self.alpha, beta=self.beta, delta=self.delta
        )


def gce_loss(logits: Tensor, labels: Tensor, *, q: float) -> Tensor:
    """Mean GCE of ``logits`` (..., V) against ``labels`` (...), -100 = ignored."""
    import torch
    import torch.nn.functional as F

    vocab = logits.shape[-1]
    flat_labels = labels.reshape(-1)
    # p_y^q = exp(-q·CE): no softmax is materialised and no log of an underflowed p is taken.
    # -expm1 keeps (1 - p_y^q)/q accurate for small q, where it tends to CE.
    nll = F.cross_entropy(
        logits.reshape(-1, vocab).to(torch.promote_types(logits.dtype, torch.float32)),
        flat_labels,
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    per_position = -torch.expm1(-q * nll) / q  # ignored positions have nll 0, so 0 here
    return per_position.sum() / (flat_labels != IGNORE_INDEX).sum().clamp(min=1)


def gce_closed_form(logits: Tensor, labels: Tensor, *, q: float) -> tuple[Tensor, Tensor]:
    """The summed GCE of rows whose labels are all real, and its gradient on the logits:
    p_y^q (softmax - one-hot), the cross-entropy's gradient weighted by ∂GCE/∂CE = p_y^q."""
    import torch

    gold = labels.unsqueeze(1)
    grad = torch.log_softmax(logits, dim=1)
    gold_log_probability = grad.gather(1, gold)
    loss = (-torch.expm1(q * gold_log_probability) / q).sum()
    grad.exp_().scatter_add_(1, gold, grad.new_full(gold.shape, -1.0))
    return loss, grad.mul_(torch.exp(q * gold_log_probability))


def in_trust_closed_form(
    logits: Tensor, labels: Tensor, *, alpha: float, beta: float, delta: float
) -> tuple[Tensor, Tensor]:
    """The summed in-trust loss of rows whose labels are all real, and its gradient on the logits.

    With p̃ = max(p, 1e-7) and c_i the clamped label's share (1 - δ on the gold token,
    (1 - δ)·1e-4 elsewhere), DCE's slope is g_i = -log(δp̃_i + c_i) - δp̃_i / (δp̃_i + c_i)
    (0 where the clamp is active, as its derivative makes it), and through the softmax
    ∂DCE/∂z_k = p_k (g_k - Σ_j p_j g_j); CE's gradient is p - one-hot.
    """
    import torch

    gold = labels.unsqueeze(1)
    probabilities = torch.log_softmax(logits, dim=1)
    cross_entropy = -probabilities.gather(1, gold).sum()
    probabilities.exp_()
    clamped = probabilities.clamp(min=PROBABILITY_FLOOR)
    off_target = (1.0 - delta) * LABEL_FLOOR
    slope = clamped * delta + off_target
    ratio = torch.div(clamped, slope).mul_(delta)
    slope.log_()  # log of the blend, as if every token were off-target
    # einsum runs as a batched matrix product: no rows × V temporary.
    dce = -torch.einsum("nv,nv->n", clamped, slope)
    slope.add_(ratio).neg_()
    del ratio
    gold_clamped = clamped.gather(1, gold)
    del clamped
    gold_blend = delta * gold_clamped + (1.0 - delta)
    dce = dce.unsqueeze(1) - gold_clamped * (
        torch.log(gold_blend) - torch.log(delta * gold_clamped + off_target)
    )
    slope.scatter_(1, gold, -torch.log(gold_blend) - delta * gold_clamped / gold_blend)
    slope.masked_fill_(probabilities < PROBABILITY_FLOOR, 0.0)
    expected_slope = torch.einsum("nv,nv->n", probabilities, slope).unsqueeze(1)
    grad = slope.sub_(expected_slope).mul_(probabilities).mul_(beta)
    grad.add_(probabilities, alpha=alpha).scatter_add_(1, gold, grad.new_full(gold.shape, -alpha))
    return alpha * cross_entropy + beta * dce.sum(), grad


def in_trust_loss(
    logits: Tensor, labels: Tensor, *, alpha: float, beta: float, delta: float
) -> Tensor:
    """Mean in-trust loss of ``logits`` (..., V) against ``labels`` (...), -100 = ignored.

    The clamped one-hot takes two values, so DCE is the off-target formula summed over all
    tokens plus a correction at the gold token; no N×V label tensor is built.
    """
    import torch

    vocab = logits.shape[-1]
    flat_labels = labels.reshape(-1)
    valid = flat_labels != IGNORE_INDEX
    gold = flat_labels[valid].unsqueeze(1)
    # Only the non-ignored rows enter the N×V temporaries.
    rows = logits.reshape(-1, vocab)[valid]
    probabilities = torch.softmax(rows.to(torch.promote_types(rows.dtype, torch.float32)), dim=1)
    probabilities = probabilities.clamp(min=PROBABILITY_FLOOR)
    off_target = (1.0 - delta) * LABEL_FLOOR
    dce = -(probabilities * torch.log(delta * probabilities + off_target)).sum(dim=1)
    p_gold = probabilities.gather(1, gold).squeeze(1)
    dce = dce - p_gold * (
        torch.log(delta * p_gold + (1.0 - delta)) - torch.log(delta * p_gold + off_target)
    )
    mean_dce = dce.sum() / valid.sum().clamp(min=1)
    return alpha * mean_cross_entropy(logits, labels) + beta * mean_dce
