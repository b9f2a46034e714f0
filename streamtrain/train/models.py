"""The model families fit and the bake-off build (``build_model``), and their layers.

- ``build_mlp``: a multi-layer perceptron on sparse TF-IDF rows; with no hidden layer, the linear model.
  Its first layer is ``SparseDense``, which reads only the kernel rows a batch uses.
- ``build_sepcnn``: the guide's separable-convolution network on token-id sequences. Its embedding is
  ``TokenEmbedding``, which reads only the rows a batch uses.

Each ends in the same head (a one-column sigmoid for 2 classes, softmax otherwise) and compiles with
``optimizers.LazyAdam`` (``compile_model``); ``class_probabilities`` turns either head's output into one
probability per class. The builders take every size from their caller: a candidate's family, width,
learning rate and dropout (``train.tune``), the sepCNN's sizes from ``FitOptions``. ``SparseDense``,
``TokenEmbedding`` and ``LazyAdam`` are registered for Keras serialization, so a saved model loads with them.

Rationale and measurements: docs/design/training-speed.md
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np

if TYPE_CHECKING:
    from streamtrain.train.fit import FitOptions
    from streamtrain.train.tune import Candidate


def _finish(
    inputs: Any, x: Any, n_classes: int, learning_rate: float, name: str, dense: Any = keras.layers.Dense
) -> keras.Model:
    """The head on ``x`` (``dense``'s layer type), and the model from ``inputs``, compiled."""
    if n_classes == 2:
        outputs = dense(1, activation="sigmoid", name="head")(x)
    else:
        outputs = dense(n_classes, activation="softmax", name="head")(x)
    return compile_model(keras.Model(inputs, outputs, name=name), n_classes, learning_rate)


def compile_model(model: keras.Model, n_classes: int, learning_rate: float) -> keras.Model:
    """Compile with a fresh ``LazyAdam`` and the head's loss, and accuracy as the metric.

    Args:
        model: a new model (or one holding trained weights).
        n_classes: the classes (2: binary cross-entropy, else sparse categorical).
        learning_rate: Adam's learning rate.

    Returns:
        ``model``, compiled.
    """
    from streamtrain.train.optimizers import LazyAdam

    loss = "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
    model.compile(optimizer=LazyAdam(learning_rate), loss=loss, metrics=["accuracy"])
    return model


# TensorFlow's CPU kernel for a sparse x dense product (``sparse_tensor_dense_matmul_op.cc``) loops over the
# non-zeros with plain arithmetic while the dense side is narrower than 32 columns (its ``kNumVectorize``), and
# through an Eigen expression per non-zero from 32 columns on: slower, for the same sums in the same order.
# ``SparseDense`` multiplies a wider kernel in slices of at most this many columns (docs/design/training-speed.md).
SLICE_COLUMNS = 31


def column_slices(units: int) -> list[int]:
    """The widths ``SparseDense`` multiplies ``units`` columns in: as few as fit ``SLICE_COLUMNS``, as even as can be.

    Args:
        units: the layer's width.

    Returns:
        Widths adding up to ``units``, each at most ``SLICE_COLUMNS``, the wider first; ``[units]`` up to it.
    """
    n = max(1, -(-units // SLICE_COLUMNS))
    return [units // n + (1 if i < units % n else 0) for i in range(n)]


@keras.saving.register_keras_serializable(package="streamtrain")
class SparseDense(keras.layers.Layer):
    """``Dense`` for a sparse (``tf.SparseTensor``) input that reads only the kernel rows the batch uses.

    Keras' ``Dense`` reads the whole kernel as a tensor every step; once the optimizer updates some of its
    rows in place (``train.optimizers.LazyAdam``), TensorFlow must copy the whole buffer to keep that read's
    value, a cost that grows with the features. Here the rows the batch uses are gathered from the variable
    itself (a ``ResourceGather``) and the batch, re-indexed over them, multiplies them
    (``sparse_dense_matmul``, in ``column_slices`` of at most ``SLICE_COLUMNS`` columns: the same numbers),
    so a step costs what the batch's non-zeros cost, at any width. The kernel's
    gradient is then an ``IndexedSlices`` holding each used row once, in order, which ``LazyAdam`` applies
    without summing duplicates. Out of training (validation, scoring, serving) a layer of one slice
    multiplies the batch by the kernel itself: nothing is updated, and finding the used columns
    (``tf.unique``) cost more than the product; the same products are added in the same order, so the
    numbers are the same to the bit. Same maths as ``Dense(units, activation)`` on the same input.

    Args:
        units: the output's width.
        activation: Keras' name (or function) of the activation; None: linear.
        **kwargs: Keras' layer arguments (``name``).
    """

    def __init__(self, units: int, activation: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple) -> None:
        """Make the kernel (Glorot-uniform) and the bias (zeros).

        Args:
            input_shape: the input's shape; its last dimension is the features.
        """
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs: Any, training: Any = None) -> Any:
        """``activation(inputs @ kernel + bias)`` for a ``tf.SparseTensor`` batch.

        Args:
            inputs: the batch, ``[rows, features]``.
            training: Keras' flag: a training step reads only the used rows (class docstring).

        Returns:
            The dense ``[rows, units]`` output.
        """
        import tensorflow as tf

        sizes = column_slices(self.units)
        if not training and len(sizes) == 1:  # inference: the whole kernel, no ``unique`` (class docstring)
            return self.activation(tf.sparse.sparse_dense_matmul(inputs, self.kernel.value) + self.bias)
        # The batch's columns, each once, and the batch re-indexed over them: a (rows x used columns) matrix.
        used, position = tf.unique(inputs.indices[:, 1])
        compact = tf.SparseTensor(
            tf.stack([inputs.indices[:, 0], tf.cast(position, tf.int64)], axis=1),
            inputs.values,
            tf.stack([inputs.dense_shape[0], tf.cast(tf.size(used), tf.int64)]),
        )
        # ``.value``: the tf.Variable itself, so the lookup is a ResourceGather (see the class docstring).
        kernel_rows = tf.gather(self.kernel.value, used)
        if len(sizes) == 1:
            product = tf.sparse.sparse_dense_matmul(compact, kernel_rows)
        else:  # ``tf.split``: its gradient is one concatenation (a strided slice's is a kernel-sized sum per slice)
            parts = tf.split(kernel_rows, sizes, axis=1)
            product = tf.concat([tf.sparse.sparse_dense_matmul(compact, part) for part in parts], axis=1)
        return self.activation(product + self.bias)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The input's shape with ``units`` as its last dimension."""
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        """Keras' config of the layer: its own, ``units`` and the activation's name."""
        return {**super().get_config(), "units": self.units, "activation": keras.activations.serialize(self.activation)}


def build_mlp(
    n_features: int,
    n_classes: int,
    units: int,
    layers: int,
    dropout: float,
    learning_rate: float,
) -> keras.Model:
    """``layers`` x Dense(``units``, relu) + Dropout on a sparse input, then the head.

    Args:
        n_features: the TF-IDF rows' columns.
        n_classes: the classes.
        units: the hidden layers' width.
        layers: hidden layers; 0: the head alone, a linear model (logistic or softmax regression on the
            TF-IDF rows), named ``linear``.
        dropout: the rate after each hidden layer.
        learning_rate: Adam's learning rate.

    Returns:
        The compiled model; the first layer reading the sparse rows is a ``SparseDense``.
    """
    inputs = keras.Input(shape=(n_features,), sparse=True, name="tfidf")
    x = inputs
    for i in range(layers):
        dense = SparseDense if i == 0 else keras.layers.Dense  # the first layer reads the sparse rows
        x = dense(units, activation="relu", name=f"dense_{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    if not layers:
        return _finish(inputs, x, n_classes, learning_rate, "linear", SparseDense)
    return _finish(inputs, x, n_classes, learning_rate, "mlp")


@keras.saving.register_keras_serializable(package="streamtrain")
class TokenEmbedding(keras.layers.Embedding):
    """Keras' ``Embedding`` whose lookup reads only the rows a batch uses.

    Keras' ``Embedding`` reads the whole table as a tensor to gather from it, twice a call (once more for its
    shape); once the optimizer updates some of its rows in place (``train.optimizers.LazyAdam``), TensorFlow
    copies the whole table for each read. Here the rows are gathered from the variable itself (a
    ``ResourceGather``), as ``SparseDense`` gathers its kernel rows: the same values, and the same gradient
    (an ``IndexedSlices`` over the batch's token ids), so the numbers are the same to the bit. Its weights
    are ``Embedding``'s, under the same names. Token ids are never negative (0 is padding).
    """

    def call(self, inputs: Any) -> Any:
        """The embedding rows of ``inputs``' token ids: ``[*inputs.shape, output_dim]``."""
        import tensorflow as tf

        # ``.value``: the tf.Variable itself, so the lookup is a ResourceGather (see the class docstring).
        return tf.gather(self.embeddings.value, tf.cast(inputs, tf.int32))


def build_sepcnn(
    vocab_size: int,
    length: int,
    n_classes: int,
    blocks: int,
    filters: int,
    embedding_dim: int,
    dropout: float,
    learning_rate: float,
    kernel_size: int = 3,
    pool_size: int = 3,
) -> keras.Model:
    """The guide's sepCNN: embedding, (blocks - 1) x [dropout, 2 separable convs, max pool], then the top.

    The top: 2 separable convs twice as wide, global average pooling, dropout, head. One change from the
    guide: depthwise kernels start LeCun-uniform over the kernel width (each channel is its own convolution,
    so its fan-in is ``kernel_size``), biases at zero, or the signal vanishes (docs/design/training.md).

    Args:
        vocab_size: token ids below this (0 is padding).
        length: the sequence length.
        n_classes: the classes.
        blocks: convolution blocks, the top included.
        filters: filters of the first blocks.
        embedding_dim: the embedding's size.
        dropout: the rate of every dropout layer.
        learning_rate: Adam's learning rate.
        kernel_size: the convolutions' width.
        pool_size: the max pools' width (a block pools only while the sequence is at least this long).

    Returns:
        The compiled model.
    """
    limit = float(np.sqrt(3.0 / kernel_size))

    def conv(width: int, name: str) -> keras.layers.Layer:
        return keras.layers.SeparableConv1D(
            width,
            kernel_size,
            activation="relu",
            padding="same",
            depthwise_initializer=keras.initializers.RandomUniform(-limit, limit),
            bias_initializer="zeros",
            name=name,
        )

    inputs = keras.Input(shape=(length,), dtype="int32", name="tokens")
    x = TokenEmbedding(vocab_size, embedding_dim, name="embedding")(inputs)
    for b in range(blocks - 1):
        x = keras.layers.Dropout(dropout, name=f"dropout_{b}")(x)
        x = conv(filters, f"sepconv_{b}_a")(x)
        x = conv(filters, f"sepconv_{b}_b")(x)
        if x.shape[1] >= pool_size:
            x = keras.layers.MaxPooling1D(pool_size, name=f"pool_{b}")(x)
    x = conv(filters * 2, "sepconv_top_a")(x)
    x = conv(filters * 2, "sepconv_top_b")(x)
    x = keras.layers.GlobalAveragePooling1D(name="average")(x)
    x = keras.layers.Dropout(dropout, name="dropout_top")(x)
    return _finish(inputs, x, n_classes, learning_rate, "sepcnn")


def class_probabilities(outputs: Any, n_classes: int) -> np.ndarray:
    """A model's outputs as one probability per class.

    Args:
        outputs: the head's ``[n, 1]`` sigmoid (2 classes) or ``[n, n_classes]`` softmax output.
        n_classes: the classes.

    Returns:
        float64 ``(n, n_classes)``: for 2 classes ``[1 - p, p]``.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if n_classes == 2:
        p = outputs.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return outputs


def build_model(candidate: Candidate, n_features: int, width: int, n_classes: int, opts: FitOptions) -> keras.Model:
    """A new, compiled model of ``candidate``: fit and the vectorizer bake-off both build their models here.

    Args:
        candidate: the family, width, learning rate and dropout.
        n_features: n-gram features, or token ids (the sepCNN's vocabulary).
        width: the sequence length (sepCNN only).
        n_classes: the classes.
        opts: fit's options (the sepCNN's ``blocks``, ``filters`` and ``embedding_dim``).

    Returns:
        The model: ``mlp`` (``linear``: no hidden layer) or ``sepcnn``.
    """
    if candidate.model == "sepcnn":
        return build_sepcnn(
            n_features,
            width,
            n_classes,
            blocks=opts.blocks,
            filters=opts.filters,
            embedding_dim=opts.embedding_dim,
            dropout=candidate.dropout,
            learning_rate=candidate.learning_rate,
        )
    layers = candidate.layers if candidate.model == "mlp" else 0
    return build_mlp(n_features, n_classes, candidate.units, layers, candidate.dropout, candidate.learning_rate)
