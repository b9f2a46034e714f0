"""Batches of ``SparseRows`` -> a ``tf.data.Dataset`` Keras can ``fit`` on.

The generator (``BatchStream.forever`` for training and validation, one
``epoch`` for evaluation) runs in tf.data's thread; ``prefetch`` lets it
read ahead while the model trains. Rows stay sparse all the way into the
first ``Dense`` layer (``tf.SparseTensor``): nothing is densified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from streamtrain.rows import SparseRows


def targets(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Label ids in the shape the model's loss expects (sigmoid head for 2 classes)."""
    if n_classes == 2:
        return labels.astype(np.float32).reshape(-1, 1)
    return labels.astype(np.int32)


def _parts(batch: SparseRows, n_classes: int):
    shape = np.array([len(batch), batch.n_cols], np.int64)
    return (batch.coo_indices(), batch.values, shape), targets(batch.labels, n_classes)


def sparse_dataset(batches: Callable[[], Iterator[SparseRows]], n_features: int, n_classes: int) -> tf.data.Dataset:
    """A dataset of (SparseTensor features, targets) from a batch-generator factory."""
    y_spec = (
        tf.TensorSpec([None, 1], tf.float32) if n_classes == 2 else tf.TensorSpec([None], tf.int32)
    )
    signature = (
        (tf.TensorSpec([None, 2], tf.int64), tf.TensorSpec([None], tf.float32), tf.TensorSpec([2], tf.int64)),
        y_spec,
    )

    def gen():
        for batch in batches():
            yield _parts(batch, n_classes)

    def to_sparse(x, y):
        indices, values, shape = x
        return tf.SparseTensor(indices, values, shape), y

    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    return ds.map(to_sparse).prefetch(tf.data.AUTOTUNE)


def sparse_tensor(batch: SparseRows) -> tf.SparseTensor:
    """One batch as a ``tf.SparseTensor`` (for predict on raw text)."""
    return tf.SparseTensor(batch.coo_indices(), batch.values, [len(batch), batch.n_cols])
