"""A training loss fused with the output layer: the logits exist one block of rows at a time.

From the last hidden states h (N, H), the output layer's weight W (V, H) and bias b, and an
objective with a closed form (``ClosedFormObjective``), each block of non-ignored rows gets
its logits z = h W^T + b, the objective's loss and gradient g = ∂L/∂z, and immediately the
gradients that backward needs: ∂L/∂h = g W, ∂L/∂W += g^T h, ∂L/∂b += Σ g. The block's logits
and g are then dropped. Forward and backward thus happen in one pass (the approach of
Liger-Kernel's fused linear cross-entropy, Hsu et al., arXiv:2410.10989); backward only
scales the stored gradients by the incoming one. The memory beyond what the step needs anyway
(the gradients of h, W and b) is one block of logits and the objective's temporaries.

Half-precision inputs (or an autocast region) multiply in that precision, as the unfused
layer would, and hand the objective float32 logits, as the objectives' own upcast does; the
weight's gradient is accumulated across blocks in float32.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from codebackdoor.models.objective import IGNORE_INDEX, ClosedFormObjective, valid_count

if TYPE_CHECKING:
    from torch import Tensor

# Rows per block: at least MIN_BLOCK_ROWS, so that each block's matrix products read the
# weight once per hundreds of rows and run near full speed, and more while a block of logits
# stays within BLOCK_ELEMENTS (16 MiB in float32). The block and the objective's few
# temporaries then stay far below one batch's logits (benchmarks/perf/fused_objectives.py).
MIN_BLOCK_ROWS = 256
BLOCK_ELEMENTS = 2**22


def supports_closed_form(objective: Any) -> bool:
    """Whether ``objective`` can train on the fused path."""
    return callable(getattr(objective, "closed_form", None))


def fused_linear_loss(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    labels: Tensor,
    objective: ClosedFormObjective,
    epoch: int,
    *,
    block_rows: int | None = None,
) -> Tensor:
    """The objective's loss on the logits ``hidden @ weight.T + bias``, never materialised.

    ``hidden`` is (..., H) and ``labels`` (...), IGNORE_INDEX for positions without a loss;
    the result is the float32 scalar ``objective.loss`` would give on the logits, with
    gradients for ``hidden``, ``weight`` and ``bias`` (those that require them). With every
    label ignored the loss and the gradients are 0. ``block_rows`` overrides the rows per block.
    """
    import torch

    if labels.shape != hidden.shape[:-1]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match hidden {tuple(hidden.shape)}")
    vocab = weight.shape[0]
    flat_labels = labels.reshape(-1)
    denominator = getattr(objective, "denominator", valid_count)(flat_labels)
    rows = block_rows or max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // vocab)
    if torch.is_autocast_enabled(hidden.device.type):
        matmul_dtype = torch.get_autocast_dtype(hidden.device.type)
    else:
        matmul_dtype = torch.promote_types(hidden.dtype, weight.dtype)
    grad_enabled = torch.is_grad_enabled()
    wants = tuple(
        grad_enabled and tensor is not None and tensor.requires_grad
        for tensor in (hidden, weight, bias)
    )
    return _function().apply(
        hidden.reshape(-1, hidden.shape[-1]),
        weight,
        bias,
        flat_labels,
        functools.partial(objective.closed_form, epoch=epoch),
        denominator,
        rows,
        matmul_dtype,
        wants,
    )


@functools.cache
def _function() -> type:
    """The autograd Function, defined on first use so that importing this module needs no torch."""
    import torch
    import torch.nn.functional as F
    from torch.autograd.function import once_differentiable

    class FusedLinearLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, hidden, weight, bias, labels, closed_form, denominator, rows,
                    matmul_dtype, wants):
            want_hidden, want_weight, want_bias = wants
            with torch.autocast(hidden.device.type, enabled=False):
                layer_weight = weight.to(matmul_dtype)
                layer_bias = bias.to(matmul_dtype) if bias is not None else None
                grad_hidden = torch.zeros_like(hidden) if want_hidden else None
                # Accumulated over blocks: float32, whatever the weight's precision.
                accumulate = torch.promote_types(weight.dtype, torch.float32)
                grad_weight = (
                    torch.zeros(weight.shape, dtype=accumulate, device=weight.device)
                    if want_weight else None
                )
                grad_bias = (
                    torch.zeros(bias.shape, dtype=accumulate, device=bias.device)
                    if want_bias else None
                )
                total = torch.zeros((), dtype=torch.float32, device=hidden.device)
                positions = torch.nonzero(labels != IGNORE_INDEX).squeeze(1)
                for block in positions.split(rows):
                    block_hidden = hidden.index_select(0, block).to(matmul_dtype)
                    logits = F.linear(block_hidden, layer_weight, layer_bias)
                    compute = torch.promote_types(logits.dtype, torch.float32)
                    loss, grad = closed_form(logits.to(compute), labels.index_select(0, block))
                    del logits
                    total += loss.to(total.dtype)
                    grad = grad.to(matmul_dtype)
                    if want_hidden:
                        grad_hidden.index_copy_(0, block, (grad @ layer_weight).to(hidden.dtype))
                    if want_weight and grad_weight.dtype == matmul_dtype:
                        grad_weight.addmm_(grad.T, block_hidden)  # no V × H temporary
                    elif want_weight:
                        grad_weight.add_(grad.T @ block_hidden)
                    if want_bias:
                        grad_bias.add_(grad.sum(0))
                    del grad
                scale = 1.0 / denominator.to(device=hidden.device, dtype=total.dtype)
                ctx.grads = [
                    None if grad is None else grad.mul_(scale.to(grad.dtype))
                    for grad in (grad_hidden, grad_weight, grad_bias)
                ]
                ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
            return total * scale

        @staticmethod
        @once_differentiable
        def backward(ctx, grad_output):
            grads, ctx.grads = ctx.grads, None  # handing them over lets autograd reuse them
            if grads is None:
                raise RuntimeError(
                    "the fused loss hands its gradients over once; compute the loss again "
                    "instead of backpropagating through it twice"
                )
            out = []
            for grad, dtype in zip(grads, ctx.dtypes, strict=True):
                if grad is not None:
                    if grad_output.item() != 1.0:
                        grad.mul_(grad_output.to(grad.dtype))
                    grad = grad.to(dtype)
                out.append(grad)
            return (*out, None, None, None, None, None, None)

    return FusedLinearLoss
