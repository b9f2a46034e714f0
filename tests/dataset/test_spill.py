"""``dataset.spill``: prepare's scratch store of hashed n-gram counts. What goes in comes back, part by part and
in order, on every pass, each pass reporting its progress under its own name; a truncated part is an error."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from streamtrain.dataset.spill import Spill, SpillPart

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
    nnz = p.counts.nnz
    assert spill.sizes == [(10 + 1) * 8 + nnz * 4 + nnz * 4 + 10 * 4 + 10 * 1 + 10 * 8]  # int64, int32, float32, ...


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
    with pytest.raises(OSError, match="shorter than written"):
        list(spill)
