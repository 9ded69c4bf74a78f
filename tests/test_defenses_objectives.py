"""The defense base, the plain objectives, and loading defenses by name or TOML preset."""

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from codebackdoor.defenses import Defense, ObjectiveDefense, load_defense
from codebackdoor.defenses.dece import DeCE
from codebackdoor.defenses.objectives import CrossEntropy, LabelSmoothing
from codebackdoor.errors import UserError
from codebackdoor.presets import Preset
from codebackdoor.registry import describe, registry

PRESETS = Path(__file__).resolve().parents[1] / "defenses"
IGNORE = -100


def batch(dtype=torch.float32):
    generator = torch.Generator().manual_seed(1)
    logits = (torch.randn(3, 7, 50, generator=generator) * 3).to(dtype)
    labels = torch.randint(0, 50, (3, 7), generator=generator)
    labels[:, -2:] = IGNORE  # padding at the end of every sequence
    return logits, labels


def test_cross_entropy_equals_torch_mean_over_non_ignored():
    logits, labels = batch()
    expected = F.cross_entropy(logits.reshape(-1, 50), labels.reshape(-1), ignore_index=IGNORE)
    torch.testing.assert_close(CrossEntropy().loss(logits, labels, 1), expected)


@pytest.mark.parametrize("epsilon", [0.05, 0.1])
def test_label_smoothing_equals_torch_label_smoothing(epsilon):
    logits, labels = batch()
    leaf = logits.clone().requires_grad_()
    LabelSmoothing(epsilon=epsilon).loss(leaf, labels, 3).backward()
    reference = logits.clone().requires_grad_()
    expected = F.cross_entropy(
        reference.reshape(-1, 50), labels.reshape(-1), ignore_index=IGNORE, label_smoothing=epsilon
    )
    expected.backward()
    torch.testing.assert_close(LabelSmoothing(epsilon=epsilon).loss(logits, labels, 1), expected)
    torch.testing.assert_close(leaf.grad, reference.grad)
    assert expected != CrossEntropy().loss(logits, labels, 1)


@pytest.mark.parametrize("objective", [CrossEntropy(), LabelSmoothing()])
def test_all_ignored_batch_gives_zero_not_nan(objective):
    logits, _ = batch()
    leaf = logits.requires_grad_()
    value = objective.loss(leaf, torch.full((3, 7), IGNORE), 1)
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(leaf.grad, torch.zeros_like(leaf.grad))


def test_half_precision_logits_are_upcast():
    logits, labels = batch(torch.bfloat16)
    value = CrossEntropy().loss(logits, labels, 1)
    expected = F.cross_entropy(
        logits.float().reshape(-1, 50), labels.reshape(-1), ignore_index=IGNORE
    )
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected)


def test_label_smoothing_rejects_epsilon_outside_unit_interval():
    with pytest.raises(UserError, match="epsilon"):
        LabelSmoothing(epsilon=1.0)


def test_objective_defenses_declare_the_objective_stage_and_apply_to_any_task():
    for defense in (CrossEntropy(), LabelSmoothing(), DeCE()):
        assert isinstance(defense, ObjectiveDefense)
        assert defense.stages == ("objective",)
        assert defense.check_applies(object()) is None


def test_unknown_stage_is_refused_when_the_class_is_defined():
    with pytest.raises(TypeError, match="stages"):

        @dataclass
        class Misdeclared(Defense):
            stages = ("objective", "poison")


def test_registry_describes_every_builtin_objective():
    for name in ("ce", "label-smoothing", "dece"):
        cls = registry("defenses").get(name)
        assert cls.name == name
        description, citation = describe(cls)
        assert description
        if name != "ce":
            assert citation


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ce", CrossEntropy()),
        ("label-smoothing", LabelSmoothing(epsilon=0.05)),
        ("dece", DeCE(epsilon=0.05, beta=0.99)),
    ],
)
def test_a_bare_name_gives_the_paper_defaults(spec, expected):
    assert load_defense(spec) == expected


def test_an_unknown_name_lists_the_valid_names():
    with pytest.raises(UserError, match=r"valid names: .*dece"):
        load_defense("decee")


# Each preset against the setting where it is published (the DeCE authors' README and scripts).
PUBLISHED = {
    "dece.toml": DeCE(epsilon=0.05, beta=0.99),  # README usage
    "dece-class-default.toml": DeCE(epsilon=0.05, beta=0.985),  # README class defaults
    "dece-llm.toml": DeCE(epsilon=0.05, beta=0.8),  # LLM.py
    "dece-2023.toml": DeCE(epsilon=0.01, beta=0.99),  # 2023 scripts
    "label-smoothing.toml": LabelSmoothing(epsilon=0.05),
}


@pytest.mark.parametrize("filename", sorted(PUBLISHED))
def test_presets_match_the_published_settings(filename):
    path = PRESETS / filename
    assert load_defense(str(path)) == PUBLISHED[filename]
    preset = Preset.read(path, "defense")
    assert "NTDXYG/DeCE" in preset.source
    assert preset.citation


def test_every_shipped_preset_builds_and_says_where_it_comes_from():
    names = sorted(path.name for path in PRESETS.glob("*.toml"))
    assert set(PUBLISHED) <= set(names)
    for name in names:
        preset = Preset.read(PRESETS / name, "defense")
        assert preset.citation and preset.source, name
        assert load_defense(str(PRESETS / name)).name == preset.method


def write(tmp_path, text):
    path = tmp_path / "preset.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_unknown_preset_parameter_lists_the_valid_fields(tmp_path):
    spec = write(tmp_path, 'method = "dece"\ncitation = "x"\n[params]\nalpha_base = 0.99\n')
    with pytest.raises(UserError, match=r"alpha_base.*valid: epsilon, beta, warmup_epochs"):
        load_defense(spec)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('beta = "0.99"', "beta = '0.99' must be of type float"),
        ("warmup_epochs = 1.5", "must be of type int"),
        ("beta = true", "must be of type float"),
        ('reduction = "sum"', "'sum' is not one of 'mean', 'reference'"),
    ],
)
def test_preset_values_of_the_wrong_type_are_user_errors(tmp_path, line, message):
    spec = write(tmp_path, f'method = "dece"\n[params]\n{line}\n')
    with pytest.raises(UserError, match=message):
        load_defense(spec)


def test_integer_where_a_float_is_expected_is_accepted(tmp_path):
    assert load_defense(write(tmp_path, 'method = "dece"\n[params]\nbeta = 1\n')) == DeCE(beta=1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[params]\nepsilon = 0.05\n", "needs method"),
        ("method = [\n", "not valid TOML"),
        ('method = "dece"\ncitation = 3\n', "citation must be a string"),
        ('method = "nope"\n', "unknown defense 'nope'"),
    ],
)
def test_malformed_presets_are_user_errors(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_defense(write(tmp_path, text))


def test_missing_preset_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_defense(str(tmp_path / "absent.toml"))
