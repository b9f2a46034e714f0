"""Pure, seeded orders: the blocks each epoch of fit visits, and the buckets and permutations of prepare's shuffle.

Nothing here keeps state: every function is a pure function of its
arguments and a seed. A dataset split is a list of shards, each a number of
blocks. An epoch plan is a permutation of every (shard, block) pair, so a reader that follows it
and emits every row of every block sees each row exactly once per epoch.
Plans depend only on (seed, epoch, block counts): re-runs, resumes and
workers agree without talking to each other. With several training workers,
``worker_slices`` cuts one plan into contiguous, disjoint row ranges of
sizes that differ by at most one row (``worker_rows``), so each worker
reads only its part and together they read every row once.
``spread_blocks`` picks the evenly spaced blocks of fit's validation sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Block = tuple[int, int]  # (shard index, block index within the shard)


def all_blocks(block_counts: Sequence[int]) -> list[Block]:
    """Every block of every shard, in storage order.

    Args:
        block_counts: blocks per shard.

    Returns:
        ``(shard, block)`` pairs.
    """
    return [(s, b) for s, n in enumerate(block_counts) for b in range(n)]


def epoch_blocks(block_counts: Sequence[int], seed: int, epoch: int) -> list[Block]:
    """All blocks in a random order that changes with ``epoch`` and is fixed by ``seed``.

    Args:
        block_counts: blocks per shard.
        seed: the run's seed.
        epoch: the epoch's number.

    Returns:
        A permutation of ``all_blocks(block_counts)``.
    """
    blocks = all_blocks(block_counts)
    order = np.random.default_rng([seed, epoch]).permutation(len(blocks))
    return [blocks[i] for i in order]


def spread_blocks(block_rows: Sequence[int], rows: int) -> list[int]:
    """Positions of evenly spaced blocks, in storage order, that hold at least ``rows`` rows (all when fewer).

    ``block_rows[i]`` is the number of rows of the ``i``-th block of a split
    in storage order. A systematic sample: every shard contributes in
    proportion to its blocks, those that ``--append`` added included; the
    shards hold each split in a seeded random order, so the rows are a
    random sample of the split. The same positions for the same arguments.

    Args:
        block_rows: rows per block, in storage order.
        rows: the least number of rows wanted.

    Returns:
        Block positions, ascending.
    """
    n, total = len(block_rows), int(sum(block_rows))
    if total <= rows:
        return list(range(n))
    sizes = np.asarray(block_rows, dtype=np.int64)
    k = max(1, min(n, -(-rows * n // total)))  # the mean block holds total / n rows
    while True:
        picked = ((np.arange(k) * 2 + 1) * n // (2 * k)).tolist()  # the middle of each of k equal stretches
        if k == n or int(sizes[picked].sum()) >= rows:
            return picked
        k += 1


def worker_rows(rows: int, worker: int, workers: int) -> tuple[int, int]:
    """The ``[start, stop)`` positions, in an epoch's row order, of ``worker``'s rows out of ``rows``.

    Consecutive, disjoint, covering ``[0, rows)``, sizes ``rows // workers`` or one more.

    Args:
        rows: rows of the epoch.
        worker: the worker's index.
        workers: how many workers.

    Returns:
        ``(start, stop)``.

    Raises:
        ValueError: ``worker`` is not in ``[0, workers)``.
    """
    if not 0 <= worker < workers:
        raise ValueError(f"worker {worker} is not in [0, {workers})")
    return rows * worker // workers, rows * (worker + 1) // workers


def worker_slices(
    plan: Sequence[Block], block_rows: Sequence[int], worker: int, workers: int
) -> list[tuple[Block, int, int]]:
    """``worker``'s part of an epoch ``plan``: ``(block, lo, hi)``, rows ``[lo, hi)`` of each block it reads.

    ``block_rows[i]`` is the number of rows of ``plan[i]``. The plan's blocks,
    laid end to end, are cut at ``worker_rows``: a block that straddles a cut
    is read by both neighbours, each taking its own rows of it.

    Args:
        plan: the epoch's blocks, in order (``epoch_blocks``).
        block_rows: rows of each block of ``plan``.
        worker: the worker's index.
        workers: how many workers.

    Returns:
        ``(block, lo, hi)`` for each block the worker reads, in plan order.
    """
    total = int(sum(block_rows))
    start, stop = worker_rows(total, worker, workers)
    out: list[tuple[Block, int, int]] = []
    at = 0
    for block, n in zip(plan, block_rows):
        lo, hi = max(start - at, 0), min(stop - at, n)
        if lo < hi:
            out.append((block, lo, hi))
        at += n
        if at >= stop:
            break
    return out


def row_permutation(n: int, seed: int, epoch: int, group: int, *worker: int) -> np.ndarray:
    """Permutation of ``n`` buffered rows for the ``group``-th buffer of an epoch.

    Args:
        n: rows in the buffer.
        seed: the run's seed.
        epoch: the epoch's number.
        group: the buffer's number within the epoch.
        *worker: the worker's index, when several read the epoch.

    Returns:
        A permutation of ``range(n)``.
    """
    return np.random.default_rng([seed, epoch, group, 1, *worker]).permutation(n)


def row_buckets(row_ids: np.ndarray, seed: int, n_buckets: int) -> np.ndarray:
    """Bucket in ``[0, n_buckets)`` of each row for prepare's shuffle: a seeded splitmix64 of the row id.

    Depends on nothing but (row id, seed, n_buckets), so chunking does not
    change it; uniform and independent across rows for practical purposes.

    Args:
        row_ids: the rows' ids.
        seed: the shuffle's seed.
        n_buckets: how many buckets.

    Returns:
        Each row's bucket (int64).
    """
    from streamtrain.vectorize.words import GOLDEN_GAMMA, splitmix64  # pyarrow: imported on first use

    # splitmix64 adds one more GOLDEN_GAMMA: the generator's (seed + 1)-th step from each row id
    z = row_ids.astype(np.uint64) + np.uint64(int(GOLDEN_GAMMA) * seed % 2**64)  # array arithmetic wraps
    return (splitmix64(z) % np.uint64(n_buckets)).astype(np.int64)


def bucket_permutation(n: int, seed: int, split: int, bucket: int) -> np.ndarray:
    """Order of the ``n`` rows of one shuffle bucket of one split.

    Args:
        n: rows in the bucket.
        seed: the shuffle's seed.
        split: the split's code.
        bucket: the bucket's number.

    Returns:
        A permutation of ``range(n)``.
    """
    return np.random.default_rng([seed, split, bucket, 2]).permutation(n)
