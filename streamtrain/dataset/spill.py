"""Scratch store of hashed n-gram counts between prepare's passes, each split's rows in its shuffle buckets.

Raw text is tokenized once, in the first pass. ``Spill.append`` takes each
chunk's counts (with its provisional labels, split codes and row ids: a
``SpillPart``) and buffers them; each time ``buffer_entries`` entries have
gathered, the rows are grouped by (split, shuffle bucket) with one stable
sort and encoded as one frame per bucket (``spill_frames``) on the spill's
encoder thread while the pass reads on, then appended to the one spill file
in one write, by the caller's thread, in the order appended. A row's bucket is ``shuffle.row_buckets``
of its row id, out of the split's ``n_buckets`` (``bucket_counts``: from the
split's share of the input bytes, known before the first row is read).
``flush`` writes the rest as the first pass ends.

The later passes read the buckets back (``read``; a bucket's frames are
where each flush put them): feature selection the training buckets, shard
writing every bucket, each one's rows in their seeded order
(``shuffle.bucket_permutation``). So the spill is the shuffle's scratch too:
one copy of the rows on disk, not two. Each read reports its progress
(``streamtrain.progress``: rows and bytes of the buckets read) under the
name of the pass that reads it, given in order when the spill is made. The
file lives inside prepare's staging directory and is deleted with it.

A bucket read back is checked against the rows and bytes written to it: a
cut-short or damaged file is an ``OSError`` naming it.

Why one file, and the bucket size: docs/design/prepare.md, "The n-gram spill".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from streamtrain.dataset.parallel import ordered_map, workers
from streamtrain.dataset.shuffle import bucket_permutation, row_buckets
from streamtrain.dataset.spill_frames import Frames, SpillPart, decode_frames, encode_frames
from streamtrain.errors import writing
from streamtrain.progress import Progress

log = logging.getLogger(__name__)

BUCKET_BYTES = 2 << 20  # input bytes per shuffle bucket: what bounds the rows a later pass holds at once
BUFFER_ENTRIES = 1 << 20  # n-gram entries buffered before a flush: 8 MiB of CSR


@dataclass(frozen=True)
class Bucket:
    """One shuffle bucket of one split, as written: where its frames are in the spill file, its rows and bytes."""

    split: int
    number: int
    key: int  # its position among every split's buckets
    rows: int
    nbytes: int


def bucket_counts(split_bytes: Sequence[int], bucket_bytes: int = BUCKET_BYTES) -> list[int]:
    """Shuffle buckets per split: the split's input bytes over ``bucket_bytes``, rounded up, at least 1.

    Args:
        split_bytes: per split code, the input bytes its rows come from (``first_pass.split_bytes``).
        bucket_bytes: input bytes per bucket (``ValueError`` below 1).

    Returns:
        Buckets per split code.
    """
    if bucket_bytes < 1:
        raise ValueError("bucket_bytes must be positive")
    return [max(1, -(-int(b) // bucket_bytes)) for b in split_bytes]


class Spill:
    """Each split's spilled rows, in its shuffle buckets, in one file under ``directory`` (the module docstring).

    A flush appends one frame per bucket that has buffered rows, bucket after bucket, in one write; the
    spill keeps where each flush's frames start (one offset per bucket and flush: ``nbytes`` is 8 bytes per
    bucket per ``buffer_entries`` spilled), and reads a bucket back frame by frame.

    Args:
        directory: where the file goes (created).
        n_cols: hash buckets, the counts' columns (at most 2**31: the indices come back as int32).
        n_buckets: shuffle buckets per split code (``bucket_counts``).
        seed: the shuffle's seed (``shuffle.row_buckets``).
        passes: the names of the passes that will read the spill back, in order, for their progress.
        buffer_entries: n-gram entries buffered before they are appended to the file (``ValueError`` below 1).
    """

    def __init__(
        self,
        directory: Path,
        n_cols: int,
        n_buckets: Sequence[int],
        seed: int,
        passes: Sequence[str] = (),
        buffer_entries: int = BUFFER_ENTRIES,
    ) -> None:
        if buffer_entries < 1 or min(n_buckets, default=0) < 1:
            raise ValueError("buffer_entries and every split's n_buckets must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "spill.bin"
        self.n_cols, self.n_buckets, self.seed = n_cols, list(n_buckets), seed
        self._first = np.concatenate([[0], np.cumsum(self.n_buckets)]).astype(np.int64)  # a split's first key
        self._rows = np.zeros(int(self._first[-1]), np.int64)  # per bucket key: rows written
        self._bytes = np.zeros(int(self._first[-1]), np.int64)  # per bucket key: bytes written
        self._starts: list[np.ndarray] = []  # per flush: where each key's frame starts in the file, and the end
        self._size = 0  # bytes written to the file
        self._passes = list(passes)
        self._buffer_entries = buffer_entries
        self._pending: list[SpillPart] = []
        self._pending_entries = 0
        self._encoder: ThreadPoolExecutor | None = None  # one thread: a buffer's frames made beside the pass
        self._encoding: Future | None = None  # the frames of the last buffer, until written

    @property
    def nbytes(self) -> int:
        """Bytes written to the spill file."""
        return self._size

    @property
    def rows(self) -> int:
        """Rows written to the spill file."""
        return int(self._rows.sum())

    def append(self, part: SpillPart) -> None:
        """Buffer ``part``'s rows; append the buffered rows to the file once ``buffer_entries`` entries gather.

        Args:
            part: one chunk's counts (CSR, indices below 2**31) and rows; its split codes below ``len(n_buckets)``.

        Raises:
            WriteError: the file cannot be written (full or read-only file system).
        """
        if not len(part.labels):
            return
        self._pending.append(part)
        self._pending_entries += part.counts.nnz
        if self._pending_entries >= self._buffer_entries:
            self._encode_pending()

    def flush(self) -> None:
        """Append every row appended so far to the file (the first pass's end calls it); nothing is in flight after.

        Raises:
            WriteError: the file cannot be written (full or read-only file system).
        """
        self._encode_pending()
        self._write_encoded()
        if self._encoder is not None:
            self._encoder.shutdown()
            self._encoder = None

    def _encode_pending(self) -> None:
        """Start making the buffered rows' frames on the encoder thread, once the previous frames are written.

        One buffer is encoded while the first pass reads on; the file gets the frames in the order appended.
        """
        if not self._pending:
            return
        parts = self._pending
        self._pending, self._pending_entries = [], 0
        self._write_encoded()
        if self._encoder is None:
            self._encoder = ThreadPoolExecutor(1, thread_name_prefix="streamtrain-spill")
        self._encoding = self._encoder.submit(_grouped_frames, parts, self.seed, self.n_buckets, self._first)

    def _write_encoded(self) -> None:
        """Wait for the frames in flight, if any, and append them to the file, one frame per bucket, in one write."""
        if self._encoding is None:
            return
        frames, bounds = self._encoding.result()
        self._encoding = None
        sizes = np.zeros(len(self._rows), np.int64)
        sizes[frames.groups] = frames.sizes
        with writing(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _write(fd, frames.data)
            finally:
                os.close(fd)
        self._starts.append(self._size + np.concatenate([[0], np.cumsum(sizes)]))
        self._size += int(sizes.sum())
        self._rows += np.diff(bounds)
        self._bytes += sizes

    def buckets(self, splits: Iterable[int]) -> list[Bucket]:
        """The non-empty buckets of ``splits``, split after split, bucket after bucket."""
        out = []
        for split in splits:
            for number in range(self.n_buckets[split]):
                key = int(self._first[split]) + number
                if self._rows[key]:
                    out.append(Bucket(split, number, key, int(self._rows[key]), int(self._bytes[key])))
        return out

    def load(self, bucket: Bucket, shuffled: bool = False) -> SpillPart:
        """``bucket``'s rows: in the order appended, or when ``shuffled`` in their seeded order.

        The seeded order is ``shuffle.bucket_permutation`` of the bucket's rows, by the spill's seed, the split
        and the bucket's number: random buckets, each permuted, are a uniformly random order of a split.

        Raises:
            OSError: the file is shorter than written, or its bytes are not the frames written.
        """
        pieces = []
        with open(self.path, "rb") as fh:
            for starts in self._starts:
                lo, hi = int(starts[bucket.key]), int(starts[bucket.key + 1])
                if hi > lo:
                    pieces.append(os.pread(fh.fileno(), hi - lo, lo))
                    if len(pieces[-1]) < hi - lo:
                        raise OSError(f"{self.path}: the spill is shorter than written (was it truncated?)")
        try:
            part = decode_frames(b"".join(pieces), self.n_cols, bucket.split)
            if len(part.labels) != bucket.rows:
                raise ValueError(f"{len(part.labels)} rows of bucket {bucket.key} where {bucket.rows} were written")
        except (OSError, ValueError) as exc:
            raise OSError(f"{self.path}: the spill is not what was written ({exc})") from exc
        if not shuffled:
            return part
        return part.take(bucket_permutation(bucket.rows, self.seed, bucket.split, bucket.number))

    def read(
        self,
        splits: Iterable[int],
        fn: Callable[[Bucket, SpillPart], Any],
        executor: Executor | None = None,
        shuffled: bool = False,
    ) -> Iterator[tuple[Bucket, Any]]:
        """``fn(bucket, load(bucket, shuffled))`` for each of ``buckets(splits)``, in order, with progress.

        The progress is reported under the next of the names given as ``passes``.

        Args:
            splits: the split codes to read.
            fn: what to make of a bucket's rows (run on ``executor``'s workers when given).
            executor: where the loads and ``fn`` run, ``workers(executor)`` buckets at once; None: here.
            shuffled: each bucket's rows in their seeded order (``load``).

        Yields:
            Each bucket and what ``fn`` made of it.

        Raises:
            OSError: the spill is not what was written.
        """
        assert not self._pending and self._encoding is None, "flush() before reading"
        name = self._passes.pop(0) if self._passes else "reading the spill"
        buckets = self.buckets(splits)
        total, rows = sum(b.nbytes for b in buckets), sum(b.rows for b in buckets)
        log.debug(f"{name}: {len(buckets)} spilled buckets, {total} bytes, {total / max(rows, 1):.1f} a row")
        if executor is None:
            results: Iterable[tuple[Bucket, Any]] = ((b, self._loaded(fn, b, shuffled)) for b in buckets)
        else:
            calls = ((b, (fn, b, shuffled)) for b in buckets)
            results = ordered_map(executor, self._loaded, calls, workers(executor))
        with Progress(name, total) as progress:
            for bucket, result in results:
                yield bucket, result
                progress.advance(bucket.rows, bucket.nbytes)

    def _loaded(self, fn: Callable[[Bucket, SpillPart], Any], bucket: Bucket, shuffled: bool) -> Any:
        """``fn`` of ``bucket`` and its rows."""
        return fn(bucket, self.load(bucket, shuffled))


def _grouped_frames(
    parts: Sequence[SpillPart], seed: int, n_buckets: Sequence[int], first: np.ndarray
) -> tuple[Frames, np.ndarray]:
    """The frames of ``parts``' rows grouped by bucket key (stable), and each key's first row among them.

    A row's key is its split's ``first`` key plus ``shuffle.row_buckets`` of its row id in the split's
    ``n_buckets``. A pure function of its arguments: ``Spill`` runs it on its encoder thread.
    """
    part = _concat(parts)
    keys = np.empty(len(part.labels), np.int64)
    for split, n in enumerate(n_buckets):
        rows = np.flatnonzero(part.splits == split)
        if len(rows):
            keys[rows] = first[split] + row_buckets(part.row_ids[rows], seed, n)
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(int(first[-1]) + 1))
    grouped = part.take(order)
    del part  # the buffer's rows: only their grouped copy from here on
    return encode_frames(grouped, bounds), bounds


def _concat(parts: Sequence[SpillPart]) -> SpillPart:
    """``parts`` one after another."""
    if len(parts) == 1:
        return parts[0]
    return SpillPart(
        sp.vstack([p.counts for p in parts], format="csr"),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.splits for p in parts]),
        np.concatenate([p.row_ids for p in parts]),
    )


def _write(fd: int, frame: bytes) -> None:
    """Write all of ``frame`` to ``fd``; a full disk raises its ``OSError``."""
    left = memoryview(frame)
    while left:  # a short write is retried: the disk's error, if any, comes with the next one
        left = left[os.write(fd, left) :]
