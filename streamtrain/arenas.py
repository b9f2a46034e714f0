"""One malloc arena for a process that prepares (``one_arena``), and its freed pages given back (``trim``).

glibc gives each thread that contends for the allocator an arena of its own
(up to eight per core), and an arena keeps the heap it grew to: prepare's
worker threads allocate large short-lived arrays, so its peak RSS grew with
the arenas' fragmentation rather than with what it held. With one arena the
2 M-row scale corpus prepared at the same speed with 50-70 MiB less peak
(docs/design/prepare.md, "Memory at millions of rows"). Anywhere else (no
glibc, or no ``mallopt``) it does nothing.

An arena also keeps the pages of what was freed inside its heap: glibc
gives an allocation of up to 32 MiB from the heap once a larger one was
freed, so the split index's runs and the names' temporaries stayed in
prepare's RSS after they were dropped, through the passes that followed.
``trim`` (glibc's ``malloc_trim(0)``) hands those pages back; prepare calls
it where a large structure has just left memory.
"""

from __future__ import annotations

import ctypes
from typing import Any

M_ARENA_MAX = -8  # glibc's malloc.h


def one_arena() -> bool:
    """Ask the C library to use one malloc arena for the threads created from now on.

    Returns:
        Whether the C library took the setting (False where it has no ``mallopt`` or refused it).
    """
    mallopt = _libc("mallopt", [ctypes.c_int, ctypes.c_int])
    return mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1


def trim() -> bool:
    """Give the pages of freed memory back to the system (glibc's ``malloc_trim(0)``); cheap, safe at any time.

    Returns:
        Whether the C library had pages to give back (False too where it has no ``malloc_trim``).
    """
    malloc_trim = _libc("malloc_trim", [ctypes.c_size_t])
    return malloc_trim is not None and malloc_trim(0) == 1


def _libc(name: str, argtypes: list) -> Any:
    """The C library's function ``name`` returning an int, with ``argtypes``; None where it has none."""
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = argtypes, ctypes.c_int
    return function
