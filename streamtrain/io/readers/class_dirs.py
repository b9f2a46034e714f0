"""The directory-per-class reader: one sub-directory per class, one document per file (the aclImdb layout).

Who owns what:
- ``read_dir``: the documents of a directory as ``RawChunk`` records, class
  by class in name order, each class's files in path order (sub-directories
  included, hidden names skipped); the label is the class directory's name,
  the row the document's path. Only ``Portion.documents`` when given.
- ``read_document``: one document's text (plain or gzip), or why it is
  rejected (``unreadable_remainder``, ``field_too_large``, ``invalid_utf8``,
  ``empty_text``).
- ``dir_bytes``: the documents' sizes summed, for ``input_bytes``.

A directory that cannot be listed, or has no class sub-directories, is a
``DataError``. Progress: a chunk's ``offset`` is the size of the documents
read so far.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamtrain.errors import DataError
from streamtrain.io.lines import UNREADABLE
from streamtrain.io.readers.base import ColumnSpec, Portion, RawChunk
from streamtrain.io.rejects import Reject, error_excerpt_of, excerpt_of

_NO_FILE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)  # errors Path.is_file() takes for "no file"


@dataclass(frozen=True)
class Document:
    """What ``read_document`` read: the text, or the reject ``reason`` with an ``excerpt`` and the bytes ``lost``."""

    reason: str | None
    text: str = ""
    excerpt: str = ""
    lost: int | None = None


def read_dir(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion
) -> Iterator[RawChunk]:
    """The documents of a directory per class, in chunks: one sub-directory per class, one document per file.

    Args:
        path: the directory (its documents may be ``.gz``).
        spec: the columns (unused: the label is the class directory's name).
        chunk_rows: the most records (accepted + rejected) in one chunk.
        max_field_bytes: a longer document is rejected (``field_too_large``), never held whole.
        portion: the part of the file to read (only its ``documents``, paths relative to ``path``, when given).

    Yields:
        Chunks of accepted documents (the label: the class directory's name, the row: the document's path) and
        rejects, class by class in name order.

    Raises:
        DataError: the directory cannot be listed, or has no class sub-directories.
    """
    root = Path(path)
    chunk = RawChunk(path)
    done = 0  # bytes of the documents read
    for class_dir in _classes(path):
        for doc, size in _documents(class_dir):
            if portion.documents is not None and doc.relative_to(root).as_posix() not in portion.documents:
                continue
            read = read_document(doc, max_field_bytes)
            done += size
            if read.reason is None:
                chunk.append(read.text, class_dir.name, str(doc))
            else:
                chunk.rejected.append(Reject(str(doc), None, read.reason, read.excerpt, read.lost))
            if chunk.full(chunk_rows):
                chunk.offset = done
                yield chunk
                chunk = RawChunk(path)
    chunk.offset = done
    if chunk.texts or chunk.rejected:
        yield chunk


def _classes(path: str) -> list[Path]:
    """The class sub-directories of ``path``, by name; ``DataError`` when it has none or cannot be listed."""
    try:
        classes = sorted(d for d in Path(path).iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot list: {exc}", path) from exc
    if not classes:
        raise DataError("directory has no class sub-directories", path)
    return classes


def _documents(class_dir: Path) -> Iterator[tuple[Path, int]]:
    """(document, size on disk) of each regular file under ``class_dir`` not under a hidden name, in path order."""
    for doc in sorted(class_dir.rglob("*")):
        try:
            info = doc.stat()  # what doc.is_file() would stat and ignore, kept for the size
        except OSError as exc:
            if exc.errno not in _NO_FILE:
                raise
            continue
        except ValueError:
            continue
        if not stat.S_ISREG(info.st_mode) or any(p.startswith(".") for p in doc.relative_to(class_dir).parts):
            continue
        yield doc, info.st_size


def read_document(doc: Path, limit: int) -> Document:
    """One document's text, or why it is rejected, reading at most ``limit + 1`` bytes.

    Args:
        doc: the document (``.gz``: inflated).
        limit: a longer document is rejected (``field_too_large``).

    Returns:
        The text, or ``unreadable_remainder`` (with the bytes lost), ``field_too_large``, ``invalid_utf8`` or
        ``empty_text`` with an excerpt.
    """
    opener = gzip.open if doc.name.lower().endswith(".gz") else open
    try:
        with opener(doc, "rb") as fh:
            data = fh.read(limit + 1)
    except UNREADABLE as exc:
        try:
            lost: int | None = doc.stat().st_size
        except OSError:
            lost = None
        return Document("unreadable_remainder", excerpt=error_excerpt_of(exc), lost=lost)
    if len(data) > limit:
        return Document("field_too_large", excerpt=excerpt_of(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Document("invalid_utf8", excerpt=excerpt_of(data))
    if not text.strip():
        return Document("empty_text", excerpt=excerpt_of(data))
    return Document(None, text)


def dir_bytes(path: str) -> int:
    """The sizes of a directory per class's documents summed (its class sub-directories walked as ``rglob``)."""
    total = 0
    with os.scandir(path) as entries:
        classes = [e.path for e in entries if not e.name.startswith(".") and e.is_dir()]
    while classes:
        with os.scandir(classes.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir() and not entry.is_symlink():  # as rglob walks
                    classes.append(entry.path)
                elif entry.is_file():
                    total += entry.stat().st_size
    return total
