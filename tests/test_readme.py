"""The README stays short and the documentation's links hold: a page a researcher can read in
five minutes, with every heading once, and no relative link or anchor into nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codebackdoor.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 350

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks (a `# comment` in a shell block is not a heading)."""
    return FENCE.sub("", text)


def headings(path: Path) -> list[str]:
    return [match.group(2) for match in HEADING.finditer(prose(path.read_text(encoding="utf-8")))]


def anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def links(path: Path) -> list[str]:
    text = INLINE_CODE.sub("", prose(path.read_text(encoding="utf-8")))
    return [match.group(1) for match in LINK.finditer(text)]


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_heading_once(page: Path) -> None:
    seen = headings(page)
    assert seen, f"{page.name} has no heading"
    repeated = sorted({h for h in seen if seen.count(h) > 1})
    assert not repeated, f"headings repeated in {page.name}: {repeated}"


def test_readme_links_every_docs_page() -> None:
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(README)}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …: not checked offline
            continue
        file_part, _, fragment = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and linked.suffix == ".md" and fragment not in map(anchor, headings(linked)):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"broken links in {page.relative_to(ROOT)}: {broken}"


def test_readme_names_every_plugin_group() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [f"codebackdoor.{kind}" for kind in KINDS if f"`codebackdoor.{kind}`" not in text]
    assert not missing, f"entry-point groups the README does not name: {missing}"


def test_anchor_follows_github() -> None:
    assert anchor("`lyra.toml` on this machine, and on one H200") == (
        "lyratoml-on-this-machine-and-on-one-h200"
    )
    assert anchor("Set-up: the two commands") == "set-up-the-two-commands"
