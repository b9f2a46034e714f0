"""``LazyAdam``: Keras' Adam step on the rows a sparse gradient lists (each row's listings summed), the others
untouched; dense gradients get Keras' own step."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from streamtrain.train.optimizers import LazyAdam

LR, BETA_1, BETA_2, EPSILON = 0.1, 0.9, 0.999, 1e-7  # Keras' Adam defaults but the rate


def _adam(w, m, v, grad, step):
    """Keras' Adam step in float64, for the rows given."""
    m = BETA_1 * m + (1 - BETA_1) * grad
    v = BETA_2 * v + (1 - BETA_2) * grad**2
    alpha = LR * np.sqrt(1 - BETA_2**step) / (1 - BETA_1**step)
    return w - alpha * m / (np.sqrt(v) + EPSILON), m, v


def test_a_sparse_gradient_moves_only_the_rows_it_lists_by_their_summed_gradient():
    start = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    variable = keras.Variable(start)
    optimizer = LazyAdam(LR)
    optimizer.build([variable])
    w, m, v = start.astype(np.float64), np.zeros((6, 3)), np.zeros((6, 3))
    # Once each (one worker's SparseDense), then rows listed twice (several workers' slices, an embedding).
    for step, rows in enumerate([[4, 1], [1, 5, 1, 0, 5]], 1):
        values = (np.arange(len(rows) * 3, dtype=np.float32).reshape(-1, 3) - 4) / 10
        optimizer.apply_gradients([(tf.IndexedSlices(tf.constant(values), tf.constant(rows)), variable)])
        summed = np.zeros((6, 3))
        np.add.at(summed, rows, values)
        used = sorted(set(rows))
        w[used], m[used], v[used] = _adam(w[used], m[used], v[used], summed[used], step)
        np.testing.assert_allclose(variable.numpy(), w, rtol=1e-5, atol=1e-6)
    assert np.array_equal(variable.numpy()[[2, 3]], start[[2, 3]])  # never listed: never moved, moments never decayed
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), m, rtol=1e-5, atol=1e-7)  # as LazyAdam finds it


def test_a_dense_gradient_takes_keras_adam_step():
    start = np.random.default_rng(1).normal(size=(4, 2)).astype(np.float32)
    lazy, plain = keras.Variable(start), keras.Variable(start)
    optimizers = [LazyAdam(LR), keras.optimizers.Adam(LR)]
    for optimizer, variable in zip(optimizers, (lazy, plain)):
        optimizer.build([variable])
    for step in range(3):
        grad = tf.constant(np.random.default_rng(step).normal(size=(4, 2)).astype(np.float32))
        for optimizer, variable in zip(optimizers, (lazy, plain)):
            optimizer.apply_gradients([(grad, variable)])
    assert np.array_equal(lazy.numpy(), plain.numpy()) and not np.array_equal(lazy.numpy(), start)


def test_rows_declared_listed_once_take_the_same_step_without_looking_for_repeats():
    start = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    looked, declared = keras.Variable(start), keras.Variable(start)
    optimizers = [LazyAdam(LR), LazyAdam(LR)]
    for optimizer, variable in zip(optimizers, (looked, declared)):
        optimizer.build([variable])
    optimizers[1].list_rows_once([declared])

    def stepper(optimizer, variable):
        return tf.function(lambda g: optimizer.apply_gradients([(g, variable)]), autograph=False)

    steps = [stepper(o, v) for o, v in zip(optimizers, (looked, declared))]
    for rows in ([6, 2, 0], [1, 7], [2, 6, 5, 3]):  # each row at most once, in no order
        values = tf.constant(np.random.default_rng(len(rows)).normal(size=(len(rows), 3)).astype(np.float32))
        grad = tf.IndexedSlices(values, tf.constant(rows, tf.int64), tf.constant([8, 3], tf.int64))
        for step in steps:
            step(grad)
    assert np.array_equal(declared.numpy(), looked.numpy()) and not np.array_equal(declared.numpy(), start)
    graphs = [step.get_concrete_function(grad).graph for step in steps]
    uniques = [sum(op.type == "Unique" for op in graph.get_operations()) for graph in graphs]
    assert uniques[0] >= 1 and uniques[1] == 0
