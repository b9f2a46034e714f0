"""Work in a forked child whose memory goes when it ends (``started``), and dying with the parent (``die_with``).

Who owns what: ``started`` forks, runs one function in the child and hands its JSON-able result back through
a pipe, as a future this process can wait for while it goes on; everything the child allocated
(TensorFlow, its models, its threads) leaves with it. prepare runs its family bake-off this way, so the
models it trains never stay in prepare's memory for the rest of the run, and writes the n-gram dataset
meanwhile (docs/design/prepare.md). The child:

- sends its log records up the pipe, and a thread of this process hands each to its own logger as it arrives:
  the handlers that are this process's (the CLI's, a test's) see them in order, as if logged here;
- dies with this process, however it ends (Linux's parent-death signal, SIGTERM: ``die_with``);
- takes SIGINT and SIGTERM at their default action: the parent's handlers decide what an interruption does,
  and when the parent leaves early (a signal, an error) it ends the child and reaps it before going on.

Fork only before this process imports TensorFlow (no thread of TensorFlow's copied half-way); the callers
fork from prepare, which never imports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1  # prctl(2)
_CHILD_FAILED = 70  # the child's exit code when the function raised (EX_SOFTWARE)
_GRACE = 5.0  # seconds a child told to stop (SIGTERM) has before SIGKILL


class ChildError(RuntimeError):
    """The function raised in the child, or the child died before it answered (the message says which)."""


def die_with(parent: int) -> None:
    """In a child: SIGTERM when ``parent`` ends, however it ends (Linux's parent-death signal).

    Args:
        parent: the parent's pid, read before the fork.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def fork_piped() -> tuple[int, int, int]:
    """Fork, with a pipe from the child to this process, this process's buffered output flushed first.

    Returns:
        ``(pid, fd, parent)``: in the child ``pid`` is 0 and ``fd`` the pipe's write end; in this process ``pid``
        is the child's and ``fd`` the read end (each side has closed the other end). ``parent`` is this process's
        pid, read before the fork (for ``die_with``).
    """
    readable, writable = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write this process's buffered output again
    parent = os.getpid()
    pid = os.fork()
    os.close(readable if pid == 0 else writable)
    return pid, writable if pid == 0 else readable, parent


@contextlib.contextmanager
def started(fn: Callable[[Any], Any], arg: Any, what: str) -> Iterator[Future]:
    """``fn(arg)`` started in a forked child, while this process goes on: its answer comes as a ``Future``.

    A thread of this process reads the child's pipe: it hands each log record to this process's logger as it
    arrives, reaps the child when the pipe closes, and then sets the future: ``fn(arg)``'s result as
    ``json.loads(json.dumps(result))``, or a ``ChildError`` when ``fn`` raised in the child (its type and
    message given) or the child ended without an answer (killed by a signal, out of memory). Leaving the
    block ends the child if it still runs (SIGTERM, then SIGKILL after ``_GRACE`` seconds) and waits for that
    thread, so no child outlives it; waiting for the future is interrupted by a signal whose handler raises.

    Args:
        fn: the work; its result must be JSON-able.
        arg: its argument (as this process had it at the fork).
        what: the work's name, for messages.

    Yields:
        The future of ``fn(arg)``'s decoded result.
    """
    pid, readable, parent = fork_piped()
    if pid == 0:  # the child: never returns
        _child(fn, arg, readable, parent)
    reader = _Reader(pid, readable, what)
    try:
        yield reader.answer
    finally:
        reader.end()


class _Reader:
    """The thread of ``started`` that relays child ``pid``'s pipe, reaps it and answers ``answer``."""

    def __init__(self, pid: int, readable: int, what: str) -> None:
        self.pid, self.what = pid, what
        self.answer: Future = Future()
        self.reaped = threading.Lock()  # held while reaping an ended child: ``end`` signals only one not yet reaped
        self.code: int | None = None
        self.thread = threading.Thread(target=self._read, args=(readable,), name=f"{what}: child's pipe", daemon=True)
        self.thread.start()

    def _read(self, readable: int) -> None:
        doc = None
        try:
            with os.fdopen(readable, "rb") as pipe:
                for line in pipe:
                    doc = _relay(line) or doc
        finally:
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)  # until it ends, left unreaped: ``end`` may signal
            with self.reaped:
                self.code = _reap(self.pid)
            try:
                self.answer.set_result(_decode(doc, self.code, self.what))
            except ChildError as exc:
                self.answer.set_exception(exc)

    def end(self) -> None:
        """End the child if it still runs (SIGTERM, then SIGKILL after ``_GRACE`` s); wait until it is reaped."""
        for signum, wait in ((signal.SIGTERM, _GRACE), (signal.SIGKILL, None)):
            with self.reaped:
                if self.code is None:
                    os.kill(self.pid, signum)
            self.thread.join(wait)
            if not self.thread.is_alive():
                return


class _Forward(logging.Handler):
    """The child's one handler: each record, as one JSON line on the pipe."""

    def __init__(self, pipe: Any) -> None:
        super().__init__()
        self.pipe = pipe

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        sent = {"name": record.name, "levelno": record.levelno, "levelname": record.levelname, "msg": message}
        self.pipe.write(json.dumps({"log": sent}).encode("utf-8") + b"\n")
        self.pipe.flush()


def _relay(line: bytes) -> dict | None:
    """One line from the child: a log record is handed to this process's logger; the answer is returned."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if "log" in doc:
        record = logging.makeLogRecord({**doc["log"], "args": None})
        logging.getLogger(record.name).handle(record)
        return None
    return doc


def _child(fn: Callable[[Any], Any], arg: Any, writable: int, parent: int) -> None:
    """The child's side of ``started``: run, answer on ``writable``, leave by ``os._exit``."""
    code = _CHILD_FAILED
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        die_with(parent)
        with os.fdopen(writable, "wb") as pipe:
            _forward_logs(pipe)
            try:
                answer = {"result": fn(arg)}
                code = 0
            except Exception as exc:  # handed to the parent, which raises it as a ChildError
                answer = {"error": type(exc).__name__, "message": str(exc)}
            pipe.write(json.dumps(answer).encode("utf-8") + b"\n")
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def _forward_logs(pipe: Any) -> None:
    """In the child: every record of ``streamtrain``'s loggers goes up ``pipe`` (``_Forward``), nowhere else."""
    forward = _Forward(pipe)
    ours = logging.getLogger("streamtrain")
    for logger in (logging.getLogger(), ours):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    ours.addHandler(forward)
    ours.propagate = False


def _reap(pid: int) -> int:
    """Wait for child ``pid`` and return its exit code (negative: the signal that ended it)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _decode(doc: dict | None, code: int, what: str) -> Any:
    """The result in the child's answer ``doc``; ``ChildError`` for a failure or no answer."""
    if isinstance(doc, dict) and "result" in doc and code == 0:
        return doc["result"]
    if isinstance(doc, dict) and "error" in doc:
        raise ChildError(f"{what} failed in its child process: {doc['error']}: {doc['message']}")
    how = f"signal {-code}" if code < 0 else f"exit {code}"
    raise ChildError(f"{what}'s child process ended ({how}) without an answer")
