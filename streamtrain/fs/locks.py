"""Locks between runs on one dataset or model directory: ``flock`` on small files beside it, released by the kernel.

A lock is a file ``.NAME.KIND.lock`` beside the directory ``NAME``
(``lock_path``); the kernel releases it when its process dies, however it
dies, so a lock is never stale. Local file systems only (NFS emulates
``flock``). ``writer_lock`` (exclusive): every writer of a dataset or model
directory; the holder's PID, host, start time and command go into the file,
for a second writer's ``Busy`` (exit 75). ``reader_lock`` (shared): every run
reading a dataset's shards; ``no_readers`` takes that lock exclusively around
the replacement of a dataset. ``wait`` is how many seconds to keep trying
before ``Busy`` (0: fail at once): nothing here blocks without a deadline. A
lock path that is a symlink, a hard link or not a regular file is refused by
name; a reader that may not create its lock file reads without it.

Rationale: docs/design/filesystem.md
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from streamtrain.errors import Busy, UsageError, write_error

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
# Readers wait at least this long: a replacement holds the read lock only for the moment of its rename.
READER_WAIT_SECONDS = 60.0


def lock_path(target: str | os.PathLike[str], kind: str) -> Path:
    """The lock file of ``kind`` ("write" or "read") for directory ``target``: ``.NAME.KIND.lock`` beside it."""
    target = Path(os.path.abspath(target))
    return target.parent / f".{target.name}.{kind}.lock"


def lock_holders(path: Path) -> list[int]:
    """PIDs holding a ``flock`` on ``path`` (Linux ``/proc/locks``; empty where it does not exist)."""
    try:
        st = path.stat()
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    for line in lines:
        fields = line.split()
        if "FLOCK" in fields and device in fields and "->" not in fields:
            pids.append(int(fields[fields.index(device) - 1]))
    return sorted(set(pids))


def _holder_text(path: Path) -> str:
    """Who holds the lock: the holder's own record, else the PIDs the kernel knows."""
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(path.read_text(encoding="utf-8"))
        return f"PID {doc['pid']} on {doc['host']}, running since {doc['started']} ({doc['command']})"
    pids = lock_holders(path)
    return "PID " + ", ".join(map(str, pids)) if pids else "another process"


def _open_lock_file(path: Path) -> int:
    """A descriptor of the lock file ``path``, never truncated here.

    Created with ``O_EXCL`` when new, else the existing one opened with ``O_NOFOLLOW`` (a symlink: ``ELOOP``),
    without blocking (a FIFO put there).
    """
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    while True:
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            pass
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            continue  # removed between the two opens: create it again


def _require_own_file(fd: int, path: Path, what: str) -> None:
    """``UsageError`` (the descriptor closed) unless ``fd`` is a regular file with one link.

    That is a lock file streamtrain made, not a device, FIFO or hard link to someone's file that the holder's
    record would overwrite.
    """
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
        return
    os.close(fd)
    kind = "a hard link to another file" if stat.S_ISREG(st.st_mode) else "not a regular file"
    raise UsageError(f"the lock file of {what} is {kind}: {path} (remove it; nothing was changed)")


class FileLock:
    """One ``flock`` on ``path``: ``with FileLock(...).acquire(wait):`` ... released on exit or process death.

    Args:
        path: the lock file.
        what: what it guards, for messages ("dataset data/").
        shared: a shared (reader's) lock rather than an exclusive one.
    """

    def __init__(self, path: str | os.PathLike[str], what: str, shared: bool = False):
        self.path, self.what, self.shared = Path(path), what, shared
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0) -> FileLock:
        """Take the lock, polling until ``wait`` seconds have passed; an exclusive holder records itself in the file.

        A shared lock whose file may not be created (permission denied, a read-only file system) is skipped with a
        warning: whoever may not create it cannot replace the dataset either.

        Args:
            wait: seconds to keep trying; 0 fails at once.

        Returns:
            This lock, held (or, as above, skipped).

        Raises:
            Busy: another process holds it after ``wait``, named in the message.
            UsageError: the lock file is a symlink, a hard link or not a regular file, or cannot be created for
                another reason than those below.
            WriteError: the lock file cannot be created: a read-only or full file system, permission denied.
        """
        fd = self._open()
        if fd is None:
            return self
        _require_own_file(fd, self.path, self.what)
        self._take(fd, wait)
        self._fd = fd
        if not self.shared:
            _record_holder(fd)
        return self

    def _open(self) -> int | None:
        """The lock file's descriptor; None for a shared lock whose file may not be created (see ``acquire``)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return _open_lock_file(self.path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UsageError(
                    f"the lock file of {self.what} is a symbolic link, which streamtrain does not follow: "
                    f"{self.path} (remove it; nothing was changed)"
                ) from exc
            if self.shared and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                # A reader of a dataset it may not write beside (a read-only mount, another user's directory):
                # whoever may not create the lock file cannot replace the dataset either; read without the lock.
                log.warning(f"reading {self.what} without its read lock: cannot create {self.path}: {exc.strerror}")
                return None
            typed = write_error(exc, self.path)
            if typed is not None:  # a read-only or full file system, permission denied: 73 or 74, not a usage error
                raise type(typed)(self.path, f"{exc.strerror} (the lock file of {self.what})") from exc
            raise UsageError(f"cannot create the lock file of {self.what}: {self.path}: {exc.strerror}") from exc

    def _take(self, fd: int, wait: float) -> None:
        """Lock ``fd`` (flock), polling until ``wait`` seconds have passed; then ``Busy``, with ``fd`` closed."""
        deadline = time.monotonic() + max(wait, 0.0)
        mode = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, mode)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder_text(self.path)
                    os.close(fd)
                    waited = f" after waiting {wait:g} s" if wait > 0 else ""
                    raise Busy(
                        f"{self.what} is locked by {holder}{waited}; nothing was changed. "
                        f"Try again later, or pass --wait SECONDS (lock file {self.path})"
                    ) from None
                time.sleep(POLL_SECONDS)

    def release(self) -> None:
        """Release the lock (an exclusive holder's record is cleared first); nothing when not held."""
        if self._fd is not None:
            if not self.shared:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def __enter__(self) -> FileLock:
        if self._fd is None:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def writer_lock(target: str | os.PathLike[str], what: str, wait: float = 0.0) -> FileLock:
    """The exclusive writer lock of a dataset or model directory, acquired.

    Args:
        target: the directory.
        what: what it is, for messages ("dataset", "model directory").
        wait: seconds to wait for another writer; 0 fails at once.

    Returns:
        The held lock (release it, or use it as a context manager).

    Raises:
        Busy: another writer holds it after ``wait``.
    """
    return FileLock(lock_path(target, "write"), f"{what} {target}").acquire(wait)


def reader_lock(target: str | os.PathLike[str], wait: float = 0.0) -> FileLock:
    """A shared lock that keeps a dataset from being replaced while this process reads its shards.

    Args:
        target: the dataset directory.
        wait: seconds to wait; at least ``READER_WAIT_SECONDS``, as only a replacement's rename holds it
            exclusively.

    Returns:
        The held lock (or, when its file may not be created, a lock not held, with a warning).

    Raises:
        Busy: a replacement held it throughout.
    """
    return FileLock(lock_path(target, "read"), f"dataset {target}", shared=True).acquire(max(wait, READER_WAIT_SECONDS))


@contextlib.contextmanager
def no_readers(target: str | os.PathLike[str], wait: float = 0.0) -> Iterator[None]:
    """Held around replacing a dataset: no fit or evaluate reads it meanwhile.

    Args:
        target: the dataset directory.
        wait: seconds to wait for its readers.

    Raises:
        Busy: readers still held it after ``wait``, named by PID where the kernel says.
    """
    lock = FileLock(lock_path(target, "read"), f"dataset {target} (being read by a fit or evaluate)")
    try:
        lock.acquire(wait)
    except Busy as exc:
        pids = lock_holders(lock.path)
        readers = f"PID {', '.join(map(str, pids))}" if pids else "a running fit or evaluate"
        raise Busy(
            f"cannot replace dataset {target}: it is being read by {readers}; nothing was changed. "
            "Try again when it ends, or pass --wait SECONDS"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _record_holder(fd: int) -> None:
    """Write who holds an exclusive lock (pid, host, start, command) into its file, for another run's ``Busy``."""
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
