"""File checksums: sha256 streamed in bounded memory, and "is this file the one that was recorded?".

``file_problem`` compares a file on disk with its recorded size and sha256
and says what is wrong (missing, truncated or grown, different bytes), or
None. ``file_record`` and ``record_problem`` do the same for a file a
manifest names by a record ``{"path", "bytes", "sha256"}`` relative to its
directory (the validation sample, the feature names). ``check_once`` hashes
each file at most once per process while its size, modification time and
inode stay the same, so fit can check every shard before its first read
without reading the data twice per epoch.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

_BLOCK = 1 << 20
_checked: set[tuple[str, int, int, int, str]] = set()
_lock = threading.Lock()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of ``path``'s bytes, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def file_problem(path: str | os.PathLike[str], size: int | None, sha256: str | None) -> str | None:
    """What is wrong with ``path`` against its record, in a few words.

    Args:
        path: the file.
        size: its recorded size in bytes (None: unrecorded, not compared).
        sha256: its recorded hex sha256.

    Returns:
        "missing", "truncated: ...", "grown: ...", "damaged: ..." or "unreadable: ..."; None when it matches.
    """
    if size is not None and (problem := size_problem(path, size)) is not None:
        return problem
    try:
        if sha256_file(path) != sha256:
            return "damaged: its sha256 checksum differs from the one recorded"
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    return None


def size_problem(path: str | os.PathLike[str], size: int) -> str | None:
    """``file_problem`` without the checksum: what a ``stat`` alone can tell, at once whatever the file's size.

    Args:
        path: the file.
        size: its recorded size in bytes.

    Returns:
        "missing", "truncated: ...", "grown: ..." or "unreadable: ..."; None when the size matches.
    """
    try:
        actual = os.stat(path).st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if actual == size:
        return None
    return f"{'truncated' if actual < size else 'grown'}: {actual} bytes on disk, {size} recorded"


def file_record(directory: str | os.PathLike[str], relative: str) -> dict:
    """How a manifest records a file it names.

    Args:
        directory: the directory the record is relative to.
        relative: the file's path inside it.

    Returns:
        ``{"path": relative, "bytes": size, "sha256": hex digest}``.
    """
    path = Path(directory) / relative
    return {"path": relative, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def record_problem(directory: str | os.PathLike[str], record: dict) -> str | None:
    """``file_problem`` of the file a ``file_record`` names.

    Args:
        directory: the directory the record is relative to.
        record: a ``file_record``, or ``{}`` for none.

    Returns:
        What is wrong, or None when the file matches or there is no record.
    """
    if not record:
        return None
    return file_problem(Path(directory) / record["path"], record["bytes"], record["sha256"])


def check_once(path: str | os.PathLike[str], size: int, sha256: str) -> str | None:
    """``file_problem``, remembered per process for a file that matched and has not changed since.

    Args:
        path: the file.
        size: its recorded size in bytes.
        sha256: its recorded hex sha256.

    Returns:
        What is wrong, or None when it matches (at once, for a file that matched before with the same inode, size
        and modification time).
    """
    try:
        st = os.stat(path)
    except OSError:
        return file_problem(path, size, sha256)
    key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns, sha256)
    with _lock:
        if key in _checked:
            return None
    problem = file_problem(path, size, sha256)
    if problem is None:
        with _lock:
            _checked.add(key)
    return problem
