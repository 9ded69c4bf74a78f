"""GCE, the in-trust loss and moderate fitting against their per-position definitions."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from codebackdoor.defenses import ObjectiveDefense, load_defense
from codebackdoor.defenses.objectives import CrossEntropy, ModerateFitting
from codebackdoor.defenses.robust_losses import GeneralizedCrossEntropy, InTrust
from codebackdoor.errors import UserError
from codebackdoor.presets import Preset
from codebackdoor.registry import describe, registry

PRESETS = Path(__file__).resolve().parents[1] / "defenses"
IGNORE = -100


def make_case(dtype=torch.float32, vocab=23, scale=6.0):
    """Logits wide enough that some probabilities fall under the 1e-7 floor; ignored tails."""
    generator = torch.Generator().manual_seed(3)
    logits = (torch.randn(3, 6, vocab, generator=generator, dtype=torch.float64) * scale).to(dtype)
    labels = torch.randint(0, vocab, (3, 6), generator=generator)
    labels[0, -2:] = IGNORE
    labels[2, 0] = IGNORE
    return logits, labels


def naive_gce(logits, labels, q):
    """(1 - p_y^q)/q per position, in float64, looped over the non-ignored positions."""
    terms = []
    for row, label in zip(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), strict=True):
        if label != IGNORE:
            p_gold = torch.softmax(row.double(), dim=0)[label]
            terms.append((1 - p_gold**q) / q)
    return torch.stack(terms).mean()


def naive_in_trust(logits, labels, alpha, beta, delta):
    """α·CE + β·DCE per position with the released code's dense clamped one-hot, float64."""
    vocab = logits.shape[-1]
    ce_terms, dce_terms = [], []
    for row, label in zip(logits.reshape(-1, vocab), labels.reshape(-1), strict=True):
        if label == IGNORE:
            continue
        p = torch.softmax(row.double(), dim=0)
        ce_terms.append(-torch.log(p[label]))
        p = p.clamp(min=1e-7)
        q = F.one_hot(label, vocab).double().clamp(min=1e-4)
        dce_terms.append(-(p * torch.log(delta * p + (1 - delta) * q)).sum())
    return alpha * torch.stack(ce_terms).mean() + beta * torch.stack(dce_terms).mean()


def value_and_grad(loss, logits, labels):
    leaf = logits.detach().clone().requires_grad_()
    value = loss(leaf, labels)
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad


@pytest.mark.parametrize("q", [0.5, 0.1, 1.0])
def test_gce_equals_the_per_position_formula_in_value_and_gradient(q):
    logits, labels = make_case(torch.float64)
    value, grad = value_and_grad(
        lambda z, y: GeneralizedCrossEntropy(q=q).loss(z, y, 1), logits, labels
    )
    expected, expected_grad = value_and_grad(lambda z, y: naive_gce(z, y, q), logits, labels)
    torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-8)


def test_gce_tends_to_cross_entropy_as_q_goes_to_zero():
    logits, labels = make_case()
    ce = CrossEntropy().loss(logits, labels, 1)
    # (1 - e^{-q·CE})/q = CE - q·CE²/2 + …: within 1e-5 of CE at q = 1e-7 in float32.
    near_zero = GeneralizedCrossEntropy(q=1e-7).loss(logits, labels, 1)
    torch.testing.assert_close(near_zero, ce, rtol=1e-5, atol=0)
    assert GeneralizedCrossEntropy(q=0.5).loss(logits, labels, 1) < ce


@pytest.mark.parametrize(("alpha", "beta", "delta"), [(0.2, 0.8, 0.5), (1.0, 0.8, 0.5), (0, 1, 0)])
def test_in_trust_equals_the_dense_formula_in_value_and_gradient(alpha, beta, delta):
    logits, labels = make_case(torch.float64)
    assert (torch.softmax(logits, -1) < 1e-7).any()  # the probability floor is exercised
    loss = InTrust(alpha=alpha, beta=beta, delta=delta)
    value, grad = value_and_grad(lambda z, y: loss.loss(z, y, 1), logits, labels)
    expected, expected_grad = value_and_grad(
        lambda z, y: naive_in_trust(z, y, alpha, beta, delta), logits, labels
    )
    torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-8)


def test_in_trust_defaults_are_the_dece_comparison_weights():
    logits, labels = make_case(torch.float64)
    assert InTrust() == InTrust(alpha=0.2, beta=0.8, delta=0.5)
    dce_only = InTrust(alpha=0.0, beta=1.0).loss(logits, labels, 1)
    ce = CrossEntropy().loss(logits, labels, 1)
    torch.testing.assert_close(InTrust().loss(logits, labels, 1), 0.2 * ce + 0.8 * dce_only)


LOSSES = [GeneralizedCrossEntropy(), InTrust(), ModerateFitting()]


@pytest.mark.parametrize("objective", LOSSES, ids=lambda o: o.name)
def test_ignored_positions_change_nothing(objective):
    logits, labels = make_case()
    value = objective.loss(logits, labels, 1)
    # Whatever sits at ignored positions, and however many of them there are, is left out.
    noisy = logits.clone()
    noisy[labels == IGNORE] = 1e4
    padded_logits = torch.cat([noisy, torch.zeros(3, 4, noisy.shape[-1])], dim=1)
    padded_labels = torch.cat([labels, torch.full((3, 4), IGNORE)], dim=1)
    torch.testing.assert_close(objective.loss(padded_logits, padded_labels, 1), value)


@pytest.mark.parametrize("objective", LOSSES, ids=lambda o: o.name)
def test_all_ignored_gives_zero_not_nan(objective):
    logits, _ = make_case()
    leaf = logits.requires_grad_()
    value = objective.loss(leaf, torch.full((3, 6), IGNORE), 1)
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(leaf.grad, torch.zeros_like(leaf.grad))


@pytest.mark.parametrize("objective", LOSSES, ids=lambda o: o.name)
def test_half_precision_logits_are_computed_in_float32(objective):
    logits, labels = make_case(torch.bfloat16, vocab=5000, scale=10.0)
    leaf = logits.requires_grad_()
    value = objective.loss(leaf, labels, 1)
    value.backward()
    assert value.dtype == torch.float32
    assert leaf.grad.dtype == torch.bfloat16
    assert torch.isfinite(value) and torch.isfinite(leaf.grad.float()).all()
    torch.testing.assert_close(value, objective.loss(logits.detach().float(), labels, 1))


def test_moderate_fitting_is_cross_entropy_at_a_tenth_of_the_learning_rate():
    logits, labels = make_case()
    moderate = ModerateFitting()
    assert moderate.learning_rate(5e-4) == pytest.approx(5e-5)
    assert ModerateFitting(learning_rate_factor=0.5).learning_rate(1e-3) == pytest.approx(5e-4)
    assert CrossEntropy().learning_rate(5e-4) == 5e-4
    torch.testing.assert_close(
        moderate.loss(logits, labels, 1), CrossEntropy().loss(logits, labels, 1)
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GeneralizedCrossEntropy(q=0.0), r"^gce: q = 0.0 must lie in \(0, 1\]$"),
        (lambda: GeneralizedCrossEntropy(q=1.5), r"^gce: q = 1.5 must lie in \(0, 1\]$"),
        (lambda: InTrust(delta=-0.1), r"^in-trust: delta = -0.1 must lie in \[0, 1\]$"),
        (lambda: InTrust(delta=1.1), r"^in-trust: delta = 1.1 must lie in \[0, 1\]$"),
        (lambda: InTrust(alpha=-0.2), r"^in-trust: alpha = -0.2 must be >= 0$"),
        (lambda: InTrust(beta=-1.0), r"^in-trust: beta = -1.0 must be >= 0$"),
        (lambda: InTrust(alpha=0.0, beta=0.0), r"^in-trust: alpha and beta are both 0"),
        (
            lambda: ModerateFitting(learning_rate_factor=0.0),
            r"^moderate: learning_rate_factor = 0.0 must lie in \(0, 1\]$",
        ),
        (
            lambda: ModerateFitting(learning_rate_factor=2.0),
            r"^moderate: learning_rate_factor = 2.0 must lie in \(0, 1\]$",
        ),
    ],
)
def test_bad_parameters_are_one_line_user_errors(build, message):
    with pytest.raises(UserError, match=message) as caught:
        build()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gce", GeneralizedCrossEntropy(q=0.5)),
        ("in-trust", InTrust(alpha=0.2, beta=0.8, delta=0.5)),
        ("moderate", ModerateFitting(learning_rate_factor=0.1)),
    ],
)
def test_registry_names_presets_and_citations(name, expected):
    cls = registry("defenses").get(name)
    assert cls.name == name and issubclass(cls, ObjectiveDefense)
    assert all(describe(cls))
    assert load_defense(name) == expected
    path = PRESETS / f"{name}.toml"
    assert load_defense(str(path)) == expected
    assert Preset.read(path, "defense").citation == cls.citation
