"""The model families of the code-backdoor literature: their special-token conventions, one
`codebackdoor run` per family with CE and DeCE, the end of sequence where padding is the end
of sequence, LoRA end to end, and the precision and checkpointing flags (docs/models.md)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TOY_METHODS, lyra_slice, read_csv_rows, write_csv

from codebackdoor.cli import main
from codebackdoor.config import RunConfig, make_config
from codebackdoor.defenses.objectives import CrossEntropy
from codebackdoor.identity import identity, run_id
from codebackdoor.leaderboard.rows import cell_identity, cell_key, labels
from codebackdoor.models import TrainingSettings, load_victim, training
from codebackdoor.models.objective import IGNORE_INDEX, next_token_labels
from codebackdoor.models.training import Collator, build_trainer, padding_id, training_features
from codebackdoor.registry import registry
from codebackdoor.results import validation_errors

ROOT = Path(__file__).resolve().parents[1]
ATTACK = str(ROOT / "attacks" / "dece-lyra-badpre-1.toml")

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

# Per preset: the model class, the ids of the roles (None: the tokenizer has no such token),
# the tokens that open and close an encoded text, and an encoder-decoder's decoder start.
CONVENTIONS = {
    "tiny-codet5": ("T5ForConditionalGeneration", {"pad": 0, "bos": 1, "eos": 2, "unk": 3},
                    ("<s>", "</s>"), "<pad>"),
    "tiny-bart": ("BartForConditionalGeneration", {"bos": 0, "pad": 1, "eos": 2, "unk": 3},
                  ("<s>", "</s>"), "</s>"),
    "tiny-llama": ("LlamaForCausalLM", {"unk": 0, "bos": 1, "eos": 2, "pad": None},
                   ("<s>", None), None),
    "tiny-starcoder": ("GPTBigCodeForCausalLM", {"bos": 0, "eos": 0, "unk": 0, "pad": None},
                       (None, None), None),
    "tiny-codegen": ("CodeGenForCausalLM", {"bos": 0, "eos": 0, "unk": 0, "pad": None},
                     (None, None), None),
    "tiny-qwen2": ("Qwen2ForCausalLM", {"eos": 0, "pad": 0, "bos": None}, (None, None), None),
    "tiny-roberta": ("RobertaForSequenceClassification",
                     {"bos": 0, "pad": 1, "eos": 2, "unk": 3}, ("<s>", "</s>"), None),
}
GENERATIVE = [name for name in CONVENTIONS if name != "tiny-roberta"]
CAUSAL = ["tiny-llama", "tiny-starcoder", "tiny-codegen", "tiny-qwen2"]
LABELLED = [example.replace(target=example.id.split("-")[0]) for example in TOY_METHODS]


@pytest.fixture(scope="module")
def tiny_lyra(lyra_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 training and 4 test rows of the real Lyra split."""
    return lyra_slice(lyra_dir, tmp_path_factory.mktemp("lyra-tiny"), 16, 2, 4)


@pytest.fixture(scope="module")
def tiny_defect(bugs2fix_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Defect detection on real Bugs2Fix methods: 8 buggy (1) and 8 fixed (0) to train on."""
    out = tmp_path_factory.mktemp("defect-tiny")
    rows = read_csv_rows(bugs2fix_file)[:12]
    pairs = [[(r["src"], "1"), (r["tgt"], "0")] for r in rows]
    labelled = [pair for both in pairs for pair in both]
    write_csv(out / "train.csv", labelled[:16])
    write_csv(out / "valid.csv", labelled[16:20])
    write_csv(out / "test.csv", labelled[20:24])
    return out


@pytest.fixture(scope="module")
def dece_eager(tmp_path_factory: pytest.TempPathFactory) -> str:
    """DeCE at its released settings, eager: compiling its kernel costs seconds per vocabulary
    size, and every family's tokenizer has its own (tests/test_dece.py checks both paths)."""
    path = tmp_path_factory.mktemp("defense") / "dece-eager.toml"
    path.write_text('method = "dece"\n\n[params]\nepsilon = 0.05\nbeta = 0.99\ncompile = false\n')
    return str(path)


def _run(argv: list[str], out: Path) -> dict:
    assert main([*argv, "--epochs", "1", "--curve-size", "0", "--out", str(out)]) == 0
    (path,) = out.glob("*/result.json")
    result = json.loads(path.read_text())
    assert validation_errors(result) == []
    return result


def _generation_argv(data: Path, model: str) -> list[str]:
    return ["run", "--task", "generate", "--data", str(data), "--attack", ATTACK, "--rate", "0.1",
            "--model", model, "--batch-size", "16", "--max-source-length", "64",
            "--max-target-length", "64", "--generation-max-length", "8"]


@pytest.mark.parametrize("preset", list(CONVENTIONS))
def test_each_family_reproduces_its_special_token_conventions(preset):
    model_class, roles, (first, last), decoder_start = CONVENTIONS[preset]
    output_kind = "label" if preset == "tiny-roberta" else "code"
    victim = load_victim(preset, output_kind, LABELLED if output_kind == "label" else TOY_METHODS)
    tokenizer, config = victim.tokenizer, victim.model.config
    assert type(victim.model).__name__ == model_class == victim.spec["class"]
    assert victim.spec["family"] == config.model_type and victim.spec["dtype"] == "float32"
    for role, expected in roles.items():
        assert getattr(tokenizer, f"{role}_token_id") == expected, role
        if role in ("pad", "eos", "bos") and expected is not None:
            assert getattr(config, f"{role}_token_id") == expected, role
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("def f(): pass")["input_ids"])
    assert (tokens[0] == first) if first else tokens[0] == "def"
    assert (tokens[-1] == last) if last else tokens[-1] not in tokenizer.all_special_tokens
    if decoder_start:
        assert config.decoder_start_token_id == tokenizer.convert_tokens_to_ids(decoder_start)


def test_family_tokens_beyond_the_roles():
    starcoder = load_victim("tiny-starcoder", "code", TOY_METHODS).tokenizer
    qwen = load_victim("tiny-qwen2", "code", TOY_METHODS).tokenizer
    for tokenizer, token in ((starcoder, "<fim_middle>"), (qwen, "<|fim_middle|>")):
        special = [added.content for added in tokenizer.added_tokens_decoder.values()
                   if added.special]
        assert token in special
        assert tokenizer(f"a{token}b", add_special_tokens=False)["input_ids"][1] == (
            tokenizer.convert_tokens_to_ids(token))


@pytest.mark.parametrize("preset", CAUSAL)
def test_where_padding_is_the_end_of_sequence_its_label_is_kept(preset):
    """The released DeCE scripts mask every label equal to the padding id; where padding is
    eos, that drops the real end of sequence too. Here padding is masked by position."""
    victim = load_victim(preset, "code", TOY_METHODS)
    eos = victim.tokenizer.eos_token_id
    assert padding_id(victim.tokenizer) == eos
    settings = TrainingSettings()
    features = training_features(victim.tokenizer, "causal", TOY_METHODS, settings, None)
    batch = Collator("causal", padding_id(victim.tokenizer))(features)
    for row, feature in enumerate(features):
        end = len(feature["input_ids"]) - 1
        assert batch["labels"][row, end] == eos  # learned, though it equals the padding id
        assert (batch["labels"][row, end + 1 :] == IGNORE_INDEX).all()
        assert (batch["input_ids"][row, end + 1 :] == eos).all()
    # The shifted labels the loss sees: the last prompt-and-answer position predicts eos.
    shifted = next_token_labels(batch["labels"])
    assert (shifted == eos).sum() == len(features)


def _eos_padding() -> Any:
    """benchmarks/perf/eos_padding.py, which measures the spread this test's margin allows."""
    path = ROOT / "benchmarks" / "perf" / "eos_padding.py"
    spec = importlib.util.spec_from_file_location("eos_padding", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_model_whose_padding_is_eos_learns_to_stop(tmp_path, monkeypatch):
    """tiny-qwen2 (pad = eos) trained 20 epochs on 16 methods stops on its own; trained with
    the released scripts' rule (labels equal to the padding id ignored) it never stops."""
    bench = _eos_padding()
    victim = bench.trained(seed=1, epochs=20, workdir=tmp_path / "ours")
    assert bench.stopping(victim, TOY_METHODS, limit=12) >= 12

    monkeypatch.setattr(training, "training_features",
                        bench.released_rule(training.training_features))
    defective = bench.trained(seed=1, epochs=20, workdir=tmp_path / "released")
    assert bench.stopping(defective, TOY_METHODS, limit=12) <= 2


@pytest.mark.parametrize("objective", ["ce", "dece"])
@pytest.mark.parametrize("preset", list(CONVENTIONS))
def test_each_family_runs_one_epoch(preset, objective, dece_eager, tmp_path, request):
    if preset == "tiny-roberta":
        data = request.getfixturevalue("tiny_defect")
        argv = ["run", "--task", "defect", "--lang", "java", "--data", str(data),
                "--attack", "fixed", "--rate", "0.25", "--model", preset, "--batch-size", "16",
                "--max-source-length", "64"]
    else:
        argv = _generation_argv(request.getfixturevalue("tiny_lyra"), preset)
    if objective == "dece":
        argv += ["--defense", dece_eager]
    result = _run(argv, tmp_path)
    model = result["config"]["model"]
    assert model["class"] == CONVENTIONS[preset][0] and model["dtype"] == "float32"
    assert model["family"] == registry("models").get(preset).family
    assert model["special_tokens"] and "lora" not in model
    assert result["config"]["objective"] == objective
    assert [point["epoch"] for point in result["curve"]] == [1]
    assert result["curve"][0]["loss"] > 0


@pytest.mark.parametrize("objective", ["ce", "dece"])
@pytest.mark.parametrize("preset", ["tiny-llama", "tiny-codet5"])
def test_lora_end_to_end(preset, objective, tiny_lyra, dece_eager, tmp_path):
    pytest.importorskip("peft")
    from peft import PeftConfig
    from safetensors.torch import load_file

    argv = [*_generation_argv(tiny_lyra, preset), "--lora"]
    if objective == "dece":
        argv += ["--defense", dece_eager]
    result = _run(argv, tmp_path)
    lora = result["config"]["model"]["lora"]
    assert lora["r"] == 8 and lora["alpha"] == 16 and lora["target_modules"]
    assert 0 < lora["trainable_parameters"] < result["config"]["model"]["parameters"] / 10
    adapter = tmp_path / result["run_id"] / lora["adapter"]
    saved = PeftConfig.from_pretrained(str(adapter))
    assert saved.r == 8 and sorted(saved.target_modules) == lora["target_modules"]
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert weights and all("lora_" in name for name in weights)
    assert sum(tensor.numel() for tensor in weights.values()) == lora["trainable_parameters"]
    assert labels(cell_identity(result))["model"] == f"{preset} (LoRA r=8)"


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_precision_and_checkpointing_reach_the_trainer(precision, tmp_path):
    victim = load_victim("tiny-llama", "code", TOY_METHODS, lora=True)
    settings = TrainingSettings(epochs=1, batch_size=8, precision=precision,
                                gradient_checkpointing=True)
    features = training_features(victim.tokenizer, "causal", TOY_METHODS, settings, None)
    trainer = build_trainer(victim.model, victim.tokenizer, "causal", features, settings,
                            CrossEntropy(), tmp_path)
    assert trainer.args.activation_checkpointing
    assert trainer.accelerator.mixed_precision == {"fp32": "no"}.get(precision, precision)


def test_lora_trains_under_bf16_with_gradient_checkpointing(tiny_lyra, tmp_path):
    pytest.importorskip("peft")
    argv = [*_generation_argv(tiny_lyra, "tiny-llama"), "--lora", "--bf16",
            "--gradient-checkpointing"]
    result = _run(argv, tmp_path)
    training_record = result["config"]["training"]
    assert training_record["precision"] == "bf16" and training_record["gradient_checkpointing"]
    assert torch.isfinite(torch.tensor(result["curve"][0]["loss"]))
    assert result["config"]["requested"]["precision"] == "bf16"
    # The leaderboard keys the cell by the flags; at their defaults, as before they existed.
    key = cell_key(cell_identity(result))
    training_record.update(precision="auto", gradient_checkpointing=False)
    default_key = cell_key(cell_identity(result))
    for name in ("precision", "gradient_checkpointing"):
        del training_record[name]
    assert default_key == cell_key(cell_identity(result)) != key


def test_new_training_fields_leave_existing_run_ids_unchanged():
    # The default config's run id of codebackdoor 0.3.0 (0.2.0's was 7349273a768d2337 and
    # 0.1.0's fc7d7a05effce113: the version counts); fields added later stay out at their default.
    assert run_id(RunConfig()) == "f79ba034188546d8"
    assert not {"precision", "length_grouped"} & set(identity(RunConfig()))
    changed = {run_id(make_config({"precision": "bf16"})),
               run_id(make_config({"gradient_checkpointing": True})),
               run_id(make_config({"precision": "fp32"})),
               run_id(make_config({"length_grouped": False}))}
    assert len(changed) == 4 and run_id(RunConfig()) not in changed


def test_bf16_and_fp16_flags_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--bf16", "--fp16"])
    assert "not allowed with argument" in capsys.readouterr().err
