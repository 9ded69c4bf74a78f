"""The victim: a model and its tokenizer, trained, queried and saved the same way for every kind.

Kinds: ``seq2seq`` (encoder-decoder generation), ``causal`` (decoder-only generation with the
prompt masked out of the loss), ``classifier`` (sequence classification). ``load_victim`` picks
the kind from the task's output kind and the model's config, for a built-in preset, a saved
directory, or a Hugging Face id.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codebackdoor import cost
from codebackdoor.errors import UserError
from codebackdoor.examples import Example
from codebackdoor.models import training
from codebackdoor.models.presets import PresetSpec
from codebackdoor.models.pretrained import PRETRAINED_PREFIX, pretrained_directory, read_card
from codebackdoor.models.tokenizer import (
    FAMILY_TOKENS,
    input_ids,
    pad,
    preset_tokenizer,
    tokenizer_key,
)
from codebackdoor.models.training import (
    Objective,
    TrainingSettings,
    padding_id,
    without_transformers_bars,
)
from codebackdoor.registry import registry

if TYPE_CHECKING:
    import numpy
    from torch import Tensor

OUTPUT_KINDS = ("text", "code", "label")
# Where a filter defense reads a victim's representation of an input (Victim.representations).
REPRESENTATIONS = ("mean", "first-token", "head-input")
# ``pretrained:<size>-<arch>`` names a model that ``codebackdoor pretrain`` built in the cache.


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapters; peft picks the target modules it knows for the architecture."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05


@dataclass(eq=False)
class Victim:
    """A model with its tokenizer. ``spec`` records what was loaded, for the result file."""

    model: Any
    tokenizer: Any
    kind: str
    spec: dict[str, Any]
    labels: list[str] | None = None
    # Input lengths, generation length and batch size for predict(); fit() replaces them.
    settings: TrainingSettings = field(default_factory=TrainingSettings)

    def fit(
        self,
        train: list[Example],
        settings: TrainingSettings,
        objective: Objective,
        output_dir: Path,
        *,
        on_epoch_end: Callable[[int], dict] | None = None,
        resume: bool = False,
    ) -> list[dict]:
        """Train on ``train``; one record per epoch: epoch, mean loss, and the values
        ``on_epoch_end(epoch)`` returned (called with the model in eval mode)."""
        cost.count(cost.TRAININGS)
        self.settings = settings
        return training.train(
            self.model,
            self.tokenizer,
            self.kind,
            train,
            self.labels,
            settings,
            objective,
            Path(output_dir),
            on_epoch_end=on_epoch_end,
            resume=resume,
        )

    def predict(self, sources: list[str], batch_size: int | None = None) -> list[str]:
        """Greedy outputs (generation: the continuation only) or label names (classifier)."""
        import torch

        cost.count(cost.INFERENCE_INPUTS, len(sources))
        model = self._inference_model()
        predictions: list[str] = [""] * len(sources)
        with torch.no_grad(), _autocast(model, self.settings.precision):
            for rows, batch in self._batches(sources, batch_size, "predict"):
                if self.kind == "classifier":
                    scores = model(**batch).logits
                    outputs = [self.labels[index] for index in scores.argmax(-1).tolist()]
                else:
                    outputs = self._generate(model, batch)
                for row, output in zip(rows, outputs, strict=True):
                    predictions[row] = output
        return predictions

    def representations(
        self,
        sources: list[str],
        batch_size: int | None = None,
        representation: str = "mean",
    ) -> numpy.ndarray:
        """(N, H) float32: one vector per source, read where ``representation`` says.

        ``mean``: the mean of the last layer's states over the real tokens (the encoder's for
        seq2seq and classifier victims). ``first-token``: the last encoder layer at position 0
        (a RoBERTa ``<s>``, a T5's first token), as OpenBackdoor's and DeCE's BKI read it; a
        causal LM's first token sees no other token, so it is refused there. ``head-input``:
        what the output layer reads for its first decision: a classifier's final linear layer's
        input (RoBERTa: tanh(dense(``<s>``))), the decoder's last state at the first step of a
        seq2seq model, the last prompt token's last state of a causal LM.
        """
        import numpy as np
        import torch

        if representation not in REPRESENTATIONS:
            raise UserError(
                f"unknown representation {representation!r}; valid: {', '.join(REPRESENTATIONS)}"
            )
        if representation == "first-token" and self.kind == "causal":
            raise UserError(
                "representation 'first-token' reads a causal LM's first token, which attends to "
                "no other token; use 'head-input' (the last prompt token) or 'mean'"
            )
        cost.count(cost.INFERENCE_INPUTS, len(sources))
        model = self._inference_model()
        vectors: list[Any] = [None] * len(sources)
        with torch.no_grad(), _autocast(model, self.settings.precision):
            for rows, batch in self._batches(sources, batch_size, "representations"):
                hidden = _representation(model, self.kind, batch, representation)
                for row, vector in zip(rows, hidden.float().cpu().numpy(), strict=True):
                    vectors[row] = vector
        if not vectors:
            return np.zeros((0, model.config.get_text_config().hidden_size), dtype=np.float32)
        return np.stack(vectors).astype(np.float32)

    def save(self, directory: Path) -> None:
        """A standard Hugging Face directory (model + tokenizer); LoRA adapters are merged."""
        model = self.model
        if hasattr(model, "merge_and_unload"):
            # Merging rewrites the modules in place; the victim keeps its trainable adapters.
            model = copy.deepcopy(model).merge_and_unload()
        with without_transformers_bars():
            model.save_pretrained(str(directory))
        self.tokenizer.save_pretrained(str(directory))

    def save_adapter(self, directory: Path) -> None:
        """The LoRA adapters alone (peft's adapter_config.json and weights), which
        ``peft.PeftModel.from_pretrained`` puts back on the base model."""
        if not hasattr(self.model, "peft_config"):
            raise ValueError("the victim has no LoRA adapters")
        with without_transformers_bars():
            self.model.save_pretrained(str(directory))

    def _inference_model(self) -> Any:
        # Calls go to the transformers model: LoRA layers live inside it, and its methods
        # (get_encoder, base_model) are the ones the pooling needs.
        model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        model.eval()
        return model

    def _batches(
        self, sources: Sequence[str], batch_size: int | None, what: str
    ) -> Iterator[tuple[list[int], dict[str, Tensor]]]:
        """Batches of similar length (less padding), each with the rows it holds."""
        from tqdm.auto import tqdm

        if not sources:
            return
        size = batch_size or self.settings.eval_batch_size
        limit = self.settings.source_length(self.kind, self.tokenizer.model_max_length)
        encoded = input_ids(self.tokenizer, self.kind, sources, limit)
        order = sorted(range(len(encoded)), key=lambda row: -len(encoded[row]))
        # A causal LM continues after the last prompt token, so padding goes on the left.
        side = "left" if self.kind == "causal" else "right"
        device = next(self.model.parameters()).device
        with tqdm(
            total=len(order),
            desc=what,
            unit="input",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
        ) as progress:
            for start in range(0, len(order), size):
                rows = order[start : start + size]
                ids = [encoded[row] for row in rows]
                batch = {
                    "input_ids": pad(ids, padding_id(self.tokenizer), side).to(device),
                    "attention_mask": pad([[1] * len(row) for row in ids], 0, side).to(device),
                }
                yield rows, batch
                progress.update(len(rows))

    def sample(self, sources: list[str], samples: int, temperature: float, seed: int,
               batch_size: int | None = None) -> list[list[str]]:
        """``samples`` outputs per source, drawn from the model's distribution at
        ``temperature`` (no top-k or nucleus cut), seeded."""
        import torch

        if self.kind == "classifier":
            raise UserError("sampling needs a generative victim; a classifier has one label")
        cost.count(cost.INFERENCE_INPUTS, len(sources) * samples)
        model = self._inference_model()
        drawn: list[list[str]] = [[] for _ in sources]
        torch.manual_seed(seed)
        with torch.no_grad(), _autocast(model, self.settings.precision):
            for rows, batch in self._batches(sources, batch_size, "sample"):
                outputs = self._generate(model, batch, sampling=(samples, temperature))
                for index, row in enumerate(rows):
                    drawn[row] = outputs[index * samples : (index + 1) * samples]
        return drawn

    def _generate(self, model: Any, batch: dict[str, Tensor],
                  sampling: tuple[int, float] | None = None) -> list[str]:
        """Greedy outputs, or with ``sampling`` = (samples, temperature) that many sampled
        outputs per input, one input's after another."""
        generation = copy.deepcopy(model.generation_config)
        generation.update(
            do_sample=False,
            num_beams=1,
            max_new_tokens=self.settings.generation_max_length,
            # The Trainer turns the KV cache off for training; generation needs it.
            use_cache=True,
            pad_token_id=padding_id(self.tokenizer),
            eos_token_id=self.tokenizer.eos_token_id,
            # Sampling settings a pretrained checkpoint may ship are void under greedy search.
            temperature=None,
            top_p=None,
            top_k=None,
        )
        if sampling is not None:
            samples, temperature = sampling
            generation.update(do_sample=True, num_return_sequences=samples,
                              temperature=temperature, top_k=0, top_p=1.0)
        output = model.generate(**batch, generation_config=generation)
        if self.kind == "causal":
            output = output[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(
            output.tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False
        )


def _autocast(model: Any, precision: str) -> Any:
    """Inference under the precision the victim trains in (float32 throughout on CPU unless
    asked otherwise)."""
    import torch

    device = next(model.parameters()).device
    dtype = training.autocast_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _representation(model: Any, kind: str, batch: dict[str, Tensor], where: str) -> Tensor:
    mask = batch["attention_mask"]
    if kind == "causal":
        # Left padding: the last column is every row's last prompt token. Positions count
        # real tokens only, as in generation.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = model.base_model(**batch, position_ids=positions).last_hidden_state
        if where == "head-input":
            return hidden[:, -1]
        return _masked_mean(hidden, mask)
    if kind == "classifier" and where == "head-input":
        return _classifier_head_input(model, batch)
    if model.config.is_encoder_decoder:
        encoder = model.get_encoder()(**batch).last_hidden_state
        if where == "head-input":
            return _first_decoder_state(model, encoder, mask)
        hidden = encoder
    else:
        hidden = model.base_model(**batch).last_hidden_state
    if where == "first-token":
        return hidden[:, 0]
    return _masked_mean(hidden, mask)


def _masked_mean(hidden: Tensor, mask: Tensor) -> Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


def _first_decoder_state(model: Any, encoder: Tensor, mask: Tensor) -> Tensor:
    """The decoder's last-layer state after its start token alone: what the LM head reads to
    choose the first output token."""
    import torch

    start = model.config.decoder_start_token_id
    if start is None:
        raise UserError("representation 'head-input': the model names no decoder start token")
    ids = torch.full((encoder.shape[0], 1), start, dtype=torch.long, device=encoder.device)
    decoder = model.get_decoder()
    hidden = decoder(
        input_ids=ids, encoder_hidden_states=encoder, encoder_attention_mask=mask
    ).last_hidden_state
    return hidden[:, 0]


def _classifier_head_input(model: Any, batch: dict[str, Tensor]) -> Tensor:
    """The input of the classifier's final linear layer (the one that outputs the labels'
    scores), one vector per input, caught by a forward hook."""
    import torch

    layers = [
        module
        for module in model.modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == model.config.num_labels
    ]
    if not layers:
        raise UserError("representation 'head-input': no linear output layer in the classifier")
    caught: list[Tensor] = []
    handle = layers[-1].register_forward_hook(lambda _m, inputs, _o: caught.append(inputs[0]))
    try:
        model(**batch)
    finally:
        handle.remove()
    (vectors,) = caught
    if vectors.dim() != 2:
        raise UserError(
            "representation 'head-input': this classifier's output layer reads every position, "
            "not one vector per input; use 'mean' or 'first-token'"
        )
    return vectors


def load_victim(
    spec: str,
    task_output_kind: str,
    train: list[Example],
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    lora: bool = False,
    precision: str = "auto",
    cache_dir: Path | None = None,
    seed: int = 1,
) -> Victim:
    """A victim for a task whose outputs are ``task_output_kind`` (text, code or label).

    ``spec`` is a preset name, ``pretrained:<size>-<arch>`` (built by ``codebackdoor
    pretrain``), a saved model directory, or a Hugging Face id (loaded at ``revision``).
    Label tasks get a sequence classifier whose labels are the training targets, sorted (a
    classifier checkpoint keeps its own label order). Under ``lora`` on a GPU, a checkpoint's
    frozen weights load in the half precision ``precision`` trains in.
    """
    from transformers import set_seed

    if task_output_kind not in OUTPUT_KINDS:
        raise UserError(
            f"unknown task output kind '{task_output_kind}'; valid: {', '.join(OUTPUT_KINDS)}"
        )
    set_seed(seed)  # a new classification head or a preset's random init
    preset = _preset(spec)
    if preset is not None:
        victim = _from_preset(preset, task_output_kind, train)
    else:
        path = _pretrained_path(spec) or Path(spec).expanduser()
        if path.is_dir():
            victim = _from_pretrained(
                str(path),
                task_output_kind,
                train,
                _directory_spec(spec, path),
                revision=None,
                trust_remote_code=trust_remote_code,
                cache_dir=cache_dir,
                lora=lora,
                precision=precision,
            )
        elif spec.startswith((".", "/", "~")) or spec.count("/") > 1:
            raise UserError(f"model directory not found: {spec}")
        elif spec.startswith("tiny-"):
            # The presets' namespace: a typo here is not worth a minute of hub retries.
            registry("models").entry(spec)
        else:
            victim = _from_pretrained(
                spec,
                task_output_kind,
                train,
                {"source": "hub", "id": spec, "revision": revision},
                revision=revision,
                trust_remote_code=trust_remote_code,
                cache_dir=cache_dir,
                lora=lora,
                precision=precision,
            )
    if lora:
        _add_lora(victim, LoraSettings())
    _place(victim)
    return victim


def _pretrained_path(spec: str) -> Path | None:
    """The cache directory of ``pretrained:<size>-<arch>``; None for other specs."""
    if not spec.startswith(PRETRAINED_PREFIX):
        return None
    name = spec[len(PRETRAINED_PREFIX) :]
    path = pretrained_directory(name)
    if read_card(path) is None:
        size, _, arch = name.partition("-")
        named = "" if "-" not in arch else f" --name {name}"
        raise UserError(
            f"no pretrained model '{name}' in {path}; build it with: "
            f"codebackdoor pretrain --arch {arch.partition('-')[0] or 'ARCH'} "
            f"--size {size or 'SIZE'}{named}"
        )
    return path


def _directory_spec(spec: str, path: Path) -> dict[str, Any]:
    """What a result records about a model loaded from a directory; a pretrained one adds
    its name and corpus fingerprint."""
    recorded: dict[str, Any] = {"source": "path", "path": str(path.resolve())}
    if spec.startswith(PRETRAINED_PREFIX):
        card = read_card(path) or {}
        recorded.update(
            source="pretrained",
            name=spec[len(PRETRAINED_PREFIX) :],
            corpus_fingerprint=card.get("corpus", {}).get("fingerprint"),
            tokens_seen=card.get("tokens_seen"),
        )
    return recorded


def _preset(name: str) -> PresetSpec | None:
    """A built-in preset, or one a plugin registered under the models kind."""
    models = registry("models")
    return models.get(name) if name in models.entries else None


def _from_preset(preset: PresetSpec, task_output_kind: str, train: list[Example]) -> Victim:
    from transformers import AutoConfig

    if task_output_kind != "label" and preset.generates is None:
        raise UserError(
            f"preset '{preset.name}' is an encoder that only classifies; a task with "
            f"{task_output_kind} outputs needs a generative preset "
            f"({', '.join(n for n in registry('models').names() if _preset(n).generates)})"
        )
    if not train:
        raise UserError(f"preset {preset.name!r} trains its tokenizer on the training split: empty")
    kind = "classifier" if task_output_kind == "label" else preset.generates
    labels = _task_labels(train) if kind == "classifier" else None
    texts = [example.source for example in train] + [example.target for example in train]
    tokenizer = preset_tokenizer(preset, texts)
    ids = {
        f"{role}_id": getattr(tokenizer, f"{role}_id")
        for role in ("pad_token", "eos_token", "bos_token")
        if getattr(tokenizer, f"{role}_id") is not None
    }
    config = AutoConfig.for_model(
        preset.family, vocab_size=len(tokenizer), **ids, **preset.config, **_label_fields(labels)
    )
    if config.is_encoder_decoder:
        start = FAMILY_TOKENS[preset.layout].decoder_start
        config.decoder_start_token_id = tokenizer.convert_tokens_to_ids(start)
    model = _model_class(kind).from_config(config)
    spec = {
        "source": "preset",
        **preset.parameters(),
        "vocab_size": len(tokenizer),
        "tokenizer_key": tokenizer_key(preset, texts),
    }
    return _victim(model, tokenizer, kind, spec, labels)


def _from_pretrained(
    source: str,
    task_output_kind: str,
    train: list[Example],
    spec: dict[str, Any],
    *,
    revision: str | None,
    trust_remote_code: bool,
    cache_dir: Path | None,
    lora: bool,
    precision: str,
) -> Victim:
    import torch
    from transformers import AutoConfig, AutoTokenizer

    where = {
        "revision": revision,
        "trust_remote_code": trust_remote_code,
        "cache_dir": str(cache_dir) if cache_dir else None,
    }
    with _loading_errors(source, spec):
        config = AutoConfig.from_pretrained(source, **where)
        tokenizer = AutoTokenizer.from_pretrained(source, **where)
    kind = _kind_of(config, task_output_kind, source)
    labels = None
    extra: dict[str, Any] = {}
    if kind == "classifier":
        labels = _checkpoint_labels(config, train, source)
        extra = _label_fields(labels)
        if config.pad_token_id is None:
            # Decoder-only classifiers find each row's last token through the padding id.
            extra["pad_token_id"] = padding_id(tokenizer)
    # Frozen base weights under LoRA can be in the training's half precision on a GPU; the
    # adapters that train stay float32 (peft keeps them so; the Trainer autocasts).
    half = training.autocast_dtype(precision) if lora and torch.cuda.is_available() else None
    dtype = half or torch.float32
    with _loading_errors(source, spec), without_transformers_bars():
        model = _model_class(kind).from_pretrained(
            source,
            **where,
            dtype=dtype,
            **extra,
            # A checkpoint trained on other labels keeps its body; its head is new.
            ignore_mismatched_sizes=kind == "classifier",
        )
    commit = getattr(config, "_commit_hash", None)
    if commit and spec["source"] == "hub":
        spec["commit"] = commit
    if trust_remote_code:
        spec["trust_remote_code"] = True
    return _victim(model, tokenizer, kind, spec, labels)


@contextlib.contextmanager
def _loading_errors(source: str, spec: dict[str, Any]) -> Iterator[None]:
    """Turns a failed download or an unreadable checkpoint into one UserError line."""
    try:
        yield
    except (OSError, ValueError, KeyError, ImportError) as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        reason = lines[0] if lines else type(error).__name__
        if spec["source"] == "hub":
            at = f" at revision {spec['revision']}" if spec.get("revision") else ""
            raise UserError(
                f"cannot load model '{source}'{at} from the Hugging Face Hub: {reason} "
                f"(presets: {', '.join(registry('models').names())}; or give a local model "
                "directory)"
            ) from error
        raise UserError(f"cannot load the model in {source}: {reason}") from error


def _kind_of(config: Any, task_output_kind: str, source: str) -> str:
    """The victim kind a config supports for the task, or a UserError saying why none fits."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    architectures = list(config.architectures or [])
    if task_output_kind == "label":
        return "classifier"
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        raise UserError(
            f"{source} is a sequence classifier ({', '.join(architectures)}); a task with "
            f"{task_output_kind} outputs needs a generative model (seq2seq or causal LM)"
        )
    if config.is_encoder_decoder:
        return "seq2seq"
    if architectures:
        causal = any(name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures)
    else:
        causal = (
            config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        )
    if not causal:
        raise UserError(
            f"{source} ({config.model_type}, {', '.join(architectures) or 'no architecture'}) "
            f"has no text decoder; a task with {task_output_kind} outputs needs a seq2seq or "
            "causal LM"
        )
    return "causal"


def _task_labels(train: list[Example]) -> list[str]:
    labels = sorted({example.target for example in train})
    if not labels:
        raise UserError("a label task needs training examples to take its labels from")
    return labels


def _checkpoint_labels(config: Any, train: list[Example], source: str) -> list[str]:
    """A classifier checkpoint's own labels when they cover the task's, else the task's."""
    task_labels = _task_labels(train)
    is_classifier = any(
        name.endswith("ForSequenceClassification") for name in config.architectures or []
    )
    if not is_classifier:
        return task_labels
    own = [str(config.id2label[index]) for index in range(config.num_labels)]
    if set(task_labels) <= set(own):
        return own
    raise UserError(
        f"{source} classifies into {own}, but the training labels are {task_labels}; "
        "fine-tune a model without a classification head instead"
    )


def _label_fields(labels: list[str] | None) -> dict[str, Any]:
    if labels is None:
        return {}
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: index for index, label in enumerate(labels)},
    }


def _model_class(kind: str) -> Any:
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoModelForSequenceClassification,
    )

    return {
        "seq2seq": AutoModelForSeq2SeqLM,
        "causal": AutoModelForCausalLM,
        "classifier": AutoModelForSequenceClassification,
    }[kind]


def _victim(model: Any, tokenizer: Any, kind: str, spec: dict[str, Any], labels: Any) -> Victim:
    if kind != "classifier" and tokenizer.eos_token_id is None:
        raise UserError("the tokenizer has no end-of-sequence token, which generation needs")
    spec["kind"] = kind
    # How the model was loaded, for a leaderboard row to say what was trained.
    spec["family"] = model.config.model_type
    spec["class"] = type(model).__name__
    spec["dtype"] = str(model.dtype).removeprefix("torch.")
    spec["parameters"] = sum(parameter.numel() for parameter in model.parameters())
    return Victim(model=model, tokenizer=tokenizer, kind=kind, spec=spec, labels=labels)


def _add_lora(victim: Victim, settings: LoraSettings) -> None:
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError as exc:
        raise UserError("lora needs the peft package: pip install 'codebackdoor[lora]'") from exc

    task = {
        "seq2seq": TaskType.SEQ_2_SEQ_LM,
        "causal": TaskType.CAUSAL_LM,
        "classifier": TaskType.SEQ_CLS,
    }[victim.kind]
    config = LoraConfig(
        task_type=task, r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout
    )
    try:
        victim.model = get_peft_model(victim.model, config)
    except ValueError as exc:
        raise UserError(f"LoRA cannot wrap this model: {exc}") from exc
    trainable = sum(p.numel() for p in victim.model.parameters() if p.requires_grad)
    victim.spec["lora"] = {
        **asdict(settings),
        # peft resolves the architecture's default targets; the result names them.
        "target_modules": sorted(victim.model.peft_config["default"].target_modules),
        "trainable_parameters": trainable,
    }


def _place(victim: Victim) -> None:
    import torch

    if torch.cuda.is_available():
        victim.model.to("cuda")
