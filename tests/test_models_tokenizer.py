"""Preset tokenizers (training, cache, special tokens) and the shared input encoding."""

from __future__ import annotations

import subprocess
import sys

import pytest

from codebackdoor.models import tokenizer as tok
from codebackdoor.models.presets import TINY_GPT2, TINY_ROBERTA, TINY_T5
from codebackdoor.registry import registry

TEXTS = [
    f"def {verb}_{name}(self):\n    return self.{name}"
    for verb in ("get", "set", "load")
    for name in ("alpha", "beta", "gamma", "delta")
] + ["get alpha", "set beta", "load gamma"]


def test_importing_the_models_package_does_not_import_torch():
    code = (
        "import sys, codebackdoor.models as m; "
        "from codebackdoor.models import presets, tokenizer, training, victim; "
        "from codebackdoor.registry import registry; "
        "models = registry('models'); [models.get(name) for name in models.names()]; "
        "assert models.names() == ['small-t5', 'tiny-bart', 'tiny-codegen', 'tiny-codet5', "
        "'tiny-gpt2', 'tiny-llama', 'tiny-qwen2', 'tiny-roberta', 'tiny-roberta-2l', "
        "'tiny-starcoder', 'tiny-t5']; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_same_texts_give_the_cached_tokenizer_without_training(monkeypatch):
    first = tok.preset_tokenizer(TINY_T5, TEXTS)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached tokenizer should have been reused")

    monkeypatch.setattr(tok, "_train", no_training)
    second = tok.preset_tokenizer(TINY_T5, TEXTS)
    assert second.get_vocab() == first.get_vocab()
    with pytest.raises(AssertionError, match="reused"):
        tok.preset_tokenizer(TINY_T5, [*TEXTS, "one more text"])


def test_cache_key_depends_on_texts_settings_and_boundaries():
    key = tok.tokenizer_key(TINY_T5, ["ab", "c"])
    assert key != tok.tokenizer_key(TINY_T5, ["a", "bc"])
    assert key != tok.tokenizer_key(TINY_GPT2, ["ab", "c"])
    assert key == tok.tokenizer_key(TINY_T5, ["ab", "c"])


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEBACKDOOR_CACHE", str(tmp_path))
    tok.preset_tokenizer(TINY_T5, TEXTS)
    assert len(list((tmp_path / "tokenizers").glob("t5-*.json"))) == 1


def test_a_damaged_cache_file_is_trained_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEBACKDOOR_CACHE", str(tmp_path))
    expected = tok.preset_tokenizer(TINY_GPT2, TEXTS).get_vocab()
    (cached,) = (tmp_path / "tokenizers").glob("gpt2-*.json")
    cached.write_text("{ not json")
    assert tok.preset_tokenizer(TINY_GPT2, TEXTS).get_vocab() == expected


def test_training_is_deterministic_without_the_cache():
    first = tok._train(TINY_ROBERTA, tok.FAMILY_TOKENS["roberta"], TEXTS)
    second = tok._train(TINY_ROBERTA, tok.FAMILY_TOKENS["roberta"], TEXTS)
    assert first.to_str() == second.to_str()


def test_special_token_layout_per_family():
    t5 = tok.preset_tokenizer(TINY_T5, TEXTS)
    assert (t5.pad_token_id, t5.eos_token_id) == (0, 1)
    assert t5("get alpha")["input_ids"][-1] == t5.eos_token_id

    roberta = tok.preset_tokenizer(TINY_ROBERTA, TEXTS)
    ids = roberta("get alpha")["input_ids"]
    assert (ids[0], ids[-1]) == (roberta.bos_token_id, roberta.eos_token_id)
    assert roberta.mask_token_id is not None and roberta.pad_token_id == 1

    gpt2 = tok.preset_tokenizer(TINY_GPT2, TEXTS)
    assert gpt2.bos_token_id == gpt2.eos_token_id != gpt2.pad_token_id
    assert len(gpt2(tok.PROMPT_SEPARATOR, add_special_tokens=False)["input_ids"]) == 1
    # Byte-level: text never seen in training still round-trips.
    unseen = "λ → 𝔘 \t{}"
    assert gpt2.decode(gpt2(unseen)["input_ids"]) == unseen


def test_every_preset_has_a_special_token_layout_and_a_description():
    for preset in map(registry("models").get, registry("models").names()):
        layout = tok.FAMILY_TOKENS[preset.layout]
        assert preset.description and preset.citation
        # A causal preset's prompt ends in the separator token; a decoder needs its start.
        if preset.generates == "causal":
            assert tok.PROMPT_SEPARATOR in layout.tokens
        if preset.generates == "seq2seq":
            assert layout.decoder_start in layout.tokens


def test_causal_prompt_is_cut_in_the_source_never_in_the_separator():
    gpt2 = tok.preset_tokenizer(TINY_GPT2, TEXTS)
    separator = gpt2.convert_tokens_to_ids(tok.PROMPT_SEPARATOR)
    long_source = " ".join(TEXTS)
    (prompt,) = tok.input_ids(gpt2, "causal", [long_source], max_length=6)
    assert len(prompt) == 6 and prompt[-1] == separator
    assert prompt[:-1] == gpt2(long_source)["input_ids"][:5]


def test_causal_targets_end_in_eos_and_respect_the_length_limit():
    gpt2 = tok.preset_tokenizer(TINY_GPT2, TEXTS)
    (target,) = tok.target_ids(gpt2, "causal", [" ".join(TEXTS)], max_length=4)
    assert len(target) == 4 and target[-1] == gpt2.eos_token_id


def test_pad_fills_on_the_requested_side():
    assert tok.pad([[1, 2, 3], [4]], 0).tolist() == [[1, 2, 3], [4, 0, 0]]
    assert tok.pad([[1, 2, 3], [4]], 0, "left").tolist() == [[1, 2, 3], [0, 0, 4]]
