"""Offline pretraining: corpus, objectives, the whole path per architecture, resume, budgets."""

from __future__ import annotations

import argparse
import dataclasses
import json
import zipfile
from pathlib import Path

import pytest

from codebackdoor.config import RunConfig
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.identity import run_id
from codebackdoor.models.objective import IGNORE_INDEX
from codebackdoor.models.pretrained import CARD_FIELDS, CARD_FILE, pretrained_directory
from codebackdoor.pretrain import pretraining as pretrain_module
from codebackdoor.pretrain.bimodal import SPAN_ONLY
from codebackdoor.pretrain.corpus import CorpusOptions, build_corpus, distributions
from codebackdoor.pretrain.objectives import (
    MaskedLanguageModeling,
    SpanCorruption,
    item_generator,
)
from codebackdoor.pretrain.pretraining import pretrain
from codebackdoor.pretrain.sizes import pretrain_size

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

VERBS = ("get", "set", "load", "save", "parse", "render", "check", "merge")


def python_module(index: int) -> str:
    functions = [
        f"def {verb}_{index}_{n}(value, items=None):\n"
        f'    """{verb.title()} the value number {n}."""\n'
        f"    result = [item * {n} for item in items or [value]]\n"
        f"    return sum(result) + {index}\n"
        for n, verb in enumerate(VERBS)
    ]
    return "import os\n\n\n" + "\n\n".join(functions)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Twelve Python modules (one duplicated, one too small, one not UTF-8) and a src.zip
    with two Java classes."""
    root = tmp_path_factory.mktemp("python")
    for index in range(12):
        (root / f"module_{index}.py").write_text(python_module(index), encoding="utf-8")
    (root / "pkg").mkdir()
    (root / "pkg" / "copy_of_0.py").write_text(python_module(0), encoding="utf-8")
    (root / "tiny.py").write_text("x = 1\n", encoding="utf-8")
    (root / "latin1.py").write_bytes(("# caf\xe9\n" * 20).encode("latin-1"))
    (root / "notes.txt").write_text("not python " * 20, encoding="utf-8")
    jdk = tmp_path_factory.mktemp("jdk") / "src.zip"
    with zipfile.ZipFile(jdk, "w") as archive:
        for name in ("Alpha", "Beta"):
            body = "\n".join(
                f"    public int {verb}{name}(int x) {{ return x * {n} + {len(name)}; }}"
                for n, verb in enumerate(VERBS)
            )
            archive.writestr(
                f"java.base/p/{name}.java", f"package p;\nclass {name} {{\n{body}\n}}\n"
            )
    return root, jdk


def options(sources: tuple[Path, Path], **changes) -> CorpusOptions:
    root, jdk = sources
    return CorpusOptions(python_roots=[str(root)], jdk_src=str(jdk), **changes)


@pytest.fixture
def quick_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny recipes with short blocks and small batches, so a step takes milliseconds."""

    def quick(arch: str, size: str):
        spec = pretrain_size(arch, size)
        return dataclasses.replace(
            spec,
            block_length=64,
            batch_size=4,
            warmup_steps=2,
            save_steps=2,
            logging_steps=1,
            preset=dataclasses.replace(spec.preset, vocab_size=600),
        )

    monkeypatch.setattr(pretrain_module, "pretrain_size", quick)


def test_corpus_keeps_whole_unique_utf8_files_and_is_cached(sources):
    built = build_corpus(options(sources))
    # 12 modules (the copy is a duplicate; tiny.py too small; latin1.py not UTF-8) + 2 classes.
    assert built.manifest["files"] == {"python": 12, "java": 2}
    texts = list(built.texts())
    assert python_module(3) in texts and len(texts) == 14
    again = build_corpus(options(sources))
    assert again.directory == built.directory
    assert again.manifest["fingerprint"] == built.manifest["fingerprint"]
    python_only = build_corpus(options(sources, java=False))
    assert python_only.manifest["files"] == {"python": 12}
    assert python_only.manifest["fingerprint"] != built.manifest["fingerprint"]


def test_corpus_build_resumes_after_an_interruption(sources, monkeypatch, tmp_path):
    from codebackdoor.pretrain import corpus

    whole = build_corpus(options(sources, shard_bytes=1000))
    monkeypatch.setenv("CODEBACKDOOR_CACHE", str(tmp_path))
    finish = corpus._finish_shard
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        finish(*args, **kwargs)

    monkeypatch.setattr(corpus, "_finish_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(options(sources, shard_bytes=1000))
    monkeypatch.setattr(corpus, "_finish_shard", finish)
    resumed = build_corpus(options(sources, shard_bytes=1000))
    assert resumed.manifest["fingerprint"] == whole.manifest["fingerprint"]
    assert list(resumed.texts()) == list(whole.texts())


def test_corpus_is_the_installed_distributions_not_the_checkout(tmp_path):
    """pip's editable hook holds the checkout's path, so it is not read; the distributions
    are listed, pinned ones apart from those installed from a checkout."""
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "demo.py").write_text(python_module(1), encoding="utf-8")
    (site / "__editable___local_0_1_finder.py").write_text(
        f"MAPPING = {{'local': '{tmp_path}/checkout/local'}}\n" * 4, encoding="utf-8"
    )
    for name, version, editable in (("demo", "1.2", False), ("local", "0.1", True)):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        if editable:
            (info / "direct_url.json").write_text(
                json.dumps({"url": "file:///checkout", "dir_info": {"editable": True}}),
                encoding="utf-8",
            )
    built = build_corpus(CorpusOptions(python_roots=[str(site)], java=False))
    assert built.manifest["files"] == {"python": 1}
    assert list(built.texts()) == [python_module(1)]
    assert distributions([str(site)]) == {"pinned": ["demo==1.2"], "editable": ["local"]}


def test_corpus_options_are_checked(tmp_path):
    with pytest.raises(UserError, match="Python root not found"):
        CorpusOptions(python_roots=[str(tmp_path / "absent")])
    with pytest.raises(UserError, match="no Python or Java source files"):
        build_corpus(CorpusOptions(python_roots=[str(tmp_path)], java=False))


def test_span_corruption_hides_spans_behind_sentinels():
    import torch

    sentinels = list(range(1000, 1100))
    objective = SpanCorruption(eos_id=1, sentinel_ids=sentinels)
    tokens = torch.arange(10, 110)  # 100 distinct tokens
    noise, spans = objective.spans(100)
    assert (noise, spans) == (15, 5)  # 15% noise density, mean span length 3
    for index in range(20):
        source, target = objective.corrupt(tokens, item_generator(1, index))
        assert source[-1] == 1 and target[-1] == 1
        assert source[source >= 1000].tolist() == sentinels[:spans]
        assert target[target >= 1000].tolist() == sentinels[:spans]
        assert len(target) == noise + spans + 1 and len(source) == 100 - noise + spans + 1
        assert int(source[0]) == 10  # the first span is kept text
        # Filling each sentinel of the input with its span from the target restores the text.
        hidden, current = {}, None
        for token in target[:-1].tolist():
            if token >= 1000:
                current = token
                hidden[current] = []
            else:
                hidden[current].append(token)
        restored = [t for token in source[:-1].tolist() for t in hidden.get(token, [token])]
        assert restored == tokens.tolist()
    items = [{"index": index, "input_ids": tokens.numpy()} for index in (0, 1, 0)]
    batch = objective(items)
    assert batch["input_ids"].shape == (3, 100 - noise + spans + 1)
    # The noise is a function of the item's index: the same index, the same corruption.
    assert torch.equal(batch["input_ids"][0], batch["input_ids"][2])
    assert not torch.equal(batch["input_ids"][0], batch["input_ids"][1])


def test_masked_lm_chooses_15_percent_and_labels_only_those():
    import torch

    objective = MaskedLanguageModeling(mask_id=4, vocab_size=500, special_ids=[0, 1, 2, 3, 4])
    block = torch.cat([torch.tensor([0]), torch.arange(100, 398), torch.tensor([2])])
    batch = objective([{"index": index, "input_ids": block.numpy()} for index in range(200)])
    inputs, labels = batch["input_ids"], batch["labels"]
    original = block.expand(200, -1)
    chosen = labels != IGNORE_INDEX
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # specials are never chosen
    assert torch.equal(labels[chosen], original[chosen])
    assert torch.equal(inputs[~chosen], original[~chosen])
    assert abs(chosen.float().mean().item() * 300 / 298 - 0.15) < 0.01
    masked = (inputs[chosen] == 4).float().mean().item()
    kept = (inputs[chosen] == original[chosen]).float().mean().item()
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.02


@pytest.mark.parametrize(
    ("arch", "model_class", "task_output", "kind"),
    [
        ("t5", "AutoModelForSeq2SeqLM", "text", "seq2seq"),
        ("gpt2", "AutoModelForCausalLM", "code", "causal"),
        ("roberta", "AutoModelForMaskedLM", "label", "classifier"),
    ],
)
def test_pretrain_writes_a_checkpoint_and_card_that_victims_load(
    sources, quick_sizes, tmp_path, arch, model_class, task_output, kind
):
    import transformers

    from codebackdoor.models import load_victim

    # T5's span corruption alone here; its bimodal mix in test_pretrain_bimodal.py.
    mix = SPAN_ONLY if arch == "t5" else None
    out = pretrain(
        arch, "tiny", tmp_path / arch, max_tokens=3 * 4 * 64, corpus=options(sources), mix=mix
    )
    card = json.loads((out / CARD_FILE).read_text(encoding="utf-8"))
    assert set(CARD_FIELDS) <= set(card)
    assert card["steps"] == 3 and card["tokens_seen"] == 3 * 4 * 64
    assert card["corpus"]["files"] == {"python": 12, "java": 2}
    assert card["corpus"]["distributions"] == {"pinned": [], "editable": []}
    assert [record["step"] for record in card["loss_curve"]] == [1, 2, 3]
    assert card["training"]["stopped_by"] == "max_steps"
    assert not (out / "checkpoints").exists()
    getattr(transformers, model_class).from_pretrained(out)
    train = [Example("a", python_module(1), "sum items", "python")]
    if task_output == "label":
        train += [Example("b", python_module(2), "other", "python")]
    victim = load_victim(str(out), task_output, train)
    assert victim.kind == kind
    assert len(victim.predict([python_module(5)], batch_size=1)) == 1


def test_pretrained_name_resolves_in_the_cache_and_says_how_to_build_it(
    sources, quick_sizes, monkeypatch, tmp_path
):
    from codebackdoor.models import load_victim

    monkeypatch.setenv("CODEBACKDOOR_CACHE", str(tmp_path))
    train = [Example("a", "def f(x):\n    return x", "identity", "python")]
    with pytest.raises(UserError, match=r"codebackdoor pretrain --arch t5 --size tiny$"):
        load_victim("pretrained:tiny-t5", "text", train)
    # A second recipe of the size lives under its own name, and the hint names it.
    with pytest.raises(UserError, match=r"--arch t5 --size tiny --name tiny-t5-denoise$"):
        load_victim("pretrained:tiny-t5-denoise", "text", train)
    budget = {"max_tokens": 4 * 64, "corpus": options(sources), "mix": SPAN_ONLY}
    out = pretrain("t5", "tiny", **budget)
    assert out == pretrained_directory("tiny-t5")
    victim = load_victim("pretrained:tiny-t5", "text", train)
    assert victim.spec["source"] == "pretrained" and victim.spec["tokens_seen"] == 4 * 64
    with pytest.raises(UserError, match="--overwrite"):
        pretrain("t5", "tiny", **budget)
    with pytest.raises(UserError, match="nothing to resume"):
        pretrain("t5", "tiny", **budget, resume=True)
    # Pretraining is deterministic, so a rebuild writes the same weights and tokenizer (its
    # card records another time) and its runs are the first build's.
    config = RunConfig(task="generate", model="pretrained:tiny-t5")
    first = run_id(config)
    pretrain("t5", "tiny", **budget, overwrite=True)
    assert run_id(config) == first


def test_resumed_pretraining_equals_an_uninterrupted_one(
    sources, quick_sizes, tmp_path, monkeypatch
):
    check_resume(tmp_path, monkeypatch, corpus=options(sources), mix=SPAN_ONLY)


def check_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **budget) -> None:
    """A T5 pretraining interrupted after its second checkpoint and resumed ends with the
    weights and loss curve of an uninterrupted one."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    from codebackdoor.models.trainer import ObjectiveTrainer

    budget = {"max_tokens": 5 * 4 * 64, **budget}
    whole = pretrain("t5", "tiny", tmp_path / "whole", **budget)
    trainer = ObjectiveTrainer
    step = trainer.training_step

    def crash_after_the_second_checkpoint(self, *args, **kwargs):
        if self.state.global_step == 4:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(trainer, "training_step", crash_after_the_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        pretrain("t5", "tiny", tmp_path / "resumed", **budget)
    monkeypatch.setattr(trainer, "training_step", step)
    resumed = pretrain("t5", "tiny", tmp_path / "resumed", resume=True, **budget)
    expected = AutoModelForSeq2SeqLM.from_pretrained(whole).state_dict()
    actual = AutoModelForSeq2SeqLM.from_pretrained(resumed).state_dict()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    curves = [json.loads((path / CARD_FILE).read_text())["loss_curve"] for path in (whole, resumed)]
    assert [(r["step"], r["loss"]) for r in curves[0]] == [
        (r["step"], r["loss"]) for r in curves[1]
    ]


def test_time_budget_stops_after_the_step_that_spent_it(sources, quick_sizes, tmp_path):
    out = pretrain(
        "gpt2",
        "tiny",
        tmp_path / "timed",
        max_tokens=2 * 4 * 64,
        max_time=1e-6,
        corpus=options(sources),
    )
    card = json.loads((out / CARD_FILE).read_text(encoding="utf-8"))
    assert card["steps"] == 1 and card["training"]["stopped_by"] == "max_seconds"
    assert card["loss_curve"][-1]["step"] == 1
    resumed = pretrain(
        "gpt2",
        "tiny",
        tmp_path / "timed",
        max_tokens=2 * 4 * 64,
        max_time=3600,
        corpus=options(sources),
        resume=True,
    )
    card = json.loads((resumed / CARD_FILE).read_text(encoding="utf-8"))
    assert card["steps"] == 2 and card["training"]["stopped_by"] == "max_steps"
    assert not (resumed / "checkpoints").exists()


def test_command_line_parses_budgets():
    from codebackdoor.pretrain.cli import add_pretrain_command

    parser = argparse.ArgumentParser()
    add_pretrain_command(parser.add_subparsers())
    args = parser.parse_args(
        ["pretrain", "--arch", "t5", "--max-tokens", "12M", "--max-time", "25m", "--no-java"]
    )
    assert (args.max_tokens, args.max_time, args.size, args.no_java) == (
        12_000_000,
        1500,
        "tiny",
        True,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["pretrain", "--arch", "bert"])
    with pytest.raises(UserError, match="unknown size"):
        pretrain_size("t5", "huge")


@pytest.mark.parametrize(
    ("arch", "millions"), [("t5", (55, 65)), ("gpt2", (100, 120)), ("roberta", (60, 75))]
)
def test_small_sizes_have_the_published_shapes(arch, millions):
    """``small`` is meant for a GPU and not trained here: its shape is checked on the meta
    device, which allocates nothing."""
    import torch
    from transformers import AutoConfig, AutoModel

    spec = pretrain_size(arch, "small")
    config = AutoConfig.for_model(arch, vocab_size=spec.preset.vocab_size, **spec.preset.config)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    parameters = sum(parameter.numel() for parameter in model.parameters()) / 1e6
    assert millions[0] < parameters < millions[1]
    assert spec.tokens_per_step == 64 * 512
