"""``vectorize.rows``: ``SparseRows`` and ``TokenRows`` share ``len``, ``slice``, ``take``, ``concat`` and
``empty``; each operation is checked against the same operation on dense numpy arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtrain.vectorize.rows import (
    PADDING_LABEL,
    SparseRows,
    TokenRows,
    blank_rows,
    concat_rows,
    empty_rows,
)

N_COLS = 12


def sparse_from_dense(dense: np.ndarray, labels: np.ndarray, row_ids: np.ndarray) -> SparseRows:
    rows, cols = np.nonzero(dense)
    indptr = np.zeros(len(dense) + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=len(dense)), out=indptr[1:])
    return SparseRows(
        indptr, cols.astype(np.int32), dense[rows, cols].astype(np.float32), labels, row_ids, dense.shape[1]
    )


def random_dense(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dense = ((rng.random((n, N_COLS)) < 0.3) * rng.integers(1, 9, (n, N_COLS))).astype(np.float32)
    return dense, rng.integers(0, 4, n).astype(np.int32), np.arange(100, 100 + n, dtype=np.int64)


def both(n: int, seed: int):
    dense, labels, ids = random_dense(n, seed)
    tokens = (dense % 5).astype(np.int32)  # token ids, 0 as padding
    return (dense, labels, ids), sparse_from_dense(dense, labels, ids), TokenRows(tokens, labels, ids)


def test_inconsistent_arrays_are_refused():
    with pytest.raises(ValueError, match="lengths"):
        SparseRows(
            np.zeros(3, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            np.zeros(1, np.int32),
            np.zeros(1, np.int64),
            4,
        )
    with pytest.raises(ValueError, match="nnz"):
        SparseRows(
            np.array([0, 2]),
            np.zeros(1, np.int32),
            np.zeros(1, np.float32),
            np.zeros(1, np.int32),
            np.zeros(1, np.int64),
            4,
        )
    with pytest.raises(ValueError, match="shapes"):
        TokenRows(np.zeros((2, 3), np.int32), np.zeros(3, np.int32), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="shapes"):
        TokenRows(np.zeros(3, np.int32), np.zeros(3, np.int32), np.zeros(3, np.int64))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 30), st.integers(0, 10**6), st.data())
def test_slice_and_take_are_numpy_s_slice_and_fancy_index(n, seed, data):
    (dense, labels, ids), sparse, tokens = both(n, seed)
    start = data.draw(st.integers(0, n))
    stop = data.draw(st.integers(start, n))
    order = np.array(data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=40 if n else 0)), np.int64)
    part, picked = sparse.slice(start, stop), sparse.take(order)
    np.testing.assert_array_equal(part.to_dense(), dense[start:stop])
    np.testing.assert_array_equal(part.labels, labels[start:stop])
    np.testing.assert_array_equal(picked.to_dense(), dense[order])  # repeats allowed
    np.testing.assert_array_equal(picked.row_ids, ids[order])
    assert len(part) == stop - start and len(picked) == len(order)
    assert part.nnz == int((dense[start:stop] != 0).sum())
    tpart, tpicked = tokens.slice(start, stop), tokens.take(order)
    np.testing.assert_array_equal(tpart.tokens, tokens.tokens[start:stop])
    np.testing.assert_array_equal(tpicked.tokens, tokens.tokens[order])
    np.testing.assert_array_equal(tpicked.labels, labels[order])


def test_concat_is_numpy_s_concatenate_and_skips_empty_parts():
    (d1, l1, i1), s1, t1 = both(7, 1)
    (d2, l2, i2), s2, t2 = both(5, 2)
    sparse = SparseRows.concat([s1, SparseRows.empty(N_COLS), s2.slice(1, 5)])
    np.testing.assert_array_equal(sparse.to_dense(), np.concatenate([d1, d2[1:5]]))
    np.testing.assert_array_equal(sparse.row_ids, np.concatenate([i1, i2[1:5]]))
    assert sparse.indptr.dtype == np.int64 and sparse.indptr[0] == 0
    tokens = concat_rows([t1, TokenRows.empty(N_COLS), t2])
    assert isinstance(tokens, TokenRows)
    np.testing.assert_array_equal(tokens.tokens, np.concatenate([t1.tokens, t2.tokens]))
    np.testing.assert_array_equal(tokens.labels, np.concatenate([l1, l2]))
    assert concat_rows([s1, s2]).to_dense().shape == (12, N_COLS)
    only = SparseRows.empty(N_COLS)
    assert SparseRows.concat([only]) is only and SparseRows.concat([only, s1]) is s1  # nothing to copy


def test_coo_indices_are_the_dense_non_zeros_in_row_order():
    (dense, _, _), sparse, _ = both(9, 3)
    coo = sparse.coo_indices()
    assert coo.dtype == np.int64 and coo.shape == (sparse.nnz, 2)
    np.testing.assert_array_equal(coo, np.argwhere(dense != 0))


def test_empty_and_blank_rows_of_each_encoding():
    for encoding, kind in (("ngram", SparseRows), ("sequence", TokenRows)):
        empty = empty_rows(encoding, 7)
        assert isinstance(empty, kind) and len(empty) == 0 and empty.n_cols == 7
        blank = blank_rows(encoding, 7)
        assert isinstance(blank, kind) and len(blank) == 1 and blank.n_cols == 7
        assert blank.labels.tolist() == [0] and blank.row_ids.tolist() == [0]
        pad = blank_rows(encoding, 7, PADDING_LABEL)
        assert pad.labels.tolist() == [PADDING_LABEL]
    assert blank_rows("ngram", 7).nnz == 0
    np.testing.assert_array_equal(blank_rows("sequence", 3).tokens, [[0, 0, 0]])  # padding tokens only
