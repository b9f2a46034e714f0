"""``train.scoring``: class probabilities of rows, and loss, accuracy and confusion of batches and of a split.

Expectations are computed independently in numpy from the model's raw outputs (``model(x)``) and, for a prepared
split, from the counts prepare recorded in the manifest.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import prepare_csv, write_csv

from streamtrain.errors import NonFiniteError
from streamtrain.train.runtime import import_tensorflow
from streamtrain.vectorize.rows import SparseRows, TokenRows

N_FEATURES = 30


@pytest.fixture(scope="module")
def tf():
    import_tensorflow()
    import tensorflow

    return tensorflow


def sparse_rows(n: int, n_classes: int, seed: int = 0) -> SparseRows:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n, N_FEATURES)) < 0.25) * rng.random((n, N_FEATURES))
    rows, cols = np.nonzero(dense)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    labels = rng.integers(0, n_classes, n).astype(np.int32)
    return SparseRows(
        indptr, cols.astype(np.int32), dense[rows, cols].astype(np.float32), labels, np.arange(n), N_FEATURES
    )


def mlp(n_classes: int, seed: int = 0, n_features: int = N_FEATURES):
    import keras

    from streamtrain.train.models import build_mlp

    keras.utils.set_random_seed(seed)
    return build_mlp(n_features, n_classes, 6, 1, 0.0, 1e-2)


def raw_probabilities(tf, model, rows: SparseRows) -> np.ndarray:
    """One column per class from the model's own output (a sigmoid head's p as [1 - p, p])."""
    x = tf.SparseTensor(rows.coo_indices(), rows.values, [len(rows), rows.n_cols])
    out = model(x, training=False).numpy().astype(np.float64)
    return np.concatenate([1 - out, out], axis=1) if out.shape[1] == 1 else out


def reference_score(p: np.ndarray, truth: np.ndarray, n_classes: int) -> dict:
    confusion = [[0] * n_classes for _ in range(n_classes)]
    for t, guess in zip(truth.tolist(), p.argmax(axis=1).tolist()):
        confusion[t][guess] += 1
    loss = float(np.mean([-np.log(max(p[i, t], 1e-7)) for i, t in enumerate(truth.tolist())]))
    return {
        "rows": len(truth),
        "loss": loss,
        "accuracy": float(np.mean(p.argmax(axis=1) == truth)),
        "confusion": confusion,
    }


@pytest.mark.parametrize("n_classes", [2, 4])
def test_probabilities_are_the_model_s_one_column_per_class(tf, n_classes):
    from streamtrain.train.scoring import predict_proba

    model, rows = mlp(n_classes), sparse_rows(20, n_classes)
    p = predict_proba(model, rows, n_classes)
    assert p.shape == (20, n_classes)
    np.testing.assert_allclose(p, raw_probabilities(tf, model, rows), rtol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(predict_proba(model, rows.slice(5, 9), n_classes), p[5:9])  # row by row
    assert predict_proba(model, SparseRows.empty(N_FEATURES), n_classes).shape == (0, n_classes)


def test_token_rows_go_through_the_same_path(tf):
    import keras

    from streamtrain.train.models import build_sepcnn
    from streamtrain.train.scoring import predict_proba

    keras.utils.set_random_seed(0)
    model = build_sepcnn(50, 12, 3, 1, 4, 4, 0.0, 1e-3)
    rng = np.random.default_rng(0)
    rows = TokenRows(rng.integers(0, 50, (7, 12)).astype(np.int32), np.zeros(7, np.int32), np.arange(7))
    p = predict_proba(model, rows, 3)
    np.testing.assert_allclose(p, model(tf.constant(rows.tokens), training=False).numpy(), rtol=1e-5)


def test_a_model_that_answers_nan_for_some_rows_is_refused_and_they_are_counted(tf):
    from streamtrain.train.scoring import predict_proba

    model, rows = mlp(2), sparse_rows(40, 2)
    first = model.get_layer("dense_0")
    kernel = first.kernel.numpy()
    kernel[3] = np.nan  # every row with feature 3 gets NaN
    first.kernel.assign(kernel)
    dense = rows.to_dense()
    broken = int((dense[:, 3] != 0).sum())
    assert 0 < broken < 40
    with pytest.raises(NonFiniteError, match=rf"not finite for {broken} of 40 rows"):
        predict_proba(model, rows, 2)
    fine = np.flatnonzero(dense[:, 3] == 0)
    assert np.isfinite(predict_proba(model, rows.take(fine), 2)).all()  # the other rows still score


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_score_is_the_mean_loss_accuracy_and_confusion_over_every_batch(tf, n_classes):
    from streamtrain.train.scoring import score

    model, rows = mlp(n_classes), sparse_rows(45, n_classes, seed=n_classes)
    expected = reference_score(raw_probabilities(tf, model, rows), rows.labels, n_classes)
    batches = [rows.slice(lo, min(lo + 10, 45)) for lo in range(0, 45, 10)]  # 10, 10, 10, 10, 5
    got = score(model, batches, n_classes)
    assert got["rows"] == 45 and got["confusion"] == expected["confusion"]
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert got["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
    whole = score(model, [rows], n_classes)  # how the rows are batched does not matter
    assert whole["confusion"] == got["confusion"] and whole["loss"] == pytest.approx(got["loss"], rel=1e-6)


def test_nothing_to_score_has_no_loss_or_accuracy(tf):
    from streamtrain.train.scoring import score

    got = score(mlp(3), [], 3)
    assert got == {"rows": 0, "loss": None, "accuracy": None, "confusion": [[0] * 3 for _ in range(3)]}


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    rng = random.Random(0)
    words = ["good", "great", "fine", "bad", "awful", "poor", "film", "plot", "actor", "scene"]
    rows = [(" ".join(rng.choice(words) for _ in range(8)), rng.choice(["neg", "pos"])) for _ in range(300)]
    root = tmp_path_factory.mktemp("tiny")
    return prepare_csv(write_csv(root / "t.csv", rows), root / "data", shard_rows=100, block_rows=16)


def test_a_split_is_scored_row_by_row_as_prepare_counted_it(tf, tiny_dataset):
    from streamtrain.dataset.manifest import Manifest
    from streamtrain.train.batches import SplitSource
    from streamtrain.train.scoring import score_split
    from streamtrain.vectorize.rows import concat_rows

    manifest = Manifest.load(tiny_dataset)
    model = mlp(2, n_features=manifest.n_features)
    got = score_split(model, str(tiny_dataset), manifest, "train")
    per_class = manifest.stats.rows_per_class["train"]
    assert got["rows"] == manifest.rows("train") == sum(per_class)
    assert [sum(r) for r in got["confusion"]] == per_class  # every row once, under its own label

    source = SplitSource(tiny_dataset, manifest, "train")
    rows = concat_rows([source.read((s, b)) for s, n in enumerate(source.block_counts) for b in range(n)])
    expected = reference_score(raw_probabilities(tf, model, rows), rows.labels, 2)
    assert got["confusion"] == expected["confusion"]
    assert got["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    other = score_split(model, str(tiny_dataset), manifest, "train", batch_size=7)
    assert other["confusion"] == got["confusion"] and other["loss"] == pytest.approx(got["loss"], rel=1e-6)
