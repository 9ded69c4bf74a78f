"""Victim models: built-in tiny presets, saved directories and Hugging Face ids, one interface.

Importing this package imports no torch (``codebackdoor list`` reads the presets, which the
registry's ``models`` kind names); the victim
and the training engine import it when they are used.
"""

from codebackdoor.models.presets import PresetSpec

__all__ = ["PresetSpec", "TrainingSettings", "Victim", "load_victim"]


def __getattr__(name: str):
    # The victim and training modules are cheap to import but their callers expect to find
    # them here; resolving them on first access keeps `import codebackdoor.models` light.
    if name in ("Victim", "load_victim"):
        from codebackdoor.models import victim

        return getattr(victim, name)
    if name == "TrainingSettings":
        from codebackdoor.models.training import TrainingSettings

        return TrainingSettings
    raise AttributeError(f"module 'codebackdoor.models' has no attribute {name!r}")
