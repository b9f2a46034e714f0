"""Where a command's logs go: stderr, one line each; stdout is kept for results.

``--quiet`` shows warnings and errors only, the default adds progress
(``INFO``), ``--verbose`` adds debug lines. Library modules log to
``logging.getLogger(__name__)`` under ``streamtrain`` and never print.
``--log-format`` chooses the lines: ``text`` (the default, ``[command]
message``) or ``json`` (``JsonFormatter``: one object per line, with the
record's structured fields). ``setup`` configures the ``streamtrain`` logger;
``line`` writes the command line's own lines (what ends a command, a
deprecated flag) in the same format, with or without ``setup``. A JSON
formatter has ``structured = True``, which tells ``streamtrain.progress`` to
log lines rather than draw a bar.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
FORMATS = ("text", "json")

# Attributes every LogRecord has: the rest of a record's attributes came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _now(created: float | None = None) -> str:
    moment = datetime.datetime.now() if created is None else datetime.datetime.fromtimestamp(created)
    return moment.astimezone().isoformat(timespec="milliseconds")


def json_line(command: str | None, level: str, message: str, created: float | None = None, **fields: Any) -> str:
    """One log line as a JSON object (no newline).

    Args:
        command: the command's name (None outside one).
        level: "info", "warning", "error", ...
        message: the text.
        created: the record's time (a Unix timestamp); None: now.
        **fields: more keys (a value JSON cannot hold is written as its ``str``).

    Returns:
        ``{"time": ISO 8601 with the local timezone, "level", "command", "message", **fields}`` as one line.
    """
    doc = {"time": _now(created), "level": level, "command": command, "message": message, **fields}
    return json.dumps(doc, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: time, level, command, message and the record's ``extra=`` fields.

    Progress lines add ``pass``, ``rows``, ``bytes``, ``total_bytes``, ``seconds``, ``mb_per_s`` and ``eta_s`` or
    ``done``; a record that carries an exception adds ``traceback``.

    Args:
        command: the command every line names.
    """

    structured = True  # machine-readable lines: no live progress bar between them

    def __init__(self, command: str):
        super().__init__()
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line (``json_line``)."""
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and not k.startswith("_")}
        if record.exc_info:
            fields["traceback"] = self.formatException(record.exc_info)
        level = record.levelname.lower()
        return json_line(self.command, level, record.getMessage(), record.created, **fields)


def setup(command: str, verbosity: int, log_format: str = "text") -> None:
    """Send the ``streamtrain`` logger's records to stderr, and only there.

    Args:
        command: the command's name, in every line.
        verbosity: 0 ``--quiet`` (warnings), 1 the default (info), 2 ``--verbose`` (debug).
        log_format: "text" or "json".
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(command))
    else:
        handler.setFormatter(logging.Formatter(f"[{command}] %(message)s"))
    root = logging.getLogger("streamtrain")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[verbosity])
    root.propagate = False


def line(prog: str, level: str, message: str, log_format: str = "text", *, tag: bool = True, **fields: Any) -> None:
    """One of the command line's own lines on stderr, with or without ``setup``.

    Args:
        prog: "streamtrain" or "streamtrain COMMAND".
        level: "warning", "error", ...
        message: the text.
        log_format: "text": ``PROG: LEVEL: MESSAGE`` (``PROG: MESSAGE`` when not ``tag``); "json": a line of level
            ``level`` whose command is PROG's second word, with ``fields``.
        tag: whether a text line names its level.
        **fields: more keys of a JSON line.
    """
    if log_format == "json":
        command = prog.split(" ", 1)[1] if " " in prog else None
        text = json_line(command, level, message, **fields)
    else:
        text = f"{prog}: {level}: {message}" if tag else f"{prog}: {message}"
    print(text, file=sys.stderr, flush=True)


def format_in(argv: Sequence[str]) -> str:
    """The ``--log-format`` that ``argv`` asks for, before (or without) parsing it.

    Args:
        argv: a command's arguments; those after ``--`` are not looked at.

    Returns:
        The last valid one given; "text" when none or unknown.
    """
    chosen = "text"
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        value = argv[i + 1] if arg == "--log-format" and i + 1 < len(argv) else arg.partition("=")[2]
        if (arg == "--log-format" or arg.startswith("--log-format=")) and value in FORMATS:
            chosen = value
    return chosen
