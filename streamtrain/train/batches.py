"""From shards to batches: the chunk-reading generator behind ``fit``, ``evaluate`` and benchmarks.

Who owns what:
- ``SplitSource``: the shards of one split of a prepared dataset, as
  readers opened lazily (in whichever process or thread iterates), at most
  ``max_open`` files at a time (least recently used closed first: an open
  HDF5 file costs about 0.7 MiB), and which blocks exist. Before a shard's
  first read it checks the shard's size and sha256 against the manifest
  (once per process, ``Manifest.check_shard``), and any read error becomes
  a ``DataError`` naming the shard. It reads blocks; it does not order them.
- ``BatchStream``: one split cut into batches of ``batch_size`` rows. Per
  epoch it follows a seeded plan of blocks (``shuffle.epoch_blocks``), reads
  ``buffer_blocks`` blocks at a time, permutes the buffered rows, and emits
  them as one chunk of whole batches, carrying the remainder into the next
  buffer. The epoch's final batch is the only partial one, so an epoch is
  exactly ``steps = ceil(rows / batch_size)`` batches and every row is
  emitted once. ``epoch`` cuts chunks into batches in Python (evaluation,
  tests); ``forever_chunks`` chains the chunks of epochs 0, 1, 2, ... (or
  from a resumed fit's epoch and step) for
  ``tfdata``, which cuts them in tf.data for Keras ``fit`` with
  ``steps_per_epoch = steps``.

Memory: ``buffer_blocks x block_rows`` rows plus ``max_open`` file handles,
independent of dataset size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.rows import Rows, concat_rows, empty_rows
from streamtrain.dataset.shards import open_reader
from streamtrain.dataset.shuffle import Block, all_blocks, epoch_blocks, row_permutation
from streamtrain.errors import DataError


class SplitSource:
    def __init__(
        self,
        root: str | Path,
        manifest: Manifest,
        split: str,
        max_open: int = 8,
    ):
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
        return sum(s.rows for s in self.shards)

    @property
    def block_counts(self) -> list[int]:
        return [s.blocks for s in self.shards]

    def empty(self) -> Rows:
        return empty_rows(self.encoding, self.width)

    def read(self, block: Block) -> Rows:
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
        for r in self.readers:
            r.close()
        self._open.clear()


class BatchStream:
    def __init__(
        self,
        source: SplitSource,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        buffer_blocks: int = 8,
    ):
        if batch_size < 1 or buffer_blocks < 1:
            raise ValueError("batch_size and buffer_blocks must be positive")
        self.source, self.batch_size, self.shuffle = source, batch_size, shuffle
        self.seed, self.buffer_blocks = seed, buffer_blocks

    @property
    def rows(self) -> int:
        return self.source.rows

    @property
    def steps(self) -> int:
        return -(-self.rows // self.batch_size)

    def plan(self, epoch: int) -> list[Block]:
        counts = self.source.block_counts
        return epoch_blocks(counts, self.seed, epoch) if self.shuffle else all_blocks(counts)

    def chunks(self, epoch: int = 0) -> Iterator[Rows]:
        """The epoch's rows in buffer-sized chunks, each a whole number of batches except the last.

        Cutting every chunk into ``batch_size`` slices gives exactly ``epoch``'s
        batches; ``tfdata`` does that cutting inside tf.data, so Python
        hands over one chunk per ``buffer_blocks`` blocks instead of one batch.
        """
        plan = self.plan(epoch)
        carry = self.source.empty()
        for group, start in enumerate(range(0, len(plan), self.buffer_blocks)):
            blocks = [self.source.read(b) for b in plan[start : start + self.buffer_blocks]]
            buf = concat_rows([carry, *blocks])
            if self.shuffle:
                buf = buf.take(row_permutation(len(buf), self.seed, epoch, group))
            full = len(buf) - len(buf) % self.batch_size
            if full:
                yield buf.slice(0, full)
            carry = buf.slice(full, len(buf))
        if len(carry):
            yield carry

    def epoch(self, epoch: int = 0) -> Iterator[Rows]:
        """Exactly ``steps`` batches covering every row once."""
        for chunk in self.chunks(epoch):
            for lo in range(0, len(chunk), self.batch_size):
                yield chunk.slice(lo, min(lo + self.batch_size, len(chunk)))

    def forever_chunks(self, first_epoch: int = 0, skip_batches: int = 0) -> Iterator[Rows]:
        """``chunks`` of epochs ``first_epoch``, ``first_epoch + 1``, ... without end.

        The first ``skip_batches`` batches of ``first_epoch`` are left out (a fit
        resumed inside an epoch): chunks hold whole batches, so what follows is
        exactly the rest of that epoch's batches.
        """
        epoch, skip = first_epoch, skip_batches * self.batch_size
        while True:
            for chunk in self.chunks(epoch):
                if skip >= len(chunk):
                    skip -= len(chunk)
                    continue
                if skip:
                    chunk, skip = chunk.slice(skip, len(chunk)), 0
                yield chunk
            epoch += 1
