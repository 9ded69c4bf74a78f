"""A defense plugin in its own package, installed for real with pip, used through the CLI.

``tests/plugins/cb_example_defense`` declares three entry points under
``codebackdoor.defenses``: a working objective defense, one whose module fails to import, and
one that tries to take the built-in name ``dece``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from leaderboard_runs import small_lyra

from codebackdoor.registry import BUILTINS

PLUGIN = Path(__file__).resolve().parent / "plugins" / "cb_example_defense"
ORIGIN = "cb-example-defense 0.1.0"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin pip-installed (offline) into a directory that the commands get on PYTHONPATH."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed: pip cannot build the plugin offline")
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN, work / "src")  # the build writes into its source tree
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(source)],
        check=True, capture_output=True, text=True,
    )
    return site


def codebackdoor(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run([sys.executable, "-m", "codebackdoor.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def _row(listing: str, name: str) -> str:
    return next(line for line in listing.splitlines() if line.split()[1:2] == [name])


def test_list_shows_the_plugin_names_the_broken_one_and_refuses_the_shadow(
    plugin_site: Path,
) -> None:
    done = codebackdoor(plugin_site, "list", "--kind", "defenses")
    assert done.returncode == 0, done.stderr
    assert _row(done.stdout, "confidence-penalty").endswith(ORIGIN)
    assert "Pereyra" in done.stdout
    assert _row(done.stdout, "dece").endswith("built-in")
    assert all(f" {name} " in done.stdout for name in BUILTINS["defenses"])
    assert (f"warning: defense 'broken-example' from {ORIGIN} failed to import "
            "(cb_example_defense.broken:Broken): ModuleNotFoundError") in done.stderr
    assert (f"warning: plugin defense 'dece' from {ORIGIN} refused: the name is already taken "
            "by built-in") in done.stderr


def test_run_with_the_plugin_defense(plugin_site: Path, lyra_dir: Path, tmp_path: Path) -> None:
    data = small_lyra(lyra_dir, tmp_path)
    done = codebackdoor(
        plugin_site, "run", "--task", "generate", "--data", str(data), "--attack", "badpre",
        "--defense", "confidence-penalty", "--model", "tiny-t5", "--epochs", "1",
        "--curve-size", "2", "--max-source-length", "64", "--max-target-length", "64",
        "--generation-max-length", "8", "--out", str(tmp_path / "results"),
    )
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "results").glob("*/result.json")
    result = json.loads(path.read_text())
    (defense,) = result["config"]["defenses"]
    assert defense["method"] == "confidence-penalty" and defense["params"] == {"beta": 0.1}
    assert result["config"]["objective"] == "confidence-penalty"
    # Other codebackdoor plugins may be installed next to it (a user's own): only the example's
    # entry is this test's business.
    assert result["versions"]["plugins"]["cb-example-defense"] == "0.1.0"
    assert "confidence-penalty" in done.stdout


def test_the_broken_plugin_is_refused_by_name(plugin_site: Path, tmp_path: Path) -> None:
    done = codebackdoor(plugin_site, "run", "--defense", "broken-example", "--out",
                        str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"codebackdoor: error: defense 'broken-example' from {ORIGIN} failed to import "
        "(cb_example_defense.broken:Broken): ModuleNotFoundError: No module named "
        "'cb_example_dependency_that_is_not_installed'"
    )
