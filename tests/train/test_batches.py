"""Batches from shards: exactly once per epoch, mixed classes, aligned endless epochs, bounded open files, tf.data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.shuffle import spread_blocks, worker_slices
from streamtrain.train.batches import BatchStream, SplitSource, sample_blocks


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
    # A fixed read-ahead without tf.data's autotuner: with it, dropping a used iterator at the end of a fit
    # waited up to seconds (tfdata's docstring).
    assert ds.options().autotune.enabled is False


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


@pytest.mark.parametrize(("workers", "batch_size"), [(2, 64), (3, 43), (4, 1000)])
def test_workers_split_every_epoch_into_disjoint_balanced_parts_of_equal_steps(demo, workers, batch_size):
    """Multi-worker fit: each worker reads its own rows; together they are the epoch, once; all run the same steps."""
    m = Manifest.load(demo)
    rows = m.rows("train")
    streams = [
        BatchStream(SplitSource(demo, m, "train"), batch_size, True, 4, 3, worker=w, workers=workers)
        for w in range(workers)
    ]
    steps = {s.steps for s in streams}
    assert steps == {math.ceil(math.ceil(rows / workers) / batch_size)}
    for epoch in range(2):
        parts = [[b.row_ids for b in s.epoch(epoch)] for s in streams]
        assert {len(p) for p in parts} == steps  # same number of batches (an empty one pads a short share)
        seen = [np.concatenate(p) for p in parts]
        assert max(map(len, seen)) - min(map(len, seen)) <= 1
        every = np.concatenate(seen)
        assert len(every) == rows == len(np.unique(every))  # each row once, by exactly one worker
        # What tf.data hands the model is the same: the chunks cut into batches; the empty one that pads a
        # short share is one row labelled PADDING_LABEL (the steps weigh it 0).
        from streamtrain.train.tfdata import keras_dataset

        for stream, batches in zip(streams, parts):
            it = iter(keras_dataset(stream, len(m.labels), first_epoch=epoch))
            got = [next(it)[1].numpy().reshape(-1) for _ in batches]
            del it  # its read-ahead would go on reading this stream's shards beside the next iterator's
            assert [len(g) for g in got] == [len(b) or 1 for b in batches]
            assert [bool((g < 0).all()) for g in got] == [not len(b) for b in batches]


def test_one_worker_is_the_plain_stream(demo):
    m = Manifest.load(demo)
    plain = BatchStream(SplitSource(demo, m, "train"), 100, True, 6, 2)
    one = BatchStream(SplitSource(demo, m, "train"), 100, True, 6, 2, worker=0, workers=1)
    assert [b.row_ids.tolist() for b in plain.epoch(1)] == [b.row_ids.tolist() for b in one.epoch(1)]


@given(st.lists(st.integers(1, 9), min_size=1, max_size=30), st.integers(1, 7))
def test_worker_slices_cover_the_plan_once(block_rows, workers):
    plan = [(0, i) for i in range(len(block_rows))]
    covered = []
    sizes = []
    for w in range(workers):
        parts = worker_slices(plan, block_rows, w, workers)
        sizes.append(sum(hi - lo for _, lo, hi in parts))
        covered += [(block, r) for (block, lo, hi) in parts for r in range(lo, hi)]
    assert sorted(covered) == [((0, i), r) for i, n in enumerate(block_rows) for r in range(n)]
    assert max(sizes) - min(sizes) <= 1


@given(st.lists(st.integers(1, 9), min_size=1, max_size=60), st.integers(1, 200))
def test_spread_blocks_holds_enough_rows_in_evenly_spaced_blocks(block_rows, rows):
    picked = spread_blocks(block_rows, rows)
    assert picked == sorted(set(picked)) and picked[0] >= 0 and picked[-1] < len(block_rows)
    assert picked == spread_blocks(block_rows, rows)  # the same sample every time
    if sum(block_rows) <= rows:
        assert picked == list(range(len(block_rows)))
        return
    assert sum(block_rows[i] for i in picked) >= rows
    assert len(picked) <= -(-rows // min(block_rows))  # never more blocks than the smallest ones would need
    gaps = np.diff([-1, *picked, len(block_rows)])  # from before the first block to after the last
    assert max(gaps[1:-1], default=0) - min(gaps[1:-1], default=0) <= 1  # evenly spaced


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sample_stream_reads_its_blocks_once_split_across_workers(demo, workers):
    """fit's validation sample: whole evenly spaced blocks from every shard, each row once over the workers."""
    m = Manifest.load(demo)
    source = SplitSource(demo, m, "train")
    blocks = sample_blocks(source, 500)
    assert {shard for shard, _ in blocks} == set(range(len(source.block_counts)))  # every shard contributes
    expected = np.concatenate([source.read(b).row_ids for b in blocks])
    assert 500 <= len(expected) < 500 + 64 * len(source.block_counts)
    streams = [
        BatchStream(SplitSource(demo, m, "train"), 100, worker=w, workers=workers, blocks=blocks)
        for w in range(workers)
    ]
    assert {s.rows for s in streams} == {len(expected)}
    seen = np.concatenate([b.row_ids for s in streams for b in s.epoch(3)])
    assert sorted(seen.tolist()) == sorted(expected.tolist())
    with pytest.raises(ValueError, match="does not shuffle"):
        BatchStream(source, 100, shuffle=True, blocks=blocks)
