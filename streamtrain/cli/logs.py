"""Where a command's logs go: stderr, one line each, ``[command] message``; stdout is kept for results.

``--quiet`` shows warnings and errors only, the default adds progress
(``INFO``), ``--verbose`` adds debug lines. Library modules log to
``logging.getLogger(__name__)`` under ``streamtrain`` and never print.
"""

from __future__ import annotations

import logging
import sys

LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


def setup(command: str, verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[{command}] %(message)s"))
    root = logging.getLogger("streamtrain")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[verbosity])
    root.propagate = False
