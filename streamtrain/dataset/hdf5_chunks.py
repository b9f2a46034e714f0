"""Where an HDF5 shard's datasets lie in its file, and their elements read by offset (``ChunkMap``).

Who owns what: ``ChunkMap.of`` reads, once per shard, the file offset of every chunk of each dataset that
``shards.Hdf5ShardWriter`` makes (chunked along rows, a chunk as wide as the dataset, no filter);
``ChunkMap.read`` then returns rows ``[start, stop)`` of a dataset, each chunk's part read with one
``os.preadv`` into the array it returns, without h5py. A layout it cannot follow (a filter, a chunk narrower
than its dataset, a chunk missing or listed twice) gives None, and the shard is read through h5py as before.

The bytes are h5py's: an unfiltered chunk holds its rows as they are in memory, in the dataset's dtype, and
the chunk it stores at the end of a dataset is full size, so every row read lies inside a stored chunk.
The file is checked against the manifest (size and sha256) before it is first read (``batches.SplitSource``).

Why: docs/design/training-speed.md, "Reading a block".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Layout:
    """One dataset's chunks: their file offsets in row order, and the shape every chunk has."""

    offsets: np.ndarray  # int64: the file offset of chunk i, which holds rows [i * chunk_rows, (i + 1) * chunk_rows)
    chunk_rows: int
    row_shape: tuple[int, ...]  # () for a 1-D dataset, (width,) for a 2-D one
    dtype: np.dtype
    rows: int
    row_bytes: int  # bytes of one row: worked out once, not on each read (five reads a block)

    @classmethod
    def of(cls, ds: Any) -> Layout | None:
        """The layout of the open h5py dataset ``ds``; None where its chunks are not plain rows (see the module)."""
        import h5py

        plist = ds.id.get_create_plist()
        if plist.get_layout() != h5py.h5d.CHUNKED or plist.get_nfilters() != 0 or ds.ndim not in (1, 2):
            return None
        chunks, shape = tuple(ds.chunks), tuple(ds.shape)
        if chunks[1:] != shape[1:]:
            return None
        chunk_rows, n = chunks[0], ds.id.get_num_chunks()
        if n != -(-shape[0] // chunk_rows):
            return None
        offsets = np.full(n, -1, np.int64)
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * ds.dtype.itemsize
        chunk_bytes = chunk_rows * row_bytes
        for i in range(n):
            info = ds.id.get_chunk_info(i)
            index, rest = divmod(info.chunk_offset[0], chunk_rows)
            if rest or any(info.chunk_offset[1:]) or info.filter_mask or info.size != chunk_bytes:
                return None
            if not 0 <= index < n or offsets[index] >= 0:
                return None
            offsets[index] = info.byte_offset
        return cls(offsets, chunk_rows, shape[1:], ds.dtype, shape[0], row_bytes)

    def read(self, fd: int, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of the dataset, read from ``fd`` (the shard file).

        Raises:
            IndexError: the range is not within the dataset.
            OSError: the file is shorter than its chunks say, or the read fails.
        """
        if not 0 <= start <= stop <= self.rows:
            raise IndexError(f"rows {start}:{stop} of a dataset of {self.rows}")
        out = np.empty((stop - start, *self.row_shape), self.dtype)
        view, width = out.data.cast("B"), self.row_bytes
        done, row = 0, start
        while row < stop:
            chunk = row // self.chunk_rows
            end = min(stop, (chunk + 1) * self.chunk_rows)
            size = (end - row) * width
            at = int(self.offsets[chunk]) + (row - chunk * self.chunk_rows) * width
            if os.preadv(fd, [view[done : done + size]], at) != size:
                raise OSError(f"the file ends inside a chunk (offset {at}, {size} bytes)")
            done, row = done + size, end
        return out


@dataclass(frozen=True)
class ChunkMap:
    """The layouts of a shard's datasets, by name."""

    layouts: dict[str, Layout]

    @classmethod
    def of(cls, file: Any) -> ChunkMap | None:
        """The map of the open h5py ``file``; None where any dataset's layout is not plain rows."""
        layouts = {}
        for name in file:
            layout = Layout.of(file[name])
            if layout is None:
                return None
            layouts[name] = layout
        return cls(layouts)

    def read(self, fd: int, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of dataset ``name`` (``Layout.read``)."""
        return self.layouts[name].read(fd, start, stop)

    def rows(self, name: str) -> int:
        """Rows of dataset ``name``."""
        return self.layouts[name].rows
