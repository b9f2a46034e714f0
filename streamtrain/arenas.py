"""A prepare process's heap: one arena (``one_arena``), large arrays mapped (``map_large``), pages back (``trim``).

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
it where a large structure has just left memory. Between those places the
heap still fragments: pass 2 reads hundreds of buckets of a few MiB each at
millions of rows, and its peak grew with their number. ``map_large`` fixes
glibc's threshold at ``MMAP_THRESHOLD`` (8 MiB), so every array that large
has a mapping of its own and goes back to the system when freed; that costs
the page faults of a fresh mapping each time, about a quarter more time in
pass 2 at 8 M rows (docs/design/prepare.md, "Freed pages handed back").
"""

from __future__ import annotations

import ctypes
from typing import Any

M_ARENA_MAX = -8  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 8 << 20  # bytes from which an allocation is mapped on its own (``map_large``)


def one_arena() -> bool:
    """Ask the C library to use one malloc arena for the threads created from now on.

    Returns:
        Whether the C library took the setting (False where it has no ``mallopt`` or refused it).
    """
    mallopt = _libc("mallopt", [ctypes.c_int, ctypes.c_int])
    return mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1


def map_large(threshold: int = MMAP_THRESHOLD) -> bool:
    """Ask the C library to map every allocation of ``threshold`` bytes or more on its own, from now on.

    It also stops glibc from raising the threshold as large mappings are freed (up to 32 MiB).

    Returns:
        Whether the C library took the setting (False where it has no ``mallopt`` or refused it).
    """
    mallopt = _libc("mallopt", [ctypes.c_int, ctypes.c_int])
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, threshold) == 1


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
