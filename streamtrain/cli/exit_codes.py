"""The exit-code table every ``--help`` ends with, and the code for an exception that ended a command.

The codes themselves belong to the error classes (``streamtrain.errors``):
the library raises them and never exits; the CLI turns them into the
process's exit code here.
"""

from __future__ import annotations

import select
import sys

from streamtrain.errors import (
    EXIT_BUSY,
    EXIT_CANTCREAT,
    EXIT_DATA,
    EXIT_INTERRUPTED,
    EXIT_IOERR,
    EXIT_NOT_PROMOTED,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_TERMINATED,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    StreamtrainError,
    Terminated,
    write_error,
)

TABLE = (
    (EXIT_OK, "success"),
    (
        EXIT_UNEXPECTED,
        "failed: the loss or an output became NaN/infinite (nothing was written), a worker of the cluster was lost "
        "(fit: rerun to resume; prepare --scheduler: a chunk failed), or a bug (traceback)",
    ),
    (
        EXIT_USAGE,
        "usage error: a bad option or config file, a missing input, an existing output without --overwrite or one "
        "streamtrain did not write, a lock file that is not a lock, a --serving-dir that cannot be used",
    ),
    (
        EXIT_NOT_PROMOTED,
        "fit: the new model version was kept but not promoted (worse than current, no better than always answering "
        "the majority class, or its SavedModel failed the serving check); see promotion.json",
    ),
    (
        EXIT_DATA,
        "bad input data: a malformed row, an ingested input that changed, a missing or corrupt dataset or current "
        "version; the message names the file and row",
    ),
    (
        EXIT_CANTCREAT,
        "cannot create an output: read-only file system or permission denied (EROFS, EACCES, EPERM), or prepare "
        "found clearly too little free space to start; the message names the path. Nothing was replaced",
    ),
    (
        EXIT_IOERR,
        "a write failed: no space left on the device, disk quota exceeded or file too large (ENOSPC, EDQUOT, "
        "EFBIG); the message names the path. Partial outputs removed, the previous dataset and model unchanged",
    ),
    (EXIT_BUSY, "busy: another run holds the dataset or model directory (the message names it); retry or use --wait"),
    (EXIT_INTERRUPTED, "interrupted by SIGINT (Ctrl-C); partial outputs removed"),
    (
        EXIT_PIPE,
        "standard output's reader closed it (streamtrain predict ... | head): the command stopped there, quietly",
    ),
    (EXIT_TERMINATED, "terminated by SIGTERM; partial outputs removed"),
)


def exit_code(exc: BaseException) -> int:
    """The exit code for ``exc``, which ended a command.

    Args:
        exc: the exception.

    Returns:
        73 or 74 for a typed write error (``errors.write_error``), an error's own ``exit_code``, 130 for
        ``KeyboardInterrupt``, 141 for a ``BrokenPipeError`` when standard output's reader is gone
        (``stdout_reader_gone``), 143 for ``Terminated``, else 1.
    """
    if isinstance(exc, BrokenPipeError) and stdout_reader_gone():
        return EXIT_PIPE
    typed = write_error(exc)
    if typed is not None:
        return typed.exit_code
    if isinstance(exc, StreamtrainError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED
    return EXIT_UNEXPECTED


def stdout_reader_gone() -> bool:
    """Whether standard output is a pipe (or socket) whose reading end has closed: ``poll`` says ``POLLERR``.

    Returns:
        True when writing to standard output can only fail with ``EPIPE``; False otherwise, or when unknown.
    """
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def help_text() -> str:
    """The exit-code table, as every ``--help`` ends."""
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in TABLE)
