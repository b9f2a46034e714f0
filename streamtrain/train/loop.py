"""The training loop: one custom step under a ``tf.distribute`` strategy, for one worker and for N (``Trainer``).

Keras 3 ``fit`` fails under ``MultiWorkerMirroredStrategy`` on TF 2.21 (a
PerReplica conversion error), so fit does not call it at all: the loop
below is the only training path, and a one-process run is the same loop
under TensorFlow's default strategy. Each step runs ``strategy.run``: a
worker computes its batch's loss, ``mean(batch loss) / workers`` (the mean
over the step's rows when every worker's batch is full: Keras' loss
scaling), and the optimizer all-reduces (sums) the gradients before
applying them (Keras' TensorFlow optimizer does that in a replica
context), so every worker applies the same update and the weights stay
identical. A worker's padding step (its share ended a batch early,
``train.batches``) is one blank row labelled ``PADDING_LABEL``
(``train.tfdata``), which the steps weigh 0: it contributes nothing.

Keras callbacks are driven as ``fit`` would drive them (``on_epoch_begin``,
``on_train_batch_begin``, ``on_epoch_end`` with ``loss``, ``accuracy``,
``val_loss``, ``val_accuracy``, ``model.stop_training``), so
``train.checkpoint``, ``train.guards``, ``train.epoch_log`` and
``train.tensorboard`` work unchanged; a Keras "epoch" is a validation
round. Training and validation sums are kept per worker in sync-on-read
variables and added across workers once per round, so no step waits for
another's numbers. Validation is split across workers like training
(``BatchStream(worker=...)``).

Decisions are the chief's: whether to stop (early stopping, a non-finite
loss), where to start (a resumed run's round and step) and the starting
weights (a resume or a warm start) are broadcast from worker 0
(``broadcast``, ``sync_variables``: a sum over workers of the chief's
values and everyone else's zeros), so the workers never disagree and no
other worker reads the model directory. At the end the workers compare
digests of their weights and optimizer state (``weights_digest``): they
must be equal, or the run fails rather than keep a model that one worker
alone would not have trained. Joining the cluster (``train.rounds.join``
creates the strategy, which waits for every worker) has ``--join-timeout``
seconds (``deadline``): a cluster whose workers never all start fails instead of
waiting for ever.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import logging
import sys
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from streamtrain.train.checkpoint import reseed
from streamtrain.train.cluster import Cluster

log = logging.getLogger(__name__)
FINISH_TIMEOUT_MS = 600_000  # how long the workers wait for each other at the end of a fit


class Channel:
    """Numbers between the workers of a strategy, with or without a model: the chief's to everyone
    (``broadcast``), everyone's to everyone (``gather``). fit sends each trial's candidate this way before
    the trial's model exists."""

    def __init__(self, strategy, cluster: Cluster):
        self.strategy, self.cluster = strategy, cluster
        self.workers = strategy.num_replicas_in_sync
        self._share = tf.function(self._share_fn, autograph=False)

    def _share_fn(self, values):
        """The sum over workers of each worker's ``values`` (a tensor or a list of them)."""

        def share(v):
            # On this replica's device (an input from outside the function has none: the all-reduce needs one).
            mine = tf.nest.map_structure(tf.identity, v)
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, mine)

        return self.strategy.run(share, args=(values,))

    def _from_chief(self, values):
        """This worker's share of a broadcast: the chief's ``values``, zeros of their shape elsewhere; summed by
        ``_share``, every worker gets the chief's."""
        mine = values if self.cluster.chief else tf.nest.map_structure(tf.zeros_like, values)
        return self.strategy.experimental_local_results(self._share(mine))[0]

    def broadcast(self, values: list[float]) -> list[float]:
        """The chief's ``values`` (numbers) on every worker."""
        return [float(v) for v in self._from_chief(tf.constant(values, tf.float64)).numpy()]

    def gather(self, value: float) -> list[float]:
        """Every worker's ``value``, in worker order, on every worker."""
        mine = np.zeros(self.workers)
        mine[self.cluster.index] = value
        out = self._share(tf.constant(mine, tf.float64))
        return [float(v) for v in self.strategy.experimental_local_results(out)[0].numpy()]


class Trainer(Channel):
    def __init__(self, strategy, model: keras.Model, cluster: Cluster, n_classes: int):
        super().__init__(strategy, cluster)
        self.model, self.n_classes = model, n_classes
        loss = keras.losses.BinaryCrossentropy if n_classes == 2 else keras.losses.SparseCategoricalCrossentropy
        self.loss = loss(reduction=None)  # per row: the step scales it (``gradients``)
        with strategy.scope():
            # loss sum, correct predictions, rows: per worker, added across workers when read
            self._train_sums = _sums("train_sums")
            self._val_sums = _sums("val_sums")
            model.optimizer.build(model.trainable_variables)
        self._train_step = tf.function(self._train_step_fn, autograph=False)
        self._val_step = tf.function(self._val_step_fn, autograph=False)

    # -- steps (traced once per iterator type) --

    def _sums_of(self, y, p):
        """Each row's loss (0 for a padding row), and the batch's (loss sum, correct, rows) without padding rows.
        A weight of 1 leaves every other row's numbers as they were, to the bit."""
        if self.n_classes == 2:
            keep = tf.cast(y[:, 0] >= 0, tf.float32)
            y = tf.maximum(y, 0.0)
            correct = tf.equal(tf.cast(p > 0.5, tf.float32), y)[:, 0]
        else:
            keep = tf.cast(y >= 0, tf.float32)
            y = tf.maximum(y, 0)
            correct = tf.equal(tf.argmax(p, axis=-1, output_type=tf.int32), tf.cast(y, tf.int32))
        per_row = self.loss(y, p) * keep
        return per_row, tf.stack(
            [
                tf.reduce_sum(tf.cast(per_row, tf.float64)),
                tf.reduce_sum(tf.cast(tf.cast(correct, tf.float32) * keep, tf.float64)),
                tf.reduce_sum(tf.cast(keep, tf.float64)),
            ]
        )

    def gradients(self, x, y):
        """One worker's batch: the gradients of its share of the step's loss (before the all-reduce), and its sums."""
        model = self.model
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            per_row, sums = self._sums_of(y, p)
            rows = tf.cast(tf.maximum(sums[2], 1.0), per_row.dtype)
            loss = tf.reduce_sum(per_row) / rows / self.workers
        return tape.gradient(loss, model.trainable_variables), sums

    def _train_step_fn(self, iterator):
        def step(x, y):
            grads, sums = self.gradients(x, y)
            self.model.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
            self._train_sums.assign_add(sums)

        self.strategy.run(step, args=next(iterator))

    def _val_step_fn(self, iterator):
        def step(x, y):
            _, sums = self._sums_of(y, self.model(x, training=False))
            self._val_sums.assign_add(sums)

        self.strategy.run(step, args=next(iterator))

    # -- what fit calls --

    def sync_variables(self) -> None:
        """Give every worker the chief's weights and optimizer state (after a resume or a warm start).

        Two broadcasts, one per dtype: float32 variables as they are, the others (the optimizer's integer
        step count) as float64, exact below 2**53.
        """
        every = self._state_variables()
        for group in ([v for v in every if _wire(v) == tf.float32], [v for v in every if _wire(v) != tf.float32]):
            if not group:
                continue
            values = self._from_chief([tf.cast(tf.convert_to_tensor(v.value), _wire(v)) for v in group])
            for v, value in zip(group, values):
                v.assign(tf.cast(value, v.dtype))

    def distribute(self, make) -> Iterator:
        """An iterator over ``make()``'s dataset of this worker's batches (each worker makes its own part)."""
        options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
        return iter(self.strategy.distribute_datasets_from_function(lambda _: make(), options))

    def _state_variables(self) -> list:
        """What must be equal on every worker: the model's weights and the optimizer's state."""
        return [*self.model.weights, *self.model.optimizer.variables]

    def weights_digest(self) -> float:
        """48 bits of the sha256 of the weights and optimizer state, as a number ``gather`` can carry exactly."""
        digest = hashlib.sha256()
        for v in self._state_variables():
            digest.update(np.ascontiguousarray(v.numpy()).tobytes())
        return float(int.from_bytes(digest.digest()[:6], "big"))

    def finish(self) -> None:
        """Wait until every worker is here (the chief calls it once it no longer needs the others).

        A barrier of TensorFlow's coordination service, not a collective: a worker that left right after its
        last collective could close its socket while a peer still had to pull that collective's last buffer
        from it ("Socket closed" in the chief's final gather, seen in loaded test runs). At the barrier every
        worker has completed every collective, and the barrier itself runs on the chief's coordination service.
        """
        if self.workers > 1:
            from tensorflow.python.eager import context

            context.context().wait_at_barrier("streamtrain-fit-finish", FINISH_TIMEOUT_MS)

    def warm_up(self, batches) -> None:
        """Trace the training and validation steps and run each once on ``batches()`` (a blank row), so that
        the first real round does not pay for it; the model and its optimizer are left as they were.

        The training step moves the weights, counts a step in the optimizer and draws dropout masks: every
        weight and optimizer variable is put back as it was (the dropout generators are set at each round's
        start, ``reseed``). Only for one worker: the steps of a cluster would wait for the others.
        """
        assert self.workers == 1, "a warm-up runs the steps alone"
        before = [v.numpy() for v in self._state_variables()]
        self._train_step(self.distribute(batches))
        self._val_step(self.distribute(batches))
        for variable, value in zip(self._state_variables(), before):
            variable.assign(value)
        for sums in (self._train_sums, self._val_sums):
            sums.assign(tf.zeros(3, tf.float64))

    def train_round(self, batches: Iterator, steps: int, callbacks) -> tuple[dict[str, float], float]:
        """Train ``steps`` batches from ``batches``: the round's loss and accuracy, and the rows this worker trained."""
        self._train_sums.assign(tf.zeros(3, tf.float64))
        for batch in range(steps):
            callbacks.on_train_batch_begin(batch)
            self._train_step(batches)
        mine = float(self.strategy.experimental_local_results(self._train_sums)[0].numpy()[2])
        return _metrics(self._train_sums, ""), mine

    def validate(self, batches: Iterator, steps: int) -> dict[str, float]:
        self._val_sums.assign(tf.zeros(3, tf.float64))
        for _ in range(steps):
            self._val_step(batches)
        return _metrics(self._val_sums, "val_")

    def reseed(self, seed: int, round_: int, step: int) -> None:
        """Dropout draws as a function of (seed, round, step, worker): a resumed run draws what an uninterrupted
        one would."""
        reseed(self.model, seed, round_, step, self.cluster.index)


def _wire(variable) -> tf.DType:
    """The dtype a variable is broadcast in: float32 if it is, else float64."""
    return tf.float32 if tf.as_dtype(variable.dtype) == tf.float32 else tf.float64


def _sums(name: str) -> tf.Variable:
    return tf.Variable(
        tf.zeros(3, tf.float64),
        trainable=False,
        name=name,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.SUM,
    )


def _metrics(sums: tf.Variable, prefix: str) -> dict[str, float]:
    loss, correct, rows = (float(v) for v in sums.read_value().numpy())
    rows = rows or float("nan")
    return {f"{prefix}loss": loss / rows, f"{prefix}accuracy": correct / rows}


@contextlib.contextmanager
def deadline(seconds: float, what: str):
    """End the process (exit 1) if the block has not finished within ``seconds``; ``what`` says what it waits for.

    For the one wait TensorFlow cannot interrupt: joining a cluster whose workers never all start blocks in C++,
    holding the GIL and deaf to signals, so no Python code can run until it returns. ``faulthandler``'s
    watchdog is a C thread: at the deadline it writes "Timeout" and where each thread was on stderr, then exits
    1. ``what`` is logged first, so that what follows reads in context.
    """
    log.info(f"{what} (at most {seconds:g} s; then this process exits 1)")
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
