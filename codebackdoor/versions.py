"""Versions of everything a result depends on, read from package metadata (nothing is imported)."""

from __future__ import annotations

import platform
from importlib import metadata

from codebackdoor import __version__

TRACKED = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "datasets",
    "peft",
    "tree-sitter",
    "tree-sitter-python",
    "tree-sitter-java",
    "sacrebleu",
    "scikit-learn",
    "numpy",
)
PLUGIN_GROUPS = tuple(f"codebackdoor.{kind}" for kind in ("tasks", "attacks", "defenses", "models"))


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def plugin_versions() -> dict[str, str]:
    """Distributions that register codebackdoor entry points, with their versions."""
    found: dict[str, str] = {}
    for group in PLUGIN_GROUPS:
        for ep in metadata.entry_points(group=group):
            if ep.dist is not None:
                found[ep.dist.name] = ep.dist.version
    return dict(sorted(found.items()))


def versions() -> dict[str, object]:
    packages = {name: v for name in TRACKED if (v := _version(name)) is not None}
    return {
        "codebackdoor": __version__,
        "python": platform.python_version(),
        "packages": packages,
        "plugins": plugin_versions(),
    }
