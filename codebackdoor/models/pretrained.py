"""Pretrained checkpoints built offline: where ``pretrained:<name>`` lives, and the model card
written beside each one (what it was trained on, how, how long).

Pretraining writes both; the victim reads them. They live here, below both, so that neither
imports the other.

The card is JSON so that results and the docs can quote it: the corpus fingerprint and its
file and token counts, the recipe, steps and tokens seen, the loss curve, the hardware, the
versions, and the wall time. ``tokens_seen`` counts corpus tokens (steps × batch × block
length), before T5's span corruption shortens its inputs; ``train_seconds`` adds up every
resumed session, ``wall_seconds`` is the last session's, corpus and tokenizer included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codebackdoor.data.cache import cache_root
from codebackdoor.io import atomic_write_json

# The model spec that names a checkpoint built by `codebackdoor pretrain`.
PRETRAINED_PREFIX = "pretrained:"

CARD_FILE = "pretrain_card.json"
CARD_VERSION = 1
# What every card holds; the tests check it.
CARD_FIELDS = (
    "card_version",
    "name",
    "arch",
    "size",
    "objective",
    "model",
    "corpus",
    "tokenizer",
    "training",
    "steps",
    "tokens_seen",
    "loss_curve",
    "hardware",
    "versions",
    "train_seconds",
    "wall_seconds",
    "created",
)


def write_card(directory: Path, card: dict[str, Any]) -> Path:
    """Write ``card`` (every field of CARD_FIELDS) into ``directory``; its path."""
    card = {"card_version": CARD_VERSION, **card}
    missing = [name for name in CARD_FIELDS if name not in card]
    if missing:
        raise ValueError(f"model card lacks {missing}")
    path = Path(directory) / CARD_FILE
    atomic_write_json(path, card)
    return path


def read_card(directory: Path) -> dict[str, Any] | None:
    """The card in ``directory``; None when there is none (not a finished pretraining)."""
    try:
        return json.loads((Path(directory) / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def pretrained_directory(name: str) -> Path:
    """Where ``pretrained:<name>`` lives: ``<cache>/pretrained/<name>``."""
    return cache_root() / "pretrained" / name
