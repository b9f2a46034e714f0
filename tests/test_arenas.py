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
