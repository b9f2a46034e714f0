"""CSV/TSV records from ``Lines``, with line numbers, bounded memory, and recovery from broken quoting.

``CsvRecords`` feeds the decoded lines of a file to ``csv.reader`` and yields
``(start line, fields)`` for each record, or a ``Reject``: a record with
bad UTF-8 or over the size limit is found by ``_scan``, which follows csv's
quoting rules in bounded pieces; a quoting error rejects the record at the
line where it starts, and reading resumes on the next line, so the rows a
stray quote swallowed are still read. A run of buffered lines without a quote
or a carriage return skips ``csv.reader``: each is one record, split at the
delimiter, as ``csv.reader`` reads it (``_plain``; measured in docs/design/readers.md).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from streamtrain.io.lines import Broken, Lines, eol_len
from streamtrain.io.rejects import Reject, excerpt_of


class _Bad(Exception):
    """The line just read makes the record a reject (``reason``), whatever its quoting."""

    def __init__(self, reason: str):
        self.reason = reason


class _Feed:
    """The lines ``csv.reader`` asks for: checked for size and decoded one by one, counted per record."""

    def __init__(self, src: Lines):
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
        elif src.u - self.u_start - eol_len(raw) > src.limit:
            raise _Bad("field_too_large")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad("invalid_utf8") from None


# What the scanner tracks of csv's state machine (strict, doublequote, '"' quotes, no escapechar):
# where a record ends and where strict quoting fails, without holding the record.
_START, _FIELD, _QUOTED, _AFTER_QUOTE, _END, _ERROR = range(6)
_QUOTE = ord('"')
_QUOTE_BYTE = (b'"',)  # what ``Lines.plain`` must avoid besides \r: a line holding it goes through csv.reader
_EOL = (ord("\n"), ord("\r"))


def _scan(data: bytes, state: int, delim: int, field_end: re.Pattern[bytes]) -> int:
    """The csv module's parse state after ``data``: _END once the record has ended, _ERROR on bad quoting."""
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


class CsvRecords:
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

    def __init__(self, src: Lines, path: str, delimiter: str):
        self.src = src
        self.path = path
        self.delimiter = delimiter
        self.feed = _Feed(src)
        self.u_start = 0

    def excerpt(self) -> str:
        """The excerpt of the record just yielded (``rejects.excerpt_of``)."""
        return excerpt_of(self.src.since(self.u_start))

    def __iter__(self) -> Iterator[tuple[int, list[str]] | Reject]:
        src, feed = self.src, self.feed
        reader = csv.reader(feed, delimiter=self.delimiter, strict=True)
        while True:
            plain = src.plain(_QUOTE_BYTE)
            if plain:
                yield from self._plain(plain)
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
                except Broken as broken:
                    yield self._broken(start + 1, feed.first_end, broken)
                    return
                continue
            except _Bad as bad:
                reject = self._skip(start, bad.reason)
                yield reject
                if reject.reason == "unreadable_remainder":
                    return
                continue
            except Broken as broken:
                yield self._broken(start, self.u_start, broken)
                return
            yield start, fields

    def _plain(self, lines: bytes) -> Iterator[tuple[int, list[str]]]:
        r"""The records of ``lines``, buffered lines without a quote or ``\r`` (``Lines.plain``), one a line.

        Such a line is one record, its fields split at the delimiter (none for an empty line), as ``csv.reader``
        reads it. Its state is left as the line-by-line path leaves it (``u_start``, ``hold``, the line count), so
        ``excerpt`` works the same. Stops at the first line that is not UTF-8: the line-by-line path rejects it.
        """
        src, delimiter = self.src, self.delimiter
        for raw in lines.split(b"\n")[:-1]:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                return
            self.u_start = src.hold = src.u
            src.skip_line(len(raw) + 1)
            yield src.line, line.split(delimiter) if line else []

    def _broken(self, row: int, u: int, exc: Broken, lost: int | None = None) -> Reject:
        if lost is None:
            lost = self.src.lost_from(u)
        return Reject(self.path, row, "unreadable_remainder", excerpt_of(str(exc)), lost)

    def _skip(self, start: int, reason: str) -> Reject:
        """Skip the rest of a rejected record in bounded pieces, finding its end with ``_scan``."""
        src = self.src
        delim = ord(self.delimiter)
        field_end = re.compile(b"[" + re.escape(self.delimiter.encode()) + b"\r\n]")
        data = src.since(self.u_start)
        excerpt = excerpt_of(data)
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
        except Broken as broken:
            return self._broken(start, self.u_start, broken, lost)
        return Reject(self.path, start, reason, excerpt)
