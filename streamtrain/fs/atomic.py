"""Crash-safe outputs: a file or directory appears complete or not at all, and a crash leaves nothing behind for long.

- ``atomic_write_bytes``, ``atomic_write_text``: write beside the target,
  fsync, rename; a full or read-only file system raises ``errors.WriteError``
  naming the target.
- ``staging_dir``: a whole output directory built under a sibling
  ``NAME.partial-HOST-PID-RANDOM`` and renamed into place on success, removed
  on failure (an exception, or a signal the CLI turns into one). What a
  ``kill -9`` leaves is removed by the next ``staging_dir`` on the same target
  (``sweep_stale``: dead writers on this host only).
- ``check_target``: whether a target may be replaced at all (never a symlink,
  ``.``, a directory above the working directory or a mount point; a non-empty
  one only with ``overwrite`` and when streamtrain wrote it).

Rationale: docs/design/filesystem.md
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from streamtrain.errors import UsageError, writing

log = logging.getLogger(__name__)
_KINDS = ("partial", "old")


def umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``).

    Elsewhere it is set and restored, which another thread creating a file in between (the checkpoint writer,
    the plots drawn while the model is scored) would see as umask 0.

    Returns:
        The umask's permission bits.
    """
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host() -> str:
    """This host's name as it appears in staging names (no dashes or dots, so names parse back)."""
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """``atomic_write_bytes`` of ``text`` as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` beside ``path``, fsync it and rename it into place: a reader sees the old file or the new.

    Args:
        path: the file to write; its directory must exist.
        data: its new content.

    Raises:
        WriteError: a full or read-only file system, or permission denied, naming ``path``.
    """
    path = Path(path)
    with writing(path):  # a full or read-only file system: ``WriteError`` naming ``path``
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~umask())
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def check_target(target: str | os.PathLike[str], overwrite: bool, ours: Callable[[Path], bool] | None = None) -> None:
    """Refuse a ``target`` that may not be replaced, before any work.

    Args:
        target: the output path.
        overwrite: whether a non-empty target may be replaced.
        ours: recognises a directory streamtrain wrote; None: no non-empty target may be replaced.

    Raises:
        UsageError: ``target`` is a symlink (what it points at is not ours to delete), the working directory or one
            above it, or a mount point (a rename cannot replace one); or it is non-empty and ``overwrite`` is off
            or ``ours`` does not recognise it.
    """
    target = Path(target)
    if target.is_symlink():
        raise UsageError(
            f"{target} is a symbolic link: streamtrain does not replace what it points at; "
            "name the directory itself. Nothing was changed"
        )
    try:
        here = os.path.realpath(os.getcwd())
    except FileNotFoundError:  # the working directory was removed: nothing can be above it
        here = None
    if here is not None and os.path.realpath(target) in (here, *map(str, Path(here).parents)):
        raise UsageError(
            f"{target} is the working directory or a directory above it, which streamtrain never replaces; "
            "name a directory of its own. Nothing was changed"
        )
    if os.path.ismount(target):
        raise UsageError(
            f"{target} is a mount point: streamtrain builds a dataset beside its directory and renames it into "
            f"place, which a mount point cannot take; name a directory inside it (e.g. {target / 'data'}). "
            "Nothing was changed"
        )
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return
    if not overwrite:
        raise UsageError(f"{target} already exists and is not empty (use --overwrite to replace it)")
    if not target.is_dir() or ours is None or not ours(target):
        what = "a directory" if target.is_dir() else "a file"
        raise UsageError(
            f"{target} is {what} that streamtrain did not write: --overwrite replaces only what streamtrain "
            "made. Nothing was changed; move it away or choose another path"
        )


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Fsync a directory, so that the renames inside it survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is running (someone else's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def sweep_stale(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging and ``.old-`` siblings of ``target`` left by dead writers on this host.

    A ``.old-`` sibling whose writer died between moving ``target`` aside and moving the new one in is moved back
    into place first. A live writer's sibling, or another host's, is never touched.

    Args:
        target: the output path.

    Returns:
        The siblings removed.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(target.name)}\.({'|'.join(_KINDS)})-([A-Za-z0-9_]+)-(\d+)-")
    removed = []
    for sibling in sorted(target.parent.iterdir()):
        m = pattern.match(sibling.name)
        if m and m.group(2) == _host() and int(m.group(3)) != os.getpid() and not alive(int(m.group(3))):
            kept = sibling / target.name
            if m.group(1) == "old" and kept.exists() and not target.exists():
                os.replace(kept, target)  # killed between moving the old target aside and the new one in
                log.warning(f"restored {target} from {sibling}, left by process {m.group(3)} that is gone")
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
            log.info(f"removed {sibling}, left by process {m.group(3)} that is gone")
    return removed


def _sibling(target: Path, kind: str) -> Path:
    path = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{target.name}.{kind}-{_host()}-{os.getpid()}-"))
    path.chmod(0o777 & ~umask())
    return path


# Times the removal of a failed run's staging directory starts again after a signal's exception cut it short.
_REMOVE_TRIES = 5


def _remove_staged(target: Path) -> None:
    """Remove this process's staging directories beside ``target``, finishing even when a signal interrupts it.

    Its name carries this host and pid, so one that a signal caught half-made (after ``mkdtemp``, before
    ``staging_dir`` held its path) goes too. A second SIGTERM or Ctrl-C during the removal raises its
    exception inside ``shutil.rmtree``: the removal starts again (at most ``_REMOVE_TRIES`` times), and the
    exception already on its way out of ``staging_dir`` is the one raised.
    """
    mine = glob.escape(f"{target.name}.partial-{_host()}-{os.getpid()}-") + "*"
    for _ in range(_REMOVE_TRIES):
        try:
            for path in target.parent.glob(mine):
                shutil.rmtree(path, ignore_errors=True)
            return
        except BaseException:  # a signal's exception: finish the removal first
            continue


@contextlib.contextmanager
def staging_dir(
    target: str | os.PathLike[str],
    overwrite: bool = False,
    replacing: Callable[[], contextlib.AbstractContextManager] | None = None,
    ours: Callable[[Path], bool] | None = None,
) -> Iterator[Path]:
    """Yield an empty directory that replaces ``target`` when the block succeeds; removed when it fails.

    Args:
        target: the output directory.
        overwrite: as for ``check_target``, which runs first.
        replacing: entered around the swap of an existing ``target`` (a dataset waits there for its readers,
            ``fs.locks.no_readers``); if it raises, the staged directory is removed and ``target`` is untouched.
        ours: as for ``check_target``.

    Yields:
        The staging directory, a sibling of ``target``.

    Raises:
        UsageError: ``check_target`` refused ``target``.
    """
    target = Path(target)
    check_target(target, overwrite, ours)  # before anything: never sweep beside a symlink or the working directory
    sweep_stale(target)  # it may move a previous target back into place
    check_target(target, overwrite, ours)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        stage = _sibling(target, "partial")
        yield stage
        guard = replacing() if replacing is not None and target.exists() else contextlib.nullcontext()
        with guard:
            old = None
            if target.exists():
                old = _sibling(target, "old")
                os.replace(target, old / target.name)
            os.replace(stage, target)
    except BaseException:
        _remove_staged(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
