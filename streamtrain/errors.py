"""The errors the library raises for problems it can explain, each with its exit code for cron.

Exit codes: 0 success, 1 training or scoring failed (a non-finite loss or
output, a lost worker of a multi-worker fit) or anything unexpected, 2 usage error, 3 a trained model was kept
but not promoted (the promotion guard), 65 bad input data (EX_DATAERR),
75 busy: another run holds the lock (EX_TEMPFAIL, try again later), 130
interrupted (SIGINT), 143 terminated (SIGTERM). The
library raises; only ``streamtrain.cli`` turns an error into a message and
an exit code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_NOT_PROMOTED = 3
EXIT_DATA = 65
EXIT_BUSY = 75  # EX_TEMPFAIL
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class StreamtrainError(Exception):
    """Base class for errors we expect and explain to the user."""

    exit_code = EXIT_UNEXPECTED


class UsageError(StreamtrainError):
    """The command line or configuration is wrong."""

    exit_code = EXIT_USAGE


class DataError(StreamtrainError):
    """Input data is bad; names the file and (1-based) row when known."""

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
    """The promotion guard kept a new model version but did not make it ``current``; ``result`` is what fit made."""

    exit_code = EXIT_NOT_PROMOTED

    def __init__(self, message: str, result: dict):
        self.result = result
        super().__init__(message)


class Terminated(BaseException):
    """A termination signal arrived (raised by the CLI's handler, so cleanup runs as for Ctrl-C)."""

    def __init__(self, signum: int):
        import signal

        self.signum = signum
        super().__init__(signal.Signals(signum).name)
