"""What every shard file shares, whatever its format.

Its manifest record (``ShardInfo``), the write-then-rename of a finished file (``TempFileWriter``) and the
random-access hint to the kernel (``no_readahead``); the formats in ``shards`` and ``parquet_shards`` build on
these.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from streamtrain.errors import writing
from streamtrain.fs.checksums import sha256_file

FORMATS = ("hdf5", "parquet")
SUFFIX = {"hdf5": ".h5", "parquet": ".parquet"}


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records of one finished shard file."""

    path: str  # relative to the dataset directory
    split: str
    rows: int
    nnz: int
    bytes: int
    sha256: str
    block_rows: int

    @property
    def blocks(self) -> int:
        """Blocks of the shard: ``rows / block_rows``, rounded up."""
        return -(-self.rows // self.block_rows)

    def to_json(self) -> dict:
        """The manifest's entry (under ``shards``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict) -> ShardInfo:
        """The record ``to_json`` wrote."""
        return cls(**doc)


class TempFileWriter:
    """Common close-and-rename logic."""

    def __init__(self, root: Path, name: str, split: str, block_rows: int) -> None:
        self.root, self.name, self.split, self.block_rows = Path(root), name, split, block_rows
        self.final = self.root / name
        self.tmp = self.root / (name + ".tmp")
        self.rows = 0  # rows written to the file
        self.nnz = 0
        self.pending_rows = 0  # rows accepted but not yet written

    def _finish(self, digest: str | None = None) -> ShardInfo:
        """Fsync the temporary file, rename it into place; its record (``digest``: its sha256 when known)."""
        with writing(self.tmp):
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            digest = digest or sha256_file(self.tmp)
            size = self.tmp.stat().st_size
            os.replace(self.tmp, self.final)
        return ShardInfo(self.name, self.split, self.rows, self.nnz, size, digest, self.block_rows)


def no_readahead(fd: int) -> None:
    """Tell the kernel a shard is read at random: blocks come in a shuffled order.

    Without it, every block read can pull in a whole readahead window that is
    evicted unused when the page cache is small, i.e. exactly when the data
    outgrow RAM.
    """
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):  # a file system without fadvise still reads correctly
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
