"""The errors the library raises for problems it can explain, each with its exit code for cron.

Exit codes: 0 success; 1 training or scoring failed (a non-finite loss or
output, a lost worker of a multi-worker fit) or anything unexpected; 2 usage
error; 3 a trained model was kept but not promoted (the promotion guard or
the serving check refused it); 65 bad input data (EX_DATAERR); 73 an output
cannot be created: a read-only file system, permission denied, or too little
free space for prepare to start (EX_CANTCREAT); 74 a write failed: no space
left, the disk quota exceeded, a file size limit (EX_IOERR); 75 busy: another
run holds the lock (EX_TEMPFAIL, try again later); 130 interrupted (SIGINT);
143 terminated (SIGTERM). The library raises; only ``streamtrain.cli`` turns
an error into a message and an exit code.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_NOT_PROMOTED = 3
EXIT_DATA = 65
EXIT_CANTCREAT = 73  # EX_CANTCREAT
EXIT_IOERR = 74  # EX_IOERR
EXIT_BUSY = 75  # EX_TEMPFAIL
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell shows for a command whose reader closed its output
EXIT_TERMINATED = 143  # 128 + SIGTERM


class StreamtrainError(Exception):
    """Base class for errors we expect and explain to the user."""

    exit_code = EXIT_UNEXPECTED


class UsageError(StreamtrainError):
    """The command line or configuration is wrong."""

    exit_code = EXIT_USAGE


class DataError(StreamtrainError):
    """Input data is bad; names the file and (1-based) row when known.

    Args:
        message: what is wrong.
        path: the file, prefixed to the message when given.
        row: its 1-based row, said after the file.
    """

    exit_code = EXIT_DATA

    def __init__(self, message: str, path: str | None = None, row: int | None = None):
        self.path = path
        self.row = row
        where = ""
        if path is not None:
            where = f"{path}" + (f", row {row}" if row is not None else "") + ": "
        super().__init__(where + message)


class NonFiniteError(StreamtrainError):
    """Training or scoring met a NaN or infinite value: nothing built on it may be written."""

    exit_code = EXIT_UNEXPECTED


class ClusterError(StreamtrainError):
    """A multi-worker fit lost a worker (it died, or the network failed): the run stops; a rerun resumes."""

    exit_code = EXIT_UNEXPECTED


class Busy(StreamtrainError):
    """Another run holds a lock this one needs (and ``--wait`` ran out): nothing was changed, try again later."""

    exit_code = EXIT_BUSY


class NotPromoted(StreamtrainError):
    """fit kept a new model version but did not make it ``current`` (the promotion guard or the serving check).

    Args:
        message: the decision, one line.
        result: what fit returns when it promotes (metrics, version, decision), for the caller to print.
    """

    exit_code = EXIT_NOT_PROMOTED

    def __init__(self, message: str, result: dict):
        self.result = result
        super().__init__(message)


class WriteError(StreamtrainError):
    """Writing ``path`` failed for a reason of the file system, not of the data; ``cause`` says which.

    Args:
        path: the file or directory, when known.
        cause: the system's words ("No space left on device").
        action: what failed, said before the path ("" for nothing).
    """

    def __init__(self, path: str | os.PathLike[str] | None, cause: str, action: str = "cannot write"):
        self.path, self.cause = None if path is None else os.fspath(path), cause
        super().__init__(" ".join(filter(None, (action, self.path))) + f": {cause}")


class CannotCreate(WriteError):
    """An output cannot be created: read-only file system, permission denied, or too little space to start."""

    exit_code = EXIT_CANTCREAT


class OutOfSpace(WriteError):
    """A write failed for want of space: no space left (ENOSPC), the disk quota (EDQUOT), a size limit (EFBIG)."""

    exit_code = EXIT_IOERR


CANNOT_CREATE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
OUT_OF_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_error(
    exc: BaseException, path: str | os.PathLike[str] | None = None, known_write: bool = True
) -> WriteError | None:
    """The typed error for an ``OSError`` of a write (ENOSPC, EDQUOT, EFBIG: 74; EROFS, EACCES, EPERM: 73).

    Args:
        exc: any exception; a ``WriteError`` is returned as it is.
        path: names the file when the error does not (a failed ``write``).
        known_write: whether ``exc`` is known to come from a write; if not, an EACCES or EPERM (which a read can
            meet too) is not said to be a write's.

    Returns:
        ``OutOfSpace`` or ``CannotCreate``; None for any other exception.
    """
    if isinstance(exc, WriteError):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in CANNOT_CREATE_ERRNOS | OUT_OF_SPACE_ERRNOS:
        return None
    where = exc.filename if exc.filename is not None else path
    cause = os.strerror(exc.errno)
    kind = CannotCreate if exc.errno in CANNOT_CREATE_ERRNOS else OutOfSpace
    neutral = not known_write and exc.errno in (errno.EACCES, errno.EPERM)
    return kind(where, cause, "" if neutral else "cannot write")


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a failed write inside the block into a ``WriteError`` naming ``path`` (or the file the error names).

    Besides an ``OSError`` that ``write_error`` types, numpy's errno-less short write (``tofile``: "N requested
    and M written") becomes ``OutOfSpace``: for want of space where less than 1 MiB is left, else a quota or file
    size limit.

    Args:
        path: the file the block writes.

    Raises:
        WriteError: the block's write failed for a reason of the file system.
    """
    try:
        yield
    except OSError as exc:
        typed = write_error(exc, path)
        if typed is None and exc.errno is None and " requested and " in str(exc):  # numpy's short write
            typed = OutOfSpace(path, os.strerror(errno.ENOSPC) if _full(path) else f"short write ({exc})")
        if typed is None:
            raise
        raise typed from exc


def _full(path: str | os.PathLike[str]) -> bool:
    """Whether the file system of ``path`` (or of its nearest existing parent) has less than 1 MiB free."""
    where = os.path.abspath(path)
    while not os.path.exists(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    try:
        st = os.statvfs(where)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


class Terminated(BaseException):
    """A termination signal arrived (raised by the CLI's handler, so cleanup runs as for Ctrl-C).

    Args:
        signum: the signal's number; its name is the message.
    """

    def __init__(self, signum: int):
        import signal

        self.signum = signum
        super().__init__(signal.Signals(signum).name)
