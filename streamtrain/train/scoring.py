"""Probabilities and metrics, shared by fit, evaluate and predict.

``predict_proba`` runs the model on one block of rows; ``score`` streams
batches through it and returns loss, accuracy and the confusion matrix;
``score_split`` does that for one split of a prepared dataset (fit's final
metrics and evaluate both use it).
Both paths call the model the same way, so evaluate (on shards) and predict
(on raw text) give the same answers for the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from streamtrain.dataset.manifest import Manifest, ModelInputs
from streamtrain.errors import NonFiniteError
from streamtrain.train.batches import BatchStream, SplitSource
from streamtrain.train.models import class_probabilities
from streamtrain.train.tfdata import model_input
from streamtrain.vectorize.rows import Rows, TokenRows, blank_rows

# Rows scored at a time unless told otherwise (evaluate, fit's final metrics, predict): sparse rows are
# cheap; a sequence row carries length x embedding activations through the network.
SCORE_BATCH = {"ngram": 1024, "sequence": 256}


def _forward(model, rows: Rows):
    """The model's inference function, traced once per model and input kind (eager calls cost ~10x)."""
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


def warm_up(model, inputs: ModelInputs) -> None:
    """Trace ``model``'s inference function (``_forward``) on one blank row (``blank_rows``)."""
    predict_proba(model, blank_rows(inputs.encoding, inputs.row_width), inputs.n_classes)


def predict_proba(model, rows: Rows, n_classes: int) -> np.ndarray:
    """Class probabilities of ``rows``; ``NonFiniteError`` if the model gives NaN or infinity for any row."""
    if not len(rows):
        return np.zeros((0, n_classes))
    p = class_probabilities(_forward(model, rows)(model_input(rows)).numpy(), n_classes)
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        raise NonFiniteError(f"the model's output is not finite for {int(bad.sum())} of {len(p)} rows (a broken model)")
    return p


def score(model, batches: Iterable[Rows], n_classes: int) -> dict:
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


def score_split(model, data: str, manifest: Manifest, split: str, batch_size: int | None = None) -> dict:
    """``score`` over one split, in order, ``SCORE_BATCH`` rows at a time unless told otherwise."""
    stream = BatchStream(SplitSource(data, manifest, split), batch_size or SCORE_BATCH[manifest.encoding])
    return score(model, stream.epoch(0), len(manifest.labels))
