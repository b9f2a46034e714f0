"""fs.locks with real processes: a held lock names its holder, dies with it, and never blocks past ``wait``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from streamtrain.errors import Busy
from streamtrain.fs.locks import lock_holders, lock_path, no_readers, reader_lock, writer_lock

HOLD = """
import sys, time
from streamtrain.fs.locks import reader_lock, writer_lock
kind, target = sys.argv[1], sys.argv[2]
lock = writer_lock(target, "dataset") if kind == "write" else reader_lock(target)
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def _holder(kind: str, target, seconds: float = 60.0) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, kind, str(target), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_is_told_who_holds_the_lock_and_kill_9_frees_it(tmp_path):
    target = tmp_path / "data"
    proc = _holder("write", target)
    try:
        with pytest.raises(Busy) as err:
            writer_lock(target, "dataset")  # wait 0: fails at once, never blocks
        message = str(err.value)
        assert f"PID {proc.pid} on " in message and "running since" in message and str(target) in message
        assert err.value.exit_code == 75
        assert lock_holders(lock_path(target, "write")) == [proc.pid]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    writer_lock(target, "dataset").release()  # the kernel released the dead holder's lock


def test_wait_waits_for_the_holder_then_gives_up_at_its_deadline(tmp_path):
    target = tmp_path / "data"
    proc = _holder("write", target, seconds=1.0)
    lock = writer_lock(target, "dataset", wait=30)  # the holder exits after 1 s
    lock.release()
    proc.wait()
    proc = _holder("write", target)
    try:
        started = time.monotonic()
        with pytest.raises(Busy, match=r"after waiting 0\.5 s"):
            writer_lock(target, "dataset", wait=0.5)
        assert time.monotonic() - started >= 0.5  # it did wait for its deadline before giving up
    finally:
        proc.kill()
        proc.wait()


def test_readers_share_and_keep_a_replacement_out(tmp_path):
    target = tmp_path / "data"
    proc = _holder("read", target)
    try:
        reader_lock(target).release()  # readers share
        with pytest.raises(Busy, match=f"being read by PID {proc.pid}"), no_readers(target):
            pass
        writer_lock(target, "dataset").release()  # an appender is not a replacement: readers do not stop it
    finally:
        proc.kill()
        proc.wait()
    with no_readers(target):
        assert os.path.exists(lock_path(target, "read"))


def test_a_reader_that_cannot_create_the_lock_file_reads_without_it_a_writer_is_told(tmp_path, monkeypatch, caplog):
    import errno as errnos

    from streamtrain.errors import CannotCreate
    from streamtrain.fs import locks

    def refused(path, *args, **kwargs):
        raise OSError(errnos.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(locks.os, "open", refused)  # as on a read-only mount (root ignores file modes)
    with caplog.at_level("WARNING"):
        lock = reader_lock(tmp_path / "data")
    assert not lock.held and "without its read lock" in caplog.text and "Read-only file system" in caplog.text
    with pytest.raises(CannotCreate, match=r"Read-only file system \(the lock file of dataset .*\)"):  # exit 73
        writer_lock(tmp_path / "data", "dataset")


@pytest.mark.parametrize("kind", ["write", "read"])
def test_a_lock_path_that_is_a_symlink_is_refused_and_its_target_keeps_its_bytes(tmp_path, kind):
    from streamtrain.errors import UsageError

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"a user's own file\n")
    lock_path(tmp_path / "data", kind).symlink_to(victim)
    with pytest.raises(UsageError, match="is a symbolic link") as err:
        writer_lock(tmp_path / "data", "dataset") if kind == "write" else reader_lock(tmp_path / "data")
    assert str(lock_path(tmp_path / "data", kind)) in str(err.value) and err.value.exit_code == 2
    assert victim.read_bytes() == b"a user's own file\n"


def test_a_lock_path_that_is_a_hard_link_or_a_fifo_is_refused_at_once(tmp_path):
    from streamtrain.errors import UsageError

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"a user's own file\n")
    os.link(victim, lock_path(tmp_path / "data", "write"))
    with pytest.raises(UsageError, match="is a hard link to another file"):
        writer_lock(tmp_path / "data", "dataset")
    assert victim.read_bytes() == b"a user's own file\n"
    os.mkfifo(lock_path(tmp_path / "other", "write"))
    with pytest.raises(UsageError, match="is not a regular file"):
        writer_lock(tmp_path / "other", "dataset")  # opened without blocking, refused


def test_a_new_lock_file_is_created_and_an_existing_one_reused(tmp_path):
    lock = writer_lock(tmp_path / "data", "dataset")
    inode = os.stat(lock.path).st_ino
    lock.release()
    writer_lock(tmp_path / "data", "dataset").release()
    assert os.stat(lock.path).st_ino == inode
