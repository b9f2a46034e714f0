"""Manifest round trip, step counts from metadata, and exactly-once-per-epoch batching."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import prepare_csv

from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest
from streamtrain.errors import DataError
from streamtrain.train.batches import BatchStream, SplitSource


@pytest.fixture(
    scope="module",
    params=[("hdf5", "ngram"), ("parquet", "ngram"), ("hdf5", "sequence"), ("parquet", "sequence")],
    ids=lambda p: "-".join(p),
)
def demo(request, tmp_path_factory):
    fmt, vectorizer = request.param
    out = tmp_path_factory.mktemp(f"demo-{fmt}-{vectorizer}") / "data"
    return prepare_csv(DEMO_TRAIN, out, DEMO_TEST, format=fmt, vectorizer=vectorizer, shard_rows=1000, block_rows=64)


def test_manifest_round_trip(demo):
    m = Manifest.load(demo)
    doc = json.loads((demo / MANIFEST_NAME).read_text())
    assert m.to_json() == doc
    assert doc["format_version"] == 1 and doc["labels"] == sorted(doc["labels"])
    assert m.rows("train") + m.rows("val") == 4000 and m.rows("test") == 1000
    assert doc["stats"]["rows"] == {"train": m.rows("train"), "val": m.rows("val"), "test": 1000}
    assert all(s.rows <= 1000 for s in m.shards)
    assert 300 < m.rows("val") < 500  # ~10% by hash of text
    assert m.encoding == ("sequence" if m.choice["chosen"] == "sequence" else "ngram")
    assert (m.sequence_length is not None) == (m.encoding == "sequence")
    m.verify(demo)


def test_manifest_detects_damage(demo, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)
    m = Manifest.load(copy)
    shard = copy / m.shards[0].path
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum"):
        m.verify(copy)
    shard.unlink()
    with pytest.raises(DataError, match="missing"):
        Manifest.load(copy)
    (copy / MANIFEST_NAME).unlink()
    with pytest.raises(DataError, match="no manifest"):
        Manifest.load(copy)


@pytest.mark.parametrize("batch_size", [128, 100, 7])
def test_each_row_once_per_epoch(demo, batch_size):
    m = Manifest.load(demo)
    source = SplitSource(demo, m, "train")
    stream = BatchStream(source, batch_size, shuffle=True, seed=3, buffer_blocks=3)
    rows = m.rows("train")
    assert stream.steps == math.ceil(rows / batch_size)
    assert rows % batch_size  # the last batch is partial in every case here

    expected = np.sort(
        np.concatenate([source.read((s, b)).row_ids for s, n in enumerate(source.block_counts) for b in range(n)])
    )
    assert len(expected) == rows == len(np.unique(expected))
    orders = []
    for epoch in range(2):
        batches = list(stream.epoch(epoch))
        assert len(batches) == stream.steps
        assert [len(b) for b in batches[:-1]] == [batch_size] * (stream.steps - 1)
        assert len(batches[-1]) == rows - batch_size * (stream.steps - 1)
        seen = np.concatenate([b.row_ids for b in batches])
        np.testing.assert_array_equal(np.sort(seen), expected)
        orders.append(seen)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch
    again = np.concatenate([b.row_ids for b in BatchStream(source, batch_size, True, 3, 3).epoch(1)])
    np.testing.assert_array_equal(again, orders[1])  # and reproducible from the seed


def test_batches_mix_classes(demo):
    """Shards are written in input order; shuffled batches still mix the classes."""
    m = Manifest.load(demo)
    stream = BatchStream(SplitSource(demo, m, "train"), 128, shuffle=True, seed=0)
    first = next(stream.epoch(0))
    assert len(np.unique(first.labels)) == len(m.labels)


def test_forever_chains_aligned_epochs(demo):
    m = Manifest.load(demo)
    stream = BatchStream(SplitSource(demo, m, "val"), 50, shuffle=True, seed=1)
    it = stream.forever_chunks()
    for epoch in range(3):
        want = list(stream.chunks(epoch))
        got = [next(it) for _ in want]
        assert [b.row_ids.tolist() for b in got] == [b.row_ids.tolist() for b in want]


def test_keras_dataset_yields_the_stream(demo):
    import tensorflow as tf

    from streamtrain.train.tfdata import keras_dataset

    m = Manifest.load(demo)
    stream = BatchStream(SplitSource(demo, m, "train"), 128, shuffle=True, seed=0)
    ds = keras_dataset(stream, len(m.labels))
    got = list(ds.take(stream.steps + 1))
    want = [*list(stream.epoch(0)), next(stream.epoch(1))]
    for (x, y), batch in zip(got, want):
        if m.encoding == "ngram":
            assert isinstance(x, tf.SparseTensor)
            assert tuple(x.dense_shape.numpy()) == (len(batch), m.n_features)
            np.testing.assert_array_equal(tf.sparse.to_dense(x).numpy(), batch.to_dense())
        else:
            assert x.dtype == tf.int32 and tuple(x.shape) == (len(batch), m.sequence_length)
            np.testing.assert_array_equal(x.numpy(), batch.tokens)
        np.testing.assert_array_equal(y.numpy(), batch.labels)


def test_split_source_bounds_open_files(tmp_path):
    from helpers import random_rows

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.dataset.shards import SplitWriter

    writer = SplitWriter(tmp_path, "hdf5", "train", "ngram", 50, shard_rows=10, block_rows=5)
    writer.write(random_rows(100))
    shards = writer.close()
    m = Manifest("hdf5", "ngram", 50, ["a", "b", "c"], {}, shards)
    source = SplitSource(tmp_path, m, "train", max_open=3)
    stream = BatchStream(source, 16, shuffle=True, seed=0, buffer_blocks=2)
    seen = []
    for batch in stream.epoch(0):
        seen += batch.row_ids.tolist()
        assert sum(r._file is not None for r in source.readers) <= 3
    assert sorted(seen) == list(range(100))


def test_sources_record_every_input_and_its_row_ids(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    out = prepare_csv(DEMO_TRAIN, tmp_path / "d", DEMO_TEST)
    m = Manifest.load(out)
    assert [(s["role"], s["rows"], s["first_row_id"]) for s in m.sources] == [("train", 4000, 0), ("test", 1000, 4000)]
    from streamtrain.dataset.prepare import PrepareOptions, prepare

    m2 = prepare(PrepareOptions(inputs=[str(DEMO_TRAIN), str(empty), str(DEMO_TRAIN)], data=str(tmp_path / "d2")))
    assert [(s["rows"], s["first_row_id"]) for s in m2.sources] == [(4000, 0), (0, 4000), (4000, 4000)]
