"""The loss fused with the output layer equals the objective on materialised logits: loss and
the gradients of the hidden states, the output weight and its bias, for every built-in
objective, in float32 and bf16, with ignored and all-ignored labels; plugins opt in."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from codebackdoor.defenses.dece import DeCE
from codebackdoor.defenses.objectives import CrossEntropy, LabelSmoothing, ModerateFitting
from codebackdoor.defenses.robust_losses import GeneralizedCrossEntropy, InTrust
from codebackdoor.models.fused_loss import fused_linear_loss, supports_closed_form
from codebackdoor.models.objective import IGNORE_INDEX

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

OBJECTIVES = {
    "ce": (CrossEntropy(), 1),
    "label-smoothing": (LabelSmoothing(epsilon=0.1), 1),
    "moderate": (ModerateFitting(), 1),
    "dece": (DeCE(compile=False), 3),
    "dece-compiled": (DeCE(compile=True), 2),
    "dece-warmup": (DeCE(warmup_epochs=2, compile=False), 2),
    "dece-reference": (DeCE(reduction="reference", compile=False), 1),
    "gce": (GeneralizedCrossEntropy(), 1),
    "in-trust": (InTrust(), 1),
}


def problem(dtype=torch.float32, rows=37, hidden=24, vocab=61, seed=0, ignored=5):
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(rows, hidden, generator=generator).to(dtype)
    w = (torch.randn(vocab, hidden, generator=generator) / hidden**0.5).to(dtype)
    b = torch.randn(vocab, generator=generator).to(dtype)
    labels = torch.randint(0, vocab, (rows,), generator=generator)
    labels[::ignored] = IGNORE_INDEX
    return h, w, b, labels


def unfused(objective, epoch, h, w, b, labels):
    leaves = [t.detach().clone().requires_grad_() for t in (h, w, b)]
    logits = F.linear(*leaves)
    loss = objective.loss(logits, labels, epoch)
    loss.backward()
    return loss.detach(), [leaf.grad for leaf in leaves]


def fused(objective, epoch, h, w, b, labels, **options):
    leaves = [t.detach().clone().requires_grad_() for t in (h, w, b)]
    loss = fused_linear_loss(*leaves, labels, objective, epoch, **options)
    loss.backward()
    return loss.detach(), [leaf.grad for leaf in leaves]


def assert_same(expected, actual, rtol, atol):
    torch.testing.assert_close(actual[0], expected[0].float(), rtol=rtol, atol=atol)
    for name, want, got in zip(("hidden", "weight", "bias"), expected[1], actual[1], strict=True):
        assert got.dtype == want.dtype, name
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, msg=name)


@pytest.mark.parametrize("name", OBJECTIVES)
@pytest.mark.parametrize("block_rows", [5, None])
def test_fused_equals_the_objective_on_logits_in_float32(name, block_rows):
    objective, epoch = OBJECTIVES[name]
    inputs = problem()
    expected = unfused(objective, epoch, *inputs)
    actual = fused(objective, epoch, *inputs, block_rows=block_rows)
    # Gradient entries near 0 have no meaningful relative error; 1e-7 is far below their scale.
    assert_same(expected, actual, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["ce", "dece", "gce", "in-trust"])
def test_batched_hidden_states_and_a_scaled_loss(name):
    objective, epoch = OBJECTIVES[name]
    h, w, b, labels = problem(rows=24)
    h, labels = h.reshape(4, 6, -1), labels.reshape(4, 6)
    leaves = [t.clone().requires_grad_() for t in (h, w, b)]
    (0.25 * objective.loss(F.linear(*leaves), labels, epoch)).backward()
    fused_leaves = [t.clone().requires_grad_() for t in (h, w, b)]
    (0.25 * fused_linear_loss(*fused_leaves, labels, objective, epoch, block_rows=7)).backward()
    for want, got in zip(leaves, fused_leaves, strict=True):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_all_ignored_labels_give_zero_loss_and_gradients(name):
    objective, epoch = OBJECTIVES[name]
    h, w, b, labels = problem()
    labels = torch.full_like(labels, IGNORE_INDEX)
    expected = unfused(objective, epoch, h, w, b, labels)
    actual = fused(objective, epoch, h, w, b, labels)
    assert actual[0].item() == 0.0
    for grad in actual[1]:
        assert not grad.any()
    assert_same(expected, actual, rtol=0, atol=0)


@pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no native bf16"
)
@pytest.mark.parametrize("name", ["ce", "label-smoothing", "dece", "gce", "in-trust"])
def test_fused_equals_the_objective_on_logits_in_bf16(name):
    objective, epoch = OBJECTIVES[name]
    inputs = problem(dtype=torch.bfloat16, rows=64, hidden=32, vocab=97)
    expected = unfused(objective, epoch, *inputs)
    actual = fused(objective, epoch, *inputs, block_rows=16)
    torch.testing.assert_close(actual[0], expected[0].float(), rtol=1e-3, atol=1e-4)
    for name, want, got in zip(("hidden", "weight", "bias"), expected[1], actual[1], strict=True):
        assert got.dtype == torch.bfloat16, name
        # Both paths round sums of many bf16 products (8-bit mantissa), in different orders:
        # their difference is measured against the gradient's scale, not each tiny entry.
        scale = want.float().abs().max().item()
        torch.testing.assert_close(
            got.float(), want.float(), rtol=1.6e-2, atol=1.6e-2 * scale, msg=name
        )


def test_without_gradients_only_the_loss_is_computed():
    objective, epoch = OBJECTIVES["dece"]
    h, w, b, labels = problem()
    expected = objective.loss(F.linear(h, w, b), labels, epoch)
    with torch.no_grad():
        loss = fused_linear_loss(h.requires_grad_(), w, b, labels, objective, epoch)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=0)


def test_no_bias_and_a_frozen_weight():
    objective, epoch = OBJECTIVES["in-trust"]
    h, w, _, labels = problem()
    reference = h.clone().requires_grad_()
    objective.loss(F.linear(reference, w), labels, epoch).backward()
    hidden = h.clone().requires_grad_()
    fused_linear_loss(hidden, w, None, labels, objective, epoch, block_rows=8).backward()
    assert w.grad is None
    torch.testing.assert_close(hidden.grad, reference.grad, rtol=1e-5, atol=1e-7)


class SquaredProbability:
    """A plugin objective with a closed form: the mean of (1 - p_y)^2."""

    def loss(self, logits, labels, epoch):
        valid = labels != IGNORE_INDEX
        p = torch.softmax(logits[valid].float(), -1).gather(1, labels[valid].unsqueeze(1))
        return ((1 - p) ** 2).sum() / valid.sum().clamp(min=1)

    def closed_form(self, logits, labels, epoch):
        p = torch.softmax(logits, -1)
        gold = p.gather(1, labels.unsqueeze(1))
        one_hot = torch.zeros_like(p).scatter_(1, labels.unsqueeze(1), 1.0)
        # ∂(1-p_y)^2/∂z = -2(1-p_y) p_y (one-hot - p)
        return ((1 - gold) ** 2).sum(), -2 * (1 - gold) * gold * (one_hot - p)


class LogitsOnly:
    def loss(self, logits, labels, epoch):
        return logits.mean()


def test_a_plugin_objective_opts_in_with_its_closed_form():
    assert supports_closed_form(SquaredProbability())
    assert not supports_closed_form(LogitsOnly())
    inputs = problem()
    expected = unfused(SquaredProbability(), 1, *inputs)
    actual = fused(SquaredProbability(), 1, *inputs, block_rows=6)
    assert_same(expected, actual, rtol=1e-5, atol=1e-7)


def test_every_built_in_objective_has_a_closed_form():
    from codebackdoor.defenses.base import ObjectiveDefense
    from codebackdoor.registry import registry

    defenses = registry("defenses")
    objectives = [
        name for name in defenses.names() if issubclass(defenses.get(name), ObjectiveDefense)
    ]
    assert objectives
    for name in objectives:
        assert supports_closed_form(defenses.get(name)), name


def test_the_loss_hands_its_gradients_over_once():
    objective, epoch = OBJECTIVES["ce"]
    h, w, b, labels = problem()
    loss = fused_linear_loss(h.requires_grad_(), w, b, labels, objective, epoch)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="once"):
        loss.backward()


@pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no native bf16"
)
def test_under_autocast_the_layer_multiplies_in_the_autocast_dtype():
    """What the Trainer's bf16 mixed precision does to float32 weights: the same products."""
    objective, epoch = OBJECTIVES["dece"]
    inputs = problem(rows=64, hidden=32, vocab=97)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = unfused(objective, epoch, *inputs)
        actual = fused(objective, epoch, *inputs, block_rows=16)
    torch.testing.assert_close(actual[0], expected[0], rtol=1e-3, atol=1e-4)
    for name, want, got in zip(("hidden", "weight", "bias"), expected[1], actual[1], strict=True):
        assert got.dtype == torch.float32, name
        scale = want.abs().max().item()
        torch.testing.assert_close(got, want, rtol=1.6e-2, atol=1.6e-2 * scale, msg=name)
    exact = fused(objective, epoch, *inputs, block_rows=16)
    assert not torch.equal(exact[1][1], actual[1][1])  # autocast did change the products


def test_the_objective_sees_one_block_of_real_rows_at_a_time():
    seen = []

    class Spy(CrossEntropy):
        def closed_form(self, logits, labels, epoch):
            seen.append((logits.shape[0], bool((labels == IGNORE_INDEX).any())))
            return super().closed_form(logits, labels, epoch)

    h, w, b, labels = problem(rows=37, ignored=5)  # 8 ignored, 29 real rows
    fused_linear_loss(h, w, b, labels, Spy(), 1, block_rows=10)
    assert seen == [(10, False), (10, False), (9, False)]
