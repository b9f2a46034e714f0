"""``streamtrain.arenas``: a prepare process asks glibc for one malloc arena; elsewhere nothing happens."""

from __future__ import annotations

import platform
import subprocess
import sys


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_one_arena_is_taken_where_glibc_is_the_c_library():
    taken = run("from streamtrain.arenas import one_arena; print(one_arena())")
    assert taken == str(platform.libc_ver()[0] == "glibc")


def test_prepare_leaves_a_process_with_tensorflow_alone(monkeypatch):
    import streamtrain.prepare as app

    calls = []
    monkeypatch.setattr(app, "one_arena", lambda: calls.append(1) or True)
    monkeypatch.setattr(app, "map_large", lambda: calls.append(2) or True)
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    monkeypatch.setattr("streamtrain.dataset.prepare.prepare", lambda *a, **k: "made")
    assert app.prepare(None) == "made" and calls == []
    monkeypatch.delitem(sys.modules, "tensorflow")
    assert app.prepare(None) == "made" and calls == [1, 2]


TRIM = """
import ctypes
import os
import numpy as np
from streamtrain.arenas import one_arena, trim
one_arena()
# M_MMAP_THRESHOLD at 32 MiB, where glibc's own threshold ends up in prepare: smaller arrays come from the heap.
ctypes.CDLL(None).mallopt(-3, 32 << 20)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
held = [np.ones(2 << 20, np.uint8) for _ in range(120)]
del held[::2]  # 60 of them, each between two that stay: freed inside the heap, none at its top
before = rss()
gave = trim()
print(gave, before - rss())
"""


def test_trim_gives_the_pages_of_freed_heap_memory_back():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        assert run("from streamtrain.arenas import trim; print(trim())") in ("False", "True")
        return
    gave, dropped = run(TRIM).split()
    assert gave == "True" and int(dropped) >= 100, (gave, dropped)  # 120 MiB freed inside the heap


MAP_LARGE = """
import os
import sys
import numpy as np
from streamtrain.arenas import map_large, one_arena
one_arena()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
big = np.ones(24 << 20, np.uint8)
del big  # glibc now serves up to 24 MiB from the heap (its threshold rises to a freed mapping's size) ...
taken = map_large() if sys.argv[1] == "map" else "untried"  # ... unless the threshold is fixed
held = [np.ones(17 << 19, np.uint8) for _ in range(40)]  # 8.5 MiB each
before = rss()
del held[::2]  # 20 of them, each between two that stay
print(taken, before - rss())
"""


def test_map_large_gives_a_large_array_back_as_it_is_freed():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        assert run("from streamtrain.arenas import map_large; print(map_large())") in ("False", "True")
        return
    argv = [sys.executable, "-c", MAP_LARGE]
    taken, dropped = subprocess.run([*argv, "map"], capture_output=True, text=True, check=True).stdout.split()
    assert taken == "True" and int(dropped) >= 160, (taken, dropped)  # 170 MiB freed, none kept by the heap
    _, kept = subprocess.run([*argv, "no"], capture_output=True, text=True, check=True).stdout.split()
    assert int(kept) < 160, kept  # without it, the heap kept freed pages (what the test tells apart)
