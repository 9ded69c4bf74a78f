"""Offline pretraining of code models on the source files already on this machine."""

from codebackdoor.models.pretrained import pretrained_directory
from codebackdoor.pretrain.pretraining import pretrain

__all__ = ["pretrain", "pretrained_directory"]
