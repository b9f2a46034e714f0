"""A dataset's inputs as the manifest records them: size and sha256 of each, and which were already ingested.

Every input of a prepare or an append is recorded in ``manifest.sources``
with its ``bytes`` and ``sha256`` (``digest``), when it was ingested and by
which night (0 for the first prepare, N for the N-th append). That record is
what lets a nightly ``prepare --append`` skip an input it has already
ingested (``ingested``: same size and sha256, whatever its path), and what
``prepare --refit`` checks before it re-reads every recorded input
(``changed``).

A directory per class is digested as a whole: sha256 over the sorted lines
``relative_path\\0size\\0sha256_of_file\\n`` of the documents the reader
reads (class sub-directories and files whose path has no part starting with
``.``); its bytes are their total.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

from streamtrain.fs.checksums import sha256_file


def now() -> str:
    """The time recorded for an ingest: ISO 8601, UTC, seconds."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _documents(root: Path) -> list[Path]:
    """The files a directory-per-class reader reads (``io.readers._read_dir``'s selection)."""
    out = []
    for class_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for doc in class_dir.rglob("*"):
            if doc.is_file() and not any(p.startswith(".") for p in doc.relative_to(class_dir).parts):
                out.append(doc)
    return out


def digest(path: str | os.PathLike[str]) -> tuple[int, str]:
    """(bytes, sha256) of an input file, or of a directory per class as described above."""
    path = Path(path)
    if not path.is_dir():
        return os.stat(path).st_size, sha256_file(path)
    lines = []
    total = 0
    for doc in _documents(path):
        size = doc.stat().st_size
        total += size
        lines.append(f"{doc.relative_to(path).as_posix()}\0{size}\0{sha256_file(doc)}\n")
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8", "surrogateescape"))
    return total, h.hexdigest()


def ingested(sources: list[dict], size: int, sha256: str) -> dict | None:
    """The recorded source with this content (same size and sha256), or None."""
    for source in sources:
        if source.get("sha256") == sha256 and source.get("bytes") == size:
            return source
    return None


def changed(source: dict) -> str | None:
    """What is wrong with a recorded input now, in a few words; None when its size and sha256 still match."""
    path = source["path"]
    if "sha256" not in source or "bytes" not in source:
        return "its size and sha256 were not recorded (prepared by an older streamtrain)"
    if not os.path.exists(path):
        return "missing"
    try:
        size, sha256 = digest(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if size != source["bytes"]:
        return f"changed: {size} bytes now, {source['bytes']} when ingested"
    if sha256 != source["sha256"]:
        return "changed: its sha256 differs from the one recorded when it was ingested"
    return None


def describe(source: dict) -> str:
    """``PATH (night N)``, for messages."""
    return f"{source['path']} (night {source.get('night', 0)})"
