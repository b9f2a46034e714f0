"""From shards to batches: the chunk-reading generator behind ``fit``, ``evaluate`` and benchmarks.

Who owns what: ``SplitSource`` reads the blocks of one split's shards, opening readers lazily, at most
``max_open`` files at a time (least recently used closed first), each shard checked against the manifest's
size and sha256 before its first read (once per process); any read error is a ``DataError`` naming the
shard. ``BatchStream`` cuts one split (or its ``blocks`` chosen by ``sample_blocks``) into batches of
``batch_size`` rows for worker ``worker`` of ``workers``: per epoch a seeded plan of blocks
(``shuffle.epoch_blocks``), of which it reads only its own part (``shuffle.worker_slices``: disjoint,
together every row once), ``buffer_blocks`` at a time, rows permuted within the buffer, emitted as chunks
of whole batches with the remainder carried over. Every worker's epoch is exactly ``steps`` batches, the
last the only partial one; a worker whose share ended a batch early ends its epoch with an empty batch.
``epoch`` gives the batches in Python (evaluation, tests); ``forever_chunks`` the chunks of epochs on end
from a resumed fit's epoch and step, for ``tfdata``. Memory: ``buffer_blocks x block_rows`` rows plus
``max_open`` file handles, whatever the dataset's size.

Costs: docs/design/training.md
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.shards import open_reader
from streamtrain.dataset.shuffle import (
    Block,
    all_blocks,
    epoch_blocks,
    row_permutation,
    spread_blocks,
    worker_rows,
    worker_slices,
)
from streamtrain.errors import DataError
from streamtrain.vectorize.rows import Rows, concat_rows, empty_rows


class SplitSource:
    """The shards of one split of a prepared dataset, read block by block.

    Args:
        root: the dataset directory.
        manifest: its manifest.
        split: ``train``, ``val`` or ``test``.
        max_open: the most shard files open at a time.
    """

    def __init__(
        self,
        root: str | Path,
        manifest: Manifest,
        split: str,
        max_open: int = 8,
    ) -> None:
        self.shards = shards = manifest.shards_for(split)
        self.root, self.manifest, self.split = Path(root), manifest, split
        self.encoding, self.width = manifest.encoding, manifest.row_width
        self.readers = [
            open_reader(manifest.shard_format, Path(root) / s.path, self.encoding, self.width, s.block_rows)
            for s in shards
        ]
        self.max_open = max_open
        self._open: OrderedDict[int, None] = OrderedDict()  # shard indices with an open file, oldest first
        self._checked: set[int] = set()  # shards whose size and sha256 matched the manifest

    @property
    def rows(self) -> int:
        """The split's rows."""
        return sum(s.rows for s in self.shards)

    @property
    def block_counts(self) -> list[int]:
        """Blocks of each shard, in shard order."""
        return [s.blocks for s in self.shards]

    def block_size(self, block: Block) -> int:
        """Rows of ``block`` (a shard's last block may be short)."""
        shard, index = block
        info = self.shards[shard]
        return min(info.block_rows, info.rows - index * info.block_rows)

    def empty(self) -> Rows:
        """No rows, of this split's encoding and width."""
        return empty_rows(self.encoding, self.width)

    def read(self, block: Block) -> Rows:
        """One block's rows, the shard checked against the manifest before its first read.

        Args:
            block: (shard index, block index).

        Returns:
            The block's rows, in their order in the shard.

        Raises:
            DataError: the shard differs from the manifest, or cannot be read (naming it).
        """
        shard, index = block
        if shard not in self._checked:
            self.manifest.check_shard(self.root, self.shards[shard])
            self._checked.add(shard)
        self._open[shard] = None
        self._open.move_to_end(shard)
        while len(self._open) > self.max_open:
            oldest, _ = self._open.popitem(last=False)
            self.readers[oldest].close()
        try:
            return self.readers[shard].read_block(index)
        except Exception as exc:  # h5py, pyarrow and the OS raise many types for a damaged file
            path = self.root / self.shards[shard].path
            raise DataError(f"cannot read block {index} of this shard: {exc}", str(path)) from exc

    def close(self) -> None:
        """Close every shard file."""
        for r in self.readers:
            r.close()
        self._open.clear()


def sample_blocks(source: SplitSource, rows: int) -> list[Block]:
    """Evenly spaced blocks of ``source`` (``shuffle.spread_blocks``) that hold at least ``rows`` rows.

    Args:
        source: the split.
        rows: the rows wanted.

    Returns:
        The blocks, in split order.
    """
    blocks = all_blocks(source.block_counts)
    return [blocks[i] for i in spread_blocks([source.block_size(b) for b in blocks], rows)]


class BatchStream:
    """One split cut into batches for one worker, epoch by epoch (see the module docstring).

    Args:
        source: the split.
        batch_size: rows per batch for this worker.
        shuffle: follow a seeded plan of blocks per epoch and permute rows within each buffer.
        seed: the shuffle's seed.
        buffer_blocks: blocks read and shuffled together.
        worker: this worker's index.
        workers: the workers reading the split.
        blocks: read only these blocks, in this order (a validation sample; not with ``shuffle``).

    Raises:
        ValueError: a size that is not positive, ``worker`` outside ``[0, workers)``, or ``blocks`` with
            ``shuffle``.
    """

    def __init__(
        self,
        source: SplitSource,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        buffer_blocks: int = 8,
        worker: int = 0,
        workers: int = 1,
        blocks: Sequence[Block] | None = None,
    ) -> None:
        if batch_size < 1 or buffer_blocks < 1 or not 0 <= worker < workers:
            raise ValueError("batch_size and buffer_blocks must be positive, and worker in [0, workers)")
        if blocks is not None and shuffle:
            raise ValueError("a stream of chosen blocks reads them in their order: it does not shuffle")
        self.source, self.batch_size, self.shuffle = source, batch_size, shuffle
        self.seed, self.buffer_blocks = seed, buffer_blocks
        self.worker, self.workers = worker, workers
        self.blocks = None if blocks is None else list(blocks)  # a sample of the split: only these, in this order

    @property
    def rows(self) -> int:
        """Rows of the split, or of its chosen ``blocks`` (all workers together)."""
        if self.blocks is not None:
            return sum(self.source.block_size(b) for b in self.blocks)
        return self.source.rows

    @property
    def worker_rows(self) -> int:
        """Rows this worker trains on each epoch."""
        start, stop = worker_rows(self.rows, self.worker, self.workers)
        return stop - start

    @property
    def steps(self) -> int:
        """Batches per epoch, the same for every worker."""
        most = -(-self.rows // self.workers)  # the largest worker's rows
        return -(-most // self.batch_size)

    def plan(self, epoch: int) -> list[Block]:
        """The blocks of ``epoch`` in reading order, all workers together (the seeded plan when shuffled)."""
        if self.blocks is not None:
            return list(self.blocks)
        counts = self.source.block_counts
        return epoch_blocks(counts, self.seed, epoch) if self.shuffle else all_blocks(counts)

    def parts(self, epoch: int) -> list[tuple[Block, int, int]]:
        """This worker's ``(block, lo, hi)`` reads of ``epoch``'s plan (whole blocks with one worker)."""
        plan = self.plan(epoch)
        return worker_slices(plan, [self.source.block_size(b) for b in plan], self.worker, self.workers)

    def _read(self, part: tuple[Block, int, int]) -> Rows:
        """The rows ``lo:hi`` of a block."""
        block, lo, hi = part
        rows = self.source.read(block)
        return rows if (lo, hi) == (0, len(rows)) else rows.slice(lo, hi)

    def _permutation(self, n: int, epoch: int, group: int) -> np.ndarray:
        """The order of a buffer's ``n`` rows: a function of (seed, epoch, buffer, worker)."""
        if self.worker == 0:  # one worker: the plans of datasets trained before multi-worker fit
            return row_permutation(n, self.seed, epoch, group)
        return row_permutation(n, self.seed, epoch, group, self.worker)

    def chunks(self, epoch: int = 0) -> Iterator[Rows]:
        """The epoch's rows in buffer-sized chunks, each a whole number of batches except the last.

        Cutting every chunk into ``batch_size`` slices gives exactly ``epoch``'s
        batches (an empty chunk: one empty batch); ``tfdata`` does that cutting
        inside tf.data, so Python hands over one chunk per ``buffer_blocks``
        blocks instead of one batch.

        Args:
            epoch: the 0-based epoch (its plan and permutations).

        Yields:
            This worker's rows of the epoch, in chunks.
        """
        parts = self.parts(epoch)
        carry = self.source.empty()
        for group, start in enumerate(range(0, len(parts), self.buffer_blocks)):
            blocks = [self._read(p) for p in parts[start : start + self.buffer_blocks]]
            buf = concat_rows([carry, *blocks])
            if self.shuffle:
                buf = buf.take(self._permutation(len(buf), epoch, group))
            full = len(buf) - len(buf) % self.batch_size
            if full:
                yield buf.slice(0, full)
            carry = buf.slice(full, len(buf))
        if len(carry):
            yield carry
        if -(-self.worker_rows // self.batch_size) < self.steps:  # this worker's share ended a batch early
            yield self.source.empty()

    def epoch(self, epoch: int = 0) -> Iterator[Rows]:
        """Exactly ``steps`` batches covering this worker's rows once.

        Args:
            epoch: the 0-based epoch.

        Yields:
            The batches, in order; an empty one ends a share that ended a batch early.
        """
        for chunk in self.chunks(epoch):
            if not len(chunk):
                yield chunk
            for lo in range(0, len(chunk), self.batch_size):
                yield chunk.slice(lo, min(lo + self.batch_size, len(chunk)))

    def forever_chunks(self, first_epoch: int = 0, skip_batches: int = 0) -> Iterator[Rows]:
        """``chunks`` of epochs ``first_epoch``, ``first_epoch + 1``, ... without end.

        Args:
            first_epoch: the epoch to start in.
            skip_batches: the batches of ``first_epoch`` to leave out (a fit resumed inside it): chunks hold
                whole batches, so what follows is exactly the rest of that epoch's batches.

        Yields:
            This worker's chunks, epoch after epoch.
        """
        epoch, skip = first_epoch, skip_batches
        while True:
            for chunk in self.chunks(epoch):
                batches = max(1, -(-len(chunk) // self.batch_size))
                if skip >= batches:
                    skip -= batches
                    continue
                if skip:
                    chunk, skip = chunk.slice(skip * self.batch_size, len(chunk)), 0
                yield chunk
            epoch += 1
