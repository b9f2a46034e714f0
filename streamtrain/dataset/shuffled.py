"""The shard-writing end of a pass: vectorized rows in, each split's shards out in a seeded random order.

``SplitWriters`` owns, per split, a ``SplitWriter`` laid out as
``ShardLayout`` says (the dataset's format, rows per shard, per block and per
shuffle bucket), and counts each split's rows per class; it stores rows in
the order given. ``ShuffledSplits`` puts a ``BucketShuffle`` per split in
front of it. A new dataset's n-gram pass writes through ``SplitWriters`` (its
spill is already in shuffle buckets: ``spill``); the sequence pass and an
append's write through ``ShuffledSplits``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtrain.dataset.bucket_shuffle import BucketShuffle
from streamtrain.dataset.shards import ShardInfo, SplitWriter
from streamtrain.vectorize.rows import Rows, empty_rows
from streamtrain.vectorize.split import SPLIT_NAMES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardLayout:
    """How a dataset's shards are laid out (``PrepareOptions.layout``)."""

    format: str  # ``shards.FORMATS``
    shard_rows: int  # rows per shard file
    block_rows: int  # rows per block, the unit of shuffled reads
    bucket_rows: int  # rows per shuffle bucket


class SplitWriters:
    """Per split: a ``SplitWriter`` laid out as ``ShardLayout`` says; plus per-class row counts.

    Rows come in the order they are to be stored (``ShuffledSplits`` shuffles them first; the n-gram path's
    spill hands them back already in shuffle buckets).

    Args:
        layout: the dataset's shard layout.
        stage: the directory the shards go to.
        encoding: ``"ngram"`` or ``"sequence"``.
        width: columns of a stored row (features, or the sequence length).
        n_classes: how many classes, for the counts.
    """

    def __init__(self, layout: ShardLayout, stage: Path, encoding: str, width: int, n_classes: int) -> None:
        self.writers = [
            SplitWriter(stage, layout.format, name, encoding, width, layout.shard_rows, layout.block_rows)
            for name in SPLIT_NAMES
        ]
        self.per_class = np.zeros((len(SPLIT_NAMES), n_classes), np.int64)

    def write(self, rows: Rows, split: int) -> None:
        """Store ``rows`` (all of split ``split``) next in the split's shards and count them under their classes."""
        if len(rows):
            self.writers[split].write(rows)
            self.per_class[split] += np.bincount(rows.labels, minlength=self.per_class.shape[1])

    def close(self) -> tuple[list[ShardInfo], np.ndarray]:
        """Close every split's shards; log each split's rows.

        Returns:
            The shards written (train, then val, then test) and the rows per split and class.
        """
        shards = [info for w in self.writers for info in w.close()]
        for i, name in enumerate(SPLIT_NAMES):
            log.info(f"{name}: {int(self.per_class[i].sum())} rows in {sum(s.split == name for s in shards)} shard(s)")
        return shards, self.per_class


class ShuffledSplits:
    """Per split: a ``BucketShuffle`` in front of ``SplitWriters``.

    Args:
        layout: the dataset's shard layout.
        stage: the directory the shards go to (the shuffle's scratch under ``stage/.shuffle``).
        split_rows: rows each split will have (by split code), which sizes its shuffle.
        encoding: ``"ngram"`` or ``"sequence"``.
        width: columns of a stored row (features, or the sequence length).
        n_classes: how many classes, for the counts.
        seed: the shuffle's seed.
    """

    def __init__(
        self,
        layout: ShardLayout,
        stage: Path,
        split_rows: np.ndarray,
        encoding: str,
        width: int,
        n_classes: int,
        seed: int,
    ) -> None:
        self.shuffles = [
            BucketShuffle(
                stage / ".shuffle" / name,
                int(split_rows[code]),
                empty_rows(encoding, width),
                seed,
                code,
                layout.bucket_rows,
            )
            for code, name in enumerate(SPLIT_NAMES)
        ]
        self.out = SplitWriters(layout, stage, encoding, width, n_classes)

    def write(self, rows: Rows, splits: np.ndarray) -> None:
        """Hand each row to its split's shuffle.

        Args:
            rows: vectorized rows.
            splits: each row's split code.
        """
        for code, shuffle in enumerate(self.shuffles):
            picked = np.flatnonzero(splits == code)
            if len(picked):
                shuffle.add(rows.take(picked))

    def close(self) -> tuple[list[ShardInfo], np.ndarray]:
        """Drain every split's shuffle into its shards and close them; log each split's rows.

        Returns:
            The shards written (train, then val, then test) and the rows per split and class.
        """
        for code, shuffle in enumerate(self.shuffles):
            for rows in shuffle.drain():
                self.out.write(rows, code)
        return self.out.close()
