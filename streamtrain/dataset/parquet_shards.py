"""Parquet shard files, written and read by block (one row group per block).

``ParquetShardWriter`` writes under a temporary name and renames the file when complete;
``ParquetShardReader`` reads by row group. ``shards`` holds the HDF5 format, ``open_reader`` and
``SplitWriter``; the columns are described in docs/reference.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from streamtrain.dataset.shard_files import ShardInfo, TempFileWriter, no_readahead
from streamtrain.errors import writing
from streamtrain.vectorize.rows import Rows, SparseRows, TokenRows, concat_rows


class ParquetShardWriter(TempFileWriter):
    """One Parquet shard: a row group per block, written as the blocks fill (arguments: ``Hdf5ShardWriter``'s)."""

    def __init__(self, root: Path, name: str, split: str, encoding: str, n_cols: int, block_rows: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        super().__init__(root, name, split, block_rows)
        if encoding == "ngram":
            fields = [("indices", pa.list_(pa.int32())), ("values", pa.list_(pa.float32()))]
        else:
            fields = [("tokens", pa.list_(pa.int32(), n_cols))]
        self.schema = pa.schema(
            [*fields, ("label", pa.int32()), ("row_id", pa.int64())],
            metadata={
                b"encoding": encoding.encode(),
                b"n_cols": str(n_cols).encode(),
                b"block_rows": str(block_rows).encode(),
            },
        )
        with writing(self.tmp):
            self.writer = pq.ParquetWriter(self.tmp, self.schema, use_dictionary=False, compression="snappy")
        self.pending: list[Rows] = []

    def write(self, rows: Rows) -> None:
        """Append ``rows``; every full block is written as a row group.

        Args:
            rows: sparse TF-IDF rows or token rows.
        """
        self.pending.append(rows)
        self.pending_rows += len(rows)
        if self.pending_rows >= self.block_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        """Write the pending rows' full blocks (``final``: all of them) as row groups."""
        rows = concat_rows(self.pending) if self.pending else None
        self.pending, self.pending_rows = [], 0
        if rows is None:
            return
        full = len(rows) if final else len(rows) - len(rows) % self.block_rows
        for start in range(0, full, self.block_rows):
            self._write_group(rows.slice(start, min(start + self.block_rows, full)))
        if full < len(rows):
            rest = rows.slice(full, len(rows))
            self.pending, self.pending_rows = [rest], len(rest)

    def _write_group(self, rows: Rows) -> None:
        """Write ``rows`` as one row group."""
        import pyarrow as pa

        if isinstance(rows, SparseRows):
            offsets = pa.array(rows.indptr.astype(np.int32))
            columns = [
                pa.ListArray.from_arrays(offsets, pa.array(rows.indices, pa.int32())),
                pa.ListArray.from_arrays(offsets, pa.array(rows.values, pa.float32())),
            ]
            self.nnz += rows.nnz
        else:
            flat = pa.array(np.ascontiguousarray(rows.tokens).reshape(-1), pa.int32())
            columns = [pa.FixedSizeListArray.from_arrays(flat, rows.n_cols)]
        columns += [pa.array(rows.labels, pa.int32()), pa.array(rows.row_ids, pa.int64())]
        with writing(self.tmp):
            self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema), row_group_size=len(rows))
        self.rows += len(rows)

    def close(self) -> ShardInfo:
        """Write the last block, close the file and rename it into place.

        Returns:
            The shard's record.

        Raises:
            WriteError: the file system is full or read-only.
        """
        self._flush(final=True)
        with writing(self.tmp):
            self.writer.close()
        return self._finish()


class ParquetShardReader:
    """Reads a Parquet shard by block (a row group); the file opens on first read (arguments: ``Hdf5ShardReader``'s)."""

    def __init__(self, path: str | os.PathLike, encoding: str, n_cols: int, block_rows: int) -> None:
        self.path, self.encoding, self.n_cols, self.block_rows = str(path), encoding, n_cols, block_rows
        self._file: Any = None  # pyarrow.parquet.ParquetFile once opened
        self._source: Any = None  # its pyarrow.OSFile

    @property
    def file(self) -> Any:
        """The open ``pyarrow.parquet.ParquetFile``, opened now if it was not (with random-access advice)."""
        if self._file is None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._source = pa.OSFile(self.path)
            no_readahead(self._source.fileno())
            self._file = pq.ParquetFile(self._source)
        return self._file

    @property
    def rows(self) -> int:
        """Rows in the shard."""
        return int(self.file.metadata.num_rows)

    def read_block(self, block: int) -> Rows:
        """Block ``block`` of the shard: row group ``block``, as ``SparseRows`` or ``TokenRows``."""
        table = self.file.read_row_group(block)
        labels, row_ids = table.column("label").to_numpy(), table.column("row_id").to_numpy()
        if self.encoding == "sequence":
            tokens = table.column("tokens").combine_chunks().flatten().to_numpy()
            return TokenRows(tokens.reshape(-1, self.n_cols), labels, row_ids)
        indices = table.column("indices").combine_chunks()
        values = table.column("values").combine_chunks()
        offsets = indices.offsets.to_numpy().astype(np.int64)
        lo, hi = offsets[0], offsets[-1]
        return SparseRows(
            offsets - lo,
            indices.values.to_numpy()[lo:hi],
            values.values.to_numpy()[lo:hi],
            labels,
            row_ids,
            self.n_cols,
        )

    def close(self) -> None:
        """Close the file if open; a later read opens it again."""
        if self._file is not None:
            self._file.close()
            self._source.close()  # ParquetFile leaves a source it was handed open
            self._file = self._source = None
