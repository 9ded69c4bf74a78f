"""The pretraining corpus: whole source files already on this machine, deduplicated, in shards.

Sources: every ``.py`` file under the Python roots (by default the running interpreter's standard
library and its site-packages) and every ``.java`` entry of the JDK's ``src.zip`` when one is
found. Nothing leaves the machine, so licences do not restrict what is read. Files are visited in
the order of a sha256 of their name, so any prefix of the shards is a uniform sample (the
tokenizer trains on one, and a token budget reads only as many shards as it needs). A file is
kept when it is UTF-8, its size lies within the bounds, and its content (sha256) was not seen
before. pip's editable-install hooks (``__editable__*``) are not read: they are generated per
checkout and hold its absolute path, so with them the same environment in two checkouts would
give two corpora.

The corpus depends on what is installed, so the pretraining card lists the distributions of
the Python roots (``distributions``): installed alone in a fresh environment whose
site-packages is passed as a root, they give the same files again.

Shards are JSONL files of ``{"name", "lang", "sha256", "text"}`` under
``<cache>/pretrain/corpus-<key>/``; ``key`` hashes the options and the listing of the sources
(names, sizes, modification times), so installing a package gives a new corpus. A progress file
written after each shard makes an interrupted build resume where it stopped; memory holds the
file list and the content hashes only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codebackdoor.data.cache import cache_root
from codebackdoor.data.harvest import find_jdk_sources
from codebackdoor.errors import UserError
from codebackdoor.io import atomic_write_json, atomic_write_text

# Bump when a change here changes which files are kept or how shards are written.
CORPUS_FORMAT = 2
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
EDITABLE_HOOK = "__editable__"


def default_python_roots() -> list[str]:
    """The standard library and the site-packages directories of the running interpreter."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(paths[name] for name in ("stdlib", "purelib", "platlib")))


@dataclass
class CorpusOptions:
    """Where the corpus comes from and which files it keeps.

    ``jdk_src`` None finds the JDK's src.zip as the embedded Java corpus does (none found: no
    Java); ``java=False`` leaves Java out. The size bounds drop near-empty files and the
    machine-generated giants (Unicode tables, vendored bundles) that would dominate a shard.
    """

    python_roots: Sequence[str] = field(default_factory=default_python_roots)
    java: bool = True
    jdk_src: str | None = None
    min_bytes: int = 64
    max_bytes: int = 500_000
    shard_bytes: int = 16_000_000

    def __post_init__(self) -> None:
        if self.min_bytes < 0 or self.max_bytes < self.min_bytes:
            raise UserError(
                f"corpus: need 0 <= min_bytes <= max_bytes, got {self.min_bytes}, {self.max_bytes}"
            )
        if self.shard_bytes < 1:
            raise UserError(f"corpus: shard_bytes = {self.shard_bytes} must be positive")
        for root in self.python_roots:
            if not Path(root).is_dir():
                raise UserError(f"corpus: Python root not found: {root}")
        if self.jdk_src is not None and not Path(self.jdk_src).is_file():
            raise UserError(f"corpus: JDK sources not found: {self.jdk_src}")


@dataclass
class BuiltCorpus:
    """A finished corpus: its shard files and what its manifest records."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def shards(self) -> list[Path]:
        return [self.directory / name for name in self.manifest["shards"]]

    def texts(self, shards: Sequence[Path] | None = None) -> Iterator[str]:
        """The kept files' texts, shard by shard, one file in memory at a time."""
        for shard in self.shards if shards is None else shards:
            for record in read_shard(shard):
                yield record["text"]


@dataclass(frozen=True)
class SourceFile:
    name: str  # "python:<root index>/<relative path>" or "java:<zip entry>"
    lang: str
    size: int
    # Python files are read from disk; Java entries from the open src.zip (None here).
    read: Callable[[], bytes] | None


def build_corpus(options: CorpusOptions) -> BuiltCorpus:
    """The corpus for ``options``, built now or resumed, or read back when it is complete."""
    from tqdm import tqdm

    jdk = _jdk(options)
    files, listing = _listing(options, jdk)
    identity = {
        "format": CORPUS_FORMAT,
        "options": {key: value for key, value in asdict(options).items() if key != "python_roots"},
        "python_roots": [str(Path(root).resolve()) for root in options.python_roots],
        "jdk_src": str(jdk) if jdk else None,
        "listing": listing,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    directory = cache_root() / "pretrain" / f"corpus-{key}"
    manifest = _read_json(directory / MANIFEST)
    if manifest is not None:
        return BuiltCorpus(directory, manifest)
    if not files:
        raise UserError("corpus: no Python or Java source files found in the given roots")
    progress = _read_json(directory / PROGRESS) or _fresh_progress()
    seen: set[str] = set()
    fingerprint = hashlib.sha256()
    for name in progress["shards"]:
        for record in read_shard(directory / name):
            seen.add(record["sha256"])
            fingerprint.update(bytes.fromhex(record["sha256"]))
    shard: list[str] = []
    shard_bytes = 0
    archive = zipfile.ZipFile(jdk) if jdk else None
    try:
        bar = tqdm(
            total=sum(file.size for file in files),
            initial=sum(file.size for file in files[: progress["next_file"]]),
            desc="building the pretraining corpus",
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            disable=None,
        )
        for index in range(progress["next_file"], len(files)):
            file = files[index]
            bar.update(file.size)
            kept = _kept_text(file, archive, options, seen)
            if kept is None:
                continue
            text, digest = kept
            seen.add(digest)
            fingerprint.update(bytes.fromhex(digest))
            progress["counts"][file.lang] = progress["counts"].get(file.lang, 0) + 1
            progress["bytes"] += file.size
            line = {"name": file.name, "lang": file.lang, "sha256": digest, "text": text}
            shard.append(json.dumps(line, ensure_ascii=False) + "\n")
            shard_bytes += len(text)
            if shard_bytes >= options.shard_bytes:
                _finish_shard(directory, shard, progress, index + 1)
                shard, shard_bytes = [], 0
        if shard:
            _finish_shard(directory, shard, progress, len(files))
        bar.close()
    finally:
        if archive is not None:
            archive.close()
    manifest = {
        "identity": identity,
        "fingerprint": fingerprint.hexdigest(),
        "files": progress["counts"],
        "bytes": progress["bytes"],
        "shards": progress["shards"],
    }
    atomic_write_json(directory / MANIFEST, manifest)
    (directory / PROGRESS).unlink(missing_ok=True)
    return BuiltCorpus(directory, manifest)


def read_shard(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def _fresh_progress() -> dict[str, Any]:
    return {"shards": [], "next_file": 0, "counts": {}, "bytes": 0}


def _finish_shard(directory: Path, lines: list[str], progress: dict[str, Any], next_file: int):
    name = f"shard-{len(progress['shards']):05d}.jsonl"
    atomic_write_text(directory / name, "".join(lines))
    progress["shards"].append(name)
    progress["next_file"] = next_file
    atomic_write_json(directory / PROGRESS, progress)


def _kept_text(
    file: SourceFile, archive: zipfile.ZipFile | None, options: CorpusOptions, seen: set[str]
) -> tuple[str, str] | None:
    """The file's text and content sha256, or None when it is dropped."""
    if not options.min_bytes <= file.size <= options.max_bytes:
        return None
    data = file.read() if file.read is not None else archive.read(file.name[len("java:") :])
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen:
        return None
    try:
        return data.decode("utf-8"), digest
    except UnicodeDecodeError:
        return None


def _jdk(options: CorpusOptions) -> Path | None:
    if not options.java:
        return None
    if options.jdk_src is not None:
        return Path(options.jdk_src)
    try:
        found = find_jdk_sources()
    except UserError:
        return None  # the corpus is Python only where no JDK sources are installed
    return found if found.is_file() else None


def _listing(options: CorpusOptions, jdk: Path | None) -> tuple[list[SourceFile], str]:
    """The candidate files in visiting order, and a digest of their names, sizes and times."""
    files: list[SourceFile] = []
    stamps = hashlib.sha256()
    roots = [Path(root).resolve() for root in options.python_roots]
    for index, root in enumerate(roots):
        nested = [other for other in roots if other != root and other.is_relative_to(root)]
        for directory, subdirectories, filenames in os.walk(root):
            here = Path(directory)
            # A root inside another (site-packages inside the stdlib) is read once, as itself.
            subdirectories[:] = sorted(
                name
                for name in subdirectories
                if name != "__pycache__" and here / name not in nested
            )
            for filename in sorted(filenames):
                if not filename.endswith(".py") or filename.startswith(EDITABLE_HOOK):
                    continue
                path = here / filename
                try:
                    stat = path.stat()
                except OSError:
                    continue  # a dangling link
                name = f"python:{index}/{path.relative_to(root).as_posix()}"
                stamps.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                files.append(SourceFile(name, "python", stat.st_size, path.read_bytes))
    if jdk is not None:
        stat = jdk.stat()
        stamps.update(f"{jdk}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        try:
            with zipfile.ZipFile(jdk) as archive:
                entries = archive.infolist()
        except zipfile.BadZipFile as exc:
            raise UserError(f"corpus: {jdk} is not a zip file ({exc})") from exc
        for entry in entries:
            if entry.filename.endswith(".java"):
                files.append(SourceFile(f"java:{entry.filename}", "java", entry.file_size, None))
    files.sort(key=lambda file: hashlib.sha256(file.name.encode("utf-8")).digest())
    return files, stamps.hexdigest()


def distributions(python_roots: Sequence[str]) -> dict[str, list[str]]:
    """The distributions installed in the roots: ``pinned`` as ``name==version`` (what
    ``pip install --no-deps`` takes to put their files back) and ``editable``, the names of
    those installed from a checkout, whose sources the corpus does not read."""
    from importlib.metadata import distributions as installed

    pinned: set[str] = set()
    editable: set[str] = set()
    for root in python_roots:
        for distribution in installed(path=[str(root)]):
            name = distribution.metadata["Name"]
            if _is_editable(distribution):
                editable.add(name)
            else:
                pinned.add(f"{name}=={distribution.version}")
    return {"pinned": sorted(pinned, key=str.lower), "editable": sorted(editable, key=str.lower)}


def _is_editable(distribution: Any) -> bool:
    direct_url = distribution.read_text("direct_url.json")
    if not direct_url:
        return False
    try:
        return bool(json.loads(direct_url).get("dir_info", {}).get("editable"))
    except (json.JSONDecodeError, AttributeError):
        return False


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
