"""Both shard writers round-trip rows exactly, in bounded shards, renamed only when complete."""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import random_rows, random_tokens

from streamtrain.dataset.hdf5_chunks import ChunkMap
from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.prepare import PrepareOptions, prepare
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


def h5py_block(path, encoding: str, n_cols: int, start: int, stop: int) -> Rows:
    """Rows ``[start, stop)`` of an HDF5 shard read through h5py alone: what the reader must return."""
    with h5py.File(path, "r") as f:
        labels, row_ids = f["labels"][start:stop], f["row_ids"][start:stop]
        if encoding == "sequence":
            return TokenRows(f["tokens"][start:stop], labels, row_ids)
        indptr = f["indptr"][start : stop + 1]
        lo, hi = int(indptr[0]), int(indptr[-1])
        return SparseRows(indptr - lo, f["indices"][lo:hi], f["values"][lo:hi], labels, row_ids, n_cols)


@pytest.mark.parametrize("vectorizer", ["ngram", "sequence"])
def test_hdf5_blocks_read_by_chunk_offset_are_h5pys(ag_news_csv, tmp_path, vectorizer):
    """AG News in blocks of 100 rows: blocks straddle the 1,024-row and 16,384-entry chunks, shards end short."""
    data = tmp_path / "data"
    opts = PrepareOptions(
        inputs=[str(ag_news_csv)], data=str(data), text_column=[1, 2], label_column=0,
        vectorizer=vectorizer, shard_rows=2500, block_rows=100,
    )  # fmt: skip
    prepare(opts)
    m = Manifest.load(data)
    assert len(m.shards) > 3
    for shard in m.shards:
        path = data / shard.path
        with h5py.File(path, "r") as f:
            assert ChunkMap.of(f) is not None  # the offsets path, not h5py's, is what is compared below
        reader = open_reader(m.shard_format, path, m.encoding, m.row_width, shard.block_rows)
        for b in range(shard.blocks):
            start = b * shard.block_rows
            got = reader.read_block(b)
            assert_rows_equal(got, h5py_block(path, m.encoding, m.row_width, start, min(start + 100, shard.rows)))
            if isinstance(got, SparseRows):
                assert (got.indices.dtype, got.values.dtype) == (np.int32, np.float32)
            if b == 1:
                reader.close()  # a closed reader opens its file again on the next read
        reader.close()


def test_an_hdf5_shard_whose_chunks_are_compressed_is_read_through_h5py(tmp_path):
    rows = random_rows(70, seed=4)
    (info,) = _written(tmp_path, rows)
    path = tmp_path / info.path
    with h5py.File(path, "a") as f:  # the same values, stored with a filter the offsets cannot follow
        values = f["values"][:]
        del f["values"]
        f.create_dataset("values", data=values, chunks=(64,), compression="gzip")
    with h5py.File(path, "r") as f:
        assert ChunkMap.of(f) is None
    reader = open_reader("hdf5", path, "ngram", rows.n_cols, 32)
    assert_rows_equal(SparseRows.concat([reader.read_block(b) for b in range(3)]), rows)
    reader.close()


def test_an_hdf5_shard_cut_short_after_it_was_mapped_fails_its_read(tmp_path):
    rows = random_rows(70, seed=5)
    (info,) = _written(tmp_path, rows)
    path = tmp_path / info.path
    reader = open_reader("hdf5", path, "ngram", rows.n_cols, 32)
    reader.read_block(0)
    reader.close()
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    with pytest.raises(OSError, match="the file ends inside a chunk"):
        for b in range(3):
            reader.read_block(b)
    reader.close()


def _written(root, rows: SparseRows) -> list:
    """``rows`` as one HDF5 shard of blocks of 32 rows in ``root``: its ``ShardInfo`` list."""
    writer = SplitWriter(root, "hdf5", "train", "ngram", rows.n_cols, shard_rows=1000, block_rows=32)
    writer.write(rows)
    return writer.close()
