"""The embedded corpus: filters, deduplication, per-file splits, the cache, the packaged Python
corpus and the command that rebuilds it."""

from __future__ import annotations

import json
import os
import platform
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from conftest import error_line

from codebackdoor.code.functions import functions
from codebackdoor.code.parser import is_valid
from codebackdoor.data import cache, corpus_file
from codebackdoor.data.harvest import (
    DEFAULT_JDK_MODULES,
    HARVESTER_VERSION,
    build_corpus_file,
    find_jdk_sources,
    java_corpus,
    python_corpus,
)
from codebackdoor.data.sources import SPLITS, split_by_hash
from codebackdoor.errors import UserError

SHAPES = '''package demo;

/** Shapes. */
public class Shapes {
    /** Returns the area of the given rectangle in square units. */
    public static int area(int width, int height) {
        int w = Math.abs(width);
        int h = Math.abs(height);
        return w * h;
    }

    /** Too short. */
    public int tiny(int x) {
        int y = x;
        int z = y;
        return z;
    }

    /** Runs a test of the shape code here. */
    public void testArea() {
        int a = area(1, 2);
        int b = area(2, 1);
        assert a == b;
    }

    /** An inner helper with a body too short to keep. */
    public int one() {
        return 1;
    }

    static class Box {
        /** Creates a box of the given side length in units. */
        Box(int side) {
            int s = side;
            this.side = s;
            check(s);
        }

        /** Reports the volume of this box in cubic units. */
        int volume() {
            int s = side;
            int sq = s * s;
            return sq * s;
        }

        int side;
    }
}
'''
# The same method as Shapes.area up to whitespace: kept, since Copy.java comes first in sorted
# order, and Shapes.area is dropped as its duplicate.
COPY = '''package demo;

public class Copy {
    /** Returns the area of the given rectangle in square units. */
    public static int area(int width,   int height) {
        int w = Math.abs(width);
        int h =   Math.abs(height);
        return w * h;
    }
}
'''
TEST_FILE = '''package demo;

public class ShapesTest {
    /** Checks the computed area of some rectangle shapes. */
    public void checks() {
        int a = 1;
        int b = 2;
        int c = a + b;
    }
}
'''


def make_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mod.demo/demo/Shapes.java", SHAPES)
        archive.writestr("mod.demo/demo/Copy.java", COPY)
        archive.writestr("mod.demo/demo/ShapesTest.java", TEST_FILE)
        archive.writestr("mod.demo/test/demo/Other.java", SHAPES.replace("Shapes", "Other"))
        archive.writestr("mod.other/demo/Ignored.java", SHAPES.replace("Shapes", "Ignored"))
        archive.writestr("mod.demo/demo/README.txt", "not java")
    return path


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_java_harvest_of_a_small_zip(tmp_path: Path, fresh_cache: Path) -> None:
    corpus = java_corpus(make_zip(tmp_path / "src.zip"), modules=("mod.demo",))
    found = {fn.name: fn for fn in corpus.functions}
    # Left out: tiny (short summary), testArea (a test), one (short body), the Box constructor
    # (a constructor alone does not parse), ShapesTest.java, test/, mod.other and Shapes.area.
    assert sorted(found) == ["Copy.area", "Shapes.Box.volume"]
    area = found["Copy.area"]
    assert area.id == "java:mod.demo/demo/Copy.java:Copy.area:5"
    assert area.summary == "Returns the area of the given rectangle in square units."
    assert area.code.startswith("public static int area(int width,   int height) {\n    int w")
    assert area.split == split_by_hash("mod.demo/demo/Copy.java")
    assert found["Shapes.Box.volume"].code.startswith("int volume() {\n    int s = side;")
    assert corpus.source["kind"] == "embedded"
    assert corpus.source["cache_file"].startswith(str(fresh_cache))
    assert corpus.source["cache_hit"] is False
    assert java_corpus(tmp_path / "src.zip", modules=("mod.demo",)).source["cache_hit"] is True


def test_java_sources_are_looked_up_and_their_absence_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEBACKDOOR_JDK_SRC", str(tmp_path / "my-src.zip"))
    assert find_jdk_sources() == tmp_path / "my-src.zip"
    with pytest.raises(UserError, match="JDK sources not found"):
        java_corpus()
    monkeypatch.delenv("CODEBACKDOOR_JDK_SRC")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setattr("glob.glob", lambda pattern: [])
    with pytest.raises(UserError, match="apt-get install openjdk-17-source"):
        find_jdk_sources()
    (tmp_path / "lib").mkdir()
    make_zip(tmp_path / "lib" / "src.zip")
    assert find_jdk_sources() == tmp_path / "lib" / "src.zip"
    with pytest.raises(UserError, match=r"holds no Java sources in the modules java\.base"):
        java_corpus(modules=DEFAULT_JDK_MODULES)


@pytest.fixture(scope="module")
def stdlib():
    """The packaged standard-library corpus."""
    return python_corpus()


def test_python_stdlib_harvest(stdlib) -> None:
    sizes = stdlib.source["corpus_sizes"]
    assert all(sizes[split] > 150 for split in SPLITS), sizes
    assert sum(sizes.values()) == len(stdlib.functions) > 2500
    for fn in stdlib.functions:
        leaf = fn.name.rsplit(".", 1)[-1]
        assert not leaf.lower().startswith("test"), fn.id
        parts = fn.file.split("/")
        assert not parts[-1].startswith("test_") and not {"test", "tests", "idle_test"} & set(
            parts[:-1]), fn.id
        assert fn.id == f"python:{fn.file}:{fn.name}:{fn.line}"
        assert 3 <= len(fn.summary.split()) <= 30, fn.id
        assert fn.split == split_by_hash(fn.file)
    normalised = [" ".join(fn.undocumented.split()) for fn in stdlib.functions]
    assert len(set(normalised)) == len(normalised)
    assert len({fn.id for fn in stdlib.functions}) == len(stdlib.functions)


def test_python_sources_parse_and_lost_only_their_docstring(stdlib) -> None:
    for fn in stdlib.functions:
        assert is_valid(fn.code, "python") and is_valid(fn.undocumented, "python"), fn.id
        assert functions(fn.undocumented, "python")[0].docstring is None, fn.id
        assert functions(fn.code, "python")[0].docstring is not None, fn.id
        assert fn.code.startswith(("def ", "async def ")), fn.id
    known = next(fn for fn in stdlib.functions if fn.name == "JSONDecoder.decode")
    assert known.file == "json/decoder.py"
    assert known.summary.startswith("Return the Python representation of")
    assert "Return the Python representation" not in known.undocumented


def test_the_python_corpus_is_the_packaged_file(monkeypatch: pytest.MonkeyPatch, stdlib) -> None:
    # Whatever Python runs this, and wherever its standard library is, the packaged file is read.
    monkeypatch.setattr("sysconfig.get_paths", lambda *a, **k: pytest.fail("stdlib was read"))
    again = python_corpus()
    assert again.functions == stdlib.functions
    packaged = corpus_file.read_packaged()
    assert again.source["sha256"] == packaged.sha256
    assert again.source["harvested_from"] == "CPython 3.11.7 standard library"
    assert packaged.header["harvester"] == HARVESTER_VERSION  # else regenerate the file
    assert packaged.header["functions"] == len(stdlib.functions) == 3961
    notice = resources.files("codebackdoor.data").joinpath(
        "corpora", corpus_file.license_name(corpus_file.PACKAGED_PYTHON)).read_text()
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in notice


def test_build_corpus_regenerates_the_packaged_file(tmp_path: Path) -> None:
    if platform.python_version() != "3.11.7":
        pytest.skip("the packaged corpus was harvested from CPython 3.11.7")
    out = tmp_path / "python-stdlib-3.11.jsonl.gz"
    written = build_corpus_file("stdlib", out)
    assert written["sha256"] == corpus_file.read_packaged().sha256
    assert written["license"] == str(tmp_path / "python-stdlib-3.11.LICENSE.txt")


def test_build_corpus_from_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from codebackdoor.cli import main

    package = tmp_path / "site-packages" / "demo"
    package.mkdir(parents=True)
    (package / "core.py").write_text(
        'def area(width, height):\n    """Return the area of a rectangle in square units."""\n'
        "    w = abs(width)\n    h = abs(height)\n    return w * h\n", encoding="utf-8")
    (package / "test_core.py").write_text((package / "core.py").read_text(), encoding="utf-8")
    out = tmp_path / "demo.jsonl.gz"
    assert main(["data", "build-corpus", "--source", str(package.parent), "--out", str(out)]) == 0
    written = json.loads(capsys.readouterr().out)
    read = corpus_file.read(out)
    assert written["sha256"] == read.sha256 and "license" not in written
    assert read.header["functions"] == 1 and read.header["lang"] == "python"
    (record,) = read.records
    assert record["id"] == "python:demo/core.py:area:1" and record["split"] in SPLITS
    assert error_line(capsys, ["data", "build-corpus", "--source", str(tmp_path / "none"),
                               "--out", str(out)]).endswith("is not one")
    assert "ends in .jsonl.gz" in error_line(
        capsys, ["data", "build-corpus", "--source", str(package.parent), "--out", "x.jsonl"])
    out.write_bytes(b"not gzip")
    with pytest.raises(UserError, match="is not a corpus file"):
        corpus_file.read(out)


def test_cache_rebuilds_a_damaged_file_and_keys_on_identity(fresh_cache: Path) -> None:
    builds = []

    def build() -> list[dict]:
        builds.append(1)
        return [{"n": len(builds)}]

    assert cache.load_or_build("demo", {"v": 1}, build).records == [{"n": 1}]
    assert cache.load_or_build("demo", {"v": 1}, build).hit is True
    assert cache.cache_path("demo", {"v": 2}) != cache.cache_path("demo", {"v": 1})
    path = cache.cache_path("demo", {"v": 1})
    path.write_text('{"n": 1}\n{"trunc', encoding="utf-8")
    rebuilt = cache.load_or_build("demo", {"v": 1}, build)
    assert rebuilt.hit is False and rebuilt.records == [{"n": 2}]
    assert not [name for name in os.listdir(path.parent) if name.endswith(".tmp")]


@pytest.fixture(scope="module")
def real_jdk() -> Path:
    try:
        return find_jdk_sources()
    except UserError:
        pytest.skip("no JDK src.zip on this machine")


def test_real_jdk_sources(real_jdk: Path) -> None:
    # Two small modules keep this quick; the default set is exercised by the task tests.
    corpus = java_corpus(real_jdk, modules=("java.sql", "java.logging"))
    assert len(corpus.functions) > 100
    files_in = {}
    for fn in corpus.functions:
        assert fn.file.startswith(("java.sql/", "java.logging/"))
        assert is_valid(fn.undocumented, "java"), fn.id
        files_in.setdefault(fn.file, set()).add(fn.split)
    assert all(len(splits) == 1 for splits in files_in.values())
    assert {fn.split for fn in corpus.functions} == set(SPLITS)
