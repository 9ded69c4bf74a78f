"""The corpus file: harvested functions as gzipped JSON lines behind one header line.

The embedded Python corpus ships in this form (``corpora/`` beside this module), so that every
machine and every Python version reads the same functions. The bytes are deterministic (gzip
with no name and mtime 0, records in harvest order, keys sorted), so regenerating the file from
the same interpreter and harvester gives the same sha256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from codebackdoor.errors import UserError
from codebackdoor.io import atomic_write_bytes

FORMAT = "codebackdoor-corpus/1"
SUFFIX = ".jsonl.gz"
# The packaged Python corpus and its licence notice, under codebackdoor/data/corpora/.
PACKAGED_DIR = "corpora"
PACKAGED_PYTHON = "python-stdlib-3.11.jsonl.gz"


@dataclass
class CorpusFile:
    """A corpus file's header (what was harvested, by which harvester), its records, and the
    sha256 of its bytes."""

    header: dict[str, Any]
    records: list[dict[str, Any]]
    sha256: str


def license_name(corpus_name: str) -> str:
    """``python-stdlib-3.11.jsonl.gz`` → ``python-stdlib-3.11.LICENSE.txt``."""
    return corpus_name.removesuffix(SUFFIX) + ".LICENSE.txt"


def encode(header: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> bytes:
    lines = [json.dumps({"format": FORMAT, **header}, sort_keys=True, ensure_ascii=False)]
    lines += [json.dumps(record, sort_keys=True, ensure_ascii=False) for record in records]
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as handle:
        handle.write(("\n".join(lines) + "\n").encode("utf-8"))
    return buffer.getvalue()


def write(path: Path, header: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> str:
    """Write the file atomically; its sha256."""
    if not path.name.endswith(SUFFIX):
        raise UserError(f"{path}: a corpus file's name ends in {SUFFIX}")
    data = encode(header, records)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def decode(data: bytes, where: str) -> CorpusFile:
    try:
        lines = gzip.decompress(data).decode("utf-8").split("\n")
        header, *records = [json.loads(line) for line in lines if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{where} is not a corpus file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{where} does not start with a {FORMAT} header")
    return CorpusFile(header, records, hashlib.sha256(data).hexdigest())


def read(path: Path) -> CorpusFile:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the corpus file {path}: {exc.strerror}") from exc
    return decode(data, str(path))


def read_packaged(name: str = PACKAGED_PYTHON) -> CorpusFile:
    """A corpus shipped inside the package (through importlib.resources, so a wheel, an
    editable install and a source checkout all find it)."""
    resource = resources.files("codebackdoor.data").joinpath(PACKAGED_DIR, name)
    return decode(resource.read_bytes(), f"codebackdoor/data/{PACKAGED_DIR}/{name}")
