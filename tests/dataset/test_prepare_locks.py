"""prepare holds the dataset's writer lock, and replaces a dataset only when no fit or evaluate is reading it.

Real ``streamtrain`` processes. The first prepare is held inside its run by
an input that is a named pipe: it hashes its inputs under the lock, and a
pipe nobody writes to keeps it there for as long as the test needs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEMO_TEST
from helpers import BIN, prepare_csv, streamtrain

from streamtrain.fs.checksums import sha256_file
from streamtrain.fs.locks import lock_path

HOLD_READ = """
import sys, time
from streamtrain.fs.locks import reader_lock
lock = reader_lock(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _holding(lock: Path, pid: int) -> bool:
    try:
        return json.loads(lock.read_text())["pid"] == pid
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture
def reader(tmp_path):
    """Start a process holding ``reader_lock(target)`` (what fit and evaluate take); killed at the end."""
    procs: list[subprocess.Popen] = []

    def start(target: Path, seconds: float = 60.0) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_READ, str(target), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_second_prepare_exits_75_at_once_naming_the_first(tmp_path):
    data, pipe = tmp_path / "data", tmp_path / "slow.csv"
    os.mkfifo(pipe)
    first = subprocess.Popen([str(BIN), "prepare", pipe, "--data", data], stderr=subprocess.PIPE, text=True)
    try:
        _until(lambda: _holding(lock_path(data, "write"), first.pid))
        for extra in ([], ["--append"], ["--wait", "0.5"]):
            second = streamtrain("prepare", DEMO_TEST, "--data", data, *extra)
            assert second.returncode == 75, second.stderr
            assert f"dataset {data} is locked by PID {first.pid} on " in second.stderr
            assert "nothing was changed" in second.stderr and "[prepare] read " not in second.stderr
            if extra == ["--wait", "0.5"]:
                assert "after waiting 0.5 s" in second.stderr
        assert first.poll() is None  # still running, still holding
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
    assert first.returncode == 143, err
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["slow.csv"]
    assert streamtrain("prepare", DEMO_TEST, "--data", data, "--hash-buckets", "4096").returncode == 0  # lock freed


def test_replacing_a_dataset_that_is_being_read_exits_75_and_changes_nothing(tmp_path, reader):
    data = prepare_csv(DEMO_TEST, tmp_path / "data", hash_buckets=1 << 12)
    before = files(data)
    holder = reader(data)
    for mode in (["--overwrite"], ["--refit"], ["--overwrite", "--wait", "1"]):
        inputs = [DEMO_TEST, "--hash-buckets", 4096] if "--overwrite" in mode else []
        proc = streamtrain("prepare", *inputs, "--data", data, *mode)
        assert proc.returncode == 75, proc.stderr
        assert f"cannot replace dataset {data}: it is being read by PID {holder.pid}" in proc.stderr
        if "--wait" not in mode:  # fails before the work: no prepare log lines at all
            assert "[prepare] read " not in proc.stderr
        else:  # did the work, then waited 1 s for the reader at the swap
            assert "[prepare] read " in proc.stderr
        assert files(data) == before
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["data"]
    appended = streamtrain("prepare", "--append", DEMO_TEST.parent / "tickets_train.csv", "--data", data)
    assert appended.returncode == 0, appended.stderr  # an append adds files: readers do not stop it
    holder.kill()
    holder.wait()
    assert streamtrain("prepare", DEMO_TEST, "--data", data, "--overwrite", "--hash-buckets", 4096).returncode == 0


def test_a_replacement_waits_for_a_reader_that_ends(tmp_path, reader):
    data = prepare_csv(DEMO_TEST, tmp_path / "data", hash_buckets=1 << 12)
    holder = reader(data, seconds=2.0)
    proc = streamtrain("prepare", DEMO_TEST, "--data", data, "--overwrite", "--wait", "60", "--hash-buckets", 4096)
    assert proc.returncode == 0, proc.stderr
    assert holder.wait(timeout=30) == 0


def test_prepare_and_fit_refuse_a_lock_file_that_is_a_symlink_and_leave_its_target_alone(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"thesis draft\n")
    data, model = tmp_path / "data", tmp_path / "model"
    (tmp_path / ".data.write.lock").symlink_to(victim.name)  # relative, as `ln -s victim.txt .data.write.lock`
    proc = streamtrain("prepare", DEMO_TEST, "--data", data)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "symbolic link" in lines[0] and ".data.write.lock" in lines[0], proc.stderr
    assert victim.read_bytes() == b"thesis draft\n" and not data.exists()

    (tmp_path / ".data.write.lock").unlink()
    prepare_csv(DEMO_TEST, data)
    (tmp_path / ".model.write.lock").symlink_to(victim.name)
    proc = streamtrain("fit", "--data", data, "--model-dir", model, "--epochs", "1")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "symbolic link" in lines[0] and ".model.write.lock" in lines[0], proc.stderr
    assert victim.read_bytes() == b"thesis draft\n" and not model.exists()
