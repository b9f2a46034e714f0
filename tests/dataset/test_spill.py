"""``dataset.spill``: prepare's scratch store of hashed n-gram counts. What goes in comes back, part by part and
in order, on every pass, exactly (whatever the values), each pass reporting its progress under its own name; a
truncated or damaged part is an error; hashed counts take about a quarter of their raw arrays' bytes."""

from __future__ import annotations

import csv
import errno
import logging
import os

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import DEMO_TRAIN

from streamtrain.dataset.spill import Spill, SpillPart
from streamtrain.errors import OutOfSpace
from streamtrain.vectorize.defaults import HASH_BUCKETS
from streamtrain.vectorize.ngrams import count_ngrams

N_COLS = 40


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


def assert_same(got: SpillPart, sent: SpillPart) -> None:
    assert got.counts.shape == sent.counts.shape
    assert (got.counts != sent.counts.astype(np.float32)).nnz == 0
    assert got.counts.dtype == np.float32
    sent_csr = sent.counts.tocsr()  # entry by entry, in the order sent: explicit zeros and unsorted rows too
    np.testing.assert_array_equal(got.counts.indptr, sent_csr.indptr)
    np.testing.assert_array_equal(got.counts.indices, sent_csr.indices)
    np.testing.assert_array_equal(got.counts.data, sent_csr.data.astype(np.float32))
    np.testing.assert_array_equal(got.labels, sent.labels)
    np.testing.assert_array_equal(got.splits, sent.splits)
    np.testing.assert_array_equal(got.row_ids, sent.row_ids)
    assert (got.labels.dtype, got.splits.dtype, got.row_ids.dtype) == (np.int32, np.uint8, np.int64)


def test_parts_come_back_as_they_went_in_on_every_pass(tmp_path):
    sent = [part(25, 0), part(1, 1, 25), part(60, 2, 26), part(0, 3, 86)]  # an empty part too
    spill = Spill(tmp_path / "spill", N_COLS, passes=["first", "second"])
    for p in sent:
        spill.append(p)
    assert spill.parts == 4
    assert sorted(f.name for f in (tmp_path / "spill").iterdir()) == [f"part-{i:06d}.bin" for i in range(4)]
    assert spill.sizes == [(tmp_path / "spill" / f"part-{i:06d}.bin").stat().st_size for i in range(4)]
    for _ in range(3):  # two named passes, then one more
        got = list(spill)
        assert len(got) == 4
        for g, s in zip(got, sent):
            assert_same(g, s)


def test_index_dtypes_are_normalised_on_the_way_in(tmp_path):
    p = part(10, 4)
    p.counts.indptr = p.counts.indptr.astype(np.int32)  # scipy picks int32 for small matrices
    p.counts.indices = p.counts.indices.astype(np.int64)
    spill = Spill(tmp_path, N_COLS)
    spill.append(p)
    (got,) = list(spill)
    assert_same(got, p)
    assert got.counts.indices.dtype == np.int32
    assert spill.sizes == [(tmp_path / "part-000000.bin").stat().st_size]


def hashed(rows: list[list[int]], counts: list[list[float]], n_cols: int = HASH_BUCKETS) -> sp.csr_matrix:
    """A CSR part with exactly these entries per row, in this order."""
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([i for r in rows for i in r], np.int32)
    data = np.array([c for r in counts for c in r], np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_cols))


def test_real_shaped_parts_come_back_exactly(tmp_path):
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
        SpillPart(hashed([[top]], [[1]]), np.array([2], np.int32), np.array([1], np.uint8), np.array([109])),
        SpillPart(hashed([[5]], [[300]]), np.array([70000], np.int32), np.array([0], np.uint8), np.array([7])),
        SpillPart(hashed([], []), np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(0, np.int64)),
        SpillPart(  # what the first pass never sends, exact all the same: unsorted rows, fractions, gapped ids
            hashed([[9, 3, top, 0], [7, 7], [4]], [[0.5, 1e9, -2, 0], [np.nan, 1], [-0.0]]),
            np.array([-1, 2**31 - 1, 0], np.int32),
            np.array([3, 0, 1], np.uint8),
            np.array([2**40, 5, 6], np.int64),
        ),
    ]
    spill = Spill(tmp_path, HASH_BUCKETS)
    for p in sent:
        spill.append(p)
    for _ in range(2):
        got = list(spill)
        assert len(got) == len(sent)
        for g, s in zip(got[:4], sent[:4]):
            assert_same(g, s)
        odd = got[4].counts  # NaN != NaN and -0.0 == 0.0: compare bit patterns
        np.testing.assert_array_equal(odd.data.view(np.uint32), sent[4].counts.data.view(np.uint32))
        np.testing.assert_array_equal(odd.indices, sent[4].counts.indices)
        np.testing.assert_array_equal(odd.indptr, sent[4].counts.indptr)
        for field in ("labels", "splits", "row_ids"):
            np.testing.assert_array_equal(getattr(got[4], field), getattr(sent[4], field))


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
    spill = Spill(tmp_path, HASH_BUCKETS)
    spill.append(sent)
    (got,) = list(spill)
    assert_same(got, sent)
    assert spill.sizes[0] <= 0.30 * raw_bytes(sent)  # measured 0.273: 2 bytes an entry for the low 16 bits


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
    sent = [part(30, 5), part(12, 6, 30)]
    spill = Spill(tmp_path, N_COLS, passes=["pass 2/3: choosing features", "pass 3/3: writing shards"])
    for p in sent:
        spill.append(p)
    for _ in range(3):
        for _ in spill:
            pass
    done = [r for r in progress_lines if getattr(r, "done", False)]
    assert [r.__dict__["pass"] for r in done] == [
        "pass 2/3: choosing features",
        "pass 3/3: writing shards",
        "reading the spill",  # a read nobody named
    ]
    assert all(r.rows == 42 and r.bytes == r.total_bytes == sum(spill.sizes) for r in done)


def test_a_truncated_part_is_an_error_not_fewer_rows(tmp_path):
    spill = Spill(tmp_path, N_COLS)
    spill.append(part(20, 7))
    path = tmp_path / "part-000000.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(OSError, match=r"part-000000\.bin: a scratch part is shorter than written"):
        list(spill)


def test_a_damaged_part_is_an_error_naming_its_file(tmp_path):
    spill = Spill(tmp_path, N_COLS)
    spill.append(part(20, 7))
    path = tmp_path / "part-000000.bin"
    path.write_bytes(bytes(path.stat().st_size))  # as long as written, all zeros
    with pytest.raises(OSError, match=r"part-000000\.bin: a scratch part is not what was written"):
        list(spill)


def test_a_failed_write_says_which_part_and_why(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full, where every write fails with ENOSPC")
    spill = Spill(tmp_path, HASH_BUCKETS)
    (tmp_path / "part-000000.bin").symlink_to("/dev/full")
    with pytest.raises(OutOfSpace, match=r"cannot write .*part-000000\.bin: No space left on device") as caught:
        spill.append(SpillPart(hashed([[1, 2]], [[1, 300]]), np.zeros(1, np.int32), np.zeros(1, np.uint8), np.zeros(1)))
    assert caught.value.__cause__.errno == errno.ENOSPC
