"""Streaming readers of raw labelled text, and the records they reject.

Who owns what: this module dispatches (``detect_format``: the reader for a path, by extension, ``.gz``
transparent, a directory read as one sub-directory per class; ``read_chunks``: the chunks of a list of
inputs; ``input_bytes``: an input's size on disk), and every name the rest of the project imports from
``streamtrain.io.readers`` is here. ``base`` holds the shared types (``ColumnSpec``, ``Portion``,
``RawChunk``); ``csv_reader``, ``jsonl_reader``, ``parquet_reader`` and ``class_dirs`` read one format each.
Every reader yields ``RawChunk`` objects of at most ``chunk_rows`` records (accepted plus rejected) from one
source, so memory depends on the chunk size and ``max_field_bytes``, never on the corpus. A bad record never
stops a run and is never silently kept or lost: per input file, accepted + rejected == records read, each
reject with its file, row (1-based: the physical line where it starts, the Parquet row, or None for a
document), reason and excerpt. What makes a whole file unusable (not found, no detectable format, a header
that lacks a named column, ...) is a ``DataError`` or ``UsageError``. Each chunk's ``offset`` is the bytes
of its source on disk read when it was cut, for progress.

Each reject reason's source, row numbers and offsets in detail: docs/design/readers.md
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from streamtrain.errors import UsageError
from streamtrain.io.readers.base import WHOLE, Column, ColumnSpec, Portion, RawChunk
from streamtrain.io.readers.class_dirs import dir_bytes, read_dir
from streamtrain.io.readers.csv_reader import read_csv, read_tsv
from streamtrain.io.readers.jsonl_reader import read_jsonl
from streamtrain.io.readers.parquet_reader import read_parquet
from streamtrain.io.rejects import MAX_FIELD_BYTES

__all__ = [
    "FORMATS",
    "WHOLE",
    "Column",
    "ColumnSpec",
    "Portion",
    "RawChunk",
    "detect_format",
    "input_bytes",
    "read_chunks",
]

Reader = Callable[[str, ColumnSpec, int, int, Portion], Iterator[RawChunk]]

FORMATS = ("csv", "tsv", "jsonl", "parquet", "dir")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_READERS: dict[str, Reader] = {
    "csv": read_csv,
    "tsv": read_tsv,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
    "dir": read_dir,
}


def detect_format(path: str | os.PathLike) -> str:
    """The reader of ``path``, by its extension (``.gz`` is transparent).

    Args:
        path: an input file or directory.

    Returns:
        One of ``FORMATS``: ``dir`` for a directory (one sub-directory per class).

    Raises:
        UsageError: ``path`` does not exist, or its extension is not a known one.
    """
    p = Path(path)
    if p.is_dir():
        return "dir"
    if not p.exists():
        raise UsageError(f"input not found: {p}")
    name = p.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = os.path.splitext(name)[1]
    if suffix not in _EXTENSIONS:
        raise UsageError(
            f"cannot tell the format of {p} from its extension; expected one of "
            f"{', '.join(sorted(_EXTENSIONS))} (optionally .gz) or a directory per class"
        )
    return _EXTENSIONS[suffix]


def read_chunks(
    inputs: Iterable[str | os.PathLike],
    spec: ColumnSpec,
    chunk_rows: int = 4096,
    max_field_bytes: int = MAX_FIELD_BYTES,
    portion: Portion = WHOLE,
) -> Iterator[RawChunk]:
    """The records of each input in turn, in chunks.

    Args:
        inputs: files and directories per class.
        spec: the text and label columns.
        chunk_rows: the most records (accepted + rejected) in one chunk; a chunk may hold only rejects.
        max_field_bytes: bounds one line, record, text cell or document; longer ones are rejected as
            ``field_too_large``.
        portion: the part of each input to read (a Parquet file is read whole).

    Yields:
        Chunks of one source each.

    Raises:
        UsageError: ``max_field_bytes`` below 1, or an input not found or of an unknown format.
        DataError: an input that cannot be used at all (see the module docstring).
    """
    if max_field_bytes < 1:
        raise UsageError(f"max_field_bytes must be at least 1, not {max_field_bytes}")
    for path in inputs:
        fmt = detect_format(path)
        reader = _READERS[fmt]
        yield from reader(str(path), spec, chunk_rows, max_field_bytes, portion)


def input_bytes(path: str | os.PathLike) -> int:
    """Bytes on disk of an input.

    Args:
        path: an input file or directory per class.

    Returns:
        A file's size; for a directory per class, its documents' sizes summed.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return dir_bytes(path)
