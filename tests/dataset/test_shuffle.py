"""The pure seeded orders of ``dataset.shuffle``: epoch plans, worker shares, row permutations and prepare's buckets.

Each property comes from the module's contract: a plan visits every block once, depends only on (seed, epoch,
block counts), the workers' row ranges are contiguous, disjoint and cover every row once, and a row's bucket is a
seeded splitmix64 of its id alone (so chunking cannot change it).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtrain.dataset.shuffle import (
    all_blocks,
    bucket_permutation,
    epoch_blocks,
    row_buckets,
    row_permutation,
    worker_rows,
    worker_slices,
)

block_counts = st.lists(st.integers(0, 6), min_size=1, max_size=12)


def test_all_blocks_lists_each_shard_s_blocks_in_storage_order():
    assert all_blocks([2, 0, 3]) == [(0, 0), (0, 1), (2, 0), (2, 1), (2, 2)]
    assert all_blocks([]) == []


@settings(max_examples=60, deadline=None)
@given(block_counts, st.integers(0, 2**31), st.integers(0, 50))
def test_an_epoch_plan_visits_every_block_exactly_once(counts, seed, epoch):
    plan = epoch_blocks(counts, seed, epoch)
    assert sorted(plan) == all_blocks(counts)  # a permutation: nothing missing, nothing twice
    assert plan == epoch_blocks(list(counts), seed, epoch)  # a function of (seed, epoch, counts) alone


def test_an_epoch_plan_changes_with_the_epoch_and_the_seed_not_with_anything_else():
    counts = [7, 5, 9, 3]  # 24 blocks: two equal random orders would be a 1 in 24! coincidence
    plan = epoch_blocks(counts, 11, 0)
    assert plan != all_blocks(counts)  # shuffled
    assert plan == epoch_blocks(tuple(counts), 11, 0) == epoch_blocks(np.array(counts), 11, 0)
    others = [epoch_blocks(counts, 11, e) for e in range(1, 6)] + [epoch_blocks(counts, s, 0) for s in range(12, 17)]
    assert all(other != plan for other in others)
    assert len({tuple(o) for o in others}) == len(others)


def test_worker_rows_are_consecutive_disjoint_and_balanced():
    for rows in (0, 1, 5, 97, 1000):
        for workers in (1, 2, 3, 7, 16):
            ranges = [worker_rows(rows, w, workers) for w in range(workers)]
            assert ranges[0][0] == 0 and ranges[-1][1] == rows
            assert all(a[1] == b[0] for a, b in pairwise(ranges))  # each starts where the previous ended
            assert {hi - lo for lo, hi in ranges} <= {rows // workers, rows // workers + 1}


@pytest.mark.parametrize(("worker", "workers"), [(-1, 2), (2, 2), (0, 0)])
def test_a_worker_outside_the_cluster_is_refused(worker, workers):
    with pytest.raises(ValueError, match="not in"):
        worker_rows(10, worker, workers)
    with pytest.raises(ValueError, match="not in"):
        worker_slices([(0, 0)], [10], worker, workers)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(1, 9), min_size=1, max_size=15),
    st.integers(0, 1000),
    st.integers(1, 6),
)
def test_a_worker_reads_exactly_its_stretch_of_the_plan_laid_end_to_end(sizes, seed, workers):
    """Independent computation: lay the plan's rows end to end, cut at ``worker_rows``; each worker's slices must
    name exactly the rows of its stretch, in plan order."""
    counts = [len(sizes)]  # one shard; block i holds sizes[i] rows
    plan = epoch_blocks(counts, seed, 0)
    block_rows = [sizes[b] for _, b in plan]
    laid = [(block, r) for block, n in zip(plan, block_rows) for r in range(n)]
    for w in range(workers):
        start, stop = worker_rows(len(laid), w, workers)
        got = [(block, r) for block, lo, hi in worker_slices(plan, block_rows, w, workers) for r in range(lo, hi)]
        assert got == laid[start:stop]


def test_a_block_that_straddles_a_cut_is_shared_by_both_neighbours():
    plan = [(0, 0), (0, 1), (0, 2)]
    parts = [worker_slices(plan, [4, 4, 4], w, 2) for w in range(2)]
    assert parts == [[((0, 0), 0, 4), ((0, 1), 0, 2)], [((0, 1), 2, 4), ((0, 2), 0, 4)]]  # 6 rows each


def test_more_workers_than_rows_leave_some_with_nothing():
    parts = [worker_slices([(0, 0)], [2], w, 4) for w in range(4)]
    assert sum(hi - lo for part in parts for _, lo, hi in part) == 2
    assert sorted(len(part) for part in parts) == [0, 0, 1, 1]


def _is_permutation(p: np.ndarray, n: int) -> bool:
    return len(p) == n and np.array_equal(np.sort(p), np.arange(n))


def test_row_permutations_are_seeded_permutations_of_each_buffer():
    n = 500
    p = row_permutation(n, 3, 1, 0)
    assert _is_permutation(p, n) and not np.array_equal(p, np.arange(n))
    np.testing.assert_array_equal(p, row_permutation(n, 3, 1, 0))
    variants = [
        row_permutation(n, 4, 1, 0),  # another seed
        row_permutation(n, 3, 2, 0),  # another epoch
        row_permutation(n, 3, 1, 1),  # another buffer of the epoch
        row_permutation(n, 3, 1, 0, 1),  # worker 1's
        row_permutation(n, 3, 1, 0, 2),  # worker 2's
    ]
    assert all(_is_permutation(v, n) for v in variants)
    assert all(not np.array_equal(v, p) for v in variants)
    assert not np.array_equal(variants[3], variants[4])
    assert row_permutation(0, 3, 1, 0).size == 0


def test_bucket_permutations_are_seeded_per_split_and_bucket():
    n = 300
    p = bucket_permutation(n, 5, 0, 0)
    assert _is_permutation(p, n)
    np.testing.assert_array_equal(p, bucket_permutation(n, 5, 0, 0))
    others = [bucket_permutation(n, 6, 0, 0), bucket_permutation(n, 5, 1, 0), bucket_permutation(n, 5, 0, 1)]
    assert all(_is_permutation(o, n) and not np.array_equal(o, p) for o in others)
    # prepare's buckets and fit's buffers draw from separate streams even with equal numbers
    assert not np.array_equal(bucket_permutation(n, 5, 0, 0), row_permutation(n, 5, 0, 0))


_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix64(state: int) -> int:
    """The reference splitmix64 output for a state that has already been advanced (Steele, Lea, Flood 2014)."""
    z = state & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def test_the_reference_splitmix64_gives_its_published_first_outputs():
    # seed 0: the generator's first outputs, as every splitmix64 implementation prints them
    assert _splitmix64(_GOLDEN) == 0xE220A8397B1DCDAF
    assert _splitmix64(2 * _GOLDEN) == 0x6E789E6AA1B965F4


def test_row_buckets_are_splitmix64_of_the_row_id_under_the_seed():
    """Independent computation in Python integers: the seed advances the generator ``seed + 1`` steps, the row id
    is added to the state, and the bucket is the output modulo the buckets."""
    ids = np.array([0, 1, 2, 63, 1000, 123_456_789, 2**40 + 7, 2**62], dtype=np.int64)
    for seed in (0, 1, 42):
        for n_buckets in (1, 7, 1 << 32):
            expected = [_splitmix64(int(i) + _GOLDEN * (seed + 1)) % n_buckets for i in ids]
            assert row_buckets(ids, seed, n_buckets).tolist() == expected


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**20), st.integers(1, 64), st.data())
def test_row_buckets_do_not_depend_on_chunking_or_order(n, seed, n_buckets, data):
    ids = np.arange(10_000, 10_000 + n, dtype=np.int64)
    whole = row_buckets(ids, seed, n_buckets)
    assert whole.dtype == np.int64 and whole.min() >= 0 and whole.max() < n_buckets
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=5)))
    pieces = np.split(ids, cuts)
    np.testing.assert_array_equal(np.concatenate([row_buckets(p, seed, n_buckets) for p in pieces]), whole)
    order = np.random.default_rng(seed).permutation(n)
    np.testing.assert_array_equal(row_buckets(ids[order], seed, n_buckets), whole[order])
