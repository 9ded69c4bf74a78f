"""ONION: batched perplexities, trigger removal on real text, thresholds, code units, errors."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import TOY_METHODS, read_csv_rows

from codebackdoor.attacks.nl_triggers import BadPre
from codebackdoor.code.tokens import leaf_tokens
from codebackdoor.defenses import load_defense
from codebackdoor.defenses.base import DefenseContext
from codebackdoor.defenses.onion import ONION, PerplexityScorer, remove_units
from codebackdoor.defenses.units import units
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.models import load_victim
from codebackdoor.presets import Preset
from codebackdoor.registry import registry

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

PRESETS = Path(__file__).resolve().parents[1] / "defenses"
CODE = "def load(self, path):\n    data = open(path).read()\n    return self.parse(data)\n"


@dataclass
class FakeTask:
    input_lang: str


def context(lang: str, clean: list[Example], workdir: Path) -> DefenseContext:
    return DefenseContext(task=FakeTask(lang), clean=clean, seed=1, workdir=workdir)


def lyra_examples(path: Path, count: int) -> list[Example]:
    rows = read_csv_rows(path)[:count]
    return [Example(f"lyra-{i}", row["src"], row["tgt"], "nl") for i, row in enumerate(rows)]


@pytest.fixture(scope="module")
def nl_onion(lyra_dir, tmp_path_factory):
    """ONION with the tiny LM trained briefly on 200 clean Lyra descriptions (the validation
    split, as the runner hands it over)."""
    return nl_onion_trained(lyra_dir, 1, tmp_path_factory.mktemp("nl"))


def nl_onion_trained(lyra_dir: Path, seed: int, workdir: Path) -> ONION:
    onion = ONION(lm_epochs=2)
    clean = lyra_examples(lyra_dir / "valid.csv", 200)
    onion.fit([], DefenseContext(task=FakeTask("nl"), clean=clean, seed=seed, workdir=workdir))
    return onion


@pytest.fixture(scope="module")
def code_onions(tmp_path_factory):
    """Token and line ONION on Python, each with an LM of one epoch on the toy methods."""
    onions = {}
    for granularity in ("token", "line"):
        onion = ONION(granularity=granularity, lm_epochs=1)
        onion.fit([], context("python", TOY_METHODS, tmp_path_factory.mktemp(granularity)))
        onions[granularity] = onion
    return onions


def reference_perplexity(model, sequence: list[int], prefix_length: int) -> float:
    """One unpadded sequence through the model's own loss, the prefix masked out."""
    ids = torch.tensor([sequence])
    labels = ids.clone()
    labels[:, :prefix_length] = -100
    with torch.no_grad():
        return model(input_ids=ids, labels=labels).loss.exp().item()


TEXTS = [
    "Use $conn$ to execute SQL and return all query results.",
    "query",
    "Use $conn$ to execute SQL and return all query results.",  # a duplicate
    "Get the database engine via $host$, execute the SQL statement ( query all the weight_col "
    "in the TABLE where arm_col is $arm_col$ ) and get all the data. Return the result.",
    "If bb the query result is None, return an error.",
]


@pytest.mark.parametrize("prefix", [[3], []], ids=["preset separator", "no prefix"])
def test_batched_perplexities_equal_one_sequence_at_a_time(prefix):
    victim = load_victim("tiny-gpt2", "text", [Example("a", "", text, "nl") for text in TEXTS])
    model = victim.model.eval()
    calls = []
    model.register_forward_hook(lambda module, args, output: calls.append(1))
    scorer = PerplexityScorer(model, victim.tokenizer, prefix, max_length=256, batch_tokens=4096)
    batched = scorer.perplexities(TEXTS)
    assert len(calls) == 1  # four distinct texts, one padded forward
    for text, value in zip(TEXTS, batched, strict=True):
        ids = victim.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not prefix and len(ids) == 1:
            assert value != value  # NaN: a lone token with no context has nothing scored
            continue
        expected = reference_perplexity(model, prefix + ids, len(prefix) or 1)
        assert value == pytest.approx(expected, rel=1e-5)
    # Batches bounded by padded tokens give the same values.
    small = PerplexityScorer(model, victim.tokenizer, prefix, max_length=256, batch_tokens=40)
    assert small.perplexities(TEXTS) == pytest.approx(batched, rel=1e-5, nan_ok=True)


def removal_rates(onion: ONION, lyra_dir: Path) -> tuple[float, float]:
    """(trigger rate, random-word rate): the share of 40 BadPre-triggered Lyra test inputs in
    which ONION removes the trigger, and in which it removes one other word picked at random."""
    rng = random.Random(7)
    trigger = BadPre()
    test = lyra_examples(lyra_dir / "test.csv", 40)
    inputs = [trigger.apply(example.source, "nl", rng)[0] for example in test]
    trigger_removed = random_removed = 0
    for text, scored in zip(inputs, onion.suspicions(inputs), strict=True):
        assert [unit.text for unit, _ in scored] == text.split()
        trigger_removed += any(s > 0 for unit, s in scored if unit.text == "bb")
        _, suspicion = rng.choice([pair for pair in scored if pair[0].text != "bb"])
        random_removed += suspicion > 0
    return trigger_removed / len(inputs), random_removed / len(inputs)


def test_onion_removes_the_badpre_trigger_far_more_often_than_a_random_word(nl_onion, lyra_dir):
    trigger_rate, random_rate = removal_rates(nl_onion, lyra_dir)
    # Measured over LM seeds 1-5, one thread (`python benchmarks/spread.py onion --threads 1`):
    # trigger removed in 0.95-1.00 of inputs, a random word in 0.25-0.45; each bound lies
    # further from its range than the range is wide.
    assert trigger_rate >= 0.85, f"trigger removed in {trigger_rate:.0%} of inputs"
    assert random_rate <= 0.7, f"random word removed in {random_rate:.0%}"


def test_a_unit_is_removed_iff_its_suspicion_exceeds_the_threshold(nl_onion):
    text = "Use $conn$ to execute SQL ( query all bb columns in the table ) and return the results."
    [scored] = nl_onion.suspicions([text])
    values = sorted(s for _, s in scored)
    try:
        for threshold in (values[0] - 1, values[len(values) // 2], values[-1]):
            nl_onion.threshold = threshold
            expected = remove_units(text, [unit for unit, s in scored if s > threshold])
            assert nl_onion.purify([text]) == [expected]
        # A unit whose suspicion equals the threshold stays.
        nl_onion.threshold = values[len(values) // 2]
        kept = [unit.text for unit, s in scored if s == nl_onion.threshold]
        assert all(word in nl_onion.purify([text])[0].split() for word in kept)
    finally:
        nl_onion.threshold = 0.0


def test_inputs_without_two_units_pass_unchanged(nl_onion):
    assert nl_onion.purify(["", "   ", "select", " bb "]) == ["", "   ", "select", " bb "]
    assert nl_onion.suspicions(["select"]) == [[]]


def test_code_units_are_tree_sitter_tokens_or_lines(code_onions):
    for granularity, onion in code_onions.items():
        [scored] = onion.suspicions([CODE])
        expected = units(CODE, "python", granularity)
        assert [unit for unit, _ in scored] == expected
        if granularity == "token":
            assert [unit.text for unit in expected] == [t.text for t in leaf_tokens(CODE, "python")]
        else:
            assert len(expected) == 3
        onion.threshold = -1e9
        try:
            everything_removed = onion.purify([CODE])[0]
        finally:
            onion.threshold = 0.0
        assert not everything_removed.strip()
        assert onion.purify([CODE]) == [remove_units(CODE, [u for u, s in scored if s > 0])]


def test_a_local_lm_directory_scores_after_its_begin_token(tmp_path):
    saved = tmp_path / "lm"
    load_victim("tiny-gpt2", "text", TOY_METHODS).save(saved)
    onion = ONION(lm=str(saved))
    onion.fit([], context("python", [], tmp_path / "work"))  # a trained LM needs no sample
    [scored] = onion.suspicions([CODE])
    assert len(scored) == len(leaf_tokens(CODE, "python"))
    assert all(s == s for _, s in scored)  # no NaN: the begin token gives every token context


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"granularity": "word"}, r"^onion: granularity = 'word' must be one of 'token', 'line'$"),
        ({"threshold": float("nan")}, r"^onion: threshold = nan must be a finite number$"),
        ({"lm_epochs": 0}, r"^onion: lm_epochs = 0 must be at least 1$"),
        ({"max_length": 1}, r"^onion: max_length = 1 must be at least 2$"),
        ({"batch_tokens": 0}, r"^onion: batch_tokens = 0 must be at least 1$"),
        ({"lm": ""}, r"^onion: lm must name a causal LM"),
    ],
)
def test_bad_parameters_are_one_line_user_errors(parameters, message):
    with pytest.raises(UserError, match=message) as caught:
        ONION(**parameters)
    assert "\n" not in str(caught.value)


def test_what_cannot_work_is_refused_with_one_line(tmp_path):
    with pytest.raises(UserError, match=r"^onion: no tree-sitter tokens for kotlin inputs"):
        ONION().check_applies(FakeTask("kotlin"))
    ONION(granularity="line").check_applies(FakeTask("kotlin"))
    ONION().check_applies(FakeTask("nl"))
    with pytest.raises(UserError, match=r"^onion: granularity = 'line' is for code"):
        ONION(granularity="line").check_applies(FakeTask("nl"))
    with pytest.raises(UserError, match="onion: lm 'tiny-t5' is a seq2seq model"):
        ONION(lm="tiny-t5").fit([], context("python", TOY_METHODS, tmp_path / "t5"))
    with pytest.raises(UserError, match="the clean sample has no inputs"):
        ONION().fit([], context("python", [], tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="fit"):
        ONION().purify(["a b"])


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("onion.toml", ONION(scoring="openbackdoor", tie="remove")),
        ("onion-lines.toml", ONION(scoring="openbackdoor", tie="remove", granularity="line")),
    ],
)
def test_registry_name_and_presets(filename, expected):
    cls = registry("defenses").get("onion")
    assert cls is ONION and cls.stages == ("purify",)
    assert load_defense("onion") == ONION(threshold=0.0)
    assert load_defense(str(PRESETS / filename)) == expected
    assert Preset.read(PRESETS / filename, "defense").citation == ONION.citation
