"""T5 pretraining mixed with CodeT5's bimodal dual generation (codebackdoor/pretrain/bimodal.py)."""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sysconfig
from pathlib import Path

import pytest
from test_pretrain import check_resume, options, quick_sizes, sources  # noqa: F401 (fixtures)

from codebackdoor.data.harvest import harvest
from codebackdoor.errors import UserError
from codebackdoor.models.objective import IGNORE_INDEX
from codebackdoor.models.pretrained import CARD_FILE
from codebackdoor.pretrain.bimodal import (
    CODE2NL,
    DEFAULT_MIX,
    DENOISE,
    NL2CODE,
    SPAN,
    SPAN_ONLY,
    MixedObjectives,
    TokenizedPairs,
    batch_slots,
    pairs_from_functions,
    parse_mix,
)
from codebackdoor.pretrain.objectives import SpanCorruption, TextInfilling
from codebackdoor.pretrain.pretraining import pretrain

pytestmark = pytest.mark.usefixtures("one_cpu_thread")

# Standard-library modules and their embedded splits (sha256 of the name): shlex, heapq and
# sched are train files, textwrap and bisect test files, glob a valid file.
MODULES = ("shlex.py", "heapq.py", "sched.py", "textwrap.py", "bisect.py", "glob.py")


@pytest.fixture(scope="module")
def harvested():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [(name, (root / name).read_bytes) for name in MODULES]
    return harvest(files, "python", total=len(files), label="test")


@pytest.fixture(scope="module")
def pairs(harvested):
    return pairs_from_functions(harvested)


def test_pairs_are_train_functions_comment_and_code_apart(harvested, pairs):
    train = [fn for fn in harvested if fn.split == "train"]
    assert {fn.file for fn in train} == {"shlex.py", "heapq.py", "sched.py"}
    assert {fn.split for fn in harvested} == {"train", "valid", "test"}
    assert len(pairs) == len(train) >= 20
    by_code = {pair.code: pair for pair in pairs}
    heappop = next(fn for fn in train if fn.name == "heappop")
    pair = by_code[heappop.undocumented]
    assert pair.nl == heappop.summary and pair.lang == "python"
    assert pair.nl.startswith("Pop the smallest item")
    # The code is shown without its docstring: the comment is never visible in the input.
    assert all(pair.nl not in pair.code for pair in pairs)


def test_mix_is_parsed_and_bad_mixes_are_refused():
    assert parse_mix("span=0.5, nl2code=0.25,code2nl=.25") == DEFAULT_MIX
    assert parse_mix("code2nl=0.5,span=0.5") == {SPAN: 0.5, CODE2NL: 0.5}
    for bad, message in [
        ("span=0.5,nl2code=0.2", "sum to 0.7"),
        ("span=1,bert=0", "unknown objective bert"),
        ("span", "cannot read 'span'"),
        ("span=0.5,span=0.5", "given twice"),
        ("span=1,nl2code=0", "positive"),
    ]:
        with pytest.raises(UserError, match=message):
            parse_mix(bad)
    assert batch_slots(DEFAULT_MIX, 16).count(SPAN) == 8
    assert [batch_slots({SPAN: 0.34, NL2CODE: 0.33, CODE2NL: 0.33}, 4).count(name)
            for name in (SPAN, NL2CODE, CODE2NL)] == [2, 1, 1]
    with pytest.raises(UserError, match="nl2code gets no item"):
        batch_slots({SPAN: 0.95, NL2CODE: 0.05}, 4)


def test_a_batch_holds_the_mix_each_objective_in_its_form():
    import torch

    sentinels = list(range(1000, 1100))
    span = SpanCorruption(eos_id=1, sentinel_ids=sentinels)
    nl = [[20 + i, 21 + i] for i in range(5)]
    code = [[300 + i] * (3 + i) for i in range(5)]
    pairs = TokenizedPairs(["python"] * 5, nl, code)
    mixed = MixedObjectives(batch_slots(DEFAULT_MIX, 8), span, pairs, pad_id=0, eos_id=1)
    block = torch.arange(10, 74).numpy()
    items = [{"index": index, "input_ids": block} for index in (7, 3, 12, 40, 5, 9, 2, 11)]
    batch = mixed(items)
    inputs, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert inputs.shape[0] == labels.shape[0] == 8
    # Rows 0-3: span corruption of the block (sentinels in input and target).
    for row, item in enumerate(items[:4]):
        source, target = span.corrupt(torch.as_tensor(block), _generator(item["index"]))
        assert inputs[row, : len(source)].tolist() == source.tolist()
        assert labels[row, : len(target)].tolist() == target.tolist()
    # Rows 4-5: NL -> code; rows 6-7: code -> NL, of the pair the item's index picks.
    for row, item in enumerate(items[4:], start=4):
        pair = mixed.order[item["index"] % 5]
        source, target = (nl[pair], code[pair]) if row < 6 else (code[pair], nl[pair])
        assert inputs[row, : len(source) + 1].tolist() == [*source, 1]
        assert labels[row, : len(target) + 1].tolist() == [*target, 1]
        assert int(mask[row].sum()) == len(source) + 1
        assert (labels[row, len(target) + 1 :] == IGNORE_INDEX).all()
        assert (inputs[row, len(source) + 1 :] == 0).all()
    assert torch.equal(mixed(items)["labels"], labels)  # a function of the indices


def test_text_infilling_masks_spans_and_targets_the_whole_window():
    import torch

    infilling = TextInfilling(mask_id=999, eos_id=1, window=40)
    block = torch.arange(10, 74)
    source, target = infilling.corrupt(block, _generator(3))
    # The target is the window itself, uncorrupted: what teaches the decoder to copy.
    assert target.tolist() == [*range(10, 50), 1]
    # 35% of 40 tokens (14) hidden in round(14 / 3.5) = 4 spans, one mask token each.
    assert source[-1] == 1 and int((source == 999).sum()) == 4
    assert len(source) == 40 - 14 + 4 + 1
    kept = [token for token in source[:-1].tolist() if token != 999]
    assert len(kept) == 26 and kept == sorted(kept) and set(kept) < set(range(10, 50))
    # Every hidden run sits where a mask stands: the gaps between kept tokens.
    gaps = sum(1 for a, b in itertools.pairwise(kept) if b != a + 1)
    assert gaps + (kept[-1] != 49) + (kept[0] != 10) == 4
    again, _ = infilling.corrupt(block, _generator(3))
    assert torch.equal(again, source)
    with pytest.raises(UserError, match="noise_density"):
        TextInfilling(mask_id=999, eos_id=1, noise_density=1.0)


def test_a_denoise_mix_needs_no_pairs_and_fills_its_rows_by_infilling():
    import torch

    span = SpanCorruption(eos_id=1, sentinel_ids=list(range(1000, 1100)))
    infilling = TextInfilling(mask_id=1099, eos_id=1, window=32)
    slots = batch_slots({SPAN: 0.5, DENOISE: 0.5}, 4)
    mixed = MixedObjectives(slots, span, None, pad_id=0, eos_id=1, infilling=infilling)
    block = torch.arange(10, 74).numpy()
    items = [{"index": index, "input_ids": block} for index in (4, 8, 15, 16)]
    batch = mixed(items)
    for row, item in enumerate(items[2:], start=2):
        source, target = infilling.corrupt(torch.as_tensor(block), _generator(item["index"]))
        assert batch["input_ids"][row, : len(source)].tolist() == source.tolist()
        assert batch["labels"][row].tolist() == target.tolist()  # the longest labels: no pad
    with pytest.raises(UserError, match="need documented functions' pairs"):
        MixedObjectives(batch_slots(DEFAULT_MIX, 4), span, None, pad_id=0, eos_id=1)
    with pytest.raises(UserError, match="denoise needs"):
        MixedObjectives(slots, span, None, pad_id=0, eos_id=1)


def _generator(index: int):
    from codebackdoor.pretrain.objectives import item_generator

    return item_generator(1, index)


def test_bimodal_pretraining_records_mix_and_tokens_per_objective(
    sources, quick_sizes, tmp_path, pairs  # noqa: F811
):
    from transformers import AutoModelForSeq2SeqLM

    out = pretrain(
        "t5", "tiny", tmp_path / "t5", max_tokens=3 * 4 * 64, corpus=options(sources),
        pairs=pairs,
    )
    card = json.loads((out / CARD_FILE).read_text(encoding="utf-8"))
    assert card["objective"] == "span-corruption+dual-generation"
    assert card["mix"] == DEFAULT_MIX
    report = card["objectives"]
    assert [report[name]["items_per_batch"] for name in (SPAN, NL2CODE, CODE2NL)] == [2, 1, 1]
    assert [report[name]["items_seen"] for name in (SPAN, NL2CODE, CODE2NL)] == [6, 3, 3]
    assert report[SPAN]["tokens_seen"] == 6 * 64
    mean = card["pairs"]["mean_tokens"]
    assert card["pairs"]["count"] == len(pairs) and card["pairs"]["by_lang"] == {
        "python": len(pairs)
    }
    assert abs(report[NL2CODE]["tokens_seen"] - 3 * mean) <= 1
    AutoModelForSeq2SeqLM.from_pretrained(out)
    # The code-only recipe stays available and is recorded as such.
    old = pretrain(
        "t5", "tiny", tmp_path / "old", max_tokens=4 * 64, corpus=options(sources),
        mix=SPAN_ONLY,
    )
    card = json.loads((old / CARD_FILE).read_text(encoding="utf-8"))
    assert card["objective"] == "span-corruption" and card["mix"] == SPAN_ONLY
    assert card["pairs"] is None and card["objectives"][SPAN]["items_seen"] == 4
    # Text infilling in place of span corruption: its tokens are its window's (here the whole
    # 64-token block, shorter than the window), and it needs no pairs.
    mix = {DENOISE: 0.5, NL2CODE: 0.25, CODE2NL: 0.25}
    denoised = pretrain(
        "t5", "tiny", tmp_path / "denoise", max_tokens=2 * 4 * 64, corpus=options(sources),
        pairs=pairs, mix=mix,
    )
    card = json.loads((denoised / CARD_FILE).read_text(encoding="utf-8"))
    assert card["objective"] == "text-infilling+dual-generation" and card["mix"] == mix
    assert card["objectives"][DENOISE]["tokens_seen"] == 4 * 64


def test_resumed_bimodal_pretraining_equals_an_uninterrupted_one(
    sources, quick_sizes, tmp_path, monkeypatch, pairs  # noqa: F811
):
    check_resume(tmp_path, monkeypatch, corpus=options(sources), mix=DEFAULT_MIX, pairs=pairs)


def test_resume_under_another_mix_is_refused(
    sources, quick_sizes, tmp_path, monkeypatch, pairs  # noqa: F811
):
    from codebackdoor.models.trainer import ObjectiveTrainer

    step = ObjectiveTrainer.training_step

    def crash_after_the_first_checkpoint(self, *args, **kwargs):
        if self.state.global_step == 2:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    budget = {"max_tokens": 4 * 4 * 64, "corpus": options(sources), "pairs": pairs}
    monkeypatch.setattr(ObjectiveTrainer, "training_step", crash_after_the_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        pretrain("t5", "tiny", tmp_path / "t5", **budget)
    with pytest.raises(UserError, match=re.escape("trained with --mix span=0.5,nl2code=0.25,")):
        pretrain("t5", "tiny", tmp_path / "t5", resume=True, mix=SPAN_ONLY, **budget)


def test_mix_is_refused_for_other_architectures(sources, quick_sizes, tmp_path):  # noqa: F811
    with pytest.raises(UserError, match="t5 only"):
        pretrain("gpt2", "tiny", tmp_path, mix=SPAN_ONLY, corpus=options(sources))


def test_help_lists_the_objectives_and_a_bad_mix_is_one_error_line(capsys):
    from codebackdoor.cli import main
    from codebackdoor.pretrain.cli import add_pretrain_command

    parser = argparse.ArgumentParser()
    add_pretrain_command(parser.add_subparsers())
    text = " ".join(parser._subparsers._group_actions[0].choices["pretrain"].format_help().split())
    assert "--mix" in text and "span=0.5,nl2code=0.25,code2nl=0.25" in text
    assert all(name in text for name in ("span:", "denoise:", "nl2code:", "code2nl:"))
    assert main(["pretrain", "--arch", "t5", "--mix", "span=0.5,nl2code=0.4"]) == 2
    err = capsys.readouterr().err
    assert err == "codebackdoor: error: --mix: shares sum to 0.9, not 1\n"
    assert main(["pretrain", "--arch", "t5", "--out", "x", "--name", "y"]) == 2
    assert capsys.readouterr().err == (
        "codebackdoor: error: --out and --name contradict each other; give one\n"
    )
    assert main(["pretrain", "--arch", "t5", "--name", "../up"]) == 2
    assert "--name '../up': use letters" in capsys.readouterr().err
