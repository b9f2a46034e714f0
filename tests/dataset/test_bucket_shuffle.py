"""prepare's external shuffle: every row once, in a seeded random order, whatever the chunking."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from helpers import random_rows, random_tokens

from streamtrain.dataset.bucket_shuffle import BucketShuffle
from streamtrain.dataset.shuffle import row_buckets
from streamtrain.errors import OutOfSpace
from streamtrain.vectorize.rows import SparseRows, TokenRows


def shuffled(tmp_path, rows, chunk: int, seed: int = 0, bucket_rows: int = 64, buffer_rows: int = 100):
    scratch = tmp_path / f"s{seed}-{chunk}"
    shuffle = BucketShuffle(scratch, len(rows), type(rows).empty(rows.n_cols), seed, 0, bucket_rows, buffer_rows)
    for lo in range(0, len(rows), chunk):
        shuffle.add(rows.slice(lo, min(lo + chunk, len(rows))))
    out = list(shuffle.drain())
    assert not scratch.exists() or not list(scratch.iterdir())  # every bucket file read and deleted
    return shuffle, type(rows).concat(out)


def by_row_id(rows):
    return rows.take(np.argsort(rows.row_ids))


def test_row_buckets_are_seeded_and_uniform():
    ids = np.arange(200_000, dtype=np.int64)
    b = row_buckets(ids, 0, 10)
    assert b.min() == 0 and b.max() == 9
    counts = np.bincount(b)
    assert np.abs(counts - 20_000).max() < 600  # binomial sd ~134
    np.testing.assert_array_equal(b, row_buckets(ids, 0, 10))
    assert np.mean(b == row_buckets(ids, 1, 10)) < 0.15  # another seed, another assignment
    np.testing.assert_array_equal(row_buckets(ids[5:9], 0, 10), b[5:9])  # depends on the id only


@pytest.mark.parametrize("make", [random_rows, random_tokens])
def test_every_row_once_in_a_random_order(tmp_path, make):
    rows = make(1000)
    shuffle, out = shuffled(tmp_path, rows, chunk=37)
    assert shuffle.n_buckets == 16  # ceil(1000 / 64): many buckets, many flushes
    assert len(out) == 1000
    assert not np.array_equal(out.row_ids, rows.row_ids)
    back = by_row_id(out)
    np.testing.assert_array_equal(back.row_ids, rows.row_ids)
    np.testing.assert_array_equal(back.labels, rows.labels)
    if isinstance(rows, SparseRows):
        np.testing.assert_array_equal(back.to_dense(), rows.to_dense())
    else:
        assert isinstance(out, TokenRows)
        np.testing.assert_array_equal(back.tokens, rows.tokens)


def test_order_depends_on_seed_not_on_chunking(tmp_path):
    rows = random_rows(700)
    _, a = shuffled(tmp_path, rows, chunk=50)
    _, b = shuffled(tmp_path, rows, chunk=701)
    _, c = shuffled(tmp_path, rows, chunk=50, seed=1)
    np.testing.assert_array_equal(a.row_ids, b.row_ids)
    assert not np.array_equal(a.row_ids, c.row_ids)


def test_sorted_input_comes_out_mixed(tmp_path):
    """A class-sorted input (a directory per class) leaves the shuffle with classes spread evenly."""
    rows = random_rows(4000)
    rows = rows.take(np.argsort(rows.labels, kind="stable"))
    _, out = shuffled(tmp_path, rows, chunk=500, bucket_rows=512, buffer_rows=1000)
    share = [np.bincount(out.labels[lo : lo + 400], minlength=3) / 400 for lo in range(0, 4000, 400)]
    assert np.abs(np.array(share) - np.bincount(rows.labels) / 4000).max() < 0.1


def test_one_bucket_stays_in_memory(tmp_path):
    rows = random_rows(50)
    shuffle, out = shuffled(tmp_path, rows, chunk=7, bucket_rows=64)
    assert shuffle.n_buckets == 1 and not (tmp_path / "s0-7").exists()
    np.testing.assert_array_equal(np.sort(out.row_ids), rows.row_ids)


@pytest.mark.parametrize("make", [random_rows, random_tokens])
def test_a_cut_short_bucket_file_is_an_error_naming_it_not_fewer_rows(tmp_path, make):
    rows = make(300)
    shuffle = BucketShuffle(tmp_path, len(rows), type(rows).empty(rows.n_cols), 0, 0, bucket_rows=64, buffer_rows=100)
    shuffle.add(rows)
    path = tmp_path / "bucket-000000.bin"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(OSError, match=r"bucket-000000\.bin: a scratch bucket is shorter than written"):
        list(shuffle.drain())


def test_a_failed_bucket_write_says_which_file_and_why(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full, where every write fails with ENOSPC")
    rows = random_rows(300)
    shuffle = BucketShuffle(tmp_path, len(rows), type(rows).empty(rows.n_cols), 0, 0, bucket_rows=64, buffer_rows=100)
    (tmp_path / "bucket-000000.bin").symlink_to("/dev/full")
    with pytest.raises(OutOfSpace, match=r"cannot write .*bucket-000000\.bin: No space left on device") as caught:
        shuffle.add(rows)
    assert caught.value.__cause__.errno == errno.ENOSPC
