"""Errors with cron-friendly exit codes, and the CLI wrapper that maps them.

Exit codes: 0 success, 2 usage error, 65 bad input data (EX_DATAERR),
1 anything unexpected.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_DATA = 65


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


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main`` and translate exceptions into exit codes and one-line messages."""
    prog = getattr(main, "__module__", "streamtrain")
    try:
        return int(main(argv) or EXIT_OK)
    except StreamtrainError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - last-resort handler for cron
        traceback.print_exc()
        return EXIT_UNEXPECTED
