"""Prepare's external shuffle: one split's rows, any number of them, handed back in a seeded random order.

``BucketShuffle``: ``add`` sends every row to one of ``n_buckets`` buckets
by a seeded hash of its row id (``shuffle.row_buckets``), buffering rows in
memory; each time ``buffer_rows`` have gathered they are grouped by bucket
(one stable sort) and each bucket's rows appended to its scratch file as one
frame (``_frame``: a header of array lengths, then the arrays' raw bytes; no
pickle). A split that fits in one bucket never touches the disk. ``drain``
hands back every row added exactly once, bucket after bucket, each permuted
(``shuffle.bucket_permutation``), reading each file in one read and deleting
it. Random buckets, each randomly permuted: a uniformly random order of all
rows, the same for any chunking of the same rows. Memory is bounded by
``bucket_rows + buffer_rows`` rows whatever the split's size.

Design (why blocks of a shuffled shard mix as well as a full shuffle; the bucket size; the frame format):
docs/design/prepare.md
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streamtrain.dataset.shuffle import bucket_permutation, row_buckets
from streamtrain.errors import writing
from streamtrain.vectorize.rows import Rows, SparseRows, TokenRows, concat_rows

BUCKET_ROWS = 8_192  # rows of one bucket on average: the most ``drain`` holds (16,384 held more at scale)
_ARRAYS = {SparseRows: ("indptr", "indices", "values", "labels", "row_ids"), TokenRows: ("tokens", "labels", "row_ids")}
_LENGTH = np.dtype("<u8")  # a frame's header: the length (first axis) of each array, in ``_ARRAYS`` order


class BucketShuffle:
    """One split's rows, shuffled through scratch bucket files (the module docstring).

    Args:
        directory: where the bucket files go (created on the first flush).
        rows: how many rows the split will have, which sets ``n_buckets`` (``rows / bucket_rows``, rounded up).
        empty: an empty ``Rows`` of the split's kind and width: the arrays' types and widths of every frame.
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
        self.pending: list[Rows] = []  # rows added since the last flush, in the order added
        self.pending_rows = 0
        self.added = 0

    def _path(self, bucket: int) -> Path:
        """The scratch file of ``bucket``."""
        return self.directory / f"bucket-{bucket:06d}.bin"

    def add(self, rows: Rows) -> None:
        """Buffer ``rows``; append the buffered rows to their buckets' files when ``buffer_rows`` have gathered.

        Args:
            rows: rows of the split, with their row ids.

        Raises:
            WriteError: a bucket file cannot be written (full or read-only file system).
        """
        if not len(rows):
            return
        self.pending.append(rows)
        self.pending_rows += len(rows)
        self.added += len(rows)
        if self.n_buckets > 1 and self.pending_rows >= self.buffer_rows:
            self._flush()

    def _grouped(self) -> tuple[Rows, np.ndarray]:
        """The buffered rows by bucket (in the order added within one), and where each bucket's rows start.

        Empties the buffer. Returns the rows and ``n_buckets + 1`` bounds: bucket ``b`` is ``bounds[b]`` to
        ``bounds[b + 1]``.
        """
        rows = concat_rows([self.empty, *self.pending])
        self.pending, self.pending_rows = [], 0
        buckets = row_buckets(rows.row_ids, self.seed, self.n_buckets)
        order = np.argsort(buckets, kind="stable")
        return rows.take(order), np.searchsorted(buckets[order], np.arange(self.n_buckets + 1))

    def _flush(self) -> None:
        """Append each bucket's buffered rows to its file, one frame per bucket."""
        grouped, bounds = self._grouped()
        self.directory.mkdir(parents=True, exist_ok=True)
        for b in np.flatnonzero(np.diff(bounds)).tolist():
            path = self._path(b)
            with writing(path):
                _append(path, _frame(grouped.slice(int(bounds[b]), int(bounds[b + 1]))))

    def _frames(self, bucket: int) -> list[Rows]:
        """The frames of ``bucket``'s file, in the order written; the file is deleted after."""
        path = self._path(bucket)
        if not path.exists():
            return []
        data = path.read_bytes()
        frames, at = [], 0
        while at < len(data):
            frame = _unframe(data, at, self.empty)
            if frame is None:
                raise OSError(f"{path}: a scratch bucket is shorter than written")
            rows, at = frame
            frames.append(rows)
        path.unlink()
        return frames

    def drain(self) -> Iterator[Rows]:
        """Every row ``add``-ed, exactly once: bucket after bucket, each bucket permuted.

        Yields:
            One bucket's rows at a time, in their seeded order.

        Raises:
            RuntimeError: fewer or more rows came back than were added.
        """
        drained = 0
        held, bounds = self._grouped()  # rows never flushed: after every frame of their bucket
        for b in range(self.n_buckets):
            rows = concat_rows([self.empty, *self._frames(b), held.slice(int(bounds[b]), int(bounds[b + 1]))])
            if len(rows):
                drained += len(rows)
                yield rows.take(bucket_permutation(len(rows), self.seed, self.split, b))
        if drained != self.added:
            raise RuntimeError(f"shuffle lost rows: {self.added} added, {drained} drained from {self.directory}")


def _append(path: Path, frame: bytes) -> None:
    """Append ``frame`` to the file ``path`` (created if absent); a full disk raises its ``OSError``."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        left = memoryview(frame)
        while left:  # a short write is retried: the disk's error, if any, comes with the next one
            left = left[os.write(fd, left) :]
    finally:
        os.close(fd)


def _frame(rows: Rows) -> bytes:
    """``rows`` as one frame: the length of each of its arrays (``_ARRAYS``), then each array's bytes."""
    arrays = [np.ascontiguousarray(getattr(rows, name)) for name in _ARRAYS[type(rows)]]
    header = np.array([len(a) for a in arrays], _LENGTH).tobytes()
    return b"".join([header, *(a.tobytes() for a in arrays)])


def _unframe(data: bytes, at: int, empty: Rows) -> tuple[Rows, int] | None:
    """The frame at offset ``at`` of ``data`` (``_frame``'s), as rows of ``empty``'s kind, and the next offset.

    None when ``data`` ends before the frame does.
    """
    names = _ARRAYS[type(empty)]
    end = at + _LENGTH.itemsize * len(names)
    if end > len(data):
        return None
    lengths, at = np.frombuffer(data, _LENGTH, len(names), at).tolist(), end
    arrays = {}
    for name, length in zip(names, lengths):
        like = getattr(empty, name)
        shape = (length, *like.shape[1:])
        count = int(np.prod(shape))
        if at + count * like.dtype.itemsize > len(data):
            return None
        arrays[name] = np.frombuffer(data, like.dtype, count, at).reshape(shape)
        at += count * like.dtype.itemsize
    if isinstance(empty, SparseRows):
        return SparseRows(**arrays, n_cols=empty.n_cols), at
    return TokenRows(**arrays), at
