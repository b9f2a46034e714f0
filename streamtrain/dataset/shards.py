"""Shard files: HDF5 (CSR datasets) and Parquet (list columns), written and read in blocks.

Who owns what:
- ``ShardInfo`` (``shard_files``): what the manifest records of one finished shard.
- ``Hdf5ShardWriter`` / ``ParquetShardWriter`` (``parquet_shards``): append rows to a file under
  a temporary name; ``close`` renames it into place only once it is
  complete, so a crash never leaves a shard that looks finished. A full or
  read-only file system raises ``errors.WriteError`` naming the file.
- ``Hdf5ShardReader`` / ``ParquetShardReader`` (both through ``open_reader``): random
  access by block, the unit of shuffling. Files open lazily on first read,
  in the process that reads (h5py handles must not cross a fork).
- ``SplitWriter``: rolls a split's rows over a sequence of bounded shards.

Block ``b`` of a shard is rows ``[b * block_rows, (b + 1) * block_rows)``; in
Parquet it is exactly row group ``b``. HDF5 shards hold ``labels`` and
``row_ids`` plus the CSR datasets ``indptr``, ``indices``, ``values`` or
``tokens``; Parquet shards the columns ``label``, ``row_id`` plus
``indices`` and ``values`` lists or ``tokens`` (types: docs/reference.md).

Design (HDF5 built in memory, chunk sizes, no readahead) and measurements: docs/design/prepare.md; reading a
block by offset: docs/design/training-speed.md
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from streamtrain.dataset.hdf5_chunks import ChunkMap
from streamtrain.dataset.parquet_shards import ParquetShardReader, ParquetShardWriter
from streamtrain.dataset.shard_files import FORMATS as FORMATS  # re-exported: where callers find it
from streamtrain.dataset.shard_files import SUFFIX, TempFileWriter, no_readahead
from streamtrain.dataset.shard_files import ShardInfo as ShardInfo  # re-exported
from streamtrain.errors import writing
from streamtrain.vectorize.rows import Rows, SparseRows, TokenRows


class Hdf5ShardWriter(TempFileWriter):
    """One HDF5 shard, built in memory and written to disk by ``close`` with plain writes.

    HDF5 itself never writes to disk: a file whose write failed (ENOSPC) stays open inside the library, and
    closing it at exit crashed the process (docs/design/prepare.md).

    Args:
        root: the directory the shard goes to.
        name: its file name (``train-00000.h5``).
        split: the split it holds.
        encoding: ``"ngram"`` (CSR datasets) or ``"sequence"`` (``tokens``).
        n_cols: features per row (n-grams) or the sequence width.
        block_rows: rows per block.
    """

    def __init__(self, root: Path, name: str, split: str, encoding: str, n_cols: int, block_rows: int) -> None:
        import h5py

        super().__init__(root, name, split, block_rows)
        # In memory, grown 4 MiB at a time: the core driver's 64 KiB steps cost time in copies.
        self.file = h5py.File(self.tmp, "w", driver="core", backing_store=False, block_size=4 << 20)
        self.file.attrs.update({"encoding": encoding, "n_cols": n_cols, "block_rows": block_rows})
        # Element chunks of 16k bound how much a block's random read over-reads.
        rc, ec = max(block_rows, 1024), 1 << 14
        if encoding == "ngram":
            self.file.create_dataset("indptr", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(rc,))
            self._create("indices", np.int32, (ec,))
            self._create("values", np.float32, (ec,))
        else:
            self._create("tokens", np.int32, (block_rows, n_cols))
        self._create("labels", np.int32, (rc,))
        self._create("row_ids", np.int64, (rc,))

    def _create(self, name: str, dtype: Any, chunks: tuple[int, ...]) -> None:
        """An empty resizable dataset ``name`` of ``dtype``, chunked by ``chunks``."""
        shape = (0, *chunks[1:])
        self.file.create_dataset(name, shape=shape, dtype=dtype, maxshape=(None, *chunks[1:]), chunks=chunks)

    def _append(self, name: str, data: np.ndarray) -> None:
        """Grow dataset ``name`` by ``data``."""
        ds = self.file[name]
        start = ds.shape[0]
        ds.resize(start + len(data), axis=0)
        ds[start:] = data

    def write(self, rows: Rows) -> None:
        """Append ``rows`` (of the writer's encoding) to the shard.

        Args:
            rows: sparse TF-IDF rows or token rows.
        """
        if not len(rows):
            return
        if isinstance(rows, SparseRows):
            self._append("indptr", rows.indptr[1:] + self.nnz)
            self._append("indices", rows.indices)
            self._append("values", rows.values)
            self.nnz += rows.nnz
        else:
            self._append("tokens", rows.tokens)
        self._append("labels", rows.labels)
        self._append("row_ids", rows.row_ids)
        self.rows += len(rows)

    def close(self) -> ShardInfo:
        """Write the file image to disk under the temporary name, then rename it into place.

        Returns:
            The shard's record.

        Raises:
            WriteError: the file system is full or read-only.
        """
        import hashlib

        self.file.attrs["rows"] = self.rows
        self.file.flush()
        image = self.file.id.get_file_image()
        self.file.close()
        with writing(self.tmp), open(self.tmp, "wb") as fh:
            fh.write(image)
        return self._finish(hashlib.sha256(image).hexdigest())


class Hdf5ShardReader:
    """Reads an HDF5 shard by block; the file opens on first read, in the reading process.

    On first open the chunks' offsets are read (``hdf5_chunks.ChunkMap``) and h5py is closed: each block is
    then a few ``preadv`` calls on a plain file descriptor, and reopening after ``close`` is one ``open``. A
    shard whose layout the map cannot follow is read through h5py.

    Args:
        path: the shard file.
        encoding: ``"ngram"`` or ``"sequence"``.
        n_cols: features per row (n-grams) or the sequence width.
        block_rows: rows per block.
    """

    def __init__(self, path: str | os.PathLike, encoding: str, n_cols: int, block_rows: int) -> None:
        self.path, self.encoding, self.n_cols, self.block_rows = str(path), encoding, n_cols, block_rows
        self._file: Any = None  # h5py.File, open where the chunk map could not be made
        self._fd: int | None = None  # the file, open where it could
        self._map: ChunkMap | None = None  # kept across ``close``
        self._mapped = False  # whether the map was attempted

    def _open(self) -> None:
        """Open the file: by descriptor where the chunk map is (or can be) made, else through h5py."""
        if self._fd is not None or self._file is not None:
            return
        if self._map is None and not self._mapped:
            import h5py

            with h5py.File(self.path, "r") as f:
                self._map = ChunkMap.of(f)
            self._mapped = True
        if self._map is not None:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            no_readahead(self._fd)
        else:
            import h5py

            self._file = h5py.File(self.path, "r")
            no_readahead(self._file.id.get_vfd_handle())

    def _read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of dataset ``name``."""
        self._open()
        if self._fd is not None and self._map is not None:
            return self._map.read(self._fd, name, start, stop)
        return self._file[name][start:stop]

    @property
    def rows(self) -> int:
        """Rows in the shard."""
        self._open()
        if self._map is not None:
            return self._map.rows("labels")
        return int(self._file["labels"].shape[0])

    def read(self, start: int, stop: int) -> Rows:
        """Rows ``[start, stop)`` of the shard.

        Args:
            start: the first row.
            stop: one past the last row.

        Returns:
            ``SparseRows`` (indptr rebased to 0) or ``TokenRows``.
        """
        labels, row_ids = self._read("labels", start, stop), self._read("row_ids", start, stop)
        if self.encoding == "sequence":
            return TokenRows(self._read("tokens", start, stop), labels, row_ids)
        indptr = self._read("indptr", start, stop + 1)
        lo, hi = int(indptr[0]), int(indptr[-1])
        return SparseRows(
            indptr - lo, self._read("indices", lo, hi), self._read("values", lo, hi), labels, row_ids, self.n_cols
        )

    def read_block(self, block: int) -> Rows:
        """Block ``block`` of the shard (the last one may be short)."""
        start = block * self.block_rows
        return self.read(start, min(start + self.block_rows, self.rows))

    def close(self) -> None:
        """Close the file if open; a later read opens it again."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:
            self._file.close()
            self._file = None


_WRITERS: dict[str, type[Hdf5ShardWriter] | type[ParquetShardWriter]] = {
    "hdf5": Hdf5ShardWriter,
    "parquet": ParquetShardWriter,
}


_READERS: dict[str, type[Hdf5ShardReader] | type[ParquetShardReader]] = {
    "hdf5": Hdf5ShardReader,
    "parquet": ParquetShardReader,
}


def open_reader(
    fmt: str, path: str | os.PathLike, encoding: str, n_cols: int, block_rows: int
) -> Hdf5ShardReader | ParquetShardReader:
    """A reader of one shard of format ``fmt`` (one of ``FORMATS``; the other arguments: the reader's).

    Returns:
        An ``Hdf5ShardReader`` or a ``ParquetShardReader``; nothing is opened until its first read.
    """
    return _READERS[fmt](path, encoding, n_cols, block_rows)


class SplitWriter:
    """Writes one split as shards of at most ``shard_rows`` rows: ``{split}-00000.h5``, ...

    Args:
        root: the directory the shards go to.
        fmt: the shard format, one of ``FORMATS`` (``ValueError`` otherwise).
        split: the split's name, the files' prefix.
        encoding: ``"ngram"`` or ``"sequence"``.
        n_cols: features per row (n-grams) or the sequence width.
        shard_rows: rows per shard file.
        block_rows: rows per block.
    """

    def __init__(
        self, root: Path, fmt: str, split: str, encoding: str, n_cols: int, shard_rows: int, block_rows: int
    ) -> None:
        if fmt not in _WRITERS:
            raise ValueError(f"unknown shard format {fmt!r}")
        self.root, self.fmt, self.split, self.encoding = Path(root), fmt, split, encoding
        self.n_cols, self.shard_rows, self.block_rows = n_cols, shard_rows, block_rows
        self.done: list[ShardInfo] = []
        self.current: Hdf5ShardWriter | ParquetShardWriter | None = None

    def write(self, rows: Rows) -> None:
        """Append ``rows``, closing each shard as it fills and starting the next."""
        start = 0
        while start < len(rows):
            if self.current is None:
                name = f"{self.split}-{len(self.done):05d}{SUFFIX[self.fmt]}"
                self.current = _WRITERS[self.fmt](
                    self.root, name, self.split, self.encoding, self.n_cols, self.block_rows
                )
            room = self.shard_rows - self.current.rows - self.current.pending_rows
            take = min(room, len(rows) - start)
            self.current.write(rows.slice(start, start + take))
            start += take
            if take == room:
                self.done.append(self.current.close())
                self.current = None

    def close(self) -> list[ShardInfo]:
        """Close the last shard.

        Returns:
            The records of every shard written, in order.
        """
        if self.current is not None:
            self.done.append(self.current.close())
            self.current = None
        return self.done
