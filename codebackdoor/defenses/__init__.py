"""Defenses: data filters, training objectives and input purifiers, composed by the runner."""

from codebackdoor.defenses.base import (
    IGNORE_INDEX,
    STAGES,
    Defense,
    DefensePreset,
    ObjectiveDefense,
    load_defense,
)

__all__ = [
    "IGNORE_INDEX",
    "STAGES",
    "Defense",
    "DefensePreset",
    "ObjectiveDefense",
    "load_defense",
]
