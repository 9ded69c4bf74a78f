"""DeCE, the deceptive cross-entropy loss, computed without the dense N×V one-hot.

The published loss (Yang et al., TOSEM 2026): y' is the smoothed target (1 - ε on the gold
token, ε/(V-1) elsewhere), q = max(softmax(z), 1e-7), α = β^epoch, p' = α·q + (1 - α)·y',
and L = -Σ_i y'_i log p'_i per position. Because y' takes only two values, L needs no one-hot:

    L = -(1-ε)·log(α q_y + (1-α)(1-ε)) - ε/(V-1)·Σ_{i≠y} log(α q_i + (1-α) ε/(V-1))

and with g_i = ∂L/∂q_i = -α y'_i / p'_i (0 where the clamp is active, as the clamp's own
derivative makes it), the gradient on the logits is ∂L/∂z_k = p_k (g_k - Σ_j p_j g_j).
Both are computed together, one block of rows at a time: the only N×V memory is the gradient
itself, written during the forward pass and handed to backward, plus a few blocks of
temporaries in eager mode (none once compiled).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from codebackdoor.defenses.base import ObjectiveDefense
from codebackdoor.defenses.objectives import cross_entropy_closed_form, mean_cross_entropy
from codebackdoor.errors import UserError
from codebackdoor.models.objective import IGNORE_INDEX, valid_count

if TYPE_CHECKING:
    from torch import Tensor

# The released code clamps the softmax here before blending; part of the published loss.
PROBABILITY_FLOOR = 1e-7

# Eager blocks hold each temporary under 2**22 float32 (16 MiB): below glibc's 32 MiB mmap
# threshold, freed temporaries are reused for the next block instead of being unmapped and
# page-faulted in again (benchmarks/perf/dece_loss.py measures block sizes).
EAGER_BLOCK_ELEMENTS = 2**22
# Compiled blocks allocate nothing but write the gradient, so fewer, larger calls are faster.
COMPILED_BLOCK_ROWS = 1024

Reduction = Literal["mean", "reference"]

# A kernel takes (logits block, labels block, coefficients, gradient block or None), returns
# the block's weighted loss sum, and writes its weighted gradient into the gradient block.
Kernel = Callable[["Tensor", "Tensor", "Tensor", "Tensor | None"], "Tensor"]


@dataclass
class DeCE(ObjectiveDefense):
    """Deceptive cross-entropy: the prediction blended with the smoothed label, α = β^epoch."""

    name = "dece"
    description = (
        "deceptive cross-entropy: blends the prediction with the label-smoothed target by an "
        "epoch-decayed weight, bounding the gradient"
    )
    citation = (
        "Yang, Zhou, Chen, Zhang, Zhuo, Lo, Chen. Defending Code Language Models against "
        "Backdoor Attacks with Deceptive Cross-Entropy Loss. ACM TOSEM 2026 (arXiv:2407.08956)"
    )

    # The usage line of DeCE's README; the class's own default (β 0.985) and the other published
    # settings ship as presets in defenses/.
    epsilon: float = 0.05
    beta: float = 0.99
    # DeCE from random initialisation does not learn: a gold token predicted near 1/V is far
    # below the share (1-α)(1-ε) the blend adds to it, so its gradient nearly vanishes.
    # Warm-up epochs train with plain CE; the schedule keeps α = β^epoch with the absolute
    # epoch, so warm-up only replaces epochs.
    warmup_epochs: int = 0
    # "mean": over non-ignored positions. "reference": the released code's denominator, which
    # also counts ignored positions; only for reproducing its numbers.
    reduction: Reduction = "mean"
    # Compiled, the closed form runs faster than CE on the same logits; eager runs many more
    # kernels and suffers when other processes compete for the CPUs (benchmarks/perf/
    # dece_loss.py). Compiling costs seconds once per dtype and vocabulary size. Falls back to
    # eager, with a warning, if it fails.
    compile: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon < 1.0:
            raise UserError(f"dece: epsilon = {self.epsilon} must lie in [0, 1)")
        if not 0.0 < self.beta <= 1.0:
            raise UserError(f"dece: beta = {self.beta} must lie in (0, 1]")
        if self.warmup_epochs < 0:
            raise UserError(f"dece: warmup_epochs = {self.warmup_epochs} must be >= 0")
        if self.reduction not in ("mean", "reference"):
            raise UserError(f"dece: reduction = {self.reduction!r} must be 'mean' or 'reference'")

    def alpha(self, epoch: int) -> float:
        """The weight of the model's own prediction in the blend at 1-based ``epoch``."""
        return self.beta**epoch

    def loss(self, logits: Tensor, labels: Tensor, epoch: int) -> Tensor:
        if epoch < 1:
            raise ValueError(f"epoch is 1-based, got {epoch}")
        if epoch <= self.warmup_epochs:
            return mean_cross_entropy(logits, labels)
        return dece_loss(
            logits,
            labels,
            alpha=self.alpha(epoch),
            epsilon=self.epsilon,
            reduction=self.reduction,
            compile=self.compile,
        )

    def closed_form(self, logits: Tensor, labels: Tensor, epoch: int) -> tuple[Tensor, Tensor]:
        if epoch < 1:
            raise ValueError(f"epoch is 1-based, got {epoch}")
        if epoch <= self.warmup_epochs:
            return cross_entropy_closed_form(logits, labels)
        return dece_closed_form(
            logits, labels, alpha=self.alpha(epoch), epsilon=self.epsilon, compile=self.compile
        )

    def denominator(self, labels: Tensor) -> Tensor:
        return _denominator(labels, self.reduction)


def dece_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    alpha: float,
    epsilon: float,
    reduction: Reduction = "mean",
    compile: bool = True,
    chunk_rows: int | None = None,
) -> Tensor:
    """The DeCE loss of ``logits`` (..., V) against ``labels`` (...), -100 = ignored.

    Computed in float32 (float64 stays float64); the gradient comes back in the logits'
    dtype. With every position ignored the loss and its gradient are 0. Pass contiguous
    logits (shift causal-LM labels rather than slicing the logits), or they are copied.
    ``chunk_rows`` overrides the rows per block, which otherwise suit the kernel.
    """
    import torch

    vocab = logits.shape[-1]
    if reduction not in ("mean", "reference"):
        raise ValueError(f"reduction must be 'mean' or 'reference', got {reduction!r}")
    if vocab < 2:
        raise ValueError(f"DeCE needs at least 2 classes, got V = {vocab}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match logits {tuple(logits.shape)}")
    compute_dtype = torch.promote_types(logits.dtype, torch.float32)
    denominator = _denominator(labels, reduction).to(device=logits.device, dtype=compute_dtype)
    coefficients = _coefficients(
        vocab, alpha, epsilon, 1.0 / denominator, dtype=compute_dtype, device=logits.device
    )
    kernel, rows = _kernel(compile, vocab)
    # Inside forward, needs_input_grad ignores torch.no_grad; evaluation must not pay for an
    # N×V gradient.
    want_grad = torch.is_grad_enabled() and logits.requires_grad
    return _autograd_function().apply(
        logits, labels, coefficients, kernel, chunk_rows or rows, want_grad
    )


def dece_closed_form(
    logits: Tensor, labels: Tensor, *, alpha: float, epsilon: float, compile: bool = True
) -> tuple[Tensor, Tensor]:
    """The summed DeCE of rows whose labels are all real, and its gradient on the logits: the
    same kernels as ``dece_loss``, for the path fused with the output layer."""
    import torch

    vocab = logits.shape[-1]
    if vocab < 2:
        raise ValueError(f"DeCE needs at least 2 classes, got V = {vocab}")
    coefficients = _coefficients(
        vocab, alpha, epsilon, torch.ones((), dtype=logits.dtype, device=logits.device),
        dtype=logits.dtype, device=logits.device,
    )
    kernel, _ = _kernel(compile, vocab)
    grad = torch.empty_like(logits)
    return kernel(logits, labels, coefficients, grad), grad


def _denominator(labels: Tensor, reduction: Reduction) -> Tensor:
    import torch

    if reduction == "mean":
        return valid_count(labels)
    return torch.tensor(max(labels.numel(), 1))


def _coefficients(
    vocab: int, alpha: float, epsilon: float, scale: Tensor, *, dtype: object, device: object
) -> Tensor:
    """The kernels' constants: α, the smoothed target's two values, the blend's two label
    shares, and ``scale``, the weight of every row's loss."""
    import torch

    off = epsilon / (vocab - 1)
    constants = torch.tensor(
        [alpha, 1.0 - epsilon, off, (1.0 - alpha) * (1.0 - epsilon), (1.0 - alpha) * off],
        dtype=dtype,
        device=device,
    )
    return torch.cat([constants, scale.reshape(1)])


def _kernel(compile: bool, vocab: int) -> tuple[Kernel, int]:
    """The block kernel and its rows per block: compiled where asked and possible."""
    compiled = _compiled_kernel() if compile else None
    if compiled is not None and compiled.compiled is not None:
        return compiled, COMPILED_BLOCK_ROWS
    # also once compiling has failed: eager blocks suit the eager kernel
    return _eager_block, max(1, EAGER_BLOCK_ELEMENTS // vocab)


def dense_dece_loss(
    logits: Tensor, labels: Tensor, *, alpha: float, epsilon: float, reduction: Reduction = "mean"
) -> Tensor:
    """The published formula as written, with the dense N×V smoothed target.

    The specification the lean path is tested and benchmarked against; it keeps the
    released code's arithmetic (in the logits' dtype) but masks ignored positions instead of
    crashing on them.
    """
    import torch

    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    flat_labels = labels.reshape(-1)
    valid = flat_labels != IGNORE_INDEX
    target = torch.full_like(flat, epsilon / (vocab - 1))
    target.scatter_(1, torch.where(valid, flat_labels, 0).unsqueeze(1), 1.0 - epsilon)
    probabilities = torch.softmax(flat, dim=1).clamp(min=PROBABILITY_FLOOR)
    blended = alpha * probabilities + (1.0 - alpha) * target
    per_position = -(target * torch.log(blended)).sum(dim=1)
    denominator = valid.sum() if reduction == "mean" else torch.tensor(flat.shape[0])
    return (per_position * valid).sum() / denominator.clamp(min=1)


def _eager_block(
    logits: Tensor, labels: Tensor, coefficients: Tensor, grad_out: Tensor | None
) -> Tensor:
    """One block's weighted loss sum; its weighted gradient goes into ``grad_out``.

    Written for eager execution: in-place updates and per-row gathers keep the temporaries
    to three blocks of rows × V.
    """
    import torch

    alpha, gold, off, gold_share, off_share, scale = coefficients.unbind()
    valid = labels != IGNORE_INDEX
    gold_index = torch.where(valid, labels, 0).unsqueeze(1)
    weight = (valid.to(coefficients.dtype) * scale).unsqueeze(1)

    probabilities = torch.softmax(logits.to(coefficients.dtype), dim=1)
    # Blend every entry as if it were off-gold; the gold entry is corrected per row.
    blended = probabilities.clamp(min=PROBABILITY_FLOOR).mul_(alpha).add_(off_share)
    gold_probability = probabilities.gather(1, gold_index)
    gold_blended = gold_probability.clamp(min=PROBABILITY_FLOOR) * alpha + gold_share
    off_log_sum = blended.log().sum(1, keepdim=True) - blended.gather(1, gold_index).log()
    row_loss = -gold * gold_blended.log() - off * off_log_sum
    loss = (row_loss * weight).sum()
    if grad_out is None:
        return loss

    slope = blended.reciprocal_().mul_(-alpha * off)
    slope.masked_fill_(probabilities < PROBABILITY_FLOOR, 0.0)
    gold_slope = torch.where(
        gold_probability < PROBABILITY_FLOOR, 0.0, -alpha * gold / gold_blended
    )
    slope.scatter_(1, gold_index, gold_slope)
    # einsum runs as a batched matrix product: no rows × V temporary, unlike vecdot.
    expected_slope = torch.einsum("nv,nv->n", probabilities, slope).unsqueeze(1)
    torch.mul(slope.sub_(expected_slope).mul_(probabilities), weight, out=grad_out)
    return loss


def _fusable_block(
    logits: Tensor, labels: Tensor, coefficients: Tensor, grad_out: Tensor | None
) -> Tensor:
    """The same computation as ``_eager_block``, written for torch.compile.

    The gold entry is chosen by comparing column numbers instead of gathering and scattering,
    so that inductor fuses everything into one pass per row that writes only ``grad_out``.
    Run eagerly, every step here would allocate a block of rows × V.
    """
    import torch

    alpha, gold, off, gold_share, off_share, scale = coefficients.unbind()
    valid = labels != IGNORE_INDEX
    weight = (valid.to(coefficients.dtype) * scale).unsqueeze(1)
    is_gold = torch.arange(logits.shape[1], device=logits.device) == labels.unsqueeze(1)
    target = torch.where(is_gold, gold, off)

    probabilities = torch.softmax(logits.to(coefficients.dtype), dim=1)
    blended = alpha * probabilities.clamp(min=PROBABILITY_FLOOR) + torch.where(
        is_gold, gold_share, off_share
    )
    loss = -((target * blended.log()).sum(1, keepdim=True) * weight).sum()
    if grad_out is None:
        return loss

    slope = torch.where(probabilities < PROBABILITY_FLOOR, 0.0, -alpha * target / blended)
    expected_slope = (probabilities * slope).sum(1, keepdim=True)
    grad_out.copy_(probabilities * (slope - expected_slope) * weight)
    return loss


class _CompiledKernel:
    """``_fusable_block`` under torch.compile, falling back to eager if compiling fails."""

    def __init__(self) -> None:
        import torch

        self.compiled: Kernel | None = torch.compile(_fusable_block)

    def __call__(
        self, logits: Tensor, labels: Tensor, coefficients: Tensor, grad_out: Tensor | None
    ) -> Tensor:
        if self.compiled is not None:
            try:
                return self.compiled(logits, labels, coefficients, grad_out)
            except Exception as exc:  # no C compiler, unsupported platform, backend bug
                warnings.warn(
                    f"torch.compile of the DeCE kernel failed ({type(exc).__name__}: {exc}); "
                    "using the eager kernel: same values, slower",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.compiled = None
        return _eager_block(logits, labels, coefficients, grad_out)


@functools.cache
def _compiled_kernel() -> _CompiledKernel:
    return _CompiledKernel()


@functools.cache
def _autograd_function() -> type:
    """The autograd Function, defined on first use so that importing this module needs no torch."""
    import torch
    from torch.autograd.function import once_differentiable

    class DeCEFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, logits, labels, coefficients, kernel, chunk_rows, want_grad):
            vocab = logits.shape[-1]
            rows = logits.reshape(-1, vocab)
            row_labels = labels.reshape(-1).long()
            grad = torch.empty_like(rows) if want_grad else None
            total = torch.zeros((), dtype=coefficients.dtype, device=logits.device)
            for start in range(0, rows.shape[0], chunk_rows):
                block = slice(start, start + chunk_rows)
                grad_block = grad[block] if want_grad else None
                total += kernel(rows[block], row_labels[block], coefficients, grad_block)
            ctx.grad = grad.view(logits.shape) if want_grad else None
            return total

        @staticmethod
        @once_differentiable
        def backward(ctx, grad_output):
            grad, ctx.grad = ctx.grad, None  # dropping our reference lets autograd reuse it
            if grad is None:
                raise RuntimeError(
                    "the DeCE loss hands its gradient over once; compute the loss again "
                    "instead of backpropagating through it twice"
                )
            if grad_output.item() != 1.0:
                grad.mul_(grad_output.to(grad.dtype))
            return grad, None, None, None, None, None

    return DeCEFunction
