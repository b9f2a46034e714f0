"""Streaming readers of raw labelled text, and the records they reject.

Every reader yields ``RawChunk`` objects of at most ``chunk_rows`` records
(accepted plus rejected) from one source file, so memory depends on the chunk
size and ``max_field_bytes``, never on the corpus or on one monstrous line.

Who owns what (one reader per module, as Keras' ``data_adapters/``):
- this module, the dispatcher: ``detect_format`` (the reader for a path, by
  extension; ``.gz`` is transparent; a directory is read as one
  sub-directory per class), ``read_chunks`` (walks a list of inputs and
  dispatches to the readers) and ``input_bytes`` (an input's size on disk, a
  directory's documents summed). The names the rest of the project imports
  from ``streamtrain.io.readers`` are all here.
- ``base``: the shared types. ``ColumnSpec`` (which columns hold the text
  and the label, and whether a CSV/TSV file has a header row), ``Portion``
  (the part of an input to read: an append's tail of a file that grew, or a
  directory's new documents; by default ``WHOLE``) and ``RawChunk``.
- ``csv_reader`` (CSV and TSV), ``jsonl_reader``, ``parquet_reader``,
  ``class_dirs`` (a directory per class): one format each, one generator
  ``read_*`` with the signature ``_READERS`` calls.
- ``values``: typed cell values to text and label (JSONL and Parquet).

Built on three neighbours in ``io/``: ``rejects`` (``Reject``, the reasons,
``MAX_FIELD_BYTES``), ``lines`` (the physical lines of a CSV/TSV/JSONL file,
plain or gzip, in bounded memory) and ``csv_records`` (CSV records from those
lines, recovering from broken quoting).

Rejects: one bad record never stops a run, and is never silently kept or
silently lost. Every record read is either accepted (appended to a chunk) or
appears once in some chunk's ``rejected``, with its file, row, reason and a
printable excerpt: per input file, accepted + rejected == records read. A
blank line is not a record. A file that cannot be read past some point
(truncated or corrupt gzip, an I/O error) keeps what was read and ends with
one ``unreadable_remainder`` reject saying from which row on, and about how
many bytes of the file, were lost. Where each reason comes from:

- ``wrong_column_count``, ``unterminated_quote``, ``malformed_csv``: CSV/TSV
  only. A quoting error rejects the record where it *starts*; reading resumes
  at the next physical line, so the rows a stray quote swallowed are read.
- ``empty_text``, ``empty_label``, ``text_not_a_string``, ``field_too_large``:
  any format (no labels to be empty in a directory per class, and CSV fields
  are always strings). ``field_too_large`` is a line or record (CSV/TSV/
  JSONL), a text cell (Parquet) or a document over ``max_field_bytes`` bytes;
  such a line is skipped in pieces, never held whole.
- ``invalid_utf8``: CSV/TSV/JSONL (per record: lines are decoded one by one,
  so the rows around a bad byte are read) and document files.
- ``invalid_json``, ``not_an_object``, ``missing_field``: JSONL; and
  ``label_not_a_string``: a JSONL label that is neither a string nor a
  finite number (a list, an object, a boolean, null, NaN or infinity). A
  number is a label as it reads (``2.0`` is ``"2"``).
- ``unreadable_remainder``: the rest of a file that cannot be read (row: the
  first record lost, ``lost_bytes``: bytes of the file on disk not turned
  into records, an upper bound), a Parquet row group that cannot be decoded,
  or an unreadable document (row ``None``).

What makes a whole file unusable stays a ``DataError``/``UsageError``: input
not found, format not detectable, a CSV/TSV header that is unreadable or
lacks a named column, an empty file where a header is expected, a Parquet
file that cannot be opened or lacks the columns, JSONL columns given by
position, a directory without class sub-directories.

Progress: each chunk's ``offset`` says how many bytes of its source on disk
had been read when it was cut (compressed bytes for gzip; for Parquet, the
file's size times the share of its rows read; for a directory per class, the
sizes of the documents read so far), so the last chunk of a source reaches
its size on disk.

Row numbers are 1-based: for CSV/TSV/JSONL the physical line where a record
starts (the header is line 1; ``\\n``, ``\\r\\n`` and a lone ``\\r`` each end
a line, as the csv module counts them), for Parquet the row. A tail
(``Portion.start``) is read with the header and the line count of the
prefix before it, so its rows keep the file's line numbers.
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
    """Reader name for ``path``: a directory is one sub-directory per class."""
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
    """Yield chunks of at most ``chunk_rows`` records (accepted + rejected) from each input in turn.

    A chunk may hold only rejects. ``max_field_bytes`` bounds one line, record,
    text cell or document; longer ones are rejected as ``field_too_large``.
    ``portion``: the part of each input to read (a Parquet file is read whole).
    """
    if max_field_bytes < 1:
        raise UsageError(f"max_field_bytes must be at least 1, not {max_field_bytes}")
    for path in inputs:
        fmt = detect_format(path)
        reader = _READERS[fmt]
        yield from reader(str(path), spec, chunk_rows, max_field_bytes, portion)


def input_bytes(path: str | os.PathLike) -> int:
    """Bytes on disk of an input: a file's size; for a directory per class, its documents' sizes summed."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return dir_bytes(path)
