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
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    monkeypatch.setattr("streamtrain.dataset.prepare.prepare", lambda *a, **k: "made")
    assert app.prepare(None) == "made" and calls == []
    monkeypatch.delitem(sys.modules, "tensorflow")
    assert app.prepare(None) == "made" and calls == [1]


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
