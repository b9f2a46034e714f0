"""Immutable versions under one directory and an atomically switched ``current`` (``Versions``).

Layout of a versioned directory ``M``::

    M/versions/<id>/            a complete version: never changed again
    M/versions/<id>.training/   a version being built (fit's checkpoint lives here)
    M/current -> versions/<id>  a relative symlink, replaced by a rename

Ids are ``YYYYMMDDTHHMMSSZ-xxxx`` (UTC, 4 random hex digits), so names sort by
age. ``finish`` and ``promote`` are renames: a reader sees a version complete
or not at all, and ``current`` old or new, never neither. ``current`` is only
ever read as a version inside ``versions/`` (``link_problem``). Only the
holder of ``M``'s writer lock (``fs.locks``) may call ``begin``, ``finish``,
``promote``, ``prune`` or ``discard``; readers need no lock.

Rationale: docs/design/filesystem.md
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
import shutil
from pathlib import Path

from streamtrain.errors import DataError
from streamtrain.fs.atomic import fsync_dir

VERSIONS = "versions"
CURRENT = "current"
TRAINING = ".training"
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")


def new_id() -> str:
    """A new version id: the UTC time and 4 random hex digits (``20261121T190501Z-3f2a``)."""
    now = datetime.datetime.now(datetime.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


class Versions:
    """The versions of the versioned directory ``root``.

    Args:
        root: the model directory.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.dir = self.root / VERSIONS
        self.link = self.root / CURRENT

    def exists(self) -> bool:
        """Whether ``root`` is a versioned directory (it has ``versions/``)."""
        return self.dir.is_dir()

    def complete(self) -> list[str]:
        """Ids of complete versions, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if _ID.match(p.name) and p.is_dir())

    def training(self) -> list[Path]:
        """Directories of versions being built, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if p.name.endswith(TRAINING) and p.is_dir())

    def current(self) -> str | None:
        """The id ``current`` points at.

        Returns:
            The id; None before the first promotion, and when ``current`` does not point at a version inside
            ``versions/`` (``link_problem`` says so; ``path`` refuses it).
        """
        try:
            target = os.readlink(self.link)
        except OSError:
            return None
        return self._version_at(target)

    def link_problem(self) -> str | None:
        """What is wrong with ``current``, in one line.

        Returns:
            Why ``current`` is not a symlink to ``versions/<id>`` of this directory (a link elsewhere whose last
            component names a version included); None when it is absent or right.
        """
        if not os.path.lexists(self.link):
            return None
        try:
            target = os.readlink(self.link)
        except OSError:
            return f"{CURRENT}: not a symbolic link to a version"
        if self._version_at(target) is None:
            return f"{CURRENT}: points at {target}, which is not a version inside {self.dir}"
        return None

    def _version_at(self, target: str) -> str | None:
        """The id of the version ``target`` (a link's text, relative to ``root``) names, if it is in ``dir``."""
        path = os.path.normpath(os.path.join(os.path.abspath(self.root), target))
        parent, name = os.path.split(path)
        if not _ID.match(name):
            return None
        inside = parent == os.path.normpath(os.path.abspath(self.dir))
        return name if inside or os.path.realpath(parent) == os.path.realpath(self.dir) else None

    def path(self, version: str | None = None) -> Path:
        """The directory of a complete version.

        Args:
            version: its id; None: ``current``'s.

        Returns:
            ``versions/<id>``.

        Raises:
            DataError: no version was promoted yet, ``current`` is wrong, ``version`` is not an id, or no complete
                version has it.
        """
        if version is None:
            version = self.current()
            if version is None and (problem := self.link_problem()) is not None:
                raise DataError(
                    f"{problem}: refusing to read it; point it at a version again or remove it", str(self.root)
                )
            if version is None:
                raise DataError(
                    "no current model: no version has been promoted yet (fit has not finished, or the promotion "
                    "guard rejected every version; see versions/*/promotion.json)",
                    str(self.root),
                )
        if not _ID.match(version):
            raise DataError(f"not a version id: {version!r} (ids look like 20261121T190501Z-3f2a)", str(self.root))
        path = self.dir / version
        if not path.is_dir():
            building = " (it is still being trained)" if (self.dir / (version + TRAINING)).is_dir() else ""
            raise DataError(f"no complete version {version}{building}", str(self.dir))
        return path

    def begin(self, version: str) -> Path:
        """Create ``versions/<version>.training`` (it must not exist) and return it."""
        path = self.dir / (version + TRAINING)
        path.mkdir(parents=True)
        return path

    def finish(self, building: Path) -> Path:
        """Rename a built version into place: from here on it is complete and immutable.

        Args:
            building: its ``<id>.training`` directory.

        Returns:
            The version's final directory.
        """
        final = self.dir / building.name.removesuffix(TRAINING)
        os.replace(building, final)
        fsync_dir(self.dir)
        return final

    def promote(self, version: str) -> str | None:
        """Point ``current`` at ``version`` atomically (a new symlink renamed over it, fsynced).

        Args:
            version: a complete version's id.

        Returns:
            The id ``current`` pointed at before, or None.

        Raises:
            DataError: ``version`` is not a complete version.
        """
        self.path(version)  # must be complete
        before = self.current()
        tmp = self.root / f".{CURRENT}.{os.getpid()}.tmp"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(f"{VERSIONS}/{version}", tmp)
        os.replace(tmp, self.link)
        fsync_dir(self.root)
        return before

    def prune(self, keep: int, protect: tuple[str | None, ...] = ()) -> list[str]:
        """Remove the oldest complete versions beyond the newest ``keep``; never ``current`` or ``protect``.

        Args:
            keep: how many of the newest complete versions stay.
            protect: ids never removed (fit passes the version ``current`` replaced, which a reader that resolved
                ``current`` just before the switch may still be reading).

        Returns:
            The ids removed.
        """
        spare = {self.current(), *protect}
        versions = self.complete()
        removed = []
        for version in versions[: max(len(versions) - keep, 0)]:
            if version not in spare:
                shutil.rmtree(self.dir / version, ignore_errors=True)
                removed.append(version)
        return removed

    def discard(self, building: Path) -> None:
        """Remove a version being built (a failed fit's ``<id>.training``)."""
        shutil.rmtree(building, ignore_errors=True)
