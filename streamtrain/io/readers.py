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
- ``Reject``, ``REJECT_REASONS`` and ``REJECT_REASON_TEXT``: a record that
  was read but not kept, why, and the words for it.
- Each ``_read_*`` generator: one format. ``_Lines`` reads the physical lines
  of a CSV/TSV/JSONL file (plain or gzip) in bounded memory; ``_CsvRecords``
  turns them into CSV records and recovers from broken quoting.

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
- ``invalid_json``, ``not_an_object``, ``missing_field``: JSONL.
- ``unreadable_remainder``: the rest of a file that cannot be read (row: the
  first record lost, ``lost_bytes``: bytes of the file on disk not turned
  into records, an upper bound), a Parquet row group that cannot be decoded,
  or an unreadable document (row ``None``).

What makes a whole file unusable stays a ``DataError``/``UsageError``: input
not found, format not detectable, a CSV/TSV header that is unreadable or
lacks a named column, an empty file where a header is expected, a Parquet
file that cannot be opened or lacks the columns, JSONL columns given by
position, a directory without class sub-directories.

Row numbers are 1-based: for CSV/TSV/JSONL the physical line where a record
starts (the header is line 1; ``\\n``, ``\\r\\n`` and a lone ``\\r`` each end
a line, as the csv module counts them), for Parquet the row.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from streamtrain.errors import DataError, UsageError

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # sizes are bounded by max_field_bytes instead

Column = str | int
_UNREADABLE = (OSError, EOFError, zlib.error)  # I/O errors, bad or truncated gzip

MAX_FIELD_BYTES = 1 << 20
"""Default limit on one line, record, text cell or document, in bytes."""

_READER_REASONS = {
    "wrong_column_count": "fewer columns than the column spec needs",
    "unterminated_quote": "a quote that never closes (or closes where a delimiter should follow)",
    "malformed_csv": "malformed CSV quoting",
    "empty_text": "empty or whitespace-only text",
    "empty_label": "empty label",
    "invalid_utf8": "not valid UTF-8",
    "field_too_large": "longer than the field size limit",
    "invalid_json": "invalid JSON",
    "not_an_object": "not a JSON object",
    "missing_field": "a named field is missing",
    "text_not_a_string": "a text field that is not a string",
    "unreadable_remainder": "cannot read (corrupt or truncated compressed file?)",
}
REJECT_REASONS: tuple[str, ...] = tuple(_READER_REASONS)
"""Why a reader rejects a record."""
REJECT_REASON_TEXT: dict[str, str] = {
    **_READER_REASONS,
    "unknown_label": "a label the training rows never had",  # no reader says this: prepare does, for test rows
}
"""A short description of every reject reason: the readers' and the one prepare adds."""
_EXCERPT_CHARS = 80


@dataclass(frozen=True)
class Reject:
    """A record that was read but not kept.

    ``row``: for CSV/TSV/JSONL the physical line where the record starts, for
    Parquet the row number, ``None`` for a document file (then ``path`` is the
    document). ``excerpt``: at most 80 printable characters of the raw record
    (control characters and invalid bytes escaped); for ``unreadable_remainder``
    the error instead. ``lost_bytes``: only for ``unreadable_remainder``, the
    bytes of the file on disk (compressed, for gzip) not turned into records,
    from where ``row`` starts to the end of the file: exact for a plain file,
    for gzip an upper bound within one 16 KiB piece of inflated data.
    """

    path: str
    row: int | None
    reason: str
    excerpt: str
    lost_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.reason not in REJECT_REASON_TEXT:
            raise ValueError(f"unknown reject reason {self.reason!r}; expected one of {tuple(REJECT_REASON_TEXT)}")

    def to_json(self) -> dict:
        out: dict = {"path": self.path, "row": self.row, "reason": self.reason, "excerpt": self.excerpt}
        if self.lost_bytes is not None:
            out["lost_bytes"] = self.lost_bytes
        return out


def _excerpt(raw: bytes | str) -> str:
    """At most 80 printable characters of ``raw``: control characters and invalid bytes repr-escaped."""
    text = raw[: _EXCERPT_CHARS * 4]
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    text = text.rstrip("\r\n")
    out: list[str] = []
    n = 0
    for ch in text:
        piece = ch if ch.isprintable() else repr(ch)[1:-1]
        n += len(piece)
        if n > _EXCERPT_CHARS:
            break
        out.append(piece)
    return "".join(out)


def _error_excerpt(exc: BaseException) -> str:
    return _excerpt(f"{type(exc).__name__}: {exc}")


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
) -> Iterator[RawChunk]:
    """Yield chunks of at most ``chunk_rows`` records (accepted + rejected) from each input in turn.

    A chunk may hold only rejects. ``max_field_bytes`` bounds one line, record,
    text cell or document; longer ones are rejected as ``field_too_large``.
    """
    if max_field_bytes < 1:
        raise UsageError(f"max_field_bytes must be at least 1, not {max_field_bytes}")
    for path in inputs:
        fmt = detect_format(path)
        reader = _READERS[fmt]
        yield from reader(str(path), spec, chunk_rows, max_field_bytes)


# --------------------------------------------------------------------------- physical lines, bounded


_CHUNK = 1 << 16  # bytes read at a time
_GZ_PIECE = 1 << 14  # bytes inflated at a time: also the grain of lost_bytes for gzip
_BOM = b"\xef\xbb\xbf"


class _Broken(Exception):
    """The stream cannot be read on (I/O error, truncated or corrupt gzip)."""


class _Inflate:
    """The inflated bytes of a gzip file (every member), counting the compressed bytes consumed.

    ``gzip.GzipFile`` reads ahead and cannot say how far it got; this can, so a
    truncated file reports how many of its bytes were not turned into records.
    """

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper: zlib checks the CRC and length
        self._in = b""  # compressed bytes read from disk, not yet consumed
        self._in_member = False
        self._members = 0
        self.consumed = 0

    def read(self, n: int) -> bytes:
        """Up to ``n`` inflated bytes; ``b""`` at the end; EOFError or zlib.error when broken."""
        while True:
            if not self._in:
                self._in = self._fh.read(_CHUNK)
                if not self._in:
                    out = self._d.decompress(b"", n) if self._in_member else b""  # output zlib still holds
                    if out:
                        return out
                    if self._in_member:
                        raise EOFError("compressed file ended before the end-of-stream marker was reached")
                    return b""
            if not self._in_member:
                if self._members:  # zero padding after a member is allowed, as gzip.GzipFile allows it
                    rest = self._in.lstrip(b"\0")
                    self.consumed += len(self._in) - len(rest)
                    self._in = rest
                    if not rest:
                        continue
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._in_member = True
            data = self._in
            out = self._d.decompress(data, n)
            if self._d.eof:
                rest = self._d.unused_data
                self._in_member = False
                self._members += 1
            else:
                rest = self._d.unconsumed_tail
            self.consumed += len(data) - len(rest)
            self._in = rest
            if out:
                return out


def _eol_len(raw: bytes) -> int:
    if raw.endswith(b"\r\n"):
        return 2
    return 1 if raw.endswith((b"\n", b"\r")) else 0


class _Lines:
    """The physical lines of one CSV/TSV/JSONL file (plain or gzip) as bytes, in bounded memory.

    A line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (what ``newline=''``
    gives the csv module); a leading UTF-8 byte-order mark is dropped. A line
    whose content is longer than ``limit`` bytes is never held whole:
    ``next_line`` returns its first ``limit + 1`` bytes and sets ``long``, and
    ``rest`` yields the remainder in pieces. Memory: the buffer holds at most
    about ``limit`` + 64 KiB, plus the record being parsed from ``hold`` on
    (CSV keeps it to replay it; at most ``limit`` more). A stream that cannot
    be read on raises ``_Broken``; ``lost_from`` then says how many bytes of
    the file are lost from a given point.
    """

    _buf: bytes
    _pos: int  # next unread byte of _buf
    _u0: int  # offset in the (inflated) stream of _buf[0]
    _eof: bool
    _marks: deque[tuple[int, int]]

    def __init__(self, path: str, limit: int):
        self.path = path
        self.limit = limit
        self.line = 0  # physical lines started so far
        self.long = False  # inside an over-long line whose rest is unread
        self.hold: int | None = None  # keep the buffer from this offset on
        try:
            self._fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by __exit__
        except OSError as exc:
            raise DataError(f"cannot open: {exc}", path) from exc
        self.size = os.fstat(self._fh.fileno()).st_size
        self._inflate = _Inflate(self._fh) if path.lower().endswith(".gz") else None
        self._reset(0, 0)
        self._error: _Broken | None = None  # a break while reading the start, raised by the first next_line
        try:
            while len(self._buf) < len(_BOM) and not self._eof:
                self._fill()
            if self._buf.startswith(_BOM):
                self._pos = len(_BOM)
        except _Broken as exc:
            self._error = exc

    def _reset(self, u: int, c: int) -> None:
        self._buf = b""
        self._pos = 0
        self._u0 = u
        self._eof = False
        # (stream offset, compressed bytes consumed before the read that produced it), to map back for lost_from
        self._marks = deque([(u, c)])

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    @property
    def u(self) -> int:
        """Offset in the (inflated) stream of the next unread byte."""
        return self._u0 + self._pos

    def _fill(self) -> None:
        try:
            if self._inflate is not None:
                c = self._inflate.consumed
                data = self._inflate.read(_GZ_PIECE)
            else:
                c = self._u0 + len(self._buf)
                data = self._fh.read(_CHUNK)
        except _UNREADABLE as exc:
            self._eof = True
            raise _Broken(f"{type(exc).__name__}: {exc}") from exc
        if not data:
            self._eof = True
            return
        self._marks.append((self._u0 + len(self._buf), c))
        keep = self._pos if self.hold is None else min(self._pos, self.hold - self._u0)
        if keep:
            self._buf = self._buf[keep:] + data
            self._u0 += keep
            self._pos -= keep
        else:
            self._buf += data
        marks = self._marks
        while len(marks) > 1 and marks[1][0] <= self._u0:
            marks.popleft()

    def next_line(self) -> bytes | None:
        """The next physical line with its line break, its first ``limit + 1`` bytes when ``long``; None at the end."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self.long:
            for _ in self.rest():
                pass
        limit = self.limit
        seen = 0  # bytes after _pos already searched (a fill may move _pos, not what follows it)
        while True:
            buf, pos = self._buf, self._pos
            stop = pos + limit + 2
            nl = buf.find(b"\n", pos + seen, stop)
            cr = buf.find(b"\r", pos + seen, stop if nl < 0 else nl)
            if cr >= 0:  # a \r before any \n: a lone \r, or the \r of \r\n
                if cr + 1 == len(buf) and not self._eof:
                    seen = cr - pos
                    self._fill()  # the next byte decides
                    continue
                t, end = cr, (cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1)
            elif nl >= 0:
                t, end = nl, nl + 1
            elif len(buf) >= stop:
                t = end = -1  # no line break within limit + 2 bytes
            elif self._eof:
                if pos == len(buf):
                    return None
                t = end = len(buf)
            else:
                seen = len(buf) - pos
                self._fill()
                continue
            self.line += 1
            if t < 0 or t - pos > limit:
                self.long = True
                self._pos = pos + limit + 1
                return buf[pos : self._pos]
            self._pos = end
            return buf[pos:end]

    def rest(self) -> Iterator[bytes]:
        """The rest of an over-long line, through its line break, in pieces of bounded size."""
        while self.long:
            buf, pos = self._buf, self._pos
            nl = buf.find(b"\n", pos)
            cr = buf.find(b"\r", pos, len(buf) if nl < 0 else nl)
            if cr >= 0:
                if cr + 1 == len(buf) and not self._eof:
                    self._pos = cr
                    if cr > pos:
                        yield buf[pos:cr]
                    self._fill()
                    continue
                end = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            elif nl >= 0:
                end = nl + 1
            else:
                self._pos = len(buf)
                if pos < len(buf):
                    yield buf[pos:]
                if self._eof:
                    self.long = False
                    return
                self._fill()
                continue
            self._pos = end
            self.long = False
            yield buf[pos:end]

    def since(self, u: int) -> bytes:
        """What was read from stream offset ``u`` (held, or still buffered) up to now."""
        return self._buf[max(0, u - self._u0) : self._pos]

    def seek(self, u: int, line: int) -> None:
        """Go back to stream offset ``u``, the start of physical line ``line + 1``."""
        self.line, self.long = line, False
        if self._u0 <= u <= self._u0 + len(self._buf):
            self._pos = u - self._u0
            return
        try:
            if self._inflate is None:
                self._fh.seek(u)
                self._reset(u, u)
                return
            self._fh.seek(0)  # gzip cannot seek back: inflate again from the start, in bounded pieces
            self._inflate = _Inflate(self._fh)
            left = u
            while left > 0:
                data = self._inflate.read(min(_CHUNK, left))
                if not data:
                    break
                left -= len(data)
        except _UNREADABLE as exc:
            raise _Broken(f"{type(exc).__name__}: {exc}") from exc
        self._reset(u, self._inflate.consumed)

    def compressed_at(self, u: int) -> int:
        """Bytes of the file on disk before stream offset ``u`` (for gzip a lower bound, within one read)."""
        if self._inflate is None:
            return u
        if u >= self._u0 + len(self._buf):  # all that was inflated has been read: exact
            return self._inflate.consumed
        c = self._marks[0][1]
        for mu, mc in self._marks:
            if mu > u:
                break
            c = mc
        return c

    def lost_from(self, u: int) -> int:
        return max(0, self.size - self.compressed_at(u))


# --------------------------------------------------------------------------- CSV / TSV


class _Bad(Exception):
    """The line just read makes the record a reject (``reason``), whatever its quoting."""

    def __init__(self, reason: str):
        self.reason = reason


class _Feed:
    """The lines ``csv.reader`` asks for: checked for size and decoded one by one, counted per record."""

    def __init__(self, src: _Lines):
        self.src = src
        self.u_start = 0  # stream offset where the record starts
        self.lines = 0  # lines of the record so far
        self.first_end: int | None = None  # stream offset after its first line

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        src = self.src
        raw = src.next_line()
        if raw is None:
            raise StopIteration
        self.lines += 1
        if src.long:
            raise _Bad("field_too_large")
        if self.lines == 1:
            self.first_end = src.u
        elif src.u - self.u_start - _eol_len(raw) > src.limit:
            raise _Bad("field_too_large")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad("invalid_utf8") from None


# What the scanner tracks of csv's state machine (strict, doublequote, '"' quotes, no escapechar):
# where a record ends and where strict quoting fails, without holding the record.
_START, _FIELD, _QUOTED, _AFTER_QUOTE, _END, _ERROR = range(6)
_QUOTE = ord('"')
_EOL = (ord("\n"), ord("\r"))


def _scan(data: bytes, state: int, delim: int, field_end: re.Pattern[bytes]) -> int:
    """csv's parse state after ``data``: _END once the record has ended, _ERROR on bad quoting."""
    i, n = 0, len(data)
    while i < n:
        if state == _QUOTED:
            j = data.find(b'"', i)
            if j < 0:
                return _QUOTED
            state, i = _AFTER_QUOTE, j + 1
        elif state == _FIELD:
            m = field_end.search(data, i)
            if m is None:
                return _FIELD
            if data[m.start()] != delim:
                return _END
            state, i = _START, m.end()
        elif state == _START:
            c = data[i]
            if c == _QUOTE:
                state, i = _QUOTED, i + 1
            elif c in _EOL:
                return _END
            elif c == delim:
                i += 1
            else:
                state = _FIELD
        elif state == _AFTER_QUOTE:  # just after a quote inside a quoted field
            c = data[i]
            if c == _QUOTE:
                state, i = _QUOTED, i + 1
            elif c == delim:
                state, i = _START, i + 1
            elif c in _EOL:
                return _END
            else:
                return _ERROR
        else:
            return state
    return state


class _CsvRecords:
    """The records of one CSV/TSV file: ``(line, fields)`` tuples and ``Reject`` objects, in order.

    Records are parsed by ``csv.reader`` (strict) from lines decoded one by
    one. When a record goes wrong:

    - a quoting error (csv.Error): reject it at its first line and resume at
      the line after that; the record's lines are still held in the buffer,
      so this is a seek within memory;
    - a line over the limit, a record over the limit, a line that is not
      UTF-8: the record is rejected, and ``_scan`` (csv's state machine, on
      bytes, in bounded pieces) finds where it ends; if its quoting turns out
      broken it becomes a quoting reject and reading resumes at the line after
      its start (seeking back in the file: re-inflating for gzip);
    - the stream breaks: one ``unreadable_remainder`` from the record's start.
    """

    def __init__(self, src: _Lines, path: str, delimiter: str):
        self.src = src
        self.path = path
        self.delimiter = delimiter
        self.feed = _Feed(src)
        self.u_start = 0

    def excerpt(self) -> str:
        """Of the record just yielded."""
        return _excerpt(self.src.since(self.u_start))

    def __iter__(self) -> Iterator[tuple[int, list[str]] | Reject]:
        src, feed = self.src, self.feed
        reader = csv.reader(feed, delimiter=self.delimiter, strict=True)
        while True:
            start = src.line + 1
            self.u_start = feed.u_start = src.hold = src.u
            feed.lines, feed.first_end = 0, None
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                quote = feed.lines > 1 or str(exc).startswith("unexpected end of data")
                yield Reject(self.path, start, "unterminated_quote" if quote else "malformed_csv", self.excerpt())
                assert feed.first_end is not None, "csv read a line"
                try:
                    src.seek(feed.first_end, start)
                except _Broken as broken:
                    yield self._broken(start + 1, feed.first_end, broken)
                    return
                continue
            except _Bad as bad:
                reject = self._skip(start, bad.reason)
                yield reject
                if reject.reason == "unreadable_remainder":
                    return
                continue
            except _Broken as broken:
                yield self._broken(start, self.u_start, broken)
                return
            yield start, fields

    def _broken(self, row: int, u: int, exc: _Broken, lost: int | None = None) -> Reject:
        if lost is None:
            lost = self.src.lost_from(u)
        return Reject(self.path, row, "unreadable_remainder", _excerpt(str(exc)), lost)

    def _skip(self, start: int, reason: str) -> Reject:
        """Skip the rest of a rejected record in bounded pieces, finding its end with ``_scan``."""
        src = self.src
        delim = ord(self.delimiter)
        field_end = re.compile(b"[" + re.escape(self.delimiter.encode()) + b"\r\n]")
        data = src.since(self.u_start)
        excerpt = _excerpt(data)
        lost = src.lost_from(self.u_start)
        src.hold = None  # from here on the record is skipped, not held
        first_end = self.feed.first_end
        state = _scan(data, _START, delim, field_end)
        del data
        try:
            while True:
                if src.long:
                    for piece in src.rest():
                        if state != _ERROR:
                            state = _scan(piece, state, delim, field_end)
                        elif first_end is not None:
                            break  # the line after the start is known: no need to read on
                if first_end is None:
                    first_end = src.u
                if state == _ERROR:
                    break
                if state != _QUOTED:  # the record ended with this line: reading goes on after it
                    return Reject(self.path, start, reason, excerpt)
                raw = src.next_line()
                if raw is None:  # end of file inside quotes
                    break
                state = _scan(raw, state, delim, field_end)
            reason = "unterminated_quote" if state == _QUOTED or src.line > start else "malformed_csv"
            src.seek(first_end, start)
        except _Broken as broken:
            return self._broken(start, self.u_start, broken, lost)
        return Reject(self.path, start, reason, excerpt)


def _read_csv(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, delimiter: str = ","
) -> Iterator[RawChunk]:
    with _Lines(path, max_field_bytes) as src:
        records = _CsvRecords(src, path, delimiter)
        items = iter(records)
        text_idx, label_idx, width = _csv_columns(items, spec, path)
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
                yield chunk
                chunk = RawChunk(path)
    if chunk.texts or chunk.rejected:
        yield chunk


def _csv_columns(
    records: Iterator[tuple[int, list[str]] | Reject], spec: ColumnSpec, path: str
) -> tuple[list[int], int, int]:
    """Resolve column names/positions to indices; consumes the header if any."""
    names: list[str] = []
    if spec.csv_has_header():
        header = next(records, None)
        if header is None:
            raise DataError("empty file, expected a header row", path, 1)
        if isinstance(header, Reject):
            raise DataError(f"header row: {REJECT_REASON_TEXT[header.reason]} ({header.excerpt})", path, header.row)
        names = [h.strip() for h in header[1]]

    def index(col: Column) -> int:
        if isinstance(col, int):
            return col
        if col not in names:
            raise DataError(f"no column named {col!r} in header {names}", path, 1)
        return names.index(col)

    text_idx = [index(c) for c in spec.text]
    label_idx = index(spec.label)
    return text_idx, label_idx, max(*text_idx, label_idx) + 1


def _read_tsv(path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int) -> Iterator[RawChunk]:
    return _read_csv(path, spec, chunk_rows, max_field_bytes, delimiter="\t")


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


def _read_jsonl(path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int) -> Iterator[RawChunk]:
    if any(isinstance(c, int) for c in (*spec.text, spec.label)):
        raise UsageError(f"{path}: JSONL columns must be given by name, not position")
    columns = (*spec.text, spec.label)
    chunk = RawChunk(path)
    with _Lines(path, max_field_bytes) as src:
        while True:
            u, row = src.u, src.line + 1
            lost = None
            try:
                raw = src.next_line()
                if raw is not None and src.long:
                    lost = src.lost_from(u)  # now, while the start of the line is still mapped
                    for _ in src.rest():
                        pass
            except _Broken as broken:
                lost = src.lost_from(u) if lost is None else lost
                chunk.rejected.append(Reject(path, row, "unreadable_remainder", _excerpt(str(broken)), lost))
                break
            if raw is None:
                break
            reject = _jsonl_record(raw, row, columns, spec, chunk, max_field_bytes)
            if reject is not None:
                chunk.rejected.append(Reject(path, row, reject, _excerpt(raw)))
            if chunk._full(chunk_rows):
                yield chunk
                chunk = RawChunk(path)
    if chunk.texts or chunk.rejected:
        yield chunk


def _jsonl_record(
    raw: bytes, row: int, columns: tuple[Column, ...], spec: ColumnSpec, chunk: RawChunk, limit: int
) -> str | None:
    """Append the record on line ``row`` to ``chunk``; the reason it is rejected instead, or None."""
    if len(raw) - _eol_len(raw) > limit:
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
    label = _label_of(obj[spec.label])
    if not label:
        return "empty_label"
    if not (_encodable(text) and _encodable(label)):
        return "invalid_utf8"
    chunk.append(text, label, row)
    return None


# --------------------------------------------------------------------------- Parquet


def _read_parquet(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, source: str | None = None
) -> Iterator[RawChunk]:
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
                chunk.rejected.append(Reject(path, row + 1, "unreadable_remainder", _error_excerpt(exc), lost))
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
                    excerpt = _excerpt(repr([v[:100] if isinstance(v, str) else v for v in [*values, label_value]]))
                    chunk.rejected.append(Reject(path, row, reason, excerpt))
                if chunk._full(chunk_rows):
                    yield chunk
                    chunk = RawChunk(path)
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


def _read_dir(path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int) -> Iterator[RawChunk]:
    """One sub-directory per class, one document per file (the aclImdb layout)."""
    root = Path(path)
    try:
        classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot list: {exc}", path) from exc
    if not classes:
        raise DataError("directory has no class sub-directories", path)
    chunk = RawChunk(path)
    for class_dir in classes:
        for doc in sorted(class_dir.rglob("*")):
            if not doc.is_file() or any(p.startswith(".") for p in doc.relative_to(class_dir).parts):
                continue
            reason, text, excerpt, lost = _read_document(doc, max_field_bytes)
            if reason is None:
                chunk.append(text, class_dir.name, str(doc))
            else:
                chunk.rejected.append(Reject(str(doc), None, reason, excerpt, lost))
            if chunk._full(chunk_rows):
                yield chunk
                chunk = RawChunk(path)
    if chunk.texts or chunk.rejected:
        yield chunk


def _read_document(doc: Path, limit: int) -> tuple[str | None, str, str, int | None]:
    """(reject reason or None, text, excerpt, lost bytes) of one document, reading at most ``limit + 1`` bytes."""
    opener = gzip.open if doc.name.lower().endswith(".gz") else open
    try:
        with opener(doc, "rb") as fh:
            data = fh.read(limit + 1)
    except _UNREADABLE as exc:
        try:
            lost: int | None = doc.stat().st_size
        except OSError:
            lost = None
        return "unreadable_remainder", "", _error_excerpt(exc), lost
    if len(data) > limit:
        return "field_too_large", "", _excerpt(data), None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", "", _excerpt(data), None
    if not text.strip():
        return "empty_text", "", _excerpt(data), None
    return None, text, "", None


_READERS = {
    "csv": _read_csv,
    "tsv": _read_tsv,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
    "dir": _read_dir,
}
