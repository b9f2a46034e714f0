"""fit's one training path, ``train.loop.Trainer``, on a tiny model and a few synthetic rows, one process.

The expectations come from the module's contract, computed independently: a round's and a validation's loss and
accuracy are the plain means over the real rows (numpy on the model's own probabilities), a padding row
(``PADDING_LABEL``) weighs nothing, a step descends the mean loss, the warm-up leaves the model as it was, and the
same seed trains the same weights.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from streamtrain.train.runtime import import_tensorflow
from streamtrain.vectorize.rows import PADDING_LABEL, SparseRows, blank_rows

N_FEATURES = 24


@pytest.fixture(scope="module")
def tf():
    import_tensorflow()
    import tensorflow

    return tensorflow


def synthetic_rows(n: int, n_classes: int, seed: int = 0) -> SparseRows:
    """Sparse rows whose class is the feature group (of ``n_classes`` equal groups) with the largest sum."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n, N_FEATURES)) < 0.3) * rng.random((n, N_FEATURES)).astype(np.float32)
    dense[np.arange(n), rng.integers(0, N_FEATURES, n)] += 1.0  # no empty row
    groups = dense.reshape(n, n_classes, N_FEATURES // n_classes).sum(axis=2)
    rows, cols = np.nonzero(dense)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return SparseRows(
        indptr,
        cols.astype(np.int32),
        dense[rows, cols].astype(np.float32),
        groups.argmax(axis=1).astype(np.int32),
        np.arange(n, dtype=np.int64),
        N_FEATURES,
    )


def trainer_for(n_classes: int, seed: int = 0, dropout: float = 0.0, learning_rate: float = 0.05):
    import keras
    import tensorflow as tf

    from streamtrain.train.cluster import Cluster
    from streamtrain.train.loop import Trainer
    from streamtrain.train.models import build_mlp

    keras.utils.set_random_seed(seed)
    model = build_mlp(N_FEATURES, n_classes, 8, 1, dropout, learning_rate)
    return Trainer(tf.distribute.get_strategy(), model, Cluster(), n_classes)


def batches(trainer, rows: SparseRows, batch_size: int):
    """The trainer's iterator over ``rows`` cut into batches, epoch after epoch (as ``keras_dataset`` hands them)."""
    from streamtrain.train.tfdata import sparse_dataset

    n_classes = trainer.n_classes
    return trainer.distribute(lambda: sparse_dataset(lambda: itertools.repeat(rows), batch_size, N_FEATURES, n_classes))


def probabilities(model, rows: SparseRows) -> np.ndarray:
    """The model's class probabilities for ``rows``, a column per class (a sigmoid head's p as [1 - p, p])."""
    from streamtrain.train.tfdata import model_input

    out = model(model_input(rows), training=False).numpy().astype(np.float64)
    return np.concatenate([1.0 - out, out], axis=1) if out.shape[1] == 1 else out


def expected_metrics(model, rows: SparseRows) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``rows``, computed in numpy from the model's probabilities."""
    p = probabilities(model, rows)
    truth = rows.labels
    loss = float(-np.log(np.clip(p[np.arange(len(truth)), truth], 1e-7, 1.0)).mean())
    return loss, float((p.argmax(axis=1) == truth).mean())


class Recorder:
    """The callbacks' side ``train_round`` drives: which batches began."""

    def __init__(self) -> None:
        self.began: list[int] = []

    def on_train_batch_begin(self, batch: int) -> None:
        self.began.append(batch)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_validation_is_the_mean_loss_and_accuracy_over_every_row(tf, n_classes):
    rows = synthetic_rows(50, n_classes)
    trainer = trainer_for(n_classes)
    validating = batches(trainer, rows, 16)
    got = trainer.validate(validating, steps=4)  # 16 + 16 + 16 + 2: every row once
    loss, accuracy = expected_metrics(trainer.model, rows)
    assert set(got) == {"val_loss", "val_accuracy"}
    assert got["val_loss"] == pytest.approx(loss, rel=1e-5)
    assert got["val_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert got == trainer.validate(validating, steps=4)  # the next epoch's same rows: the sums start from zero


def test_padding_rows_weigh_nothing(tf):
    rows = synthetic_rows(40, 2)
    pad = blank_rows("ngram", N_FEATURES, PADDING_LABEL)
    padded = SparseRows.concat([rows.slice(0, 20), pad, pad, rows.slice(20, 40), pad])
    trainer = trainer_for(2)
    plain = trainer.validate(batches(trainer, rows, 8), steps=5)
    assert trainer.validate(batches(trainer, padded, 8), steps=6) == pytest.approx(plain, rel=1e-6)

    x, y = next(iter(_tf_batches(rows.slice(0, 8), 8)))
    xp, yp = next(iter(_tf_batches(SparseRows.concat([rows.slice(0, 8), pad, pad]), 10)))
    clean, _ = trainer.gradients(x, y)
    with_padding, sums = trainer.gradients(xp, yp)
    assert sums.numpy()[2] == 8  # rows counted: the padding rows are not
    for a, b in zip(clean, with_padding):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(), rtol=1e-5)

    # A step on nothing but a padding row: no rows trained, and a fresh model's weights do not move.
    before = [w.numpy() for w in trainer.model.weights]
    logs, mine = trainer.train_round(batches(trainer, pad, 1), 1, Recorder())
    assert mine == 0
    assert np.isnan(logs["loss"]) and np.isnan(logs["accuracy"])  # no rows: no number, not a zero
    for w, b in zip(trainer.model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)


def _tf_batches(rows: SparseRows, batch_size: int):
    from streamtrain.train.tfdata import sparse_dataset

    return sparse_dataset(lambda: iter([rows]), batch_size, N_FEATURES, 2)


def test_the_gradients_are_those_of_the_batch_mean_loss(tf):
    import keras

    rows = synthetic_rows(12, 2)
    trainer = trainer_for(2)
    x, y = next(iter(_tf_batches(rows, 12)))
    grads, sums = trainer.gradients(x, y)
    model = trainer.model
    with tf.GradientTape() as tape:
        mean = tf.reduce_mean(keras.losses.binary_crossentropy(y, model(x, training=True)))
    reference = tape.gradient(mean, model.trainable_variables)
    for g, r in zip(grads, reference):
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(r).numpy(), rtol=1e-4)
    loss, accuracy = expected_metrics(model, rows)
    assert sums.numpy().tolist() == pytest.approx([loss * 12, accuracy * 12, 12], rel=1e-5)


def test_a_round_reports_the_loss_before_each_step_and_the_rows_it_trained(tf):
    rows = synthetic_rows(50, 2)
    trainer = trainer_for(2)
    first = rows.slice(0, 16)
    loss, accuracy = expected_metrics(trainer.model, first)  # the model the first step sees
    recorder = Recorder()
    logs, mine = trainer.train_round(batches(trainer, rows, 16), 1, recorder)
    assert recorder.began == [0]
    assert mine == 16
    assert logs == pytest.approx({"loss": loss, "accuracy": accuracy}, rel=1e-5)
    assert expected_metrics(trainer.model, first)[0] < loss  # the step descended the batch's loss

    from streamtrain.train.loop import STEPS_PER_CALL

    recorder = Recorder()
    logs, mine = trainer.train_round(batches(trainer, rows, 16), 20, recorder)  # five whole epochs of 4 batches
    assert recorder.began == list(range(0, 20, STEPS_PER_CALL)) and mine == 250  # told where each call begins
    assert all(np.isfinite(v) for v in logs.values())


def test_steps_run_several_a_call_train_what_one_a_call_trains(tf, monkeypatch):
    import streamtrain.train.loop as loop

    rows = synthetic_rows(96, 3, seed=5)
    trained = []
    for per_call in (loop.STEPS_PER_CALL, 1):
        monkeypatch.setattr(loop, "STEPS_PER_CALL", per_call)
        trainer = trainer_for(3, seed=2, dropout=0.25)  # dropout: the draws go on from step to step alike
        recorder = Recorder()
        logs, _ = trainer.train_round(batches(trainer, rows, 16), 19, recorder)
        assert len(recorder.began) == -(-19 // per_call)
        trained.append((logs, trainer.model.get_weights()))
    (grouped, weights), (single, expected) = trained
    assert grouped == single and all(np.array_equal(w, e) for w, e in zip(weights, expected))


def test_training_rounds_lower_the_validation_loss(tf):
    rows = synthetic_rows(96, 2, seed=1)
    trainer = trainer_for(2)
    training, validating = batches(trainer, rows, 32), batches(trainer, rows, 32)
    before = trainer.validate(validating, 3)
    for _ in range(8):
        trainer.train_round(training, 3, Recorder())
    after = trainer.validate(validating, 3)
    assert np.isfinite(after["val_loss"]) and after["val_loss"] < 0.7 * before["val_loss"]
    assert after["val_accuracy"] >= before["val_accuracy"] and after["val_accuracy"] > 0.8


def _train(seed: int, rounds: int = 3) -> tuple[float, list[dict[str, float]]]:
    """Digest of a model with dropout after ``rounds`` rounds, each reseeded as fit does, and the rounds' logs."""
    rows = synthetic_rows(48, 2, seed=2)
    trainer = trainer_for(2, seed=seed, dropout=0.3)
    training = batches(trainer, rows, 16)
    logs = []
    for r in range(rounds):
        trainer.reseed(seed, r, 0)
        logs.append(trainer.train_round(training, 3, Recorder())[0])
    return trainer.weights_digest(), logs


def test_the_same_seed_trains_the_same_weights(tf):
    digest, logs = _train(7)
    assert _train(7) == (digest, logs)
    assert logs[-1]["loss"] < logs[0]["loss"]  # it did train


def test_the_warm_up_leaves_weights_and_optimizer_state_as_they_were(tf):
    from streamtrain.train.tfdata import blank_batches

    rows = synthetic_rows(32, 2)
    trainer = trainer_for(2)
    trainer.train_round(batches(trainer, rows, 16), 2, Recorder())  # moments and step count not zero
    variables = [*trainer.model.weights, *trainer.model.optimizer.variables]
    state = [v.numpy().copy() for v in variables]
    digest = trainer.weights_digest()
    trainer.warm_up(lambda: blank_batches("ngram", N_FEATURES, 2))
    assert trainer.weights_digest() == digest
    for v, before in zip(variables, state):
        np.testing.assert_array_equal(v.numpy(), before)
    expected = expected_metrics(trainer.model, rows)
    got = trainer.validate(batches(trainer, rows, 16), 2)
    assert [got["val_loss"], got["val_accuracy"]] == pytest.approx(expected, rel=1e-5)


def test_one_worker_broadcasts_and_gathers_its_own_numbers(tf):
    trainer = trainer_for(2)
    assert trainer.workers == 1
    values = [1.5, -2.0, float(2**40 + 3)]  # float64 on the wire: exact well beyond float32
    assert trainer.broadcast(values) == values
    assert trainer.gather(0.125) == [0.125]
    digest = trainer.weights_digest()
    trainer.sync_variables()  # the chief's state to itself: unchanged
    assert trainer.weights_digest() == digest
    trainer.finish()  # no barrier for one worker


def test_the_weights_digest_is_48_bits_of_the_state_and_follows_it(tf):
    trainer = trainer_for(2)
    digest = trainer.weights_digest()
    assert digest == int(digest) and 0 <= digest < 2**48
    bias = trainer.model.weights[-1]
    bias.assign(bias.numpy() + 1e-3)
    assert trainer.weights_digest() != digest
    bias.assign(bias.numpy() - 1e-3)
    changed = trainer.weights_digest()
    assert changed == trainer.weights_digest()  # a function of the values alone


def test_one_replica_declares_the_first_layers_rows_listed_once_and_trains_as_before(tf):
    from streamtrain.train.models import SparseDense

    rows = synthetic_rows(96, 2, seed=4)
    declared = trainer_for(2, seed=3)
    kernel = next(layer.kernel for layer in declared.model.layers if isinstance(layer, SparseDense))
    optimizer = declared.model.optimizer
    assert optimizer.once == {optimizer._get_variable_index(kernel)}  # that kernel only: the others are dense
    looked = trainer_for(2, seed=3)
    looked.model.optimizer.once = frozenset()  # as before the declaration: every slice's rows searched for repeats
    for trainer in (declared, looked):
        trainer.train_round(batches(trainer, rows, 16), 12, Recorder())
    for mine, theirs in zip(declared.model.get_weights(), looked.model.get_weights()):
        assert np.array_equal(mine, theirs)


def test_the_warm_up_traces_the_steps_the_rounds_run(tf):
    from streamtrain.train.tfdata import blank_batches

    trainer = trainer_for(2)
    trainer.warm_up(lambda: blank_batches("ngram", N_FEATURES, 2))
    traced = [trainer._train_steps.experimental_get_tracing_count(), trainer._val_step.experimental_get_tracing_count()]
    assert traced == [1, 1]
    rows = synthetic_rows(64, 2)
    trainer.train_round(batches(trainer, rows, 16), 11, Recorder())  # a whole call and a shorter one
    trainer.validate(batches(trainer, rows, 16), 2)
    assert trainer._train_steps.experimental_get_tracing_count() == 1  # the prebuilt model's first round: no tracing
    assert trainer._val_step.experimental_get_tracing_count() == 1
