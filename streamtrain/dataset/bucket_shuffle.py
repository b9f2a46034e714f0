"""Prepare's external shuffle: one split's rows, any number of them, handed back in a seeded random order.

``BucketShuffle``: ``add`` sends every row to one of ``n_buckets`` buckets
by a seeded hash of its row id (``shuffle.row_buckets``), buffering rows in
memory and appending them to one scratch file per bucket (``.npy`` frames,
no pickle) each time ``buffer_rows`` have gathered; a split that fits in one
bucket never touches the disk. ``drain`` hands back every row added exactly
once, bucket after bucket, each permuted (``shuffle.bucket_permutation``),
deleting each file as it goes. Random buckets, each randomly permuted: a
uniformly random order of all rows, the same for any chunking of the same
rows. Memory is bounded by
``bucket_rows + buffer_rows`` rows whatever the split's size.

Design (why blocks of a shuffled shard mix as well as a full shuffle; the bucket size): docs/design/prepare.md
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streamtrain.dataset.shuffle import bucket_permutation, row_buckets
from streamtrain.errors import writing
from streamtrain.vectorize.rows import Rows, SparseRows, TokenRows, concat_rows

BUCKET_ROWS = 8_192  # rows of one bucket on average: the most ``drain`` holds (16,384 held more at scale)
_ARRAYS = {SparseRows: ("indptr", "indices", "values", "labels", "row_ids"), TokenRows: ("tokens", "labels", "row_ids")}


class BucketShuffle:
    """One split's rows, shuffled through scratch bucket files (the module docstring).

    Args:
        directory: where the bucket files go (created on the first flush).
        rows: how many rows the split will have, which sets ``n_buckets`` (``rows / bucket_rows``, rounded up).
        empty: an empty ``Rows`` of the split's kind and width, to read the frames back as.
        seed: the shuffle's seed.
        split: the split's code, a seed of its permutations.
        bucket_rows: rows per bucket on average (``ValueError`` below 1).
        buffer_rows: rows held in memory before they are appended to the files (``ValueError`` below 1).
    """

    def __init__(
        self,
        directory: Path,
        rows: int,
        empty: Rows,
        seed: int,
        split: int,
        bucket_rows: int = BUCKET_ROWS,
        buffer_rows: int = BUCKET_ROWS,
    ) -> None:
        if bucket_rows < 1 or buffer_rows < 1:
            raise ValueError("bucket_rows and buffer_rows must be positive")
        self.directory, self.empty, self.seed, self.split = Path(directory), empty, seed, split
        self.n_buckets = max(1, -(-rows // bucket_rows))
        self.buffer_rows = buffer_rows
        self.pending: list[list[Rows]] = [[] for _ in range(self.n_buckets)]
        self.pending_rows = 0
        self.added = 0

    def _path(self, bucket: int) -> Path:
        """The scratch file of ``bucket``."""
        return self.directory / f"bucket-{bucket:06d}.npy"

    def add(self, rows: Rows) -> None:
        """Send each of ``rows`` to its bucket; write the buffered rows out when ``buffer_rows`` have gathered.

        Args:
            rows: rows of the split, with their row ids.

        Raises:
            WriteError: a bucket file cannot be written (full or read-only file system).
        """
        if not len(rows):
            return
        buckets = row_buckets(rows.row_ids, self.seed, self.n_buckets)
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.arange(self.n_buckets + 1))
        grouped = rows.take(order)
        for b in np.flatnonzero(np.diff(bounds)):
            self.pending[b].append(grouped.slice(bounds[b], bounds[b + 1]))
        self.pending_rows += len(rows)
        self.added += len(rows)
        if self.n_buckets > 1 and self.pending_rows >= self.buffer_rows:
            self._flush()

    def _flush(self) -> None:
        """Append each bucket's buffered rows to its file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for b, parts in enumerate(self.pending):
            if parts:
                rows = concat_rows(parts)
                with writing(self._path(b)), open(self._path(b), "ab") as f:
                    for name in _ARRAYS[type(rows)]:
                        np.save(f, getattr(rows, name), allow_pickle=False)
        self.pending = [[] for _ in range(self.n_buckets)]
        self.pending_rows = 0

    def _frames(self, bucket: int) -> Iterator[Rows]:
        """The frames of ``bucket``'s file, in the order written; the file is deleted after."""
        path = self._path(bucket)
        if not path.exists():
            return
        kind, size = type(self.empty), path.stat().st_size
        with open(path, "rb") as f:
            while f.tell() < size:
                arrays = {name: np.load(f, allow_pickle=False) for name in _ARRAYS[kind]}
                yield SparseRows(**arrays, n_cols=self.empty.n_cols) if kind is SparseRows else TokenRows(**arrays)
        path.unlink()

    def drain(self) -> Iterator[Rows]:
        """Every row ``add``-ed, exactly once: bucket after bucket, each bucket permuted.

        Yields:
            One bucket's rows at a time, in their seeded order.

        Raises:
            RuntimeError: fewer or more rows came back than were added.
        """
        drained = 0
        for b in range(self.n_buckets):
            rows = concat_rows([self.empty, *self._frames(b), *self.pending[b]])
            self.pending[b] = []
            if len(rows):
                drained += len(rows)
                yield rows.take(bucket_permutation(len(rows), self.seed, self.split, b))
        if drained != self.added:
            raise RuntimeError(f"shuffle lost rows: {self.added} added, {drained} drained from {self.directory}")
