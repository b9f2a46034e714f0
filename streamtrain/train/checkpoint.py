"""Resumable training: what a killed fit needs to continue from its last commit (``Checkpoint``, ``TrainingState``).

``Checkpoint``, a Keras callback of each trial in the chief, commits into the trial's checkpoint directory
(``versions/<id>.training/checkpoint/``) every ``per_epoch`` rounds (an epoch's worth), at the end of
training, and every ``every_seconds`` (``--checkpoint-seconds``) inside an epoch: the weights and optimizer variables
(``epoch-NNNN.state.npz`` after NNNN rounds, ``step-RRRR-SSSSSS.state.npz`` at step SSSSSS of round RRRR),
the best round's weights (``best-NNNN.weights.npz``), then ``state.json`` (``TrainingState``, by an atomic
rename): the commit point. A killed fit rerun with the same options resumes from the last commit, a round
end or a step inside a round: ``restore`` loads the arrays into a model built alike, and the batches and
dropout draws that follow are those an uninterrupted run would have trained on (``reseed``). A commit is
written on a background thread, one at a time (``flush`` waits for it); nothing built on a non-finite loss
is committed. Early stopping lives here too, since its state must survive the process: Keras'
``EarlyStopping`` rules on ``val_loss`` with ``min_delta``, but never before ``min_rounds`` rounds nor
before the best round's ``val_accuracy`` beats ``floor``. The state counts rounds; ``state.json`` keeps
the keys it had when a round was an epoch (``FILE_KEYS``).

Rationale, file layout and costs: docs/design/training.md
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from streamtrain.errors import writing as naming
from streamtrain.fs.atomic import atomic_write_text

log = logging.getLogger(__name__)
STATE_NAME = "state.json"


# ``state.json``'s keys for the attributes a round was once an epoch for (the file keeps them).
FILE_KEYS = {"rounds_done": "epochs_done", "best_round": "best_epoch"}


@dataclass
class TrainingState:
    """A trial's training so far, as ``state.json`` commits it; it counts rounds."""

    rounds_done: int = 0
    step: int = 0  # batches of round ``rounds_done + 1`` already trained (a checkpoint inside a round)
    best: float | None = None  # best val_loss so far
    best_round: int = 0  # 1-based round of ``best``
    wait: int = 0  # rounds since the best, as Keras' EarlyStopping counts them
    stopped: bool = False  # early stopping ended training
    history: dict[str, list[float]] = field(default_factory=dict)  # per round
    model: str | None = None  # checkpoint file of the last commit (weights + optimizer state)
    best_weights: str | None = None  # weights file of the best round

    def to_json(self) -> dict:
        """``state.json``'s document (its keys: ``FILE_KEYS``)."""
        return {FILE_KEYS.get(k, k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, doc: dict) -> TrainingState:
        """The state ``to_json`` wrote.

        Args:
            doc: ``state.json``'s document.

        Returns:
            The state, its attributes named as this class names them.
        """
        attributes = {v: k for k, v in FILE_KEYS.items()}
        return cls(**{attributes.get(k, k): v for k, v in doc.items()})

    @classmethod
    def load(cls, directory: Path) -> TrainingState | None:
        """The last committed state of a checkpoint directory.

        Args:
            directory: a trial's checkpoint directory.

        Returns:
            The state; None when nothing was committed, or when ``state.json`` or a file it names is unreadable
            or missing (logged as a warning).
        """
        try:
            doc = json.loads((directory / STATE_NAME).read_text(encoding="utf-8"))
            state = cls.from_json(doc)
        except (OSError, ValueError, TypeError) as exc:
            if (directory / STATE_NAME).exists():
                log.warning(f"ignoring an unreadable checkpoint state in {directory}: {exc}")
            return None
        named = [n for n in (state.model, state.best_weights) if n]
        if not all((directory / n).is_file() for n in named):
            log.warning(f"ignoring checkpoint state in {directory}: a file it names is missing")
            return None
        return state


def commit_state(directory: Path, text: str) -> None:
    """Write ``state.json`` (the commit point), then remove the files it does not name.

    Those are older commits' files and leftovers of an interrupted one.

    Args:
        directory: the checkpoint directory.
        text: ``state.json``'s text (``TrainingState.to_json``, as JSON).
    """
    atomic_write_text(directory / STATE_NAME, text)
    doc = json.loads(text)
    keep = {STATE_NAME, doc.get("model"), doc.get("best_weights")}
    for path in directory.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)


class Checkpoint(keras.callbacks.Callback):
    """Early stopping with restorable state, and checkpoints (none once ``unsafe()``); Keras' epochs are rounds.

    Args:
        directory: the trial's checkpoint directory (made if missing).
        state: the state to continue (a resumed one) or a new ``TrainingState``; updated in place.
        seed: fit's seed.
        patience: rounds without a better validation loss before stopping.
        early_stopping: whether to stop early at all (False without validation rows).
        every_seconds: also commit inside a round this often; 0: at round ends only.
        per_epoch: rounds per epoch; the model is committed every ``per_epoch`` rounds.
        unsafe: returns True once nothing more may be committed (a non-finite loss was seen).
        min_delta: a better validation loss beats the best by this fraction of its fall since the first round.
        min_rounds: no early stop before this many rounds.
        floor: no early stop before the best round's validation accuracy beats this (None: no such rule).
    """

    def __init__(
        self,
        directory: Path,
        state: TrainingState,
        seed: int,
        patience: int,
        early_stopping: bool,
        every_seconds: float = 0.0,
        per_epoch: int = 1,
        unsafe: Callable[[], bool] | None = None,
        min_delta: float = 0.0,
        min_rounds: int = 0,
        floor: float | None = None,
    ) -> None:
        super().__init__()
        self.directory, self.state, self.seed = directory, state, seed
        self.patience, self.early_stopping = patience, early_stopping
        self.min_delta = min_delta  # a better validation loss gains this fraction of the fall so far on the best
        self.min_rounds, self.floor = min_rounds, floor  # no early stop before these (``_past_plateau``)
        self.every_seconds = every_seconds  # 0: at the ends of epochs only
        self.per_epoch = per_epoch  # rounds per epoch
        self.unsafe = unsafe or (lambda: False)  # e.g. a non-finite loss was seen: save nothing built on it
        self.offset = 0  # batches of this round trained before this process (a resume inside the round)
        self._saved_at = time.monotonic()
        self._pending = False  # rounds ended since the last commit
        self._best: list[np.ndarray] | None = (
            None  # the best round's weights, in memory (written to disk only at commits)
        )
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
        self._writing: Future | None = None  # the commit being written
        directory.mkdir(parents=True, exist_ok=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Commit a round that ended without a checkpoint (the last one: nothing follows it).

        Args:
            logs: Keras' logs (unused).
        """
        if self._pending and not self.unsafe():
            self.state.model = f"epoch-{self.state.rounds_done:04d}.{STATE_SUFFIX}"
            self._commit()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Every ``every_seconds``: commit with the step cursor at the ``batch`` batches trained so far.

        A batch-begin hook, not batch-end: a callback with a batch-end hook makes Keras wait for every
        step's logs (no asynchronous dispatch), and here, before batch ``batch`` runs, the model holds
        exactly the batches before it.

        Args:
            batch: the 0-based batch of this round (of this process) about to run.
            logs: Keras' logs (unused).
        """
        if not batch or not self._due():
            return
        if self.unsafe() or not all(np.isfinite(w).all() for w in self.model.get_weights()):
            return  # never commit weights a non-finite loss may have reached (FiniteLoss reports it)
        state = self.state
        state.step = self.offset + batch
        state.model = f"step-{state.rounds_done + 1:04d}-{state.step:06d}.{STATE_SUFFIX}"
        self._commit()

    def on_epoch_end(self, round_: int, logs: dict | None = None) -> None:
        """The end of round ``round_``: early stopping's bookkeeping, then a commit when one is due.

        Args:
            round_: the 0-based round that ended.
            logs: the round's ``loss``, ``accuracy``, ``val_loss`` and ``val_accuracy`` (appended to the history).
        """
        self.offset = 0
        if self.unsafe():
            return
        state = self.state
        state.step = 0
        for key, value in (logs or {}).items():
            state.history.setdefault(key, []).append(float(value))
        if self.early_stopping:
            loss = float((logs or {})["val_loss"])
            state.wait += 1
            # Better: below the best by at least min_delta of the fall since the first validation. Nothing has
            # fallen at first, so a slow start (a loss creeping down from the prior) is not taken for a plateau.
            fall = state.history["val_loss"][0] - state.best if state.best is not None else 0.0
            if state.best is None or loss < state.best - self.min_delta * max(fall, 0.0):
                state.best, state.best_round, state.wait = loss, round_ + 1, 0
                state.best_weights = f"best-{round_ + 1:04d}.weights.npz"
                self._best = self.model.get_weights()  # copies; written at the next commit (``_commit``)
            elif state.wait >= self.patience and round_ > 0 and self._past_plateau(round_):
                state.stopped = True
                self.model.stop_training = True
        # The whole model with its optimizer (the costly part) at the end of each pass over the data, at the end
        # of training, and when --checkpoint-seconds have passed; a round in between commits nothing, so a kill
        # there resumes from the last commit. The best weights above are written at the next commit.
        last = state.stopped or (round_ + 1) % self.per_epoch == 0
        if not last and not self._due():
            state.rounds_done = round_ + 1
            self._pending = True
            return
        state.model = f"epoch-{round_ + 1:04d}.{STATE_SUFFIX}"
        state.rounds_done = round_ + 1
        self._commit()

    def _past_plateau(self, round_: int) -> bool:
        """Whether early stopping may end training after the 0-based round ``round_``.

        That is: ``min_rounds`` are done and the best round's validation accuracy beats ``floor``.
        """
        if round_ + 1 < self.min_rounds:
            return False
        if self.floor is None:
            return True
        accuracy = self.state.history.get("val_accuracy", [])
        best = self.state.best_round
        return 0 < best <= len(accuracy) and accuracy[best - 1] > self.floor

    def _due(self) -> bool:
        """Whether ``every_seconds`` (when set) have passed since the last commit (or the start)."""
        return bool(self.every_seconds) and time.monotonic() - self._saved_at >= self.every_seconds

    def _commit(self) -> None:
        """Snapshot the weights and optimizer state, the best weights if they changed, and the state.

        They are written on the writer thread, the state last (the commit), after the commit before it.
        """
        self.flush()
        state = self.state
        assert state.model is not None, "a commit names its model file"
        arrays = training_arrays(self.model)
        best = None
        if self._best is not None and state.best_weights and not (self.directory / state.best_weights).exists():
            best = (self.directory / state.best_weights, self._best)
        self._writing = self._writer.submit(
            _write_commit, self.directory, self.directory / state.model, arrays, best, json.dumps(state.to_json())
        )
        self._pending = False
        self._saved_at = time.monotonic()

    def flush(self) -> None:
        """Wait until the last commit is on disk.

        Raises:
            WriteError: writing it failed (a full or read-only file system), naming the file.
        """
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def restore_best(self, model: keras.Model) -> None:
        """Keras' ``restore_best_weights``: load the weights of the round with the best validation loss.

        Args:
            model: the trial's model; left as it is when no round had a validation loss.
        """
        if self._best is not None:
            model.set_weights(self._best)
        elif self.state.best_weights:  # a resumed run that found no better round: the committed file
            load_best(model, self.directory / self.state.best_weights)


def reseed(model: keras.Model, seed: int, round_: int, step: int = 0, worker: int = 0) -> int:
    """Set every seed generator of ``model``'s layers to its state at ``step`` of round ``round_``.

    The state is ``[f(seed, round_, its place, worker), step]``: Keras' generators add
    one to the second word per draw, and each dropout layer draws once a step.
    Each worker of a multi-worker fit draws its own masks (worker 0's are a
    one-process run's).

    Args:
        model: the model whose layers' generators are set.
        seed: fit's seed.
        round_: the 0-based round.
        step: the batches of the round already trained.
        worker: this worker's index.

    Returns:
        How many generators were set.
    """
    from keras.random import SeedGenerator

    generators = [
        value
        for layer in model._flatten_layers(include_self=True)
        for value in vars(layer).values()
        if isinstance(value, SeedGenerator)
    ]
    for i, generator in enumerate(generators):
        key = [seed, round_, i, 3] if worker == 0 else [seed, round_, i, 3, worker]
        start = np.random.default_rng(key).integers(0, 2**31 - 1)
        generator.state.assign(np.array([start, step], dtype=generator.state.dtype))
    return len(generators)


def load_best(model: keras.Model, path: Path) -> None:
    """Load best weights into ``model`` as a commit wrote them.

    Args:
        model: a model built like the one trained.
        path: ``.npz`` (arrays in ``get_weights`` order), or Keras' ``.weights.h5`` (written by streamtrain 0.3).
    """
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            model.set_weights([arrays[f"arr_{i}"] for i in range(len(arrays.files))])
    else:  # written by streamtrain 0.3
        model.load_weights(path)


STATE_SUFFIX = "state.npz"


def training_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's weights and its optimizer's variables, as a commit writes them.

    Args:
        model: a compiled model.

    Returns:
        Their values at this moment: ``weight_I`` in ``model.weights`` order, ``optimizer_I`` in
        ``model.optimizer.variables`` order.
    """
    arrays = {f"weight_{i}": v.numpy() for i, v in enumerate(model.weights)}
    arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)})
    return arrays


def _write_commit(directory: Path, path: Path, arrays: dict, best: tuple[Path, list] | None, state_text: str) -> None:
    """One commit's files.

    A full or read-only file system raises ``WriteError`` naming the file (the commit before stays the one a
    resume reads).
    """
    with naming(path), open(path, "wb") as fh:
        np.savez(fh, **arrays)
    if best is not None:
        with naming(best[0]), open(best[0], "wb") as fh:
            np.savez(fh, *best[1])
    commit_state(directory, state_text)


def restore(model: keras.Model, directory: Path, state: TrainingState) -> None:
    """Load the weights and optimizer state of ``state``'s commit into ``model``.

    Args:
        model: a compiled model built with the same options as the one checkpointed.
        directory: the checkpoint directory.
        state: its committed state (``TrainingState.load``); ``.keras`` commits of streamtrain 0.5 load too.

    Raises:
        DataError: they do not fit the model (another shape: the resume key should have prevented that).
    """
    from streamtrain.errors import DataError

    assert state.model is not None, "a committed state names its model checkpoint"
    path = directory / state.model
    if path.suffix == ".keras":  # written by streamtrain 0.5: the whole model in Keras' format
        from streamtrain.train import models, optimizers  # noqa: F401 - register SparseDense and LazyAdam

        source = keras.models.load_model(path, safe_mode=True)
        weights, optimizer = source.get_weights(), [v.numpy() for v in source.optimizer.variables]
    else:
        with np.load(path, allow_pickle=False) as arrays:
            weights = [arrays[f"weight_{i}"] for i in range(sum(k.startswith("weight_") for k in arrays.files))]
            optimizer = [arrays[f"optimizer_{i}"] for i in range(sum(k.startswith("optimizer_") for k in arrays.files))]
    targets = [*model.weights, *model.optimizer.variables]
    values = [*weights, *optimizer]
    if (
        len(model.weights) != len(weights)
        or len(targets) != len(values)
        or any(tuple(t.shape) != tuple(v.shape) for t, v in zip(targets, values))
    ):
        raise DataError("the checkpoint's weights or optimizer state do not fit this model", str(path))
    for target, value in zip(targets, values):
        target.assign(value)
