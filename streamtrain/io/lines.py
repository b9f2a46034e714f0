"""The physical lines of a CSV/TSV/JSONL file, plain or gzip, in memory bounded by a line limit.

``Lines`` reads a file's lines as bytes: a line longer than the limit is
never held whole, a leading byte-order mark is dropped, and a stream that
cannot be read on (an I/O error, a truncated or corrupt gzip) raises
``Broken`` while ``lost_from`` says how many bytes of the file were not
read. gzip is inflated by ``_Inflate``, a small zlib reader that, unlike
``gzip.GzipFile``, knows how many compressed bytes it has consumed.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

from streamtrain.errors import DataError

UNREADABLE = (OSError, EOFError, zlib.error)  # I/O errors, bad or truncated gzip

_CHUNK = 1 << 16  # bytes read at a time
_GZ_PIECE = 1 << 14  # bytes inflated at a time: also the grain of lost_bytes for gzip
_BOM = b"\xef\xbb\xbf"


class Broken(Exception):
    """The stream cannot be read on (I/O error, truncated or corrupt gzip)."""


class _Upto:
    """A file read no further than byte ``stop`` (a prefix of it)."""

    def __init__(self, fh: BinaryIO, stop: int):
        self._fh, self._stop = fh, stop

    def read(self, n: int) -> bytes:
        return self._fh.read(max(0, min(n, self._stop - self._fh.tell())))

    def seek(self, pos: int) -> int:
        return self._fh.seek(pos)

    def close(self) -> None:
        self._fh.close()


class _Inflate:
    """The inflated bytes of a gzip file (every member), counting the compressed bytes consumed.

    ``gzip.GzipFile`` reads ahead and cannot say how far it got; this can, so a
    truncated file reports how many of its bytes were not turned into records.
    """

    def __init__(self, fh: BinaryIO | _Upto, consumed: int = 0):
        self._fh = fh
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper: zlib checks the CRC and length
        self._in = b""  # compressed bytes read from disk, not yet consumed
        self._in_member = False
        self._members = 0
        self.consumed = consumed  # offset in the file of the next compressed byte

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


def eol_len(raw: bytes) -> int:
    r"""The length of ``raw``'s line break: 2 for ``\r\n``, 1 for ``\n`` or ``\r``, 0 for none."""
    if raw.endswith(b"\r\n"):
        return 2
    return 1 if raw.endswith((b"\n", b"\r")) else 0


class Lines:
    r"""The physical lines of one CSV/TSV/JSONL file (plain or gzip) as bytes, in bounded memory.

    A line ends at ``\n``, ``\r\n`` or a lone ``\r`` (what ``newline=''``
    gives the csv module); a leading UTF-8 byte-order mark is dropped. A line
    whose content is longer than ``limit`` bytes is never held whole:
    ``next_line`` returns its first ``limit + 1`` bytes and sets ``long``, and
    ``rest`` yields the remainder in pieces. Memory: the buffer holds at most
    about ``limit`` + 64 KiB, plus the record being parsed from ``hold`` on
    (CSV keeps it to replay it; at most ``limit`` more). A stream that cannot
    be read on raises ``Broken``; ``lost_from`` then says how many bytes of
    the file are lost from a given point.

    ``start``/``stop``: read only the bytes of the file from ``start`` to
    ``stop`` (an append's tail, an ingested prefix); for gzip, ``start``
    must begin a gzip member. Offsets (``u``) of a plain file stay the
    file's; ``line`` counts from 0 unless the caller sets it.
    """

    _buf: bytes
    _pos: int  # next unread byte of _buf
    _u0: int  # offset in the (inflated) stream of _buf[0]
    _eof: bool
    _marks: deque[tuple[int, int]]

    def __init__(self, path: str, limit: int, start: int = 0, stop: int | None = None):
        self.path = path
        self.limit = limit
        self.line = 0  # physical lines started so far
        self.long = False  # inside an over-long line whose rest is unread
        self.hold: int | None = None  # keep the buffer from this offset on
        self._start = start
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by __exit__
        except OSError as exc:
            raise DataError(f"cannot open: {exc}", path) from exc
        self.size = os.fstat(fh.fileno()).st_size if stop is None else stop
        fh.seek(start)
        self._fh: BinaryIO | _Upto = fh if stop is None else _Upto(fh, stop)
        self._inflate = _Inflate(self._fh, start) if path.lower().endswith(".gz") else None
        self._reset(0 if self._inflate is not None else start, start)
        self._error: Broken | None = None  # a break while reading the start, raised by the first next_line
        try:
            while start == 0 and len(self._buf) < len(_BOM) and not self._eof:
                self._fill()
            if self._buf.startswith(_BOM):
                self._pos = len(_BOM)
        except Broken as exc:
            self._error = exc

    def _reset(self, u: int, c: int) -> None:
        self._buf = b""
        self._pos = 0
        self._u0 = u
        self._eof = False
        # (stream offset, compressed bytes consumed before the read that produced it), to map back for lost_from
        self._marks = deque([(u, c)])

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    @property
    def u(self) -> int:
        """Offset in the (inflated) stream of the next unread byte."""
        return self._u0 + self._pos

    @property
    def bytes_read(self) -> int:
        """Bytes of the file on disk read so far (for gzip: compressed bytes inflated), for progress."""
        return self._u0 + len(self._buf) if self._inflate is None else self._inflate.consumed

    def _fill(self) -> None:
        try:
            if self._inflate is not None:
                c = self._inflate.consumed
                data = self._inflate.read(_GZ_PIECE)
            else:
                c = self._u0 + len(self._buf)
                data = self._fh.read(_CHUNK)
        except UNREADABLE as exc:
            self._eof = True
            raise Broken(f"{type(exc).__name__}: {exc}") from exc
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

    def plain(self, avoid: tuple[bytes, ...]) -> bytes:
        r"""The buffered lines from the next unread byte that ``next_line`` would return as they are, unread.

        Lines ended by ``\n``, none longer than ``limit`` bytes and none holding ``\r`` or one of the bytes
        ``avoid`` lists, up to the first that does not qualify or the end of the buffer. Nothing is read from the
        file and nothing moves: the caller takes them one by one with ``skip_line``. Empty while an over-long
        line or a read's failure is pending.
        """
        if self.long or self._error is not None:
            return b""
        buf, pos = self._buf, self._pos
        end = buf.rfind(b"\n", pos, pos + self.limit + 1) + 1  # so no line in it is longer than limit
        # bytes.find: memchr, far faster than a regex class; ``avoid`` first: in a file quoting its fields, the
        # next line often holds a quote, and the search for \r stops where the run does.
        for byte in (*avoid, b"\r"):
            found = buf.find(byte, pos, end) if end > pos else -1
            if found >= 0:
                end = buf.rfind(b"\n", pos, found) + 1
        return buf[pos:end] if end > pos else b""

    def skip_line(self, length: int) -> None:
        r"""Step over the next line, ``length`` bytes with its ``\n``, taken from ``plain``: as ``next_line`` would."""
        self._pos += length
        self.line += 1

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
        """Go back to stream offset ``u``, where physical line ``line + 1`` starts.

        Args:
            u: an offset in the (inflated) stream already read.
            line: the physical lines before it.

        Raises:
            Broken: the file cannot be read again up to ``u`` (gzip is inflated again from the start).
        """
        self.line, self.long = line, False
        if self._u0 <= u <= self._u0 + len(self._buf):
            self._pos = u - self._u0
            return
        try:
            if self._inflate is None:
                self._fh.seek(u)
                self._reset(u, u)
                return
            self._fh.seek(self._start)  # gzip cannot seek back: inflate again from the start, in bounded pieces
            self._inflate = _Inflate(self._fh, self._start)
            left = u
            while left > 0:
                data = self._inflate.read(min(_CHUNK, left))
                if not data:
                    break
                left -= len(data)
        except UNREADABLE as exc:
            raise Broken(f"{type(exc).__name__}: {exc}") from exc
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
        """Bytes of the file on disk not read from stream offset ``u`` on (for gzip, an upper bound)."""
        return max(0, self.size - self.compressed_at(u))
