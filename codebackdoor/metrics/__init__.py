"""Evaluation metrics: BLEU variants, CodeBLEU, exact match, classification and subtoken scores.

Each metric lives in its own module; ``codebackdoor.metrics.definitions`` gives each a versioned
definition id for result files, and the registry's ``metrics`` kind names them. This module
only holds the input check they share.
"""

from __future__ import annotations

from collections.abc import Sequence

from codebackdoor.errors import UserError


def check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    """Refuse inputs no metric can score: nothing to score, or predictions not paired 1:1."""
    if len(predictions) != len(references):
        raise UserError(
            f"cannot score {len(predictions)} predictions against {len(references)} references: "
            "each prediction needs exactly one reference"
        )
    if not predictions:
        raise UserError("cannot score an empty list of predictions")
