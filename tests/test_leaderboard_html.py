"""The HTML page in headless Chromium: it loads with no console message, shows every row, and
clicking a header sorts (driven through the page's own #sort= link, which clicks the header)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from leaderboard_runs import make_runs

from codebackdoor.cli import main

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def page(lyra_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    runs = make_runs(lyra_dir, tmp_path_factory.getbasetemp() / "leaderboard-runs")
    out = tmp_path_factory.mktemp("html")
    board = out / "leaderboard.json"
    assert main(["leaderboard", "build", str(next(iter(runs.values())).parents[1]), "--out",
                 str(board)]) == 0
    html = out / "index.html"
    assert main(["leaderboard", "html", "--leaderboard", str(board), "--out", str(html)]) == 0
    return html, json.loads(board.read_text())["rows"]


def load(path: Path, fragment: str, profile: Path) -> tuple[str, list[str]]:
    """The DOM after load, and the page's console messages."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={profile}", "--dump-dom", path.as_uri() + fragment],
        capture_output=True, text=True, timeout=120, check=True,
    )
    console = [line for line in done.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]
    return done.stdout, console


def row_order(dom: str) -> list[str]:
    return re.findall(r'<tr data-row="([0-9a-f]+)"', dom)


def test_the_console_check_sees_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>noSuchFunction();</script></body></html>")
    _, console = load(broken, "", tmp_path / "profile")
    assert any("noSuchFunction" in line for line in console)


def test_page_is_self_contained(page: tuple[Path, list[dict]]) -> None:
    text = page[0].read_text()
    assert not re.search(r"\b(src|href)\s*=", text) and "<link" not in text
    assert text.count("<svg") == 3  # sbleu vs ASR; sbleu and ASR per epoch


def test_page_loads_clean_with_every_row(page: tuple[Path, list[dict]], tmp_path: Path) -> None:
    html, rows = page
    dom, console = load(html, "", tmp_path / "profile")
    assert console == []
    assert row_order(dom) == [row["key"] for row in rows]


@pytest.mark.parametrize(
    ("fragment", "value", "descending"),
    [("#sort=clean-desc", lambda r: r["metrics"]["clean.sbleu"]["mean"], True),
     ("#sort=asr", lambda r: r["metrics"].get("asr", {}).get("mean"), False)],
)
def test_clicking_a_header_sorts(page: tuple[Path, list[dict]], tmp_path: Path, fragment: str,
                                 value, descending: bool) -> None:
    html, rows = page
    dom, console = load(html, fragment, tmp_path / "profile")
    assert console == []
    known = sorted((r for r in rows if value(r) is not None), key=value, reverse=descending)
    expected = [r["key"] for r in known] + [r["key"] for r in rows if value(r) is None]
    assert row_order(dom) == expected
    key = fragment.removeprefix("#sort=").removesuffix("-desc")
    state = "descending" if descending else "ascending"
    assert re.search(rf'<th data-key="{key}"[^>]*aria-sort="{state}"', dom)
