"""Checkpoint commits: the npz of weights and optimizer state, written on a thread; 0.5's Keras-format commits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamtrain.train.runtime import import_tensorflow


@pytest.fixture(scope="module")
def tf():
    import_tensorflow()
    import tensorflow

    return tensorflow


def trained_mlp(tf, seed: int, steps: int):
    """A small MLP on random sparse rows after ``steps`` LazyAdam steps (so the moments are not zero)."""
    import keras

    from streamtrain.train.models import build_mlp

    keras.utils.set_random_seed(seed)
    model = build_mlp(300, 2, 8, 2, 0.0, 1e-2)
    model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        dense = (rng.random((16, 300)) < 0.05) * rng.random((16, 300))
        x = tf.sparse.from_dense(tf.constant(dense, tf.float32))
        y = tf.constant(rng.integers(0, 2, (16, 1)), tf.float32)
        with tf.GradientTape() as tape:
            loss = keras.losses.binary_crossentropy(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return model


def state_of(model) -> list[np.ndarray]:
    return [v.numpy() for v in [*model.weights, *model.optimizer.variables]]


def test_a_commit_is_written_on_a_thread_and_restores_weights_and_optimizer_state(tf, tmp_path):
    from streamtrain.train.checkpoint import Checkpoint, TrainingState, restore

    model = trained_mlp(tf, 0, 5)
    checkpoint = Checkpoint(tmp_path, TrainingState(), 0, 2, True)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.4})
    expected = state_of(model)
    checkpoint.flush()
    state = TrainingState.load(tmp_path)
    assert state is not None and state.model == "epoch-0001.state.npz" and state.best_weights == "best-0001.weights.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-0001.weights.npz", "epoch-0001.state.npz", "state.json"]
    with np.load(tmp_path / state.model, allow_pickle=False) as arrays:  # plain arrays, no pickle
        assert len(arrays.files) == len(expected)
    fresh = trained_mlp(tf, 9, 0)  # built alike, other initial weights, an unused optimizer
    restore(fresh, tmp_path, state)
    assert all(np.array_equal(a, b) for a, b in zip(state_of(fresh), expected))
    assert int(fresh.optimizer.iterations.numpy()) == 5


def test_the_snapshot_is_the_state_at_the_commit_not_after_later_steps(tf, tmp_path):
    from streamtrain.train.checkpoint import Checkpoint, TrainingState, restore

    model = trained_mlp(tf, 1, 3)
    checkpoint = Checkpoint(tmp_path, TrainingState(), 0, 2, False)
    checkpoint.set_model(model)
    at_commit = state_of(model)
    checkpoint.on_epoch_end(0, {"loss": 0.5})
    model.set_weights([w + 1.0 for w in model.get_weights()])  # changes while (or after) the thread writes
    checkpoint.flush()
    fresh = trained_mlp(tf, 2, 0)
    restore(fresh, tmp_path, TrainingState.load(tmp_path))
    assert all(np.array_equal(a, b) for a, b in zip(state_of(fresh), at_commit))


def test_a_commit_of_streamtrain_0_5_in_keras_format_still_resumes(tf, tmp_path):
    from streamtrain.train.checkpoint import TrainingState, restore

    model = trained_mlp(tf, 3, 4)
    model.save(tmp_path / "epoch-0002.keras")  # 0.5 saved the whole model with its optimizer
    (tmp_path / "state.json").write_text(json.dumps({"epochs_done": 2, "model": "epoch-0002.keras"}))
    fresh = trained_mlp(tf, 4, 0)
    restore(fresh, tmp_path, TrainingState.load(tmp_path))
    assert all(np.array_equal(a, b) for a, b in zip(state_of(fresh), state_of(model)))


def test_a_checkpoint_of_another_shape_is_refused_naming_the_file(tf, tmp_path):
    from streamtrain.errors import DataError
    from streamtrain.train.checkpoint import Checkpoint, TrainingState, restore
    from streamtrain.train.models import build_mlp

    model = trained_mlp(tf, 5, 1)
    checkpoint = Checkpoint(tmp_path, TrainingState(), 0, 2, False)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 0.5})
    checkpoint.flush()
    other = build_mlp(300, 2, 16, 2, 0.0, 1e-2)  # 16 units, not 8
    other.optimizer.build(other.trainable_variables)
    with pytest.raises(DataError, match="do not fit") as info:
        restore(other, tmp_path, TrainingState.load(tmp_path))
    assert info.value.path == str(tmp_path / "epoch-0001.state.npz")


def test_a_version_keeps_the_weights_without_the_optimizer_state(tf, tmp_path):
    import zipfile

    from streamtrain.train.modeldir import MODEL_NAME, load_model, save_weights_model

    model = trained_mlp(tf, 6, 2)
    optimizer = model.optimizer
    save_weights_model(model, tmp_path / MODEL_NAME)
    assert model.optimizer is optimizer  # the live model keeps training state
    loaded = load_model(tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights()))
    with zipfile.ZipFile(tmp_path / MODEL_NAME) as archive:
        import h5py

        with archive.open("model.weights.h5") as fh, h5py.File(fh) as weights:
            assert "layers" in weights and "optimizer" not in weights


FLATTENING = [0.30, 0.2091, 0.2090, 0.2089, 0.2088, 0.2150, 0.2160, 0.2170]  # IMDB's shape: 0.2091, 0.2090, ...
SLOW_START = [0.6931, 0.6929, 0.6926, 0.6900, 0.60, 0.45, 0.44, 0.4399, 0.4398]  # from the prior, then learning


@pytest.mark.parametrize(
    ("losses", "min_delta", "best_round", "stopped_after"),
    [(FLATTENING, 0.0, 5, 7), (FLATTENING, 0.005, 2, 4), (SLOW_START, 0.0, 9, None), (SLOW_START, 0.005, 7, 9)],
)
def test_early_stopping_counts_only_gains_of_min_delta_of_the_fall(
    tf, tmp_path, losses, min_delta, best_round, stopped_after
):
    """A validation loss is better when it beats the best by min_delta of the fall since the first validation:
    where the loss has flattened, a tie is no better epoch (patience runs out sooner, the weights kept are the
    last clearly better ones); at a slow start nothing has fallen yet, so every gain counts."""
    from streamtrain.train.checkpoint import Checkpoint, TrainingState

    model = trained_mlp(tf, 2, 1)
    state = TrainingState()
    checkpoint = Checkpoint(tmp_path, state, 0, 2, True, min_delta=min_delta)
    checkpoint.set_model(model)
    for epoch, val_loss in enumerate(losses):
        checkpoint.on_epoch_end(epoch, {"loss": 0.1, "val_loss": val_loss})
        if model.stop_training:
            break
    checkpoint.flush()
    assert state.best_round == best_round and state.best_weights == f"best-{best_round:04d}.weights.npz"
    assert state.rounds_done == (stopped_after or len(losses)) and state.stopped == (stopped_after is not None)


PLATEAU = [5.7047, 5.7051, 5.7054, 5.7058, 5.7072, 5.7083, 5.6913, 5.6501, 5.5421]  # observation 8 of issue 23
PLATEAU_ACCURACY = [0.0033, 0.0033, 0.0033, 0.0033, 0.0, 0.0, 0.0, 0.0033, 0.03]  # the floor: 0.0163


@pytest.mark.parametrize(
    ("min_rounds", "floor", "stopped_after"),
    [(0, None, 3), (4, None, 4), (4, 0.0163, None), (0, 0.002, 3)],
)
def test_early_stopping_waits_for_a_full_epoch_and_a_best_round_above_the_floor(
    tf, tmp_path, min_rounds, floor, stopped_after
):
    """No stop on the initial plateau: not before ``min_rounds`` rounds (fit: one epoch), nor while the best
    round's validation accuracy does not beat ``floor`` (fit: the majority-class rate of the validation split).
    Without them (0.9) a run of 300 classes stopped after 3 rounds of 4 an epoch, at chance level."""
    from streamtrain.train.checkpoint import Checkpoint, TrainingState

    model = trained_mlp(tf, 2, 1)
    state = TrainingState()
    checkpoint = Checkpoint(tmp_path, state, 0, 2, True, per_epoch=4, min_rounds=min_rounds, floor=floor)
    checkpoint.set_model(model)
    for epoch, (val_loss, val_accuracy) in enumerate(zip(PLATEAU, PLATEAU_ACCURACY)):
        checkpoint.on_epoch_end(epoch, {"loss": 5.7, "val_loss": val_loss, "val_accuracy": val_accuracy})
        if model.stop_training:
            break
    checkpoint.flush()
    assert state.rounds_done == (stopped_after or len(PLATEAU)) and state.stopped == (stopped_after is not None)


def test_the_state_counts_rounds_and_its_file_keeps_the_keys_of_0_9():
    """``state.json`` keeps ``epochs_done`` and ``best_epoch`` (what inspect and older releases read): the state
    names them ``rounds_done`` and ``best_round``, and reads a file of any release back."""
    from streamtrain.train.checkpoint import TrainingState

    state = TrainingState(rounds_done=6, step=3, best=0.25, best_round=4, wait=2, model="epoch-0006.state.npz")
    doc = state.to_json()
    assert list(doc) == [
        "epochs_done",
        "step",
        "best",
        "best_epoch",
        "wait",
        "stopped",
        "history",
        "model",
        "best_weights",
    ]
    assert (doc["epochs_done"], doc["best_epoch"]) == (6, 4)
    assert TrainingState.from_json(json.loads(json.dumps(doc))) == state
    old = TrainingState.from_json({"epochs_done": 2, "model": "epoch-0002.keras"})  # written by 0.5
    assert (old.rounds_done, old.best_round, old.model) == (2, 0, "epoch-0002.keras")
