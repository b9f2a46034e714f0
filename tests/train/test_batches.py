"""Batches from shards: exactly once per epoch, mixed classes, aligned endless epochs, bounded open files, tf.data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamtrain.dataset.manifest import Manifest
from streamtrain.train.batches import BatchStream, SplitSource


@pytest.mark.parametrize("batch_size", [128, 100, 8])
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


@pytest.mark.parametrize("skip", [0, 1, 7, 13])
def test_a_resumed_stream_skips_exactly_the_batches_already_trained(demo, skip):
    m = Manifest.load(demo)
    stream = BatchStream(SplitSource(demo, m, "train"), 32, shuffle=True, seed=2, buffer_blocks=2)
    want = [b.row_ids for b in stream.epoch(1)][skip:] + [b.row_ids for b in stream.epoch(2)]
    it = stream.forever_chunks(first_epoch=1, skip_batches=skip)
    got = []
    while sum(map(len, got)) < sum(map(len, want)):
        got.append(next(it).row_ids)
    assert np.concatenate(got).tolist() == np.concatenate(want).tolist()


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
