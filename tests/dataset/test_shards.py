"""Both shard writers round-trip rows exactly, in bounded shards, renamed only when complete."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import random_rows, random_tokens

from streamtrain.dataset.shards import SplitWriter, open_reader
from streamtrain.fs.checksums import sha256_file
from streamtrain.vectorize.rows import Rows, SparseRows, TokenRows


def assert_rows_equal(a: Rows, b: Rows) -> None:
    assert type(a) is type(b)
    if isinstance(a, SparseRows):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.values, b.values)
    else:
        np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.row_ids, b.row_ids)


@pytest.mark.parametrize("encoding", ["ngram", "sequence"])
@pytest.mark.parametrize("fmt", ["hdf5", "parquet"])
def test_split_writer_round_trip(tmp_path, fmt, encoding):
    rows = random_rows(103, seed=1) if encoding == "ngram" else random_tokens(103, width=9, seed=1)
    writer = SplitWriter(tmp_path, fmt, "train", encoding, rows.n_cols, shard_rows=40, block_rows=16)
    for start in range(0, 103, 25):  # uneven appends straddle blocks and shards
        writer.write(rows.slice(start, min(start + 25, 103)))
    shards = writer.close()

    assert [s.rows for s in shards] == [40, 40, 23]
    assert [s.blocks for s in shards] == [3, 3, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [s.path for s in shards]  # no .tmp left
    back = []
    for s in shards:
        assert s.sha256 == sha256_file(tmp_path / s.path)
        assert s.bytes == (tmp_path / s.path).stat().st_size
        reader = open_reader(fmt, tmp_path / s.path, encoding, rows.n_cols, s.block_rows)
        blocks = [reader.read_block(b) for b in range(s.blocks)]
        assert [len(b) for b in blocks] == [16, 16, 8] if s.rows == 40 else [16, 7]
        back += blocks
        reader.close()
    assert_rows_equal(type(rows).concat(back), rows)


def test_parquet_blocks_are_row_groups(tmp_path):
    writer = SplitWriter(tmp_path, "parquet", "val", "ngram", 50, shard_rows=1000, block_rows=10)
    writer.write(random_rows(35))
    (info,) = writer.close()
    meta = pq.ParquetFile(tmp_path / info.path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10, 10, 10, 5]


def test_token_rows_take_and_concat():
    rows = random_tokens(20, width=5, seed=2)
    order = np.random.default_rng(1).permutation(20)
    np.testing.assert_array_equal(rows.take(order).tokens, rows.tokens[order])
    both = TokenRows.concat([rows.slice(0, 3), TokenRows.empty(5), rows.slice(3, 20)])
    np.testing.assert_array_equal(both.tokens, rows.tokens)
    np.testing.assert_array_equal(both.row_ids, rows.row_ids)


def test_rows_take_and_concat():
    rows = random_rows(30, seed=3)
    order = np.random.default_rng(0).permutation(30)
    taken = rows.take(order)
    dense = rows.to_dense()
    np.testing.assert_array_equal(taken.to_dense(), dense[order])
    np.testing.assert_array_equal(taken.row_ids, rows.row_ids[order])
    np.testing.assert_array_equal(SparseRows.concat([rows.slice(0, 7), rows.slice(7, 30)]).to_dense(), dense)
    coo = rows.coo_indices()
    np.testing.assert_array_equal(dense[coo[:, 0], coo[:, 1]], rows.values)
