"""Resumable training: what a killed fit needs to continue from its last commit (``Checkpoint``).

Vocabulary: an epoch is one pass over the training rows; a round, one
validation round (Keras' "epoch": ``per_epoch`` of them an epoch). The state
counts rounds (``TrainingState.rounds_done``, ``best_round``); its file keeps
the keys it had when a round was an epoch (``epochs_done``, ``best_epoch``:
``TrainingState.to_json``), and so do the files' names (``epoch-NNNN``: NNNN
rounds done).

At the end of every pass over the data (every ``per_epoch`` validation
rounds), at the end of training, and every ``every_seconds``, ``Checkpoint``
(a Keras callback) commits, inside the version being trained
(``versions/<id>.training/checkpoint/``):

- ``epoch-NNNN.state.npz`` (after NNNN rounds): the model's weights (``weight_I``, in
  ``model.weights`` order) and the optimizer's variables (``optimizer_I``:
  Adam's moments and step count), plain arrays (no pickle). A resume builds
  the model from the same options and loads them (``restore``); the shapes
  must match. Checkpoints written by streamtrain 0.5 (``epoch-NNNN.keras``,
  the model with its optimizer in Keras' format) are still resumed;
- ``best-NNNN.weights.npz``: the weights of the best validation loss so far
  (kept in memory between commits: each write of a 200,000-feature model
  cost ~0.5 s);
- ``state.json``, written last by an atomic rename, the commit point: the
  rounds completed, the step cursor inside the next round, the
  early-stopping state (best loss, its round, rounds waited, whether
  training stopped) and the history so far. Files it does not name are
  leftovers of an interrupted save and are removed.

A commit takes its snapshot at once (the variables' values: TensorFlow
copies a variable's buffer before an update while a read of it is alive)
and writes it on a background thread while training goes on, one commit at
a time: a commit waits for the one before it, and fit waits (``flush``)
before it writes the version. The 146 MB of an IMDB commit took 0.6-1.2 s
in Keras' format and ~0.5 s as npz, now mostly hidden behind training. A
process killed while a commit is being written resumes from the commit
before it, whose files are still on disk.

Inside a round, the model is also checkpointed every ``every_seconds``
(``step-RRRR-SSSSSS.state.npz``: step SSSSSS of round RRRR, with ``step`` in
the state): a fit killed in the middle of a long round resumes at that
step, on the rest of the same round's batches
(``BatchStream.forever_chunks(epoch, skip_batches)``). The resumed round's
training loss and accuracy in the history average only the
batches trained after the resume.

Early stopping lives here too, with Keras' ``EarlyStopping`` rules
(``val_loss``, a ``min_delta``, best weights restored at the end), because
its state must survive the process. It never stops on the initial plateau:
not before ``min_rounds`` rounds (fit: one full epoch), and, given a
``floor`` (fit: the validation split's majority-class rate), not before the
best round's ``val_accuracy`` beats it (the weights kept would be a
chance-level model, which the promotion guard rejects); ``epochs`` still
bounds the run. An epoch's shuffle plan is a pure
function of (seed, epoch) (``dataset.shuffle``), so the rounds done and the
step are the position in the stream of epochs: a resumed run trains the
batches an uninterrupted run would (``train.rounds``). Dropout's random
draws are made a function of (seed, round, step) the same way: at the start
of every round ``train.rounds`` sets each layer's seed generator from
(seed, round) (``reseed``), and it advances one draw per step, so a resumed
run draws the masks an uninterrupted one would.

In a multi-worker fit only the chief has a ``Checkpoint``; its
``model.stop_training`` is broadcast to the others by ``train.rounds``.
"""

from __future__ import annotations

import json
import logging
import time
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
        attributes = {v: k for k, v in FILE_KEYS.items()}
        return cls(**{attributes.get(k, k): v for k, v in doc.items()})

    @classmethod
    def load(cls, directory: Path) -> TrainingState | None:
        """The last committed state, or None when no round was completed (or the state is unreadable)."""
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
    """Write ``state.json`` (the commit point), then remove the files it does not name (older commits' files and
    leftovers of an interrupted one)."""
    atomic_write_text(directory / STATE_NAME, text)
    doc = json.loads(text)
    keep = {STATE_NAME, doc.get("model"), doc.get("best_weights")}
    for path in directory.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)


class Checkpoint(keras.callbacks.Callback):
    """Early stopping with restorable state, and checkpoints (none once ``unsafe()``); Keras' epochs are rounds."""

    def __init__(
        self,
        directory: Path,
        state: TrainingState,
        seed: int,
        patience: int,
        early_stopping: bool,
        every_seconds: float = 0.0,
        per_epoch: int = 1,
        unsafe=None,
        min_delta: float = 0.0,
        min_rounds: int = 0,
        floor: float | None = None,
    ):
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
        self._best: list | None = None  # the best round's weights, in memory (written to disk only at commits)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
        self._writing: Future | None = None  # the commit being written
        directory.mkdir(parents=True, exist_ok=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Commit a round that ended without a checkpoint (the last of ``epochs``: nothing follows it)."""
        if self._pending and not self.unsafe():
            self.state.model = f"epoch-{self.state.rounds_done:04d}.{STATE_SUFFIX}"
            self._commit()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Every ``every_seconds``: commit with the step cursor at the ``batch`` batches trained so far.

        A batch-begin hook, not batch-end: a callback with a batch-end hook makes Keras wait for every
        step's logs (no asynchronous dispatch), and here, before batch ``batch`` runs, the model holds
        exactly the batches before it.
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
        """The end of round ``round_`` (0-based): early stopping's bookkeeping, then a commit when one is due."""
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
        """Whether early stopping may end training after round ``round_`` (0-based): ``min_rounds`` are done and
        the best round's validation accuracy beats ``floor``."""
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
        """Snapshot the weights and optimizer state, the best weights if they changed, and the state; write them
        on the writer thread, the state last (the commit). Waits for the commit before it first."""
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
        """Wait until the last commit is on disk; raise what writing it raised."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def restore_best(self, model) -> None:
        """Keras' ``restore_best_weights``: the weights of the round with the best validation loss."""
        if self._best is not None:
            model.set_weights(self._best)
        elif self.state.best_weights:  # a resumed run that found no better round: the committed file
            load_best(model, self.directory / self.state.best_weights)


def reseed(model, seed: int, round_: int, step: int = 0, worker: int = 0) -> int:
    """Set every seed generator of ``model``'s layers to its state at ``step`` of round ``round_``; return how many.

    The state is ``[f(seed, round_, its place, worker), step]``: Keras' generators add
    one to the second word per draw, and each dropout layer draws once a step.
    Each worker of a multi-worker fit draws its own masks (worker 0's are a
    one-process run's).
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


def load_best(model, path: Path) -> None:
    """Best weights as a commit wrote them: ``.npz`` (arrays in ``get_weights`` order), or Keras' ``.weights.h5``."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            model.set_weights([arrays[f"arr_{i}"] for i in range(len(arrays.files))])
    else:  # written by streamtrain 0.3
        model.load_weights(path)


STATE_SUFFIX = "state.npz"


def training_arrays(model) -> dict[str, np.ndarray]:
    """The model's weights and its optimizer's variables, as a commit writes them (values at this moment)."""
    arrays = {f"weight_{i}": v.numpy() for i, v in enumerate(model.weights)}
    arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)})
    return arrays


def _write_commit(directory: Path, path: Path, arrays: dict, best: tuple[Path, list] | None, state_text: str) -> None:
    """One commit's files; a full or read-only file system: ``WriteError`` naming the file (the commit before
    stays the one a resume reads)."""
    with naming(path), open(path, "wb") as fh:
        np.savez(fh, **arrays)
    if best is not None:
        with naming(best[0]), open(best[0], "wb") as fh:
            np.savez(fh, *best[1])
    commit_state(directory, state_text)


def restore(model, directory: Path, state: TrainingState) -> None:
    """Load the weights and optimizer state of ``state``'s commit into ``model`` (built with the same options).

    ``DataError`` when they do not fit it (another model shape: the resume key should have prevented that).
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
