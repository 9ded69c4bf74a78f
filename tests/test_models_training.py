"""The training engine: prompt masking, the objective's epochs, determinism and resume."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import TOY_METHODS as TRAIN

from codebackdoor.errors import UserError
from codebackdoor.models import TrainingSettings, load_victim
from codebackdoor.models.checkpoints import EPOCHS_FILE, latest_checkpoint
from codebackdoor.models.objective import next_token_labels
from codebackdoor.models.tokenizer import PROMPT_SEPARATOR
from codebackdoor.models.training import Collator, training_features

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


class RecordingCrossEntropy:
    """Cross-entropy with the ObjectiveDefense.loss signature that remembers what it was given."""

    def __init__(self):
        self.calls: list[tuple[int, tuple[int, ...], tuple[int, ...]]] = []

    def loss(self, logits, labels, epoch):
        self.calls.append((epoch, tuple(logits.shape), tuple(labels.shape)))
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
        )


def settings(**changes) -> TrainingSettings:
    values = {"epochs": 2, "batch_size": 8, "generation_max_length": 6, "learning_rate": 2e-3}
    values.update(changes)
    return TrainingSettings(**values)


def weights(victim) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in victim.model.state_dict().items()}


def assert_same_weights(left, right):
    assert left.keys() == right.keys()
    for name in left:
        torch.testing.assert_close(left[name], right[name], rtol=0, atol=1e-6, msg=name)


def test_causal_labels_ignore_exactly_the_prompt_and_the_padding():
    victim = load_victim("tiny-gpt2", "code", TRAIN)
    tokenizer = victim.tokenizer
    examples = [TRAIN[0], TRAIN[5].replace(source="x", target="a much longer target text here")]
    features = training_features(tokenizer, "causal", examples, settings(), None)
    separator = tokenizer.convert_tokens_to_ids(PROMPT_SEPARATOR)
    for feature, example in zip(features, examples, strict=True):
        prompt_length = feature["input_ids"].index(separator) + 1
        target = tokenizer(example.target, add_special_tokens=False)["input_ids"]
        assert feature["labels"] == [-100] * prompt_length + target + [tokenizer.eos_token_id]
        assert feature["input_ids"][prompt_length:] == feature["labels"][prompt_length:]

    batch = Collator("causal", tokenizer.pad_token_id)(features)
    lengths = [len(feature["input_ids"]) for feature in features]
    for row, length in enumerate(lengths):
        assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (max(lengths) - length)
        assert set(batch["labels"][row, length:].tolist()) <= {-100}
        assert set(batch["input_ids"][row, length:].tolist()) <= {tokenizer.pad_token_id}

    shifted = next_token_labels(batch["labels"])
    assert shifted.shape == batch["labels"].shape
    assert shifted[:, :-1].tolist() == batch["labels"][:, 1:].tolist()
    assert shifted[:, -1].tolist() == [-100, -100]


def test_seq2seq_decoder_starts_with_the_start_token_and_ignores_padding():
    victim = load_victim("tiny-t5", "text", TRAIN)
    features = training_features(victim.tokenizer, "seq2seq", TRAIN[:3], settings(), None)
    batch = Collator("seq2seq", 0, victim.model.prepare_decoder_input_ids_from_labels)(features)
    start = victim.model.config.decoder_start_token_id
    assert batch["decoder_input_ids"][:, 0].tolist() == [start] * 3
    labels = batch["labels"]
    assert batch["decoder_input_ids"][:, 1:].tolist() == labels.clamp(min=0)[:, :-1].tolist()
    assert all(row[-1] == victim.tokenizer.eos_token_id for row in (f["labels"] for f in features))


# Second-epoch mean loss over the first, seeds 1-20 with 1 thread and 1-11 with 2, where each
# seed gave the same value (`python benchmarks/spread.py toy`): tiny-t5 0.555-0.644, tiny-gpt2
# 0.779-0.828; asserted below 0.9. The tiny RoBERTa classifier, 4 steps on 16 examples, lands
# either side of 1 (0.924-1.007; other learning rates did no better), so a falling loss is no
# behaviour of it to assert; that it learns is checked where it trains longer (the BKI victim
# in test_defenses_filters.py).
@pytest.mark.parametrize(
    ("preset", "output_kind", "logits_rank", "loss_falls"),
    [("tiny-t5", "text", 3, True), ("tiny-gpt2", "code", 3, True),
     ("tiny-roberta", "label", 2, False)],
)
def test_objective_gets_the_1_based_epoch_and_epoch_records_come_back(
    tmp_path, preset, output_kind, logits_rank, loss_falls
):
    data = (
        TRAIN if output_kind != "label" else [e.replace(target=e.id.split("-")[0]) for e in TRAIN]
    )
    victim = load_victim(preset, output_kind, data)
    objective = RecordingCrossEntropy()
    seen_modes = []

    def on_epoch_end(epoch):
        seen_modes.append(victim.model.training)
        return {"probe": epoch * 10}

    records = victim.fit(data, settings(), objective, tmp_path, on_epoch_end=on_epoch_end)

    steps_per_epoch = len(data) // 8
    assert [epoch for epoch, _, _ in objective.calls] == [1] * steps_per_epoch + [
        2
    ] * steps_per_epoch
    assert {len(logits) for _, logits, _ in objective.calls} == {logits_rank}
    assert all(logits[:-1] == labels for _, logits, labels in objective.calls)
    assert seen_modes == [False, False]
    assert [(r["epoch"], r["probe"]) for r in records] == [(1, 10), (2, 20)]
    if loss_falls:
        assert records[1]["loss"] < 0.9 * records[0]["loss"], records
    assert json.loads((tmp_path / EPOCHS_FILE).read_text()) == records
    assert latest_checkpoint(tmp_path)[1] == records


def test_two_fits_with_the_same_seed_give_identical_weights(tmp_path):
    results = []
    for run in ("a", "b"):
        victim = load_victim("tiny-t5", "text", TRAIN, seed=3)
        records = victim.fit(TRAIN, settings(seed=3), RecordingCrossEntropy(), tmp_path / run)
        results.append((weights(victim), records))
    assert_same_weights(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_resume_after_a_crash_equals_an_uninterrupted_fit(tmp_path):
    def probe(epoch):
        return {"probe": epoch}

    reference = load_victim("tiny-t5", "text", TRAIN)
    expected = reference.fit(
        TRAIN, settings(), RecordingCrossEntropy(), tmp_path / "ref", on_epoch_end=probe
    )

    def crash_in_epoch_2(epoch):
        if epoch == 2:
            raise KeyboardInterrupt  # interrupted before epoch 2's checkpoint
        return probe(epoch)

    crashed = load_victim("tiny-t5", "text", TRAIN)
    with pytest.raises(KeyboardInterrupt):
        crashed.fit(
            TRAIN,
            settings(),
            RecordingCrossEntropy(),
            tmp_path / "run",
            on_epoch_end=crash_in_epoch_2,
        )

    resumed = load_victim("tiny-t5", "text", TRAIN, seed=99)  # its own init must not matter
    objective = RecordingCrossEntropy()
    records = resumed.fit(
        TRAIN, settings(), objective, tmp_path / "run", on_epoch_end=probe, resume=True
    )

    assert {epoch for epoch, _, _ in objective.calls} == {2}
    assert records == expected
    assert_same_weights(weights(resumed), weights(reference))


def test_resume_of_a_shorter_fit_continues_it(tmp_path):
    """The brief's simulation: 1 epoch, then resume to 2 (a constant schedule, which does not
    depend on the planned number of epochs)."""
    constant = {"lr_scheduler": "constant"}
    reference = load_victim("tiny-gpt2", "code", TRAIN)
    expected = reference.fit(TRAIN, settings(**constant), RecordingCrossEntropy(), tmp_path / "ref")

    first = load_victim("tiny-gpt2", "code", TRAIN)
    first.fit(TRAIN, settings(epochs=1, **constant), RecordingCrossEntropy(), tmp_path / "run")
    second = load_victim("tiny-gpt2", "code", TRAIN)
    records = second.fit(
        TRAIN, settings(**constant), RecordingCrossEntropy(), tmp_path / "run", resume=True
    )

    assert records == expected
    assert_same_weights(weights(second), weights(reference))


def test_resume_drops_incomplete_checkpoints_and_a_fresh_fit_drops_all(tmp_path):
    data = TRAIN[:8]
    victim = load_victim("tiny-t5", "text", data)
    victim.fit(data, settings(epochs=1), RecordingCrossEntropy(), tmp_path)
    (complete,) = tmp_path.glob("checkpoint-*")
    (tmp_path / "checkpoint-999").mkdir()  # a save that died before its records were written
    assert latest_checkpoint(tmp_path)[0] == complete

    records = victim.fit(data, settings(), RecordingCrossEntropy(), tmp_path, resume=True)
    assert [record["epoch"] for record in records] == [1, 2]
    assert not (tmp_path / "checkpoint-999").exists()

    victim.fit(data, settings(epochs=1), RecordingCrossEntropy(), tmp_path)
    assert [path.name for path in tmp_path.glob("checkpoint-*")] == [complete.name]
    assert [record["epoch"] for record in json.loads((tmp_path / EPOCHS_FILE).read_text())] == [1]


def test_settings_are_checked():
    with pytest.raises(UserError, match="epochs"):
        TrainingSettings(epochs=0)
    with pytest.raises(UserError, match="learning_rate"):
        TrainingSettings(learning_rate=0)
    assert TrainingSettings(max_source_length=1000).source_length("causal", 1024) == 1024 - 64
    assert TrainingSettings(max_source_length=900).source_length("causal", 1024) == 900
    assert TrainingSettings(max_source_length=128).source_length("seq2seq", 100) == 100


def test_training_on_nothing_is_a_user_error(tmp_path):
    victim = load_victim("tiny-t5", "text", TRAIN)
    with pytest.raises(UserError, match="empty"):
        victim.fit([], settings(), RecordingCrossEntropy(), tmp_path)


def test_length_grouped_order_depends_on_seed_and_epoch_alone():
    from codebackdoor.models.trainer import LengthGroupedEpochSampler

    lengths = [(7 * index) % 97 + 3 for index in range(400)]
    sampler = LengthGroupedEpochSampler(lengths, batch_size=8, seed=5)
    sampler.set_epoch(1)
    first = list(sampler)
    torch.manual_seed(123)  # the global generator must not matter
    again = list(sampler)
    sampler.set_epoch(2)
    next_epoch = list(sampler)
    assert first == again and first != next_epoch
    assert sorted(first) == list(range(400))

    def mean_spread(order):
        batches = [order[i:i + 8] for i in range(0, len(order), 8)]
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b)
                   for b in batches) / len(batches)

    shuffled = torch.randperm(400, generator=torch.Generator().manual_seed(5)).tolist()
    assert mean_spread(first) < mean_spread(shuffled) / 4


@pytest.mark.parametrize("grouped", [True, False])
def test_the_trainer_draws_length_grouped_batches_when_asked(tmp_path, grouped):
    from codebackdoor.models.trainer import LengthGroupedEpochSampler
    from codebackdoor.models.training import build_trainer

    victim = load_victim("tiny-t5", "text", TRAIN)
    features = training_features(victim.tokenizer, "seq2seq", TRAIN, settings(), None)
    trainer = build_trainer(victim.model, victim.tokenizer, "seq2seq", features,
                            settings(length_grouped=grouped), RecordingCrossEntropy(), tmp_path)
    assert isinstance(trainer._get_train_sampler(), LengthGroupedEpochSampler) == grouped
