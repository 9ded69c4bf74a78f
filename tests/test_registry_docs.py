"""`codebackdoor list` and the README agree with the registry: every built-in is in both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codebackdoor.cli import main
from codebackdoor.registry import BUILTINS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_list_shows_every_builtin_as_built_in(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    for kind, names in BUILTINS.items():
        for name in names:
            assert any(line.split()[:2] == [kind[:-1], name] and line.rstrip().endswith(
                "built-in") for line in rows), (kind, name)


def test_readme_names_every_builtin() -> None:
    # Names in backquotes: `dece`, `tiny-t5`, `method-name` …
    documented = set(re.findall(r"`([a-z0-9][a-z0-9-]*)`", README.read_text(encoding="utf-8")))
    missing = {kind: sorted(set(names) - documented) for kind, names in BUILTINS.items()}
    assert not any(missing.values()), f"built-ins not named in README.md: {missing}"
