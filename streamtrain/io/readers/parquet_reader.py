"""The Parquet reader: a plain or gzip Parquet file's rows, batch by batch, in chunks (``read_parquet``).

Who owns what:
- ``read_parquet``: a file's rows as ``RawChunk`` records; a ``.gz`` file is
  inflated to a temporary file first (Parquet needs random access). Read
  whole: a Parquet file cannot grow in place (``dataset.sources`` refuses a
  tail of one).
- ``parquet_columns``: the ``ColumnSpec``'s names or positions resolved to
  the file's column names.
- ``parquet_reason``: why a row is rejected (``invalid_utf8``,
  ``text_not_a_string``, ``field_too_large``, ``empty_text``,
  ``empty_label``), or None.
- ``parquet_bytes``: the compressed bytes lost from a row group on, for the
  ``unreadable_remainder`` of a batch that cannot be decoded (the rest of the
  file is lost, said once).

A file that cannot be opened (or inflated) or lacks a column is a ``DataError``.
Progress: a chunk's ``offset`` is the file's size times the share of its rows
read.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from streamtrain.errors import DataError
from streamtrain.io.lines import UNREADABLE
from streamtrain.io.readers.base import WHOLE, Column, ColumnSpec, Portion, RawChunk
from streamtrain.io.readers.values import label_of, text_of
from streamtrain.io.rejects import Reject, error_excerpt_of, excerpt_of


@dataclass(frozen=True)
class ParquetColumns:
    """The file's columns of the text and of the label; ``wanted``: the columns read, each once."""

    text: list[str]
    label: str
    wanted: list[str]


@dataclass(frozen=True)
class _Batch:
    """Up to ``chunk_rows`` rows of one row group: ``cells[column][i]``, the Python value of row ``i``."""

    group: int
    rows: int
    cells: dict[str, list[object]]


@dataclass(frozen=True)
class _Undecoded:
    """A batch of row group ``group`` that could not be decoded: the last thing ``_batches`` yields."""

    group: int
    error: Exception


def read_parquet(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion = WHOLE
) -> Iterator[RawChunk]:
    """The rows of a Parquet file, batch by batch, in chunks.

    Errors and chunks name ``path``, also when the file read is an inflated temporary copy of it.

    Args:
        path: the file (``.gz`` allowed).
        spec: the text and label columns.
        chunk_rows: the most records (accepted + rejected) in one chunk.
        max_field_bytes: a longer text cell is rejected (``field_too_large``), never held whole.
        portion: the part of the file to read (ignored: a Parquet file is read whole).

    Yields:
        Chunks of accepted rows and rejects, in file order.

    Raises:
        DataError: the file cannot be opened or inflated, or lacks a column.
    """
    if path.lower().endswith(".gz"):
        with _inflated(path) as source:
            yield from _read_file(path, source, spec, chunk_rows, max_field_bytes)
    else:
        yield from _read_file(path, path, spec, chunk_rows, max_field_bytes)


@contextmanager
def _inflated(path: str) -> Iterator[str]:
    """A temporary copy of the gzip file ``path`` inflated, removed on exit."""
    with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
        try:
            with gzip.open(path, "rb") as src:
                shutil.copyfileobj(src, tmp, 1 << 20)
        except UNREADABLE as exc:
            raise DataError(f"cannot inflate: {exc}", path) from exc
        tmp.flush()
        yield tmp.name


def _read_file(path: str, source: str, spec: ColumnSpec, chunk_rows: int, limit: int) -> Iterator[RawChunk]:
    """The rows of the Parquet file ``source`` (``path`` itself, or its inflated copy) as chunks of ``path``."""
    pf, names = _open(path, source)
    columns = parquet_columns(names, spec, path)
    size, total = os.path.getsize(path), max(1, pf.metadata.num_rows)  # progress: bytes in proportion to rows
    row = 0
    chunk = RawChunk(path)
    for batch in _batches(pf, columns.wanted, chunk_rows):
        if isinstance(batch, _Undecoded):  # a corrupt page: the rest of the file is lost, said once
            lost = parquet_bytes(pf, batch.group, os.path.getsize(source))
            chunk.rejected.append(Reject(path, row + 1, "unreadable_remainder", error_excerpt_of(batch.error), lost))
            chunk.offset = size
            yield chunk
            return
        for i in range(batch.rows):
            row += 1
            _add_row(chunk, row, batch.cells, i, columns, limit)
            if chunk.full(chunk_rows):
                chunk.offset = size * min(row, total) // total
                yield chunk
                chunk = RawChunk(path)
    chunk.offset = size
    if chunk.texts or chunk.rejected:
        yield chunk


def _open(path: str, source: str) -> tuple[Any, list[str]]:
    """(the opened ``pyarrow.parquet.ParquetFile``, its column names); ``DataError`` naming ``path``."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(source)
        names = pf.schema_arrow.names
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"not a readable Parquet file: {exc}", path) from exc
    return pf, names


def parquet_columns(names: list[str], spec: ColumnSpec, path: str) -> ParquetColumns:
    """``spec``'s columns as the file's column names.

    Args:
        names: the file's column names.
        spec: the columns, by name or position.
        path: the file, for errors.

    Returns:
        The text and label columns, and the columns to read, each once.

    Raises:
        DataError: a column the file lacks, or a position out of range.
    """

    def name(col: Column) -> str:
        if isinstance(col, int):
            if col >= len(names):
                raise DataError(f"column {col} out of range; file has {len(names)} columns", path)
            return names[col]
        if col not in names:
            raise DataError(f"no column named {col!r}; columns are {names}", path)
        return col

    text_cols = [name(c) for c in spec.text]
    label_col = name(spec.label)
    return ParquetColumns(text_cols, label_col, list(dict.fromkeys([*text_cols, label_col])))


def _batches(pf: Any, wanted: list[str], chunk_rows: int) -> Iterator[_Batch | _Undecoded]:
    """The ``wanted`` cells of the file, row group by row group, ``chunk_rows`` rows at most at a time.

    After a batch that cannot be decoded, nothing more.
    """
    for group in range(pf.num_row_groups):
        batches = pf.iter_batches(batch_size=chunk_rows, row_groups=[group], columns=wanted)
        while True:
            try:
                batch = next(batches, None)
                cells = None if batch is None else {c: cells_of(batch.column(c)) for c in wanted}
            except Exception as exc:  # pyarrow raises several types for a corrupt page
                yield _Undecoded(group, exc)
                return
            if batch is None or cells is None:
                break
            yield _Batch(group, batch.num_rows, cells)


def _add_row(
    chunk: RawChunk, row: int, cells: dict[str, list[object]], i: int, columns: ParquetColumns, limit: int
) -> None:
    """Row ``row`` of the file (``i`` of its batch) accepted into ``chunk``, or rejected there."""
    values = [cells[c][i] for c in columns.text]
    label_value = cells[columns.label][i]
    reason = parquet_reason(values, label_value, limit)
    if reason is None:
        chunk.append(text_of(values)[0], label_of(label_value), row)
    else:
        excerpt = excerpt_of(repr([v[:100] if isinstance(v, str) else v for v in [*values, label_value]]))
        chunk.rejected.append(Reject(chunk.path, row, reason, excerpt))


def parquet_bytes(pf: Any, first_group: int, size: int) -> int:
    """Compressed bytes of the row groups from ``first_group`` on: the bytes lost when it cannot be decoded.

    Args:
        pf: the open ``pyarrow.parquet.ParquetFile``.
        first_group: the first row group lost.
        size: the file's size, the answer when the metadata says nonsense.

    Returns:
        The bytes, at most ``size``.
    """
    try:
        meta = pf.metadata
        total = sum(
            meta.row_group(g).column(j).total_compressed_size
            for g in range(first_group, meta.num_row_groups)
            for j in range(meta.num_columns)
        )
    except Exception:  # corrupt metadata
        return size
    return total if 0 <= total <= size else size


class Undecodable:
    """A Parquet cell pyarrow cannot turn into a Python value (invalid UTF-8 in a string column)."""

    def __repr__(self) -> str:
        return "<not UTF-8>"


def cells_of(array: Any) -> list[object]:
    """A column's Python values; ``Undecodable`` for each one pyarrow cannot convert."""
    try:
        return array.to_pylist()
    except (UnicodeDecodeError, ValueError):
        out: list[object] = []
        for i in range(len(array)):
            try:
                out.append(array[i].as_py())
            except (UnicodeDecodeError, ValueError):
                out.append(Undecodable())
        return out


def parquet_reason(values: list[object], label: object, limit: int) -> str | None:
    """Why a row is rejected.

    Args:
        values: the row's text cells.
        label: its label cell.
        limit: the most UTF-8 bytes of a text cell.

    Returns:
        ``invalid_utf8``, ``text_not_a_string``, ``field_too_large``, ``empty_text`` or ``empty_label``; None
        when it is accepted.
    """
    if any(isinstance(v, Undecodable) for v in (*values, label)):
        return "invalid_utf8"
    reason = text_of(values)[1]
    if reason == "text_not_a_string":
        return reason
    if any(
        isinstance(v, str) and len(v) * 4 > limit and len(v.encode("utf-8", "surrogatepass")) > limit for v in values
    ):
        return "field_too_large"
    if reason is not None:
        return reason
    return None if label_of(label) else "empty_label"
