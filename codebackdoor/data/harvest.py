"""The embedded corpus: documented functions harvested with tree-sitter.

Python is read from the corpus shipped with the package (``corpora/``, harvested from CPython
3.11's standard library by ``build_corpus_file``), so it is the same on every machine and Python
version. Java is harvested on this machine from the JDK's ``lib/src.zip`` (Debian:
``openjdk-17-source``) and cached: the JDK sources are GPLv2 with the Classpath exception, a
licence this Apache-2.0 package does not take on, and the harvest varies with the installed JDK.
A function is kept when

- its docstring (Python) or Javadoc (Java) has a first sentence of 3–30 words,
- its body, without the docstring (and, in Java, without the outer braces), has 3–60 non-blank
  lines,
- neither it nor its file is a test (names starting with ``test``; ``test_*.py``, ``*Test.java``,
  ``test``/``tests``/``idle_test`` directories),
- its code without the docstring parses on its own (which leaves out Java constructors: alone,
  tree-sitter-java reads ``Name(int x) {...}`` as a call) and was not seen before
  (whitespace-normalised; files are visited in sorted order, so the first occurrence wins).

Splits are drawn per file (sha256 of the relative path, 80/10/10), so functions of one file, which
share names and idioms, never straddle train and test (label tasks re-split per class, still by
file: ``codebackdoor.data.stratify``). Java harvests are cached (see ``cache``).
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import sys
import sysconfig
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from codebackdoor.code.functions import (
    Function,
    definition_node,
    extract,
    first_sentence,
    functions,
    without_docstring,
)
from codebackdoor.code.parser import cached_parse, grammar_versions, is_valid
from codebackdoor.data import corpus_file
from codebackdoor.data.cache import load_or_build
from codebackdoor.data.sources import SPLITS, split_by_hash
from codebackdoor.errors import UserError

# Bump whenever a change here changes which functions are kept or what is recorded.
HARVESTER_VERSION = 1
SUMMARY_WORDS = (3, 30)
BODY_LINES = (3, 60)
TEST_DIRECTORIES = {"test", "tests", "idle_test"}
JDK_SRC_ENV = "CODEBACKDOOR_JDK_SRC"
# The JDK's core library and its SQL, logging and HTTP-client modules: thousands of methods,
# harvested in seconds. The desktop (AWT/Swing), XML and jdk.* tool modules would more than
# double a first run's time (docs/performance.md).
DEFAULT_JDK_MODULES = ("java.base", "java.sql", "java.logging", "java.net.http")
SCOPE_TYPES = {
    "python": {"class_definition", "function_definition"},
    "java": {
        "class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
        "annotation_type_declaration", "method_declaration", "constructor_declaration",
    },
}


@dataclass(frozen=True)
class HarvestedFunction:
    """One kept function: ``code`` is its dedented definition, ``undocumented`` the same without
    its docstring (what the tasks show a model), ``summary`` its docstring's first sentence."""

    id: str
    lang: str
    file: str
    name: str
    line: int
    code: str
    undocumented: str
    summary: str
    split: str


@dataclass
class Corpus:
    """The harvested functions of one language and a record of where they came from."""

    lang: str
    functions: list[HarvestedFunction]
    source: dict[str, Any]


def corpus(lang: str) -> Corpus:
    """The embedded corpus of ``lang`` ("python" or "java"), harvested once and then cached."""
    if lang == "python":
        return python_corpus()
    if lang == "java":
        return java_corpus()
    raise UserError(f"no embedded corpus for language '{lang}'; embedded languages: python, java")


def python_corpus() -> Corpus:
    """The packaged functions of CPython 3.11's standard library (whatever Python runs this)."""
    packaged = corpus_file.read_packaged(corpus_file.PACKAGED_PYTHON)
    harvested = [HarvestedFunction(**record) for record in packaged.records]
    where = f"codebackdoor/data/{corpus_file.PACKAGED_DIR}/{corpus_file.PACKAGED_PYTHON}"
    source = {
        "kind": "embedded", "path": where, "sha256": packaged.sha256,
        "harvested_from": packaged.header["harvested_from"],
        "harvester": packaged.header["harvester"],
        "license": corpus_file.license_name(corpus_file.PACKAGED_PYTHON),
        "revision": None, "config": None, "columns": None, "cache_file": None,
        "corpus_sizes": _sizes(harvested),
    }
    return Corpus("python", harvested, source)


def harvest_python(root: Path, label: str) -> list[HarvestedFunction]:
    """The kept functions of the non-test Python files under ``root``."""
    files = _python_files(root)
    if not files:
        raise UserError(f"no Python files found under {root}")
    return harvest(((name, path.read_bytes) for name, path in files), "python",
                   total=len(files), label=label)


def build_corpus_file(source: str, out: Path) -> dict[str, Any]:
    """Harvest ``source`` ("stdlib": this interpreter's standard library, else a directory such
    as a site-packages) into the corpus file ``out``; the standard library's licence notice is
    copied beside it. What was written, as a JSON-able record."""
    if source == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        origin = (f"{platform.python_implementation()} {platform.python_version()} standard "
                  "library")
    else:
        root = Path(source).expanduser()
        if not root.is_dir():
            raise UserError(f"--source must be 'stdlib' or a directory; {root} is not one")
        origin = f"the Python files under {root.resolve()}"
    found = harvest_python(root, f"harvesting {origin}")
    header = {"lang": "python", "harvester": HARVESTER_VERSION, "harvested_from": origin,
              "grammars": grammar_versions(), "functions": len(found)}
    sha256 = corpus_file.write(out, header, (asdict(fn) for fn in found))
    written = {"file": str(out), "sha256": sha256, **header, "corpus_sizes": _sizes(found)}
    notice = root / "LICENSE.txt"
    if source == "stdlib" and notice.is_file():
        license_path = out.with_name(corpus_file.license_name(out.name))
        shutil.copyfile(notice, license_path)
        written["license"] = str(license_path)
    return written


def java_corpus(
    src_zip: str | Path | None = None, modules: Iterable[str] | None = DEFAULT_JDK_MODULES
) -> Corpus:
    """Methods of the JDK sources in ``src_zip`` (found when None), restricted to ``modules``
    (the zip's top-level directories; None takes every file)."""
    path = Path(src_zip) if src_zip is not None else find_jdk_sources()
    if not path.is_file():
        raise UserError(f"JDK sources not found: {path}")
    modules = None if modules is None else tuple(sorted(modules))
    stat = path.stat()
    identity = {
        "harvester": HARVESTER_VERSION, "lang": "java", "src_zip": str(path.resolve()),
        "size": stat.st_size, "mtime": stat.st_mtime_ns, "modules": modules,
        "grammars": grammar_versions(),
    }

    def build() -> list[dict[str, Any]]:
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise UserError(f"{path} is not a zip file ({exc})") from exc
        with archive:
            names = _java_files(archive.namelist(), modules)
            if not names:
                wanted = "" if modules is None else f" in the modules {', '.join(modules)}"
                raise UserError(f"{path} holds no Java sources{wanted}")
            return [asdict(fn) for fn in harvest(
                ((name, lambda name=name: archive.read(name)) for name in names), "java",
                total=len(names), label=f"harvesting the JDK sources of {path.name}",
            )]

    return _cached_corpus("java", identity, build)


def find_jdk_sources() -> Path:
    """``$CODEBACKDOOR_JDK_SRC``, else ``$JAVA_HOME/lib/src.zip``, else the first
    ``/usr/lib/jvm/*/lib/src.zip`` (sorted, after resolving links)."""
    override = os.environ.get(JDK_SRC_ENV)
    if override:
        return Path(override).expanduser()
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "lib" / "src.zip")
    candidates += sorted({Path(found).resolve() for found in
                          glob.glob("/usr/lib/jvm/*/lib/src.zip")})
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UserError(
        "the Java corpus needs the JDK's sources (lib/src.zip) and none was found: install them "
        "(Debian/Ubuntu: apt-get install openjdk-17-source) or set CODEBACKDOOR_JDK_SRC to a "
        "src.zip"
    )


def harvest(
    files: Iterable[tuple[str, Callable[[], bytes]]], lang: str, *, total: int, label: str
) -> list[HarvestedFunction]:
    """The kept functions of ``files`` ((relative path, reader) pairs, visited in the given
    order), with a progress bar on stderr."""
    from tqdm import tqdm

    seen: set[str] = set()
    kept = []
    # disable=None: the bar shows on a terminal only, so logs and captured stderr stay clean.
    progress = tqdm(files, total=total, desc=label, unit="file", file=sys.stderr, disable=None)
    for name, read in progress:
        try:
            text = read().decode("utf-8")
        except UnicodeDecodeError:
            continue  # not UTF-8: no modern standard-library or JDK source is
        for fn in _file_functions(name, text, lang):
            key = " ".join(fn.undocumented.split())
            if key not in seen:
                seen.add(key)
                kept.append(fn)
    return kept


def _file_functions(name: str, text: str, lang: str) -> Iterable[HarvestedFunction]:
    data = text.encode("utf-8")
    split = split_by_hash(name)
    for fn in functions(text, lang):
        if fn.name.lower().startswith("test") or fn.docstring is None:
            continue
        summary = first_sentence(fn.docstring, lang)
        if not SUMMARY_WORDS[0] <= len(summary.split()) <= SUMMARY_WORDS[1]:
            continue
        if not BODY_LINES[0] <= _body_lines(data, fn) <= BODY_LINES[1]:
            continue
        code = extract(text, fn)
        undocumented = _undocumented(code, lang)
        if undocumented is None:
            continue
        line = data.count(b"\n", 0, fn.start) + 1
        qualified = _qualified_name(text, lang, fn)
        yield HarvestedFunction(
            id=f"{lang}:{name}:{qualified}:{line}", lang=lang, file=name, name=qualified,
            line=line, code=code, undocumented=undocumented, summary=summary, split=split,
        )


def _body_lines(data: bytes, fn: Function) -> int:
    """Non-blank lines of the body, the docstring and Java's outer braces not counted."""
    body = data[fn.body_start : fn.body_end]
    if fn.doc_start is not None and fn.body_start <= fn.doc_start < fn.body_end:
        body = data[fn.body_start : fn.doc_start] + data[fn.doc_end : fn.body_end]
    if fn.lang == "java":
        body = body.strip()[1:-1]
    return sum(1 for line in body.split(b"\n") if line.strip())


def _undocumented(code: str, lang: str) -> str | None:
    """The extracted definition without its docstring; None if it does not parse alone."""
    found = functions(code, lang)
    if not found or found[0].start != 0:
        return None
    undocumented = without_docstring(code, lang, found[0])
    return undocumented if is_valid(undocumented, lang) else None


def _qualified_name(text: str, lang: str, fn: Function) -> str:
    """``Outer.Inner.name``: the names of the enclosing classes and functions, then ``fn``'s."""
    node = definition_node(cached_parse(text, lang), fn).parent
    names = [fn.name]
    while node is not None:
        if node.type in SCOPE_TYPES[lang]:
            name = node.child_by_field_name("name")
            if name is not None:
                names.append(name.text.decode("utf-8"))
        node = node.parent
    return ".".join(reversed(names))


def _python_files(root: Path) -> list[tuple[str, Path]]:
    """(path relative to ``root``, path) of the library's non-test modules, sorted."""
    found = []
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories[:] = sorted(
            d for d in subdirectories
            if d not in TEST_DIRECTORIES and d not in {"site-packages", "__pycache__"}
        )
        for filename in sorted(filenames):
            if filename.endswith(".py") and not filename.startswith("test_"):
                path = Path(directory, filename)
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def _java_files(names: Iterable[str], modules: tuple[str, ...] | None) -> list[str]:
    """The zip's non-test ``.java`` entries, restricted to ``modules``, sorted."""
    chosen = []
    for name in names:
        path = PurePosixPath(name)
        if path.suffix != ".java" or path.stem.endswith(("Test", "Tests")):
            continue
        if TEST_DIRECTORIES & set(path.parts[:-1]):
            continue
        if modules is None or path.parts[0] in modules:
            chosen.append(name)
    return sorted(chosen)


def _cached_corpus(
    lang: str, identity: dict[str, Any], build: Callable[[], list[dict[str, Any]]]
) -> Corpus:
    cached = load_or_build(f"{lang}-functions", identity, build)
    harvested = [HarvestedFunction(**record) for record in cached.records]
    source = {
        "kind": "embedded", "path": identity["src_zip"],
        "revision": None, "config": None, "columns": None, "cache_file": str(cached.path),
        "cache_hit": cached.hit, "identity": identity,
        "corpus_sizes": _sizes(harvested),
    }
    return Corpus(lang, harvested, source)


def _sizes(harvested: list[HarvestedFunction]) -> dict[str, int]:
    return {split: sum(fn.split == split for fn in harvested) for split in SPLITS}
