"""A small file system that a test fills up or makes read-only, for the disk-full and read-only tests.

``small_disk`` mounts a tmpfs of its own (the tests run as root in CI). Where
mounting is not permitted it falls back to ``RLIMIT_FSIZE`` on the command
under test, with ``SIGXFSZ`` ignored: every write past 64 KiB of one file then
fails with EFBIG, which streamtrain reports like ENOSPC (exit 74). A
read-only directory needs a read-only bind mount (``chmod`` does not stop
root): ``read_only`` skips where that cannot be made.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "streamtrain"
RLIMIT_BYTES = 64 << 10


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@dataclass
class Disk:
    root: Path
    mounted: bool  # a tmpfs of its own; else the command under test runs under RLIMIT_FSIZE

    def fill(self, leave: int) -> None:
        """Fill the tmpfs with a file of ours until ``leave`` bytes are free (nothing to do under the rlimit)."""
        if self.mounted:
            st = os.statvfs(self.root)
            free = st.f_bavail * st.f_frsize
            with open(self.root / f"filler-{uuid.uuid4().hex}", "wb") as fh:
                os.posix_fallocate(fh.fileno(), 0, max(free - leave, 1))

    def run(self, *args) -> subprocess.CompletedProcess:
        """``streamtrain ARGS`` on the full disk: as it is on the tmpfs, under ``RLIMIT_FSIZE`` otherwise."""

        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, no signal
            resource.setrlimit(resource.RLIMIT_FSIZE, (RLIMIT_BYTES, RLIMIT_BYTES))

        return subprocess.run(
            [str(BIN), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=600,
            preexec_fn=None if self.mounted else limit,
        )


@contextlib.contextmanager
def small_disk(where: Path, size: str = "40m") -> Iterator[Disk]:
    root = where / "disk"
    root.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root))
    try:
        yield Disk(root, mounted)
    finally:
        if mounted:
            _mount_off(root)


def _mount_off(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """``directory`` seen through a read-only bind mount (skips the test where one cannot be made)."""
    view = directory.parent / f"{directory.name}-ro"
    view.mkdir()
    if not _mount("--bind", str(directory), str(view)):
        pytest.skip("cannot bind-mount (not root?): a read-only directory needs a read-only mount")
    try:
        if not _mount("-o", "remount,ro,bind", str(view)):
            pytest.skip("cannot remount a bind mount read-only here")
        yield view
    finally:
        _mount_off(view)


def one_error_line(proc: subprocess.CompletedProcess, command: str) -> str:
    """The only line on stderr, which must be streamtrain's error line (no traceback, no 'Exception ignored')."""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"streamtrain {command}: error: "), proc.stderr[-3000:]
    return lines[0]


def siblings_left(directory: Path) -> list[str]:
    """Staging and moved-aside directories left beside or inside ``directory``."""
    names = [p.name for p in directory.parent.iterdir()] + (
        [p.name for p in directory.iterdir()] if directory.exists() else []
    )
    return [n for n in names if ".partial-" in n or ".old-" in n]
