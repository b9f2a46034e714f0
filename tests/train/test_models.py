"""``SparseDense``: the product of a sparse batch and the rows it uses, multiplied in column slices from 32
units on (``column_slices``) with the numbers of one product, forward and trained. ``TokenEmbedding``: Keras'
``Embedding`` looked up without reading the whole table, with its numbers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from streamtrain.train import models
from streamtrain.train.models import SLICE_COLUMNS, SparseDense, TokenEmbedding, column_slices
from streamtrain.train.optimizers import LazyAdam


@pytest.mark.parametrize("units", [1, 16, 31, 32, 33, 64, 100, 512, 1024])
def test_column_slices_are_as_few_and_as_even_as_fit_the_narrow_kernel(units):
    sizes = column_slices(units)
    assert sum(sizes) == units and max(sizes) <= SLICE_COLUMNS < 32  # TensorFlow's plain loop: below 32 columns
    assert len(sizes) == -(-units // SLICE_COLUMNS)  # no more slices than needed
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def _batches(features: int, count: int) -> list:
    rng = np.random.default_rng(3)
    out = []
    for _ in range(count):
        dense = (rng.random((24, features)) < 0.03) * rng.random((24, features))
        dense[5] = 0.0  # a row with no entries
        labels = tf.constant(rng.integers(0, 2, (24, 1)), tf.float32)
        out.append((tf.sparse.from_dense(dense.astype(np.float32)), labels))
    return out


def _trained(units: int, slice_columns: int, batches: list, monkeypatch) -> tuple[np.ndarray, np.ndarray]:
    """A SparseDense (ReLU) + sigmoid head after LazyAdam steps on ``batches``: its scores and its kernel."""
    monkeypatch.setattr(models, "SLICE_COLUMNS", slice_columns)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(batches[0][0].dense_shape[1],), sparse=True)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(SparseDense(units, "relu")(inputs)))
    optimizer, loss = LazyAdam(0.01), keras.losses.BinaryCrossentropy()

    @tf.function(autograph=False)
    def step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))

    for x, y in batches:
        step(x, y)
    scores = tf.function(lambda x: model(x, training=False), autograph=False)(batches[0][0])
    return scores.numpy(), model.get_weights()[0]


def test_a_wide_layer_in_slices_scores_and_trains_to_the_bit_as_one_product(monkeypatch):
    batches = _batches(500, 4)
    sliced = _trained(70, SLICE_COLUMNS, batches, monkeypatch)  # 3 slices: 24 + 23 + 23
    whole = _trained(70, 1 << 30, batches, monkeypatch)  # one product, as before 0.20
    assert np.array_equal(sliced[0], whole[0]) and np.array_equal(sliced[1], whole[1])
    assert 0.0 < float(sliced[0][5, 0]) < 1.0  # an empty row scores too: the biases' output


def test_sparse_dense_is_dense_maths_on_the_same_rows():
    x, _ = _batches(300, 1)[0]
    layer = SparseDense(40, activation="relu")
    out = layer(x).numpy()
    kernel, bias = (w.numpy() for w in layer.weights)
    expected = np.maximum(tf.sparse.to_dense(x).numpy() @ kernel + bias, 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def _ops(fn, x) -> list[str]:
    """The op types of ``fn``'s graph for ``x`` (a ``tf.function``)."""
    return [op.type for op in fn.get_concrete_function(x).graph.get_operations()]


@pytest.mark.parametrize("units", [1, 16, 31])
def test_a_narrow_layer_scores_with_the_kernel_itself_and_the_numbers_of_training(units):
    x, _ = _batches(400, 1)[0]
    keras.utils.set_random_seed(1)
    layer = SparseDense(units, activation="relu")
    layer(x, training=True)  # built
    trained = tf.function(lambda rows: layer(rows, training=True), autograph=False)
    scored = tf.function(lambda rows: layer(rows, training=False), autograph=False)
    assert np.array_equal(scored(x).numpy(), trained(x).numpy())  # the same products, added in the same order
    assert "Unique" in _ops(trained, x) and "Unique" not in _ops(scored, x)


def test_a_wide_layer_scores_by_the_rows_it_uses():
    x, _ = _batches(400, 1)[0]
    layer = SparseDense(64)
    scored = tf.function(lambda rows: layer(rows, training=False), autograph=False)
    assert "Unique" in _ops(scored, x)  # a product of 32 columns or more is slower in TensorFlow's kernel


def _embedded(layer_type: type, tokens: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list, list[str]]:
    """An embedding of ``layer_type`` + average + softmax head after LazyAdam steps: the table before them, the
    weights after, and the names of the step's ops that read the embedding's variable whole."""
    keras.utils.set_random_seed(4)
    inputs = keras.Input(shape=(tokens.shape[1],), dtype="int32")
    x = keras.layers.GlobalAveragePooling1D()(layer_type(50, 8, name="embedding")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    optimizer, loss = LazyAdam(0.05), keras.losses.SparseCategoricalCrossentropy()
    before = model.get_weights()[0]

    @tf.function(autograph=False)
    def step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))

    for first in range(0, len(tokens), 16):
        step(tokens[first : first + 16], labels[first : first + 16])
    graph = step.get_concrete_function(tokens[:16], labels[:16]).graph
    reads = [op.name for op in graph.get_operations() if op.type == "ReadVariableOp" and "embedding" in op.name]
    return before, model.get_weights(), reads


def test_the_token_embedding_trains_to_the_bit_as_keras_embedding_without_reading_the_table():
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, 50, (64, 12)).astype(np.int32)
    tokens[:, 9:] = 0  # padding, as sequences end
    labels = rng.integers(0, 3, 64).astype(np.int32)
    before, ours, our_reads = _embedded(TokenEmbedding, tokens, labels)
    _, theirs, their_reads = _embedded(keras.layers.Embedding, tokens, labels)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert not np.array_equal(before, ours[0])  # the table trained
    assert their_reads and not our_reads  # Keras reads the whole table each step; the ResourceGather does not


def test_the_sepcnn_embeds_with_the_token_embedding():
    model = models.build_sepcnn(40, 10, 3, blocks=2, filters=4, embedding_dim=6, dropout=0.1, learning_rate=1e-3)
    assert isinstance(model.get_layer("embedding"), TokenEmbedding)
