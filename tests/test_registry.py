"""Registry discovery through real entry points: a distribution's metadata on sys.path."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from codebackdoor.errors import UserError
from codebackdoor.registry import BUILTINS, Registry


def _install_fake_distribution(root: Path, name: str, entry_points: str) -> None:
    info = root / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cb_demo_plugin.py").write_text(
        "from dataclasses import dataclass\n"
        "from typing import ClassVar\n"
        "from codebackdoor.attacks.nl_triggers import RareWordTrigger\n"
        "@dataclass\n"
        "class Shout(RareWordTrigger):\n"
        "    name: ClassVar[str] = 'shout'\n"
        "    description: ClassVar[str] = 'inserts HEY'\n"
        "    citation: ClassVar[str] = 'nobody, 2026'\n"
        "    words: tuple = ('HEY',)\n"
    )
    _install_fake_distribution(
        tmp_path,
        "cb_demo_plugin",
        "[codebackdoor.attacks]\n"
        "shout = cb_demo_plugin:Shout\n"
        "broken = cb_missing_module:Nothing\n"
        "fixed = cb_demo_plugin:Shout\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    sys.modules.pop("cb_demo_plugin", None)


def test_builtins_are_listed_without_plugins() -> None:
    registry = Registry.discover("attacks")
    assert set(BUILTINS["attacks"]) <= set(registry.names())
    assert registry.entry("fixed").origin == "built-in"


def test_plugin_is_discovered_and_loads_lazily(plugin_path: Path) -> None:
    registry = Registry.discover("attacks")
    assert "cb_demo_plugin" not in sys.modules  # discovery imports nothing
    entry = registry.entry("shout")
    assert entry.origin == "cb_demo_plugin 1.2.3"
    cls = entry.load()
    assert cls.name == "shout"


def test_broken_plugin_is_reported_by_name_and_others_work(plugin_path: Path) -> None:
    registry = Registry.discover("attacks")
    with pytest.raises(UserError, match=r"'broken' from cb_demo_plugin 1\.2\.3 failed to import"):
        registry.get("broken")
    assert registry.get("shout").name == "shout"
    assert registry.get("badpre").name == "badpre"


def test_plugin_cannot_shadow_a_builtin(plugin_path: Path) -> None:
    registry = Registry.discover("attacks")
    assert registry.entry("fixed").origin == "built-in"
    assert any("'fixed'" in p and "refused" in p for p in registry.problems)


def test_unknown_name_lists_valid_names_and_closest() -> None:
    with pytest.raises(UserError) as info:
        Registry.discover("attacks").get("grammer")
    message = str(info.value)
    assert "did you mean 'grammar'" in message
    assert "badpre" in message and "rename" in message
