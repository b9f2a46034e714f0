"""Streaming readers of raw labelled text.

Every reader yields ``RawChunk`` objects of at most ``chunk_rows`` rows from
one source file, so memory depends on the chunk size, never on the corpus.

Who owns what:
- ``ColumnSpec``: which columns hold the text and the label, and whether a
  CSV/TSV file has a header row.
- ``detect_format``: the reader for a path (by extension; ``.gz`` is
  transparent); a directory is read as one sub-directory per class.
- ``read_chunks``: walks a list of inputs and dispatches to the readers.
- Each ``_read_*`` generator: one format, failing loudly with the file and
  row of the first bad record (``DataError``).

Row numbers in errors are 1-based lines for CSV/TSV/JSONL (the header is
line 1) and 1-based rows for Parquet.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streamtrain.errors import DataError, UsageError

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

Column = str | int
_UNREADABLE = (OSError, EOFError, zlib.error)  # I/O errors, bad or truncated gzip


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
    """Consecutive rows of one source: texts, labels (as strings) and where each came from."""

    path: str
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    rows: list[int | str] = field(default_factory=list)

    def __len__(self) -> int:
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


def read_chunks(inputs: Iterable[str | os.PathLike], spec: ColumnSpec, chunk_rows: int = 4096) -> Iterator[RawChunk]:
    """Yield chunks of at most ``chunk_rows`` rows from each input in turn."""
    for path in inputs:
        fmt = detect_format(path)
        reader = _READERS[fmt]
        yield from reader(str(path), spec, chunk_rows)


def _open_text(path: str) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115 - the wrapper owns it
    # utf-8-sig: drop a leading byte-order mark (Excel/Notepad exports) instead of
    # gluing it to the first header name or, header-less, to the first label.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _bad_utf8_line(path: str) -> int | None:
    """1-based line of the first invalid UTF-8 byte in ``path``.

    ``TextIOWrapper`` decodes ahead in blocks, so where a decode error surfaces says
    little about which line holds the bad byte; rescan (only on that error path).
    """
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return n
    return None


def _label_str(value: object, path: str, row: int) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError("empty label", path, row)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _text_str(values: list[object], path: str, row: int) -> str:
    parts = []
    for v in values:
        if v is None:
            continue
        if not isinstance(v, str):
            raise DataError(f"text field is {type(v).__name__}, not a string", path, row)
        parts.append(v)
    if not parts:
        raise DataError("missing text", path, row)
    return " ".join(parts)


def _read_csv(path: str, spec: ColumnSpec, chunk_rows: int, delimiter: str = ",") -> Iterator[RawChunk]:
    with _open_text(path) as fh:
        # strict: an unmatched quote is an error, not a field that swallows the rest of the file
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            text_idx, label_idx, width = _csv_columns(reader, spec, path)
            chunk = RawChunk(path)
            line = reader.line_num
            for record in reader:
                row, line = line + 1, reader.line_num
                if not record:
                    continue
                if len(record) < width:
                    raise DataError(f"expected at least {width} columns, found {len(record)}", path, row)
                chunk.append(
                    _text_str([record[i] for i in text_idx], path, row),
                    _label_str(record[label_idx], path, row),
                    row,
                )
                if len(chunk) >= chunk_rows:
                    yield chunk
                    chunk = RawChunk(path)
        except csv.Error as exc:
            raise DataError(f"malformed CSV: {exc}", path, reader.line_num) from exc
        except UnicodeDecodeError as exc:
            raise DataError(f"not valid UTF-8 ({exc.reason})", path, _bad_utf8_line(path)) from exc
        except _UNREADABLE as exc:
            raise DataError(
                f"cannot read (corrupt or truncated compressed file?): {exc}", path, reader.line_num + 1
            ) from exc
    if chunk.texts:
        yield chunk


def _csv_columns(reader, spec: ColumnSpec, path: str) -> tuple[list[int], int, int]:
    """Resolve column names/positions to indices; consumes the header if any."""
    names: list[str] = []
    if spec.csv_has_header():
        header = next(reader, None)
        if header is None:
            raise DataError("empty file, expected a header row", path, 1)
        names = [h.strip() for h in header]

    def index(col: Column) -> int:
        if isinstance(col, int):
            return col
        if col not in names:
            raise DataError(f"no column named {col!r} in header {names}", path, 1)
        return names.index(col)

    text_idx = [index(c) for c in spec.text]
    label_idx = index(spec.label)
    return text_idx, label_idx, max(*text_idx, label_idx) + 1


def _read_tsv(path: str, spec: ColumnSpec, chunk_rows: int) -> Iterator[RawChunk]:
    return _read_csv(path, spec, chunk_rows, delimiter="\t")


def _read_jsonl(path: str, spec: ColumnSpec, chunk_rows: int) -> Iterator[RawChunk]:
    if any(isinstance(c, int) for c in (*spec.text, spec.label)):
        raise UsageError(f"{path}: JSONL columns must be given by name, not position")
    chunk = RawChunk(path)
    with _open_text(path) as fh:
        row = 0
        while True:
            try:
                line = fh.readline()
            except UnicodeDecodeError as exc:
                raise DataError(f"not valid UTF-8 ({exc.reason})", path, _bad_utf8_line(path)) from exc
            except _UNREADABLE as exc:
                raise DataError(f"cannot read (corrupt or truncated compressed file?): {exc}", path, row + 1) from exc
            if not line:
                break
            row += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", path, row) from exc
            if not isinstance(obj, dict):
                raise DataError("expected a JSON object per line", path, row)
            for col in (*spec.text, spec.label):
                if col not in obj:
                    raise DataError(f"missing field {col!r}", path, row)
            chunk.append(
                _text_str([obj[c] for c in spec.text], path, row),
                _label_str(obj[spec.label], path, row),
                row,
            )
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = RawChunk(path)
    if chunk.texts:
        yield chunk


def _read_parquet(path: str, spec: ColumnSpec, chunk_rows: int, source: str | None = None) -> Iterator[RawChunk]:
    """``source``: the file actually opened (an inflated temp copy); errors and chunks name ``path``."""
    import pyarrow.parquet as pq

    if source is None and path.lower().endswith(".gz"):  # Parquet needs random access: inflate to a temp file
        with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
            try:
                with gzip.open(path, "rb") as src:
                    shutil.copyfileobj(src, tmp, 1 << 20)
            except _UNREADABLE as exc:
                raise DataError(f"cannot inflate: {exc}", path) from exc
            tmp.flush()
            yield from _read_parquet(path, spec, chunk_rows, source=tmp.name)
        return
    try:
        pf = pq.ParquetFile(source or path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"not a readable Parquet file: {exc}", path) from exc
    names = pf.schema_arrow.names

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
    row = 0
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=list(dict.fromkeys([*text_cols, label_col]))):
        cols = batch.to_pydict()
        chunk = RawChunk(path)
        for i in range(batch.num_rows):
            row += 1
            chunk.append(
                _text_str([cols[c][i] for c in text_cols], path, row),
                _label_str(cols[label_col][i], path, row),
                row,
            )
        yield chunk


def _read_dir(path: str, spec: ColumnSpec, chunk_rows: int) -> Iterator[RawChunk]:
    """One sub-directory per class, one document per file (the aclImdb layout)."""
    root = Path(path)
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError("directory has no class sub-directories", path)
    chunk = RawChunk(path)
    for class_dir in classes:
        for doc in sorted(class_dir.rglob("*")):
            if not doc.is_file() or any(p.startswith(".") for p in doc.relative_to(class_dir).parts):
                continue
            opener = gzip.open if doc.name.lower().endswith(".gz") else open
            try:
                with opener(doc, "rb") as fh:
                    text = fh.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"not valid UTF-8 ({exc.reason})", str(doc)) from exc
            except _UNREADABLE as exc:
                raise DataError(f"cannot read: {exc}", str(doc)) from exc
            chunk.append(text, class_dir.name, str(doc))
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = RawChunk(path)
    if chunk.texts:
        yield chunk


_READERS = {
    "csv": _read_csv,
    "tsv": _read_tsv,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
    "dir": _read_dir,
}
