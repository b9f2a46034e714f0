"""Streaming readers of raw labelled text, and the records they reject.

Every reader yields ``RawChunk`` objects of at most ``chunk_rows`` records
(accepted plus rejected) from one source file, so memory depends on the chunk
size and ``max_field_bytes``, never on the corpus or on one monstrous line.

Who owns what:
- ``ColumnSpec``: which columns hold the text and the label, and whether a
  CSV/TSV file has a header row.
- ``detect_format``: the reader for a path (by extension; ``.gz`` is
  transparent); a directory is read as one sub-directory per class.
- ``read_chunks``: walks a list of inputs and dispatches to the readers.
- ``Portion``: the part of an input to read (an append's tail of a file that
  grew, or a directory's new documents); by default all of it.
- ``input_bytes``: an input's size on disk (a directory's documents summed).
- Each ``_read_*`` generator: one format.

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

import csv
import errno
import gzip
import json
import math
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streamtrain.errors import DataError, UsageError
from streamtrain.io.csv_records import CsvRecords
from streamtrain.io.lines import UNREADABLE, Broken, Lines, eol_len
from streamtrain.io.rejects import (
    MAX_FIELD_BYTES,
    REJECT_REASON_TEXT,
    Reject,
    error_excerpt_of,
    excerpt_of,
)

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # sizes are bounded by max_field_bytes instead

Column = str | int


@dataclass(frozen=True)
class ColumnSpec:
    """Where text and label live. Several text columns are joined by a space.

    ``header=None`` means: a CSV/TSV has a header unless every column is given
    by position (an int).
    """

    text: tuple[Column, ...] = ("text",)
    label: Column = "label"
    header: bool | None = None

    def csv_has_header(self) -> bool:
        if self.header is not None:
            return self.header
        return not all(isinstance(c, int) for c in (*self.text, self.label))

    def to_json(self) -> dict:
        return {"text": list(self.text), "label": self.label, "header": self.header}


@dataclass
class RawChunk:
    """Consecutive records of one source: accepted texts, labels (as strings) and where
    each came from, plus the records rejected among them."""

    path: str
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    rows: list[int | str] = field(default_factory=list)
    rejected: list[Reject] = field(default_factory=list)
    offset: int = field(default=0, compare=False)  # bytes of the source on disk read when cut: for progress

    def __len__(self) -> int:
        """Accepted rows only."""
        return len(self.texts)

    def append(self, text: str, label: str, row: int | str) -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.rows.append(row)

    def where(self, i: int) -> tuple[str, int | None]:
        """(path, row) of row ``i`` for error messages."""
        row = self.rows[i]
        if isinstance(row, str):  # directory-per-class: the document file itself
            return row, None
        return self.path, row

    def _full(self, chunk_rows: int) -> bool:
        return len(self.texts) + len(self.rejected) >= chunk_rows


@dataclass(frozen=True)
class Portion:
    """The part of an input to read: a CSV/TSV/JSONL file from byte ``start`` (its rows after an ingested prefix
    that ends with a line break, or for gzip where a gzip member starts) up to byte ``stop`` (the size it was
    digested at: what a writer adds meanwhile waits for the next append), or only the ``documents`` (paths
    relative to it) of a directory per class. The default: all of it."""

    start: int = 0
    stop: int | None = None
    documents: frozenset[str] | None = None


WHOLE = Portion()
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


def _read_csv(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion, delimiter: str = ","
) -> Iterator[RawChunk]:
    lines, names = _prefix(path, spec, max_field_bytes, portion.start, delimiter)
    with Lines(path, max_field_bytes, start=portion.start, stop=portion.stop) as src:
        src.line = lines
        records = CsvRecords(src, path, delimiter)
        items = iter(records)
        text_idx, label_idx, width = _csv_columns(items, spec, path, names)
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
            if chunk._full(chunk_rows):
                chunk.offset = src.bytes_read
                yield chunk
                chunk = RawChunk(path)
        chunk.offset = src.bytes_read
    if chunk.texts or chunk.rejected:
        yield chunk


def _prefix(path: str, spec: ColumnSpec, limit: int, start: int, delimiter: str | None) -> tuple[int, list[str] | None]:
    """(physical lines, CSV/TSV header names or None) of the first ``start`` bytes of a file: what a tail's
    reader needs of the prefix before it. ``delimiter`` None: JSONL, no header."""
    if not start:
        return 0, None
    names = None
    with Lines(path, limit, stop=start) as src:
        if delimiter is not None and spec.csv_has_header():
            names = _header(iter(CsvRecords(src, path, delimiter)), path)
            src.hold = None  # the lines after it are only counted, not held
        try:
            while src.next_line() is not None:
                pass
        except Broken as exc:
            raise DataError(f"cannot read the part ingested before: {exc}", path) from exc
        return src.line, names


def _header(records: Iterator[tuple[int, list[str]] | Reject], path: str) -> list[str]:
    header = next(records, None)
    if header is None:
        raise DataError("empty file, expected a header row", path, 1)
    if isinstance(header, Reject):
        raise DataError(f"header row: {REJECT_REASON_TEXT[header.reason]} ({header.excerpt})", path, header.row)
    return [h.strip() for h in header[1]]


def _csv_columns(
    records: Iterator[tuple[int, list[str]] | Reject], spec: ColumnSpec, path: str, names: list[str] | None = None
) -> tuple[list[int], int, int]:
    """Resolve column names/positions to indices; consumes the header if any (unless ``names``, a tail's)."""
    if names is None:
        names = _header(records, path) if spec.csv_has_header() else []

    def index(col: Column) -> int:
        if isinstance(col, int):
            return col
        if col not in names:
            raise DataError(f"no column named {col!r} in header {names}", path, 1)
        return names.index(col)

    text_idx = [index(c) for c in spec.text]
    label_idx = index(spec.label)
    return text_idx, label_idx, max(*text_idx, label_idx) + 1


def _read_tsv(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion
) -> Iterator[RawChunk]:
    return _read_csv(path, spec, chunk_rows, max_field_bytes, portion, delimiter="\t")


# --------------------------------------------------------------------------- values shared by JSONL and Parquet


def _text_of(values: list[object]) -> tuple[str, str | None]:
    """(text, reject reason or None): null parts are skipped, the rest joined by a space."""
    parts = []
    for v in values:
        if v is None:
            continue
        if not isinstance(v, str):
            return "", "text_not_a_string"
        parts.append(v)
    text = " ".join(parts)
    return text, (None if text.strip() else "empty_text")


def _label_of(value: object) -> str:
    """The label as a string, ``""`` when empty; a float that is integral loses its ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _json_label(value: object) -> bool:
    """Whether a JSON value can be a label: a string or a finite number (``True`` is not the class ``"True"``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)


def _encodable(text: str) -> bool:
    """False for a string with lone surrogates (JSON ``\\ud800``): it cannot be written as UTF-8."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --------------------------------------------------------------------------- JSONL


def _read_jsonl(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion
) -> Iterator[RawChunk]:
    if any(isinstance(c, int) for c in (*spec.text, spec.label)):
        raise UsageError(f"{path}: JSONL columns must be given by name, not position")
    columns = (*spec.text, spec.label)
    chunk = RawChunk(path)
    lines = _prefix(path, spec, max_field_bytes, portion.start, None)[0]
    with Lines(path, max_field_bytes, start=portion.start, stop=portion.stop) as src:
        src.line = lines
        while True:
            u, row = src.u, src.line + 1
            lost = None
            try:
                raw = src.next_line()
                if raw is not None and src.long:
                    lost = src.lost_from(u)  # now, while the start of the line is still mapped
                    for _ in src.rest():
                        pass
            except Broken as broken:
                lost = src.lost_from(u) if lost is None else lost
                chunk.rejected.append(Reject(path, row, "unreadable_remainder", excerpt_of(str(broken)), lost))
                break
            if raw is None:
                break
            reject = _jsonl_record(raw, row, columns, spec, chunk, max_field_bytes)
            if reject is not None:
                chunk.rejected.append(Reject(path, row, reject, excerpt_of(raw)))
            if chunk._full(chunk_rows):
                chunk.offset = src.bytes_read
                yield chunk
                chunk = RawChunk(path)
        chunk.offset = src.bytes_read
    if chunk.texts or chunk.rejected:
        yield chunk


def _jsonl_record(
    raw: bytes, row: int, columns: tuple[Column, ...], spec: ColumnSpec, chunk: RawChunk, limit: int
) -> str | None:
    """Append the record on line ``row`` to ``chunk``; the reason it is rejected instead, or None."""
    if len(raw) - eol_len(raw) > limit:
        return "field_too_large"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    if not line.strip():
        return None  # a blank line is not a record
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError, or an integer too long to convert; too deep
        return "invalid_json"
    if not isinstance(obj, dict):
        return "not_an_object"
    if any(c not in obj for c in columns):
        return "missing_field"
    text, reason = _text_of([obj[c] for c in spec.text])
    if reason is not None:
        return reason
    if not _json_label(obj[spec.label]):
        return "label_not_a_string"
    label = _label_of(obj[spec.label])
    if not label:
        return "empty_label"
    if not (_encodable(text) and _encodable(label)):
        return "invalid_utf8"
    chunk.append(text, label, row)
    return None


# --------------------------------------------------------------------------- Parquet


def _read_parquet(
    path: str,
    spec: ColumnSpec,
    chunk_rows: int,
    max_field_bytes: int,
    portion: Portion = WHOLE,
    source: str | None = None,
) -> Iterator[RawChunk]:
    """``source``: the file actually opened (an inflated temp copy); errors and chunks name ``path``. Read whole:
    a Parquet file cannot grow in place (``dataset.sources`` refuses a tail of one)."""
    import pyarrow.parquet as pq

    if source is None and path.lower().endswith(".gz"):  # Parquet needs random access: inflate to a temp file
        with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
            try:
                with gzip.open(path, "rb") as src:
                    shutil.copyfileobj(src, tmp, 1 << 20)
            except UNREADABLE as exc:
                raise DataError(f"cannot inflate: {exc}", path) from exc
            tmp.flush()
            yield from _read_parquet(path, spec, chunk_rows, max_field_bytes, source=tmp.name)
        return
    try:
        pf = pq.ParquetFile(source or path)
        names = pf.schema_arrow.names
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"not a readable Parquet file: {exc}", path) from exc

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
    wanted = list(dict.fromkeys([*text_cols, label_col]))
    size, rows = os.path.getsize(path), max(1, pf.metadata.num_rows)  # progress: bytes in proportion to rows
    row = 0
    chunk = RawChunk(path)
    for group in range(pf.num_row_groups):
        batches = pf.iter_batches(batch_size=chunk_rows, row_groups=[group], columns=wanted)
        while True:
            try:
                batch = next(batches, None)
                cols = None if batch is None else {c: _cells(batch.column(c)) for c in wanted}
            except Exception as exc:  # a corrupt page: the rest of the file is lost, said once
                lost = _parquet_bytes(pf, group, os.path.getsize(source or path))
                chunk.rejected.append(Reject(path, row + 1, "unreadable_remainder", error_excerpt_of(exc), lost))
                chunk.offset = size
                yield chunk
                return
            if batch is None or cols is None:
                break
            for i in range(batch.num_rows):
                row += 1
                values = [cols[c][i] for c in text_cols]
                label_value = cols[label_col][i]
                reason = _parquet_reason(values, label_value, max_field_bytes)
                if reason is None:
                    chunk.append(_text_of(values)[0], _label_of(label_value), row)
                else:
                    excerpt = excerpt_of(repr([v[:100] if isinstance(v, str) else v for v in [*values, label_value]]))
                    chunk.rejected.append(Reject(path, row, reason, excerpt))
                if chunk._full(chunk_rows):
                    chunk.offset = size * min(row, rows) // rows
                    yield chunk
                    chunk = RawChunk(path)
    chunk.offset = size
    if chunk.texts or chunk.rejected:
        yield chunk


def _parquet_bytes(pf, first_group: int, size: int) -> int:
    """Compressed bytes of the row groups from ``first_group`` on (the whole file when the metadata says nonsense)."""
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


class _Undecodable:
    """A Parquet cell pyarrow cannot turn into a Python value (invalid UTF-8 in a string column)."""

    def __repr__(self) -> str:
        return "<not UTF-8>"


def _cells(array) -> list[object]:
    try:
        return array.to_pylist()
    except (UnicodeDecodeError, ValueError):
        out: list[object] = []
        for i in range(len(array)):
            try:
                out.append(array[i].as_py())
            except (UnicodeDecodeError, ValueError):
                out.append(_Undecodable())
        return out


def _parquet_reason(values: list[object], label: object, limit: int) -> str | None:
    if any(isinstance(v, _Undecodable) for v in (*values, label)):
        return "invalid_utf8"
    reason = _text_of(values)[1]
    if reason == "text_not_a_string":
        return reason
    if any(
        isinstance(v, str) and len(v) * 4 > limit and len(v.encode("utf-8", "surrogatepass")) > limit for v in values
    ):
        return "field_too_large"
    if reason is not None:
        return reason
    return None if _label_of(label) else "empty_label"


# --------------------------------------------------------------------------- directory per class


_NO_FILE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)  # errors Path.is_file() takes for "no file"


def _read_dir(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion
) -> Iterator[RawChunk]:
    """One sub-directory per class, one document per file (the aclImdb layout); only ``portion.documents``
    (paths relative to ``path``) when given."""
    root = Path(path)
    try:
        classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot list: {exc}", path) from exc
    if not classes:
        raise DataError("directory has no class sub-directories", path)
    chunk = RawChunk(path)
    done = 0  # bytes of the documents read
    for class_dir in classes:
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
            if portion.documents is not None and doc.relative_to(root).as_posix() not in portion.documents:
                continue
            reason, text, excerpt, lost = _read_document(doc, max_field_bytes)
            done += info.st_size
            if reason is None:
                chunk.append(text, class_dir.name, str(doc))
            else:
                chunk.rejected.append(Reject(str(doc), None, reason, excerpt, lost))
            if chunk._full(chunk_rows):
                chunk.offset = done
                yield chunk
                chunk = RawChunk(path)
    chunk.offset = done
    if chunk.texts or chunk.rejected:
        yield chunk


def _read_document(doc: Path, limit: int) -> tuple[str | None, str, str, int | None]:
    """(reject reason or None, text, excerpt, lost bytes) of one document, reading at most ``limit + 1`` bytes."""
    opener = gzip.open if doc.name.lower().endswith(".gz") else open
    try:
        with opener(doc, "rb") as fh:
            data = fh.read(limit + 1)
    except UNREADABLE as exc:
        try:
            lost: int | None = doc.stat().st_size
        except OSError:
            lost = None
        return "unreadable_remainder", "", error_excerpt_of(exc), lost
    if len(data) > limit:
        return "field_too_large", "", excerpt_of(data), None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", "", excerpt_of(data), None
    if not text.strip():
        return "empty_text", "", excerpt_of(data), None
    return None, text, "", None


_READERS = {
    "csv": _read_csv,
    "tsv": _read_tsv,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
    "dir": _read_dir,
}
