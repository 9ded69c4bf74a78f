"""A run's identity: every value its result depends on, as plain data, and the run id hashed from
it. Files a config names count by their content: attack and defense presets, and the files of a
model directory, local or a ``pretrained:`` checkpoint's, so that a changed file makes a new run
instead of reading back the old result. A checkpoint's card is left out: it records when and how
fast it was built, so a rebuild with the same weights and tokenizer is the same victim. The
package's version counts too: a release that changes what a run computes (a default, a metric, a
placement rule) makes every run new, instead of reading back results the old code computed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from codebackdoor import __version__
from codebackdoor.config import RunConfig
from codebackdoor.models.pretrained import CARD_FILE, PRETRAINED_PREFIX, pretrained_directory
from codebackdoor.presets import is_preset_path

# A model file larger than this is fingerprinted by its size and its first and last blocks, not
# read whole: checkpoints of billions of parameters would otherwise cost minutes per run id.
WHOLE_FILE_BYTES = 64 << 20
EDGE_BYTES = 4 << 20


# Fields added after run ids were first recorded, with their defaults: at the default they stay
# out of the identity, so the runs of every earlier config keep their ids (and the leaderboard's
# cells their keys); set, they count like any other field.
LATER_FIELDS: dict[str, Any] = {
    "precision": RunConfig.precision,
    "gradient_checkpointing": RunConfig.gradient_checkpointing,
    # The fused loss computes the logits path's loss and gradients up to float rounding.
    "fused": RunConfig.fused,
    "length_grouped": RunConfig.length_grouped,
    "samples": RunConfig.samples,
    "temperature": RunConfig.temperature,
}


def identity(config: RunConfig) -> dict[str, Any]:
    """The fields that decide ``config``'s result, named files included by content."""
    values = without_later_defaults(dataclasses.asdict(config))
    values["codebackdoor"] = __version__
    values["attack"] = _preset(config.attack) if config.attack else None
    values["defenses"] = [_preset(spec) for spec in config.defenses]
    model = _model(config.model)
    if model is not None:
        values["model_files"] = model
    return values


def without_later_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the later fields that hold their defaults."""
    return {key: value for key, value in values.items()
            if key not in LATER_FIELDS or value != LATER_FIELDS[key]}


def identity_hash(values: dict[str, Any]) -> str:
    """The run id: a hash of the canonical JSON of an identity."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def run_id(config: RunConfig) -> str:
    return identity_hash(identity(config))


def _preset(spec: str) -> Any:
    path = Path(spec)
    if is_preset_path(spec) and path.suffix == ".toml" and path.is_file():
        return {"preset": path.name, "sha256": _sha256(path.read_bytes())}
    return spec


def _model(spec: str) -> dict[str, Any] | None:
    """What identifies a model built outside the run: the files of its directory (a
    pretrained checkpoint's without its card); None for presets and hub ids (a hub id's
    revision is a field)."""
    pretrained = spec.startswith(PRETRAINED_PREFIX)
    if pretrained:
        path = pretrained_directory(spec[len(PRETRAINED_PREFIX):])
    else:
        path = Path(spec).expanduser()
        if not path.is_dir():
            return None
    files = sorted(path.iterdir()) if path.is_dir() else []
    return {"files": {item.name: _file_fingerprint(item) for item in files
                      if item.is_file() and not (pretrained and item.name == CARD_FILE)}}


def _file_fingerprint(path: Path) -> str:
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size <= WHOLE_FILE_BYTES:
            return _sha256(handle.read())
        head = handle.read(EDGE_BYTES)
        handle.seek(size - EDGE_BYTES)
        return f"{size}:" + _sha256(head + handle.read(EDGE_BYTES))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
