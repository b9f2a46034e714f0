"""Batches of rows -> a ``tf.data.Dataset`` Keras can ``fit`` on, and single batches -> model inputs.

The generator (``BatchStream.forever`` for training and validation, one
``epoch`` for evaluation) runs in tf.data's thread; ``prefetch`` lets it
read ahead while the model trains. TF-IDF rows stay sparse all the way into
the first ``Dense`` layer (``tf.SparseTensor``): nothing is densified.
Token rows go in as int32 matrices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from streamtrain.rows import Rows, SparseRows, TokenRows


def targets(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Label ids in the shape the model's loss expects (sigmoid head for 2 classes)."""
    if n_classes == 2:
        return labels.astype(np.float32).reshape(-1, 1)
    return labels.astype(np.int32)


def _target_spec(n_classes: int) -> tf.TensorSpec:
    return tf.TensorSpec([None, 1], tf.float32) if n_classes == 2 else tf.TensorSpec([None], tf.int32)


def sparse_dataset(batches: Callable[[], Iterator[SparseRows]], n_features: int, n_classes: int) -> tf.data.Dataset:
    """(SparseTensor features, targets) from a factory of ``SparseRows`` batches."""
    signature = (
        (tf.TensorSpec([None, 2], tf.int64), tf.TensorSpec([None], tf.float32), tf.TensorSpec([2], tf.int64)),
        _target_spec(n_classes),
    )

    def gen():
        for batch in batches():
            shape = np.array([len(batch), batch.n_cols], np.int64)
            yield (batch.coo_indices(), batch.values, shape), targets(batch.labels, n_classes)

    def to_sparse(x, y):
        indices, values, shape = x
        return tf.SparseTensor(indices, values, shape), y

    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    return ds.map(to_sparse).prefetch(tf.data.AUTOTUNE)


def token_dataset(batches: Callable[[], Iterator[TokenRows]], width: int, n_classes: int) -> tf.data.Dataset:
    """(int32 token ids, targets) from a factory of ``TokenRows`` batches."""
    signature = (tf.TensorSpec([None, width], tf.int32), _target_spec(n_classes))

    def gen():
        for batch in batches():
            yield batch.tokens, targets(batch.labels, n_classes)

    return tf.data.Dataset.from_generator(gen, output_signature=signature).prefetch(tf.data.AUTOTUNE)


def keras_dataset(batches: Callable[[], Iterator[Rows]], encoding: str, width: int, n_classes: int) -> tf.data.Dataset:
    if encoding == "sequence":
        return token_dataset(batches, width, n_classes)
    return sparse_dataset(batches, width, n_classes)


def model_input(rows: Rows):
    """One batch in the form the model takes (for scoring and predict)."""
    if isinstance(rows, TokenRows):
        return tf.constant(rows.tokens)
    return tf.SparseTensor(rows.coo_indices(), rows.values, [len(rows), rows.n_cols])
