"""Defenses: data filters, training objectives and input purifiers, composed by the runner."""

from codebackdoor.defenses.base import (
    STAGES,
    Defense,
    ObjectiveDefense,
    load_defense,
)
from codebackdoor.models.objective import IGNORE_INDEX

__all__ = [
    "IGNORE_INDEX",
    "STAGES",
    "Defense",
    "ObjectiveDefense",
    "load_defense",
]
