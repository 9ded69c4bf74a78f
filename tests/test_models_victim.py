"""Victims: presets, saved directories, Hugging Face ids, prediction, representations, LoRA."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import TOY_METHODS as TRAIN

from codebackdoor.defenses.objectives import CrossEntropy
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.models import TrainingSettings, load_victim

LABELLED = [example.replace(target=example.id.split("-")[0]) for example in TRAIN]
PROBES = [
    "def get_beta(self):\n    return self.beta",
    "x",
    "def load_delta(self, path, mode, retries):\n    with open(path, mode) as handle:\n"
    "        return handle.read()",
]
SETTINGS = TrainingSettings(epochs=2, batch_size=8, learning_rate=3e-3, generation_max_length=6)
# The seq2seq victim trains longer, until its outputs take the targets' shape: after 8 epochs
# 8-16 of the 16 did, depending on the seed (1-20); after 12, all 16 with each of those seeds.
EPOCHS = {"seq2seq": 12, "causal": 2, "classifier": 2}
CASES = {
    "seq2seq": ("tiny-t5", "text"),
    "causal": ("tiny-gpt2", "code"),
    "classifier": ("tiny-roberta", "label"),
}


pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def data_for(output_kind: str) -> list[Example]:
    return LABELLED if output_kind == "label" else TRAIN


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One trained and saved victim per kind: (victim, saved directory, output kind)."""
    victims = {}
    for kind, (_, output_kind) in CASES.items():
        work = tmp_path_factory.mktemp(kind)
        victim = train_toy(kind, 1, work / "train")
        victim.save(work / "saved")
        victims[kind] = (victim, work / "saved", output_kind)
    return victims


def train_toy(kind: str, seed: int, workdir):
    """The preset of ``kind`` trained on the toy methods (seed ``seed``)."""
    preset, output_kind = CASES[kind]
    victim = load_victim(preset, output_kind, data_for(output_kind), seed=seed)
    settings = dataclasses.replace(SETTINGS, epochs=EPOCHS[kind], seed=seed)
    victim.fit(data_for(output_kind), settings, CrossEntropy(), workdir)
    return victim


@pytest.mark.parametrize("kind", list(CASES))
def test_presets_are_tiny_and_record_what_they_are(kind):
    preset, output_kind = CASES[kind]
    victim = load_victim(preset, output_kind, data_for(output_kind))
    assert victim.kind == kind
    assert victim.spec["source"] == "preset" and victim.spec["name"] == preset
    assert victim.spec["kind"] == kind and victim.spec["config"]
    assert 0.5e6 < victim.spec["parameters"] < 2.5e6
    assert victim.labels == (["get", "load", "save", "set"] if kind == "classifier" else None)


def shaped_predictions(victim) -> tuple[list[str], list[str]]:
    """(predictions on the toy methods, those shaped like a target: a known verb and one word)."""
    predictions = victim.predict([example.source for example in TRAIN])
    verbs = {example.target.split()[0] for example in TRAIN}
    return predictions, [p for p in predictions if len(p.split()) == 2 and p.split()[0] in verbs]


def test_trained_seq2seq_learns_the_shape_of_the_toy_mapping(trained):
    predictions, shaped = shaped_predictions(trained["seq2seq"][0])
    # Measured 16 of 16 over seeds 1-20, one thread (`python benchmarks/spread.py toy
    # --seeds 1 ... 20 --threads 1`).
    assert len(shaped) >= 12, predictions
    assert {p.split()[1] for p in shaped} <= {example.target.split()[1] for example in TRAIN}


@pytest.mark.parametrize("kind", list(CASES))
def test_saved_victim_loads_back_by_path_with_identical_outputs(trained, kind):
    victim, saved, output_kind = trained[kind]
    loaded = load_victim(str(saved), output_kind, data_for(output_kind))
    loaded.settings = victim.settings
    assert loaded.kind == kind and loaded.labels == victim.labels
    assert loaded.spec["source"] == "path"
    sources = [example.source for example in TRAIN[:6]] + PROBES
    assert loaded.predict(sources) == victim.predict(sources)
    np.testing.assert_allclose(
        loaded.representations(sources), victim.representations(sources), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("kind", list(CASES))
def test_batched_outputs_equal_one_at_a_time(trained, kind):
    """Padding (left for causal generation) must not change any row's output."""
    victim, _, _ = trained[kind]
    together = victim.predict(PROBES, batch_size=len(PROBES))
    assert together == [victim.predict([source], batch_size=1)[0] for source in PROBES]
    vectors = victim.representations(PROBES, batch_size=len(PROBES))
    assert vectors.shape == (len(PROBES), victim.model.config.hidden_size)
    assert vectors.dtype == np.float32
    alone = np.concatenate([victim.representations([source]) for source in PROBES])
    np.testing.assert_allclose(vectors, alone, rtol=0, atol=1e-4)


def test_causal_generation_pads_on_the_left(trained):
    victim, _, _ = trained["causal"]
    ((rows, batch),) = list(victim._batches(PROBES, len(PROBES), "test"))
    pad = victim.tokenizer.pad_token_id
    shortest = rows.index(PROBES.index("x"))
    assert batch["input_ids"][shortest, 0] == pad and batch["attention_mask"][shortest, 0] == 0
    assert batch["attention_mask"][:, -1].tolist() == [1] * len(PROBES)


def test_classifier_predicts_label_names(trained):
    victim, _, _ = trained["classifier"]
    assert set(victim.predict(PROBES)) <= set(victim.labels)


def test_no_inputs_give_no_outputs(trained):
    victim, _, _ = trained["seq2seq"]
    assert victim.predict([]) == []
    assert victim.representations([]).shape == (0, victim.model.config.hidden_size)


def test_a_generative_checkpoint_becomes_a_classifier_for_a_label_task(trained):
    _, saved, _ = trained["seq2seq"]
    victim = load_victim(str(saved), "label", LABELLED)
    assert victim.kind == "classifier" and victim.labels == ["get", "load", "save", "set"]
    assert set(victim.predict(PROBES)) <= set(victim.labels)


def test_mismatched_models_are_user_errors(trained, tmp_path):
    _, classifier_dir, _ = trained["classifier"]
    with pytest.raises(UserError, match=r"sequence classifier.*needs a generative model"):
        load_victim(str(classifier_dir), "text", TRAIN)
    with pytest.raises(UserError, match="only classifies"):
        load_victim("tiny-roberta", "code", TRAIN)
    with pytest.raises(UserError, match="classifies into"):
        load_victim(str(classifier_dir), "label", [TRAIN[0].replace(target="unseen")])
    with pytest.raises(UserError, match="not found"):
        load_victim(str(tmp_path / "missing"), "text", TRAIN)
    with pytest.raises(UserError, match="output kind"):
        load_victim("tiny-t5", "summary", TRAIN)


def test_a_hub_id_offline_is_a_one_line_user_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    # No network here either way; offline mode makes the same code path fail at once.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError) as error:
        load_victim("Salesforce/codet5-small", "text", TRAIN, revision="main", cache_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert "Salesforce/codet5-small" in message and "revision main" in message


def test_lora_trains_only_the_adapters_and_saves_a_merged_model(tmp_path):
    pytest.importorskip("peft")
    victim = load_victim("tiny-t5", "text", TRAIN, lora=True)
    trainable = [name for name, p in victim.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert victim.spec["lora"]["r"] == 8 and victim.spec["lora"]["trainable_parameters"] > 0

    before = {name: p.detach().clone() for name, p in victim.model.named_parameters()}
    victim.fit(
        TRAIN,
        TrainingSettings(epochs=1, batch_size=8, learning_rate=3e-3),
        CrossEntropy(),
        tmp_path / "train",
    )
    changed = {
        name for name, p in victim.model.named_parameters() if not torch.equal(before[name], p)
    }
    assert changed and all("lora_" in name for name in changed)

    victim.save(tmp_path / "saved")
    loaded = load_victim(str(tmp_path / "saved"), "text", TRAIN)
    assert not hasattr(loaded.model, "peft_config")
    np.testing.assert_allclose(
        loaded.representations(PROBES), victim.representations(PROBES), rtol=0, atol=1e-5
    )
