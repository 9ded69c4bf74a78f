"""Offline pretraining of code models on the source files already on this machine."""

from codebackdoor.pretrain.pretraining import pretrain, pretrained_directory

__all__ = ["pretrain", "pretrained_directory"]
