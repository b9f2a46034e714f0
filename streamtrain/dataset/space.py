"""How much disk a prepare needs, estimated from its inputs' sizes, checked before any work (``check``).

prepare builds its scratch (the n-gram spill, the shuffle buckets) and its
shards in a staging directory on the file system of ``--data``. ``need``
estimates that from the inputs' bytes on disk: ``TYPICAL`` times them at
the peak, as usually measured. ``check`` refuses (``CannotCreate``, exit 73,
before any work) only when the free space is clearly too little: less than
``FLOOR`` times the inputs' bytes, since sequences cut to ``--max-length``
and compressed inputs can need far less than typical; below ``TYPICAL`` it
says so at info level. An append is not checked: which of its inputs are
read is decided by the append itself. Running out later still ends in one
line (``OutOfSpace``, exit 74) and no partial dataset.

Measurements behind ``TYPICAL`` and ``FLOOR``: docs/design/prepare.md
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from streamtrain.errors import CannotCreate
from streamtrain.io.readers import input_bytes

log = logging.getLogger(__name__)

TYPICAL = 3.0  # scratch and shards at their peak, times the inputs' bytes, as usually measured
FLOOR = 1 / 8  # refused below this share of the inputs' bytes free: far under the least measured


@dataclass(frozen=True)
class SpaceNeed:
    """What a prepare of ``input_bytes`` needs on the file system of ``where``, and what it has."""

    where: Path  # the directory whose file system holds the staging directory
    input_bytes: int
    free_bytes: int

    @property
    def typical(self) -> int:
        """Bytes a prepare of these inputs usually needs at its peak."""
        return int(self.input_bytes * TYPICAL)

    @property
    def least(self) -> int:
        """Bytes below which a prepare of these inputs is refused."""
        return int(self.input_bytes * FLOOR)


def existing_parent(path: str | os.PathLike[str]) -> Path:
    """Where a path's file system is: ``path`` itself when it exists, else its nearest existing ancestor.

    Args:
        path: the ``--data`` directory, which prepare will create if missing.

    Returns:
        That directory, absolute.
    """
    where = Path(os.path.abspath(path))
    while not where.exists() and where.parent != where:
        where = where.parent
    return where


def need(data: str, inputs: list[str]) -> SpaceNeed:
    """What a prepare of ``inputs`` into ``data`` needs and has.

    Args:
        data: the ``--data`` directory.
        inputs: every input path (``io.readers.input_bytes`` sizes each).

    Returns:
        The inputs' bytes and the free bytes of ``data``'s file system (for an unprivileged user).
    """
    where = existing_parent(data)
    st = os.statvfs(where)
    return SpaceNeed(where, sum(input_bytes(p) for p in inputs), st.f_bavail * st.f_frsize)


def _size(n: int) -> str:
    """``n`` bytes in KiB, MiB or GiB, whichever keeps the number readable."""
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):,.1f} {unit}"
    return f"{n / 1024:,.0f} KiB"


def check(data: str, inputs: list[str]) -> None:
    """Refuse a prepare (not an append) whose ``--data`` file system clearly lacks the space it will need.

    Args:
        data: the ``--data`` directory.
        inputs: every input path.

    Raises:
        CannotCreate: less than ``FLOOR`` times the inputs' bytes is free (exit 73).
    """
    space = need(data, inputs)
    if space.free_bytes < space.least:
        raise CannotCreate(
            data,
            f"too little free space: prepare needs about {_size(space.typical)} of scratch and shards for "
            f"{_size(space.input_bytes)} of inputs and cannot finish in less than {_size(space.least)}; "
            f"{space.where} has {_size(space.free_bytes)} free",
        )
    if space.free_bytes < space.typical:  # info, not a warning: a run that then fails says so in its one line
        log.info(
            f"{space.where} has {_size(space.free_bytes)} free; prepare usually needs about {_size(space.typical)} "
            f"for {_size(space.input_bytes)} of inputs and may run out"
        )
