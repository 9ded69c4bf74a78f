"""The lean DeCE loss against the published dense formula, and the DeCE defense around it."""

import shutil
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

from codebackdoor.defenses import dece
from codebackdoor.defenses.dece import DeCE, dece_loss, dense_dece_loss
from codebackdoor.errors import UserError

IGNORE = -100


def make_case(rows, vocab, *, scale=6.0, dtype=torch.float64, seed=0, ignore_every=5):
    """Random logits wide enough that some probabilities fall under the 1e-7 floor."""
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(rows, vocab, generator=generator, dtype=torch.float64) * scale).to(dtype)
    labels = torch.randint(0, vocab, (rows,), generator=generator)
    if ignore_every:
        labels[::ignore_every] = IGNORE
    return logits, labels


def reference(logits, labels, alpha, epsilon, reduction="mean"):
    """Value and logits-gradient of the dense formula, in float64 through autograd."""
    leaf = logits.detach().double().requires_grad_()
    value = dense_dece_loss(leaf, labels, alpha=alpha, epsilon=epsilon, reduction=reduction)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


def lean(logits, labels, **kwargs):
    leaf = logits.detach().clone().requires_grad_()
    value = dece_loss(leaf, labels, **kwargs)
    value.backward()
    return value.detach(), leaf.grad


@pytest.fixture(params=["eager", "fusable"])
def compile_flag(request, monkeypatch):
    """The eager kernel, or the kernel written for torch.compile run without compiling."""
    if request.param == "fusable":
        kernel = dece._CompiledKernel()
        kernel.compiled = dece._fusable_block
        monkeypatch.setattr(dece, "_compiled_kernel", lambda: kernel)
        return True
    return False


@pytest.mark.parametrize("vocab", [2, 37])
@pytest.mark.parametrize("epoch", [1, 5])
@pytest.mark.parametrize("reduction", ["mean", "reference"])
def test_equals_dense_formula_in_float64(compile_flag, vocab, epoch, reduction):
    logits, labels = make_case(37, vocab)  # 37 rows in blocks of 8: a partial last block
    alpha = 0.99**epoch
    expected_value, expected_grad = reference(logits, labels, alpha, 0.05, reduction)
    value, grad = lean(
        logits,
        labels,
        alpha=alpha,
        epsilon=0.05,
        reduction=reduction,
        compile=compile_flag,
        chunk_rows=8,
    )
    torch.testing.assert_close(value, expected_value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-15)


def test_the_probability_floor_is_exercised():
    logits, _ = make_case(37, 37)
    assert (torch.softmax(logits, dim=1) < dece.PROBABILITY_FLOOR).sum() > 10


@pytest.mark.parametrize("vocab", [2, 1000])
def test_float32_is_close_to_float64_reference(compile_flag, vocab):
    logits, labels = make_case(300, vocab, scale=4.0, dtype=torch.float32)
    expected_value, expected_grad = reference(logits, labels, 0.9, 0.05)
    value, grad = lean(
        logits, labels, alpha=0.9, epsilon=0.05, compile=compile_flag, chunk_rows=128
    )
    assert value.dtype == grad.dtype == torch.float32
    torch.testing.assert_close(value.double(), expected_value, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-4, atol=1e-8)


def test_bfloat16_logits_are_computed_in_float32(compile_flag):
    logits, labels = make_case(64, 500, scale=4.0, dtype=torch.bfloat16)
    expected_value, expected_grad = reference(logits, labels, 0.95, 0.05)
    value, grad = lean(logits, labels, alpha=0.95, epsilon=0.05, compile=compile_flag)
    assert value.dtype == torch.float32 and grad.dtype == torch.bfloat16
    # The value is float32-accurate for the bfloat16 inputs; only the gradient is rounded.
    torch.testing.assert_close(value.double(), expected_value, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-2, atol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "reference"])
def test_all_ignored_gives_zero_loss_and_zero_gradient(compile_flag, reduction):
    logits, _ = make_case(10, 7)
    labels = torch.full((10,), IGNORE)
    value, grad = lean(
        logits, labels, alpha=0.99, epsilon=0.05, reduction=reduction, compile=compile_flag
    )
    assert value.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


def test_reference_reduction_divides_by_every_position():
    logits, labels = make_case(20, 9)  # 4 of 20 ignored
    mean, _ = lean(logits, labels, alpha=0.9, epsilon=0.05, compile=False)
    released, _ = lean(
        logits, labels, alpha=0.9, epsilon=0.05, reduction="reference", compile=False
    )
    torch.testing.assert_close(released, mean * 16 / 20)


def test_batched_logits_keep_their_shape():
    logits, labels = make_case(24, 11)
    value, grad = lean(
        logits.view(4, 6, 11), labels.view(4, 6), alpha=0.9, epsilon=0.05, compile=False
    )
    expected_value, expected_grad = reference(logits, labels, 0.9, 0.05)
    assert grad.shape == (4, 6, 11)
    torch.testing.assert_close(value, expected_value)
    torch.testing.assert_close(grad.reshape(24, 11), expected_grad)


def test_upstream_gradient_scales_the_result():
    logits, labels = make_case(12, 5)
    _, grad = lean(logits, labels, alpha=0.9, epsilon=0.05, compile=False)
    leaf = logits.clone().requires_grad_()
    (dece_loss(leaf, labels, alpha=0.9, epsilon=0.05, compile=False) * 0.25).backward()
    torch.testing.assert_close(leaf.grad, grad * 0.25)


def test_a_second_backward_is_refused():
    logits, labels = make_case(12, 5)
    value = dece_loss(logits.requires_grad_(), labels, alpha=0.9, epsilon=0.05, compile=False)
    value.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="once"):
        value.backward()


def test_no_gradient_is_computed_under_no_grad(monkeypatch):
    handed = []
    eager = dece._eager_block

    def spy(logits, labels, coefficients, grad_out):
        handed.append(grad_out)
        return eager(logits, labels, coefficients, grad_out)

    monkeypatch.setattr(dece, "_eager_block", spy)
    logits, labels = make_case(12, 5)
    with torch.no_grad():
        value = dece_loss(logits.requires_grad_(), labels, alpha=0.9, epsilon=0.05, compile=False)
    assert handed == [None]
    torch.testing.assert_close(value, reference(logits, labels, 0.9, 0.05)[0])


@pytest.mark.parametrize("epoch", [1, 3, 10, 30])
def test_gradient_per_position_is_bounded_by_alpha_over_one_minus_alpha(epoch):
    # |dL/dq_i| <= α/(1-α) for every i; since dL/dz_k = p_k (g_k - Σ_j p_j g_j) with every g in
    # [-α/(1-α), 0], each position's logit gradient has L1 norm <= α/(1-α). CE's reaches 2.
    alpha = 0.8**epoch
    logits, labels = make_case(200, 50, scale=10.0, ignore_every=0)
    logits[torch.arange(200), labels] = -30.0  # confidently wrong: CE's gradient is largest
    _, grad = lean(logits, labels, alpha=alpha, epsilon=0.05, reduction="reference", compile=False)
    per_position = (grad * 200).abs().sum(dim=1)
    assert per_position.max() <= alpha / (1 - alpha) * (1 + 1e-9)
    ce_grad = torch.softmax(logits, dim=1) - F.one_hot(labels, 50)
    assert ce_grad.abs().sum(dim=1).min() > 1.99
    if alpha / (1 - alpha) < 1:
        assert per_position.max() < ce_grad.abs().sum(dim=1).min()


def test_defense_uses_beta_to_the_epoch():
    logits, labels = make_case(30, 13)
    defense = DeCE(compile=False)
    for epoch in (1, 5):
        leaf = logits.clone().requires_grad_()
        value = defense.loss(leaf, labels, epoch)
        torch.testing.assert_close(value, reference(logits, labels, 0.99**epoch, 0.05)[0])
    assert defense.loss(logits, labels, 1) != defense.loss(logits, labels, 5)


def test_warmup_epochs_train_with_cross_entropy():
    logits, labels = make_case(30, 13)
    defense = DeCE(warmup_epochs=2, compile=False)
    cross_entropy = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)
    for epoch in (1, 2):
        torch.testing.assert_close(defense.loss(logits, labels, epoch).float(), cross_entropy)
    after = defense.loss(logits, labels, 3)
    torch.testing.assert_close(after, reference(logits, labels, 0.99**3, 0.05)[0])


@pytest.mark.parametrize(
    "parameters",
    [{"epsilon": 1.0}, {"epsilon": -0.1}, {"beta": 0.0}, {"beta": 1.5}, {"warmup_epochs": -1}],
)
def test_invalid_parameters_are_user_errors(parameters):
    with pytest.raises(UserError, match="dece"):
        DeCE(**parameters)


def test_epochs_are_one_based():
    logits, labels = make_case(4, 3)
    with pytest.raises(ValueError, match="1-based"):
        DeCE(compile=False).loss(logits, labels, 0)


def test_a_failing_compile_falls_back_to_eager():
    kernel = dece._CompiledKernel()

    def broken(*args):
        raise RuntimeError("no compiler here")

    kernel.compiled = broken
    logits, labels = make_case(12, 5)
    leaf = logits.clone().requires_grad_()
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        value = dece._autograd_function().apply(
            leaf, labels, coefficients(logits, labels), kernel, 8, True
        )
    value.backward()
    expected_value, expected_grad = reference(logits, labels, 0.9, 0.05)
    torch.testing.assert_close(value, expected_value)
    torch.testing.assert_close(leaf.grad, expected_grad)
    assert kernel.compiled is None


def coefficients(logits, labels):
    """What dece_loss hands the kernels for α = 0.9, ε = 0.05, mean reduction."""
    off = 0.05 / (logits.shape[1] - 1)
    count = (labels != IGNORE).sum().item()
    return torch.tensor([0.9, 0.95, off, 0.1 * 0.95, 0.1 * off, 1 / count], dtype=logits.dtype)


@pytest.mark.skipif(
    not any(shutil.which(name) for name in ("g++", "c++", "clang++")),
    reason="torch.compile on CPU needs a C++ compiler",
)
def test_compiled_kernel_equals_reference():
    logits, labels = make_case(37, 11, scale=4.0, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager fails the test
        value, grad = lean(logits, labels, alpha=0.9, epsilon=0.05, compile=True, chunk_rows=16)
    expected_value, expected_grad = reference(logits, labels, 0.9, 0.05)
    torch.testing.assert_close(value.double(), expected_value, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-4, atol=1e-8)


def test_describing_the_defense_imports_no_torch():
    code = (
        "import sys, codebackdoor.defenses.dece, codebackdoor.defenses.objectives; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
