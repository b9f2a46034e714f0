"""``dataset.spill``: prepare's scratch store of hashed n-gram counts, each split's rows in its shuffle buckets.

Every row appended comes back exactly once, in the bucket ``shuffle.row_buckets`` gives it in its split, in the
order appended (or in the bucket's seeded order), exactly (whatever the values), on every read, the same for any
chunking; each read reports its progress under its pass's name; a truncated or damaged file is an error naming
it; a failed write is a typed error; hashed counts take under three tenths of their raw arrays' bytes."""

from __future__ import annotations

import csv
import errno
import logging
import os
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import DEMO_TRAIN

from streamtrain.dataset.counts import Source
from streamtrain.dataset.first_pass import split_bytes
from streamtrain.dataset.shuffle import bucket_permutation, row_buckets
from streamtrain.dataset.spill import Spill, SpillPart, bucket_counts
from streamtrain.dataset.spill_frames import _DTYPES, _HEADER
from streamtrain.errors import OutOfSpace
from streamtrain.vectorize.defaults import HASH_BUCKETS
from streamtrain.vectorize.ngrams import count_ngrams

N_COLS = 40
N_BUCKETS = [5, 2, 1]  # train, val, test


def part(n: int, seed: int, first_id: int = 0) -> SpillPart:
    rng = np.random.default_rng(seed)
    counts = sp.random(n, N_COLS, density=0.2, format="csr", random_state=seed, dtype=np.float64)
    counts.data = np.round(counts.data * 10) + 1  # counts, as prepare hashes them
    return SpillPart(
        counts,
        rng.integers(0, 3, n).astype(np.int32),
        rng.integers(0, 3, n).astype(np.uint8),
        np.arange(first_id, first_id + n, dtype=np.int64),
    )


def concat(parts: list[SpillPart]) -> SpillPart:
    return SpillPart(
        sp.vstack([p.counts.astype(np.float32) for p in parts], format="csr"),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.splits for p in parts]),
        np.concatenate([p.row_ids for p in parts]),
    )


def expected(sent: list[SpillPart], n_buckets: list[int], seed: int) -> dict[tuple[int, int], SpillPart]:
    """Per (split, bucket): the rows sent there, in the order sent."""
    rows = concat(sent)
    out = {}
    for split, n in enumerate(n_buckets):
        in_split = np.flatnonzero(rows.splits == split)
        buckets = row_buckets(rows.row_ids[in_split], seed, n)
        for b in range(n):
            picked = in_split[buckets == b]
            if len(picked):
                out[split, b] = rows.take(picked)
    return out


def assert_same(got: SpillPart, sent: SpillPart) -> None:
    assert got.counts.shape == sent.counts.shape
    assert got.counts.dtype == np.float32
    sent_csr = sent.counts.tocsr()  # entry by entry, in the order sent: explicit zeros and unsorted rows too
    np.testing.assert_array_equal(got.counts.indptr, sent_csr.indptr)
    np.testing.assert_array_equal(got.counts.indices, sent_csr.indices)
    np.testing.assert_array_equal(got.counts.data.view(np.uint32), sent_csr.data.astype(np.float32).view(np.uint32))
    np.testing.assert_array_equal(got.labels, sent.labels)
    np.testing.assert_array_equal(got.splits, sent.splits)
    np.testing.assert_array_equal(got.row_ids, sent.row_ids)
    assert (got.labels.dtype, got.splits.dtype, got.row_ids.dtype) == (np.int32, np.uint8, np.int64)


def read_all(spill: Spill, shuffled: bool = False) -> dict[tuple[int, int], SpillPart]:
    return {(b.split, b.number): p for b, p in spill.read(range(len(spill.n_buckets)), _keep, shuffled=shuffled)}


def _keep(bucket, part):
    return part


def test_each_row_comes_back_once_in_its_bucket_in_the_order_appended_on_every_read(tmp_path):
    sent = [part(25, 0), part(1, 1, 25), part(60, 2, 26), part(0, 3, 86), part(140, 4, 86)]  # an empty part too
    spill = Spill(tmp_path / "spill", N_COLS, N_BUCKETS, seed=3, buffer_entries=150)  # several flushes
    for p in sent:
        spill.append(p)
    spill.flush()
    assert sorted(f.name for f in (tmp_path / "spill").iterdir()) == ["spill.bin"]
    assert spill.nbytes == (tmp_path / "spill" / "spill.bin").stat().st_size
    want = expected(sent, N_BUCKETS, 3)
    assert len(want) > 5  # rows in most buckets of every split
    for _ in range(3):
        got = read_all(spill)
        assert got.keys() == want.keys()
        for key in want:
            assert_same(got[key], want[key])
    assert spill.rows == 226


def test_reads_on_a_pools_threads_give_the_rows_a_read_here_gives(tmp_path):
    """The passes read buckets on worker threads, each with zstd contexts of its own; the rows are the same."""
    sent = [part(400, 8), part(300, 9, 400)]
    spill = Spill(tmp_path, N_COLS, N_BUCKETS, seed=2, buffer_entries=120)  # about 40 frames a bucket
    for p in sent:
        spill.append(p)
    spill.flush()
    here = read_all(spill, shuffled=True)
    for _ in range(2):
        with ThreadPoolExecutor(4) as pool:
            threads = {(b.split, b.number): p for b, p in spill.read(range(3), _keep, executor=pool, shuffled=True)}
        assert threads.keys() == here.keys() == expected(sent, N_BUCKETS, 2).keys()
        for key in here:
            assert_same(threads[key], here[key])


def test_a_shuffled_read_is_each_bucket_in_its_seeded_permutation(tmp_path):
    sent = [part(200, 5)]
    spill = Spill(tmp_path, N_COLS, N_BUCKETS, seed=7, buffer_entries=100)
    spill.append(sent[0])
    spill.flush()
    plain, shuffled = read_all(spill), read_all(spill, shuffled=True)
    for (split, b), rows in plain.items():
        assert_same(shuffled[split, b], rows.take(bucket_permutation(len(rows.labels), 7, split, b)))
    assert any(not np.array_equal(shuffled[k].row_ids, plain[k].row_ids) for k in plain)


@pytest.mark.parametrize("chunk, buffer", [(1, 1), (7, 60), (64, 10_000)])
def test_the_buckets_do_not_depend_on_chunking_or_buffering(tmp_path, chunk, buffer):
    rows = part(300, 6)
    spill = Spill(tmp_path, N_COLS, N_BUCKETS, seed=1, buffer_entries=buffer)
    for lo in range(0, 300, chunk):
        spill.append(rows.take(np.arange(lo, min(lo + chunk, 300))))
    spill.flush()
    got, want = read_all(spill, shuffled=True), read_all(_whole(tmp_path / "whole", rows), shuffled=True)
    assert got.keys() == want.keys()
    for key in want:
        assert_same(got[key], want[key])


def _whole(directory, rows: SpillPart) -> Spill:
    spill = Spill(directory, N_COLS, N_BUCKETS, seed=1)
    spill.append(rows)
    spill.flush()
    return spill


def hashed(rows: list[list[int]], counts: list[list[float]], n_cols: int = HASH_BUCKETS) -> sp.csr_matrix:
    """A CSR part with exactly these entries per row, in this order."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([i for r in rows for i in r], np.int32)
    data = np.array([c for r in counts for c in r], np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_cols))


def test_real_shaped_and_odd_rows_come_back_exactly(tmp_path):
    top = HASH_BUCKETS - 1
    rng = np.random.default_rng(8)
    many = np.sort(rng.choice(HASH_BUCKETS, 300, replace=False))  # gaps over 2**16 and under
    rows = [[0, 1, 65535, 65536, top], [], [top], many.tolist(), [], [0], [70000, 200000, top - 1]]
    counts = [[1, 255, 256, 70000, 3], [], [1], rng.integers(1, 4, 300).tolist(), [], [2], [4096, 1, 65535]]
    sent = [
        SpillPart(  # counts over 255 and 65535, empty rows (first and last too), indices 0 and 2**21 - 1
            hashed([[], *rows, []], [[], *counts, []]),
            np.array([0, 3, 1, 2, 0, 1, 2, 3, 1], np.int32),
            np.array([0, 1, 2, 0, 0, 1, 0, 0, 2], np.uint8),
            np.arange(100, 109, dtype=np.int64),
        ),
        SpillPart(hashed([[5]], [[300]]), np.array([70000], np.int32), np.array([0], np.uint8), np.array([7])),
        SpillPart(  # what the first pass never sends, exact all the same: unsorted rows, fractions, gapped ids
            hashed([[9, 3, top, 0], [7, 7], [4]], [[0.5, 1e9, -2, 0], [np.nan, 1], [-0.0]]),
            np.array([-1, 2**31 - 1, 0], np.int32),
            np.array([0, 0, 0], np.uint8),
            np.array([2**40, 5, 6], np.int64),
        ),
    ]
    for p in sent:
        p.row_ids = p.row_ids.astype(np.int64)
    spill = Spill(tmp_path, HASH_BUCKETS, [1, 1, 1], seed=0)  # one bucket a split: the rows in the order sent
    for p in sent:
        spill.append(p)
    spill.flush()
    want = expected(sent, [1, 1, 1], 0)
    for _ in range(2):
        got = read_all(spill)
        for key in want:
            assert_same(got[key], want[key])


def raw_bytes(part: SpillPart) -> int:
    """A part's bytes as raw arrays: indptr int64, indices int32, data float32, labels int32, splits, row ids int64."""
    rows, nnz = part.counts.shape[0], part.counts.nnz
    return (rows + 1) * 8 + nnz * (4 + 4) + rows * (4 + 1 + 8)


def test_hashed_counts_take_under_three_tenths_of_their_raw_bytes(tmp_path):
    with open(DEMO_TRAIN, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    names = sorted({r["label"] for r in table})
    n = len(table)  # 4,000: about one chunk of prepare's
    sent = SpillPart(
        count_ngrams([r["text"] for r in table], (1, 2), HASH_BUCKETS),  # 46 entries a row, counts up to 13
        np.array([names.index(r["label"]) for r in table], np.int32),
        np.random.default_rng(9).choice(np.array([0, 1], np.uint8), n, p=[0.9, 0.1]),
        np.arange(1000, 1000 + n, dtype=np.int64),
    )
    spill = Spill(tmp_path, HASH_BUCKETS, [4, 1, 1], seed=0)  # four frames of about 900 rows, one of about 400
    spill.append(sent)
    spill.flush()
    want = expected([sent], [4, 1, 1], 0)
    for key, got in read_all(spill).items():
        assert_same(got, want[key])
    assert spill.nbytes <= 0.30 * raw_bytes(sent)  # measured 0.277: 2 bytes an entry for the low 16 bits


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def progress_lines():
    """The progress records of the passes, as a log file would get them (``streamtrain.progress``)."""
    logger = logging.getLogger("streamtrain.progress")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_each_read_reports_its_progress_under_the_name_of_its_pass(tmp_path, progress_lines):
    sent = part(42, 5)
    spill = Spill(tmp_path, N_COLS, N_BUCKETS, 0, passes=["pass 2/3: choosing features", "pass 3/3: writing shards"])
    spill.append(sent)
    spill.flush()
    train_rows = int((sent.splits == 0).sum())
    for splits in ([0], [0, 1, 2], [0, 1, 2]):
        for _ in spill.read(splits, _keep):
            pass
    done = [r for r in progress_lines if getattr(r, "done", False)]
    assert [(r.__dict__["pass"], r.rows) for r in done] == [
        ("pass 2/3: choosing features", train_rows),  # the training buckets only
        ("pass 3/3: writing shards", 42),
        ("reading the spill", 42),  # a read nobody named
    ]
    assert done[1].bytes == done[1].total_bytes == spill.nbytes


def spilled(tmp_path) -> Spill:
    spill = Spill(tmp_path, N_COLS, N_BUCKETS, 0)
    spill.append(part(60, 7))
    spill.flush()
    return spill


def test_a_truncated_spill_is_an_error_not_fewer_rows(tmp_path):
    spill = spilled(tmp_path)
    spill.path.write_bytes(spill.path.read_bytes()[:-5])
    with pytest.raises(OSError, match=r"spill\.bin: the spill is shorter than written"):
        read_all(spill)


@pytest.mark.parametrize("damage", ["zeros", "one flipped byte in a header", "the packed part's size", "its bytes"])
def test_a_damaged_spill_is_an_error_naming_its_file(tmp_path, damage):
    spill = spilled(tmp_path)
    data = bytearray(spill.path.read_bytes())
    rows, nnz, types = struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<Q", data, 8)[0], data[32:37]
    packed = _HEADER.itemsize + rows * np.dtype(_DTYPES[types[0]]).itemsize + nnz * 2  # the first frame's zstd frame
    if damage == "zeros":
        data = bytearray(len(data))
    elif damage == "one flipped byte in a header":
        data[4] ^= 0x01  # the first frame's row count
    elif damage == "the packed part's size":
        data[packed + 5] ^= 0x40  # the content size in the zstd frame's header: never allocated as it says
    else:
        data[packed + 6 : packed + 12] = bytes(6)
    spill.path.write_bytes(bytes(data))
    with pytest.raises(OSError, match=r"spill\.bin: the spill is not what was written"):
        read_all(spill)


def test_a_failed_write_says_which_file_and_why(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full, where every write fails with ENOSPC")
    spill = Spill(tmp_path, HASH_BUCKETS, [1, 1, 1], 0)
    spill.path.symlink_to("/dev/full")
    spill.append(SpillPart(hashed([[1, 2]], [[1, 300]]), np.zeros(1, np.int32), np.zeros(1, np.uint8), np.zeros(1)))
    with pytest.raises(OutOfSpace, match=r"cannot write .*spill\.bin: No space left on device") as caught:
        spill.flush()
    assert caught.value.__cause__.errno == errno.ENOSPC


def test_buckets_come_from_each_splits_share_of_the_input_bytes(tmp_path):
    sources = [
        Source(path="a.csv", role="train", format="csv", bytes=30 << 20),
        Source(path="b.csv", role="train", format="csv", bytes=10 << 20),
        Source(path="t.csv", role="test", format="csv", bytes=1 << 20),
    ]
    assert split_bytes(sources, 0.1) == [round(0.9 * (40 << 20)), round(0.1 * (40 << 20)), 1 << 20]
    assert bucket_counts(split_bytes(sources, 0.1), 2 << 20) == [18, 2, 1]
    assert bucket_counts([0, 0, 0], 2 << 20) == [1, 1, 1]  # an empty split: one bucket, never written
    old = tmp_path / "old.csv"  # recorded by a release that kept no sizes: its size on disk counts
    old.write_bytes(b"x" * 3000)
    unsized = [Source(path=str(old), role="train", format="csv"), Source(path="gone.csv", role="test", format="csv")]
    assert split_bytes(unsized, 0.5) == [1500, 1500, 0]
    with pytest.raises(ValueError):
        bucket_counts([1], 0)
