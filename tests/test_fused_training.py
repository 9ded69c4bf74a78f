"""Training fused with the output layer: per model family, the output layer's input gives the
model's own logits and the fused loss gives the same gradient on every parameter; the trainer
and the runner take the fused path by default, record it, and reach the same result as the
logits path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
from conftest import TOY_METHODS as TRAIN
from test_runner import _lyra_config, small_lyra  # noqa: F401 (a fixture)

from codebackdoor.defenses.dece import DeCE
from codebackdoor.defenses.objectives import CrossEntropy, LabelSmoothing
from codebackdoor.defenses.robust_losses import GeneralizedCrossEntropy, InTrust
from codebackdoor.models import TrainingSettings, load_victim
from codebackdoor.models.fused_loss import fused_linear_loss
from codebackdoor.models.objective import IGNORE_INDEX, next_token_labels
from codebackdoor.models.output_layer import output_layer
from codebackdoor.runner import run

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

VOCAB = 53
SMALL = {"vocab_size": VOCAB}
DECODER = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
           "num_attention_heads": 2, "num_key_value_heads": 1, **SMALL}
GPT = {"n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 32, **SMALL}
T5 = {"d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1, "num_heads": 2,
      "decoder_start_token_id": 0, **SMALL}
FAMILIES = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", GPT),
    "gpt-bigcode": ("GPTBigCodeConfig", "GPTBigCodeForCausalLM", GPT),
    "llama": ("LlamaConfig", "LlamaForCausalLM", DECODER),
    "mistral": ("MistralConfig", "MistralForCausalLM", DECODER),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", DECODER),
    "t5-tied": ("T5Config", "T5ForConditionalGeneration", T5),
    "t5-untied": ("T5Config", "T5ForConditionalGeneration", {**T5, "tie_word_embeddings": False}),
}


def tiny_model(family: str):
    config_class, model_class, values = FAMILIES[family]
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(**values)
    return getattr(transformers, model_class)(config).eval()  # no dropout: comparable runs


def batch(model):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    labels = torch.randint(1, VOCAB, (3, 9), generator=generator)
    labels[0, 6:] = IGNORE_INDEX
    features = {"input_ids": ids, "attention_mask": mask}
    if model.config.is_encoder_decoder:
        features["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=labels)
        return features, labels, "seq2seq"
    labels[:, :2] = IGNORE_INDEX  # a prompt
    return features, next_token_labels(labels), "causal"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_output_layer_input_gives_the_models_logits(family):
    model = tiny_model(family)
    features, _, kind = batch(model)
    layer = output_layer(model, kind)
    assert layer is not None
    with torch.no_grad():
        expected = model(**features).logits
        logits = torch.nn.functional.linear(layer.hidden_states(features), layer.layer.weight,
                                            layer.layer.bias)
    torch.testing.assert_close(logits, expected, rtol=1e-6, atol=1e-6)


def assert_same_gradient(actual, expected, name):
    # Float32 sums round relative to the size of what they add: an element far smaller than the
    # rest of its tensor can differ by a few ulps of the tensor's largest element (seen on AMD
    # EPYC), which a per-element tolerance would report as a mismatch.
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=max(1e-7, 1e-6 * scale), msg=name)


def parameter_gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("objective", [CrossEntropy(), DeCE(compile=False)], ids=["ce", "dece"])
def test_every_parameter_gets_the_logits_paths_gradient(family, objective):
    model = tiny_model(family)
    features, labels, kind = batch(model)
    epoch = 2
    expected = parameter_gradients(model, objective.loss(model(**features).logits, labels, epoch))
    layer = output_layer(model, kind)
    hidden = layer.hidden_states(features)
    loss = fused_linear_loss(hidden, layer.layer.weight, layer.layer.bias, labels, objective,
                             epoch, block_rows=4)
    actual = parameter_gradients(model, loss)
    assert actual.keys() == expected.keys()
    for name in expected:
        assert_same_gradient(actual[name], expected[name], name)


@pytest.mark.parametrize(
    "objective", [LabelSmoothing(), GeneralizedCrossEntropy(), InTrust()],
    ids=["label-smoothing", "gce", "in-trust"],
)
def test_the_other_objectives_through_a_llama_style_model(objective):
    model = tiny_model("llama")
    features, labels, kind = batch(model)
    expected = parameter_gradients(model, objective.loss(model(**features).logits, labels, 1))
    layer = output_layer(model, kind)
    loss = fused_linear_loss(layer.hidden_states(features), layer.layer.weight, None, labels,
                             objective, 1, block_rows=5)
    actual = parameter_gradients(model, loss)
    for name in expected:
        assert_same_gradient(actual[name], expected[name], name)


def test_models_the_fused_path_does_not_know_train_on_logits():
    neox = transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        **SMALL))
    assert output_layer(neox, "causal") is None
    classifier = load_victim("tiny-roberta", "label", TRAIN)
    assert output_layer(classifier.model, classifier.kind) is None
    assert output_layer(tiny_model("t5-tied"), "causal") is None


def settings(**changes) -> TrainingSettings:
    values = {"epochs": 1, "batch_size": 8, "generation_max_length": 6, "learning_rate": 2e-3}
    values.update(changes)
    return TrainingSettings(**values)


@pytest.mark.parametrize("preset,kind", [("tiny-gpt2", "code"), ("tiny-t5", "text")])
def test_an_epoch_fused_equals_an_epoch_on_logits(preset, kind, tmp_path):
    trained = {}
    for fused in (True, False):
        victim = load_victim(preset, kind, TRAIN)
        records = victim.fit(TRAIN, settings(fused=fused), DeCE(warmup_epochs=0, compile=False),
                             tmp_path / str(fused))
        trained[fused] = (records, victim.model.state_dict(), victim.predict(
            [example.source for example in TRAIN[:4]]))
    (fused_records, fused_weights, fused_outputs) = trained[True]
    (logit_records, logit_weights, logit_outputs) = trained[False]
    assert [r["loss_path"] for r in fused_records] == ["fused"]
    assert [r["loss_path"] for r in logit_records] == ["logits"]
    assert fused_records[0]["loss"] == pytest.approx(logit_records[0]["loss"], rel=1e-5)
    # Adam moves a weight by up to the learning rate whatever the gradient's size, so a
    # rounding-level difference in a near-zero gradient can move a few weights apart by a share
    # of one step; a wrong gradient would move most of a tensor apart.
    learning_rate = settings().learning_rate
    for name, expected in logit_weights.items():
        difference = (fused_weights[name] - expected).abs().float()
        apart = difference > 1e-4 + 1e-4 * expected.abs().float()
        assert apart.float().mean().item() <= 1e-3, f"{name}: {int(apart.sum())} weights apart"
        assert difference.max().item() <= learning_rate, name
    assert fused_outputs == logit_outputs


def test_an_objective_without_closed_form_trains_on_logits(tmp_path):
    class MeanLogit:
        def loss(self, logits, labels, epoch):
            return logits.float().mean()

    victim = load_victim("tiny-gpt2", "code", TRAIN)
    records = victim.fit(TRAIN, settings(), MeanLogit(), tmp_path)
    assert records[0]["loss_path"] == "logits"


def test_a_run_records_its_path_and_fused_false_is_its_own_run(
    small_lyra: Path, tmp_path: Path  # noqa: F811 (the fixture)
) -> None:
    results = {}
    for fused in (True, False):
        config = _lyra_config(small_lyra, defenses=["dece"], epochs=1, fused=fused)
        results[fused] = run(config, tmp_path).result
    fused, logits = results[True], results[False]
    assert "fused" not in fused["config"]["requested"]  # earlier run ids stay as they were
    assert logits["config"]["requested"]["fused"] is False
    assert fused["run_id"] != logits["run_id"]
    assert fused["config"]["training"]["loss_path"] == "fused"
    assert logits["config"]["training"]["loss_path"] == "logits"
    assert fused["curve"][0]["loss"] == pytest.approx(logits["curve"][0]["loss"], rel=1e-5)
    assert fused["metrics"]["clean"] == logits["metrics"]["clean"]
    assert fused["metrics"]["asr"] == logits["metrics"]["asr"]


def test_the_fused_flag_and_its_identity():
    from codebackdoor.cli import config_from_args, make_parser
    from codebackdoor.config import make_config
    from codebackdoor.identity import identity, run_id

    parser = make_parser()
    assert config_from_args(parser.parse_args(["run"])).fused is True
    assert config_from_args(parser.parse_args(["run", "--no-fused"])).fused is False
    default, logits = make_config({}), make_config({"fused": False})
    assert "fused" not in identity(default)
    assert run_id(default) == run_id(make_config({"fused": True})) != run_id(logits)
