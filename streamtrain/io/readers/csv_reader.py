"""The CSV and TSV reader: delimited records of a plain or gzip file, in chunks (``read_csv``, ``read_tsv``).

Who owns what:
- ``read_csv``/``read_tsv``: a file's records as ``RawChunk`` objects;
  ``wrong_column_count``, ``empty_text`` and ``empty_label`` are decided
  here, the quoting, size and UTF-8 rejects by ``io.csv_records``.
- ``CsvColumns`` (``csv_columns``): the column names or positions of a
  ``ColumnSpec`` resolved to field indices, from the header row when there is
  one.
- ``prefix``: what a tail's reader needs of the part of the file before it
  (its physical line count, and for CSV/TSV its header names); the JSONL
  reader uses it too.

A header that is unreadable or lacks a named column, and an empty file where a
header is expected, are ``DataError`` (file and row).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from streamtrain.errors import DataError
from streamtrain.io.csv_records import CsvRecords
from streamtrain.io.lines import Broken, Lines
from streamtrain.io.readers.base import Column, ColumnSpec, Portion, RawChunk
from streamtrain.io.rejects import REJECT_REASON_TEXT, Reject

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # sizes are bounded by max_field_bytes instead

Records = Iterator[tuple[int, list[str]] | Reject]


@dataclass(frozen=True)
class CsvColumns:
    """The field indices of the text columns and the label column; ``width``: the fields a record needs."""

    text: list[int]
    label: int
    width: int


def read_csv(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion, delimiter: str = ","
) -> Iterator[RawChunk]:
    """The records of a CSV (or, with ``delimiter``, TSV) file, in chunks.

    Args:
        path: the file (``.gz`` allowed).
        spec: the text and label columns.
        chunk_rows: the most records (accepted + rejected) in one chunk.
        max_field_bytes: a longer line or record is rejected (``field_too_large``), never held whole.
        portion: the part of the file to read.
        delimiter: the field delimiter.

    Yields:
        Chunks of accepted records and rejects, in file order; a blank line is not a record.

    Raises:
        DataError: the file cannot be opened, its header is unreadable or lacks a named column, or it is empty
            where a header is expected.
    """
    lines, names = prefix(path, spec, max_field_bytes, portion.start, delimiter)
    with Lines(path, max_field_bytes, start=portion.start, stop=portion.stop) as src:
        src.line = lines
        records = CsvRecords(src, path, delimiter)
        items = iter(records)
        columns = csv_columns(items, spec, path, names)
        text_idx, label_idx, width = columns.text, columns.label, columns.width
        single = text_idx[0] if len(text_idx) == 1 else None
        chunk = RawChunk(path)
        for item in items:
            if isinstance(item, Reject):
                chunk.rejected.append(item)
            else:
                row, fields = item
                if not fields:  # a blank line is not a record
                    continue
                if len(fields) < width:
                    reason: str | None = "wrong_column_count"
                else:
                    text = fields[single] if single is not None else " ".join([fields[i] for i in text_idx])
                    label = fields[label_idx].strip()
                    reason = None if text.strip() else "empty_text"
                    if reason is None and not label:
                        reason = "empty_label"
                if reason is None:
                    chunk.append(text, label, row)
                else:
                    chunk.rejected.append(Reject(path, row, reason, records.excerpt()))
            if chunk.full(chunk_rows):
                chunk.offset = src.bytes_read
                yield chunk
                chunk = RawChunk(path)
        chunk.offset = src.bytes_read
    if chunk.texts or chunk.rejected:
        yield chunk


def read_tsv(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion
) -> Iterator[RawChunk]:
    """``read_csv`` with a tab delimiter: the records of a TSV file, in chunks (the arguments are ``read_csv``'s)."""
    return read_csv(path, spec, chunk_rows, max_field_bytes, portion, delimiter="\t")


def prefix(path: str, spec: ColumnSpec, limit: int, start: int, delimiter: str | None) -> tuple[int, list[str] | None]:
    """What a tail's reader needs of the prefix before it: the first ``start`` bytes of a file.

    Args:
        path: the file.
        spec: the columns (whether a CSV/TSV file has a header).
        limit: the longest line held whole.
        start: where the tail begins; 0: no prefix.
        delimiter: the CSV/TSV delimiter; None: JSONL, no header.

    Returns:
        The prefix's physical lines, and its header names (None without a header).

    Raises:
        DataError: the prefix or its header cannot be read.
    """
    if not start:
        return 0, None
    names = None
    with Lines(path, limit, stop=start) as src:
        if delimiter is not None and spec.csv_has_header():
            names = header(iter(CsvRecords(src, path, delimiter)), path)
            src.hold = None  # the lines after it are only counted, not held
        try:
            while src.next_line() is not None:
                pass
        except Broken as exc:
            raise DataError(f"cannot read the part ingested before: {exc}", path) from exc
        return src.line, names


def header(records: Records, path: str) -> list[str]:
    """The header row's names, stripped.

    Args:
        records: the file's records; the first is taken.
        path: the file, for errors.

    Returns:
        The names.

    Raises:
        DataError: an empty file, or a header that is a reject.
    """
    first = next(records, None)
    if first is None:
        raise DataError("empty file, expected a header row", path, 1)
    if isinstance(first, Reject):
        raise DataError(f"header row: {REJECT_REASON_TEXT[first.reason]} ({first.excerpt})", path, first.row)
    return [h.strip() for h in first[1]]


def csv_columns(records: Records, spec: ColumnSpec, path: str, names: list[str] | None = None) -> CsvColumns:
    """Resolve column names or positions to field indices.

    Args:
        records: the file's records; the header, if any, is consumed from them.
        spec: the columns.
        path: the file, for errors.
        names: the header names of a tail's prefix (then no record is consumed).

    Returns:
        The field indices of the text columns and the label, and the fields a record needs.

    Raises:
        DataError: a named column the header lacks (or one of ``header``'s).
    """
    if names is None:
        names = header(records, path) if spec.csv_has_header() else []

    def index(col: Column) -> int:
        if isinstance(col, int):
            return col
        if col not in names:
            raise DataError(f"no column named {col!r} in header {names}", path, 1)
        return names.index(col)

    text_idx = [index(c) for c in spec.text]
    label_idx = index(spec.label)
    return CsvColumns(text_idx, label_idx, max(*text_idx, label_idx) + 1)
