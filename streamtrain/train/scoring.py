"""Probabilities and metrics, shared by fit, evaluate and predict (``predict_proba``, ``score``, ``score_split``).

``predict_proba`` runs the model on one batch of rows, through an inference function traced once per model
and input kind; ``score`` streams batches through it and returns loss, accuracy and the confusion matrix;
``score_split`` does that for one split of a prepared dataset (fit's final metrics, its promotion guard and
evaluate). Every path calls the model the same way, so evaluate (on shards) and predict (on raw text) give
the same answers for the same rows. A non-finite probability is a ``NonFiniteError``, never a score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from streamtrain.dataset.manifest import Manifest, ModelInputs
from streamtrain.errors import NonFiniteError
from streamtrain.train.batches import BatchStream, SplitSource
from streamtrain.train.models import class_probabilities
from streamtrain.train.tfdata import model_input
from streamtrain.vectorize.rows import Rows, TokenRows, blank_rows

if TYPE_CHECKING:
    import keras

# Rows scored at a time unless told otherwise (evaluate, fit's final metrics and validations, predict): sparse rows
# are cheap; a sequence row carries length x embedding activations through the network.
SCORE_BATCH = {"ngram": 1024, "sequence": 256}


def score_batch(encoding: str, asked: int | None = None) -> int:
    """Rows scored at a time: ``asked`` (``--score-batch-size``) when given, else ``SCORE_BATCH`` of ``encoding``."""
    return asked or SCORE_BATCH[encoding]


def _forward(model: keras.Model, rows: Rows) -> Callable[[Any], Any]:
    """The model's inference function, traced once per model and input kind (eager calls cost far more).

    Why: docs/design/training-speed.md
    """
    import tensorflow as tf

    kind = "tokens" if isinstance(rows, TokenRows) else "sparse"
    cache = model.__dict__.setdefault("_streamtrain_forward", {})
    if kind not in cache:
        if kind == "tokens":
            spec = tf.TensorSpec([None, rows.n_cols], tf.int32)
        else:
            spec = tf.SparseTensorSpec([None, rows.n_cols], tf.float32)
        cache[kind] = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    return cache[kind]


def warm_up(model: keras.Model, inputs: ModelInputs) -> None:
    """Trace ``model``'s inference function (``_forward``) on one blank row (``blank_rows``).

    Args:
        model: the model.
        inputs: the dataset's model inputs (the row's encoding and width, the classes).
    """
    predict_proba(model, blank_rows(inputs.encoding, inputs.row_width), inputs.n_classes)


def predict_proba(model: keras.Model, rows: Rows, n_classes: int) -> np.ndarray:
    """Class probabilities of ``rows``.

    Args:
        model: a model with a sigmoid (2 classes) or softmax head.
        rows: one batch of n-gram or token rows.
        n_classes: the classes.

    Returns:
        float64 ``(len(rows), n_classes)``, a column per class in label order.

    Raises:
        NonFiniteError: the model gives NaN or infinity for a row.
    """
    if not len(rows):
        return np.zeros((0, n_classes))
    p = class_probabilities(_forward(model, rows)(model_input(rows)).numpy(), n_classes)
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        raise NonFiniteError(f"the model's output is not finite for {int(bad.sum())} of {len(p)} rows (a broken model)")
    return p


def score(model: keras.Model, batches: Iterable[Rows], n_classes: int) -> dict:
    """Loss, accuracy and confusion matrix of ``model`` on labelled batches.

    Args:
        model: the model.
        batches: labelled rows.
        n_classes: the classes.

    Returns:
        ``rows``, ``loss`` (mean cross-entropy, probabilities clipped at 1e-7) and ``accuracy`` (both None for
        no rows), and ``confusion`` (``[true][predicted]`` counts, as lists).
    """
    confusion = np.zeros((n_classes, n_classes), np.int64)
    loss_sum, rows = 0.0, 0
    for batch in batches:
        p = predict_proba(model, batch, n_classes)
        truth = batch.labels
        loss_sum += float(-np.log(np.clip(p[np.arange(len(truth)), truth], 1e-7, 1.0)).sum())
        np.add.at(confusion, (truth, p.argmax(axis=1)), 1)
        rows += len(truth)
    if rows == 0:
        return {"rows": 0, "loss": None, "accuracy": None, "confusion": confusion.tolist()}
    return {
        "rows": rows,
        "loss": loss_sum / rows,
        "accuracy": float(np.trace(confusion) / rows),
        "confusion": confusion.tolist(),
    }


def score_split(model: keras.Model, data: str, manifest: Manifest, split: str, batch_size: int | None = None) -> dict:
    """``score`` over every row of one split of a dataset, in order.

    Args:
        model: the model.
        data: the dataset directory.
        manifest: its manifest.
        split: ``train``, ``val`` or ``test``.
        batch_size: rows scored at a time; None: ``SCORE_BATCH`` of the dataset's encoding.

    Returns:
        ``score``'s result.
    """
    stream = BatchStream(SplitSource(data, manifest, split), score_batch(manifest.encoding, batch_size))
    return score(model, stream.epoch(0), len(manifest.labels))
