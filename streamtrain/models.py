"""Model builders: the guide's multi-layer perceptron on sparse TF-IDF rows."""

from __future__ import annotations

import keras


def build_mlp(
    n_features: int,
    n_classes: int,
    units: int = 64,
    layers: int = 2,
    dropout: float = 0.2,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """``layers`` x Dense(``units``, relu) + Dropout, then a sigmoid (2 classes) or softmax head."""
    inputs = keras.Input(shape=(n_features,), sparse=True, name="tfidf")
    x = inputs
    for i in range(layers):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    if n_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
        loss = "binary_crossentropy"
    else:
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="head")(x)
        loss = "sparse_categorical_crossentropy"
    model = keras.Model(inputs, outputs, name="mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    return model


def class_probabilities(outputs, n_classes: int):
    """Model outputs -> (n, n_classes) probabilities (expands the sigmoid head)."""
    import numpy as np

    outputs = np.asarray(outputs, dtype=np.float64)
    if n_classes == 2:
        p = outputs.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return outputs
