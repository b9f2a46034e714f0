"""Progress of a long pass over data: rows, bytes of a known total, MB/s and an ETA, on stderr.

The library opens one ``Progress`` per pass (a context manager) and calls
``advance(rows, bytes)`` once per chunk it reads; it never says how progress
is shown. ``display`` decides that when the pass starts, from how logging is
configured (``streamtrain.cli.logs`` configures it for the command line):
nothing, a live bar (``rich.progress``) at a terminal, or an ``INFO`` line
every ``INTERVAL`` seconds. A pass that ends without an error logs one
``done`` line; every line carries its numbers as record attributes
(``extra=``) for structured logs. ``close_all`` ends every open pass at once,
for a command that failed (so its error is not drawn over by a bar whose
generator is still alive in a traceback). MB are 10**6 bytes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

MB = 1_000_000


def _interval(value: str | None, default: float = 5.0) -> float:
    try:
        seconds = float(value) if value else default
    except ValueError:
        return default
    return seconds if math.isfinite(seconds) and seconds >= 0 else default


# Seconds between two progress lines: 5 unless STREAMTRAIN_PROGRESS_SECONDS says otherwise (tests shorten it).
INTERVAL = _interval(os.environ.get("STREAMTRAIN_PROGRESS_SECONDS"))

OFF, LINES, BAR = "off", "lines", "bar"

_open: list[Progress] = []


def _shown_by(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers that would emit ``logger``'s INFO records."""
    out: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        out += [h for h in current.handlers if h.level <= logging.INFO]
        if not current.propagate:
            break
        current = current.parent
    return out


def _on_terminal(handler: logging.Handler) -> bool:
    """A handler that writes plain text lines to a terminal."""
    if not isinstance(handler, logging.StreamHandler) or getattr(handler.formatter, "structured", False):
        return False
    try:
        return bool(handler.stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def display(logger: logging.Logger) -> str:
    """How progress logged to ``logger`` is shown now.

    Args:
        logger: where the pass logs.

    Returns:
        ``OFF`` when the logger does not show ``INFO`` (``--quiet``; a library caller that configured no
        logging); ``BAR`` when every handler that shows its ``INFO`` records writes plain text to a terminal
        (stderr a TTY and the text log format: the command line's default at a terminal); else ``LINES`` (cron:
        stderr a file or a pipe; a formatter whose ``structured`` attribute is true, as ``--log-format json``'s).
    """
    if not logger.isEnabledFor(logging.INFO):
        return OFF
    handlers = _shown_by(logger)
    if not handlers:
        return OFF  # logging's last resort shows warnings only
    return BAR if all(_on_terminal(h) for h in handlers) else LINES


def _mb(n: float) -> str:
    return f"{n / MB:.1f}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """One pass: ``with Progress("pass 1/3: reading", total_bytes) as p: ... p.advance(rows, nbytes)``.

    A line while running: ``pass 1/3: reading and counting: 120000 rows, 45.2 of 110.0 MB (41%), 22.1 MB/s,
    ETA 3 s``; at the end: ``pass 1/3: reading and counting: done: 200000 rows, 110.0 MB in 5.0 s (22.0 MB/s)``.
    Their record attributes: ``pass``, ``rows``, ``bytes``, ``total_bytes``, ``seconds``, ``mb_per_s``, and
    ``eta_s`` while running or ``done`` at the end. A bar is removed at the end of the pass; log lines written
    meanwhile go above it.

    Args:
        name: the pass, as its lines begin.
        total_bytes: what the pass will read in all (None when unknown: no percentage or ETA).
        logger: where its lines go (by default this module's, under ``streamtrain``).
    """

    def __init__(self, name: str, total_bytes: int | None = None, logger: logging.Logger | None = None):
        self.name = name
        self.total_bytes = total_bytes
        self.rows = 0
        self.bytes = 0
        self.mode = OFF
        self._log = logger or log
        self._start = 0.0
        self._next = math.inf
        self._bar: _Bar | None = None

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        self.mode = display(self._log)
        if self.mode == LINES:
            self._next = self._start + INTERVAL
        elif self.mode == BAR:
            self._bar = _Bar(self.name, self.total_bytes, _shown_by(self._log))
        _open.append(self)
        return self

    def advance(self, rows: int, nbytes: int = 0) -> None:
        """``rows`` more rows and ``nbytes`` more bytes done; call it per chunk, not per row.

        It adds to two counters and, for lines, reads the monotonic clock.
        """
        self.rows += rows
        self.bytes += nbytes
        if self._bar is not None:
            self._bar.update(self.rows, self.bytes)
        elif self.mode == LINES:
            now = time.monotonic()
            if now >= self._next:
                self._next = now + INTERVAL
                self._line(now, done=False)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(done=exc_type is None)

    def close(self, done: bool = True) -> None:
        """End the pass: remove the bar; when ``done`` (and not ``OFF``), log the end-of-pass line."""
        if self in _open:
            _open.remove(self)
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.stop()
        if done and self.mode != OFF:
            self._line(time.monotonic(), done=True)
        self.mode = OFF

    def _line(self, now: float, done: bool) -> None:
        seconds = max(now - self._start, 1e-9)
        rate = self.bytes / seconds
        fields: dict[str, Any] = {
            "pass": self.name,
            "rows": self.rows,
            "bytes": self.bytes,
            "total_bytes": self.total_bytes,
            "seconds": round(seconds, 3),
            "mb_per_s": round(rate / MB, 3),
        }
        if done:
            fields["done"] = True
            self._log.info(
                f"{self.name}: done: {self.rows} rows, {_mb(self.bytes)} MB in {seconds:.1f} s ({rate / MB:.1f} MB/s)",
                extra=fields,
            )
            return
        total = self.total_bytes
        eta = (total - self.bytes) / rate if total and rate > 0 else None
        fields["eta_s"] = None if eta is None else round(max(eta, 0.0), 1)
        of = f" of {_mb(total)} MB ({100 * self.bytes / total:.0f}%)" if total else " MB"
        when = f", ETA {_duration(max(eta, 0.0))}" if eta is not None else ""
        self._log.info(
            f"{self.name}: {self.rows} rows, {_mb(self.bytes)}{of}, {rate / MB:.1f} MB/s{when}", extra=fields
        )


def close_all() -> None:
    """End every open pass without its end line (a command failed: say why, not how far it got)."""
    for progress in list(_open):
        progress.close(done=False)


class _Bar:
    """A ``rich.progress`` bar on the handlers' terminal, the handlers' lines printed above it meanwhile."""

    def __init__(self, name: str, total: int | None, handlers: list[logging.Handler]):
        from rich.console import Console
        from rich.file_proxy import FileProxy
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        streams = [h for h in handlers if isinstance(h, logging.StreamHandler)]
        console = Console(file=streams[0].stream, soft_wrap=True)
        self._rich = RichProgress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rows]} rows", markup=False),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("ETA", markup=False),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            redirect_stdout=False,  # stdout carries results, never the bar
            redirect_stderr=True,
        )
        self._task = self._rich.add_task(name, total=total if total else None, rows=0)
        self._rich.start()
        proxy = FileProxy(console, streams[0].stream)
        self._handlers = [(h, h.stream) for h in streams]
        for handler in streams:
            handler.setStream(proxy)  # a text stream that prints above the bar

    def update(self, rows: int, nbytes: int) -> None:
        self._rich.update(self._task, completed=nbytes, rows=rows)

    def stop(self) -> None:
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._rich.stop()
