"""The training loop: one custom step under a ``tf.distribute`` strategy, for one worker and for N (``Trainer``).

fit's only training path (Keras ``fit`` is never called); one process runs the same loop under TensorFlow's
default strategy. ``Trainer.train_round`` runs a round's steps, each a ``strategy.run``: every worker takes
its batch's share of the step's loss and the optimizer all-reduces the gradients, so every worker applies
the same update and the weights stay identical; a padding row (``PADDING_LABEL``) weighs 0. One worker runs
``STEPS_PER_CALL`` steps per call into TensorFlow, a worker of a cluster one. Keras callbacks
are driven as ``fit`` would drive them (a Keras "epoch" is a validation round), so ``train.checkpoint``,
``train.guards``, ``train.epoch_log`` and ``train.tensorboard`` are plain callbacks. ``Trainer.validate``
scores a round's validation batches. Per-worker sums are added across workers once per round.
``Channel`` carries the chief's decisions to every worker (``broadcast``) and everyone's numbers to
everyone (``gather``); ``sync_variables`` gives every worker the chief's weights and optimizer state, and
``weights_digest`` lets the workers check at the end that they agree. ``finish`` is the workers' barrier
at the end of a fit; ``deadline`` bounds the wait for a cluster to join (``--join-timeout``).

Rationale: docs/design/training.md
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from streamtrain.train.checkpoint import reseed
from streamtrain.train.cluster import Cluster
from streamtrain.train.models import SparseDense
from streamtrain.train.optimizers import LazyAdam

log = logging.getLogger(__name__)
FINISH_TIMEOUT_MS = 600_000  # how long the workers wait for each other at the end of a fit
# One worker's training steps per call into TensorFlow: a call's own cost was about a third of a short-row step
# (docs/design/training-speed.md). A time-based checkpoint and a signal wait at most this many steps.
STEPS_PER_CALL = 8


class Channel:
    """Numbers between the workers of a strategy, with or without a model.

    The chief's to everyone (``broadcast``), everyone's to everyone (``gather``). fit sends each trial's
    candidate this way before the trial's model exists.

    Args:
        strategy: the ``tf.distribute`` strategy the workers joined (``Cluster.strategy``).
        cluster: this worker's place in the cluster.
    """

    def __init__(self, strategy: tf.distribute.Strategy, cluster: Cluster) -> None:
        self.strategy, self.cluster = strategy, cluster
        self.workers = strategy.num_replicas_in_sync
        self._share = tf.function(self._share_fn, autograph=False)

    def _share_fn(self, values: Any) -> Any:
        """The sum over workers of each worker's ``values`` (a tensor or a list of them)."""

        def share(v: Any) -> Any:
            # On this replica's device (an input from outside the function has none: the all-reduce needs one).
            mine = tf.nest.map_structure(tf.identity, v)
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, mine)

        return self.strategy.run(share, args=(values,))

    def _from_chief(self, values: Any) -> Any:
        """This worker's share of a broadcast: the chief's ``values``, zeros of their shape elsewhere.

        Summed by ``_share``, every worker gets the chief's.
        """
        mine = values if self.cluster.chief else tf.nest.map_structure(tf.zeros_like, values)
        return self.strategy.experimental_local_results(self._share(mine))[0]

    def broadcast(self, values: list[float]) -> list[float]:
        """The chief's numbers, on every worker.

        Every worker calls it at the same point (a collective).

        Args:
            values: this worker's numbers; only the chief's count (the others offer as many of anything).

        Returns:
            The chief's ``values``, as float64.
        """
        return [float(v) for v in self._from_chief(tf.constant(values, tf.float64)).numpy()]

    def gather(self, value: float) -> list[float]:
        """Every worker's number, on every worker (a collective).

        Args:
            value: this worker's number.

        Returns:
            Each worker's ``value``, in worker order.
        """
        mine = np.zeros(self.workers)
        mine[self.cluster.index] = value
        out = self._share(tf.constant(mine, tf.float64))
        return [float(v) for v in self.strategy.experimental_local_results(out)[0].numpy()]


class Trainer(Channel):
    """One model's training and validation steps under ``strategy``, and what fit needs around them.

    Args:
        strategy: the ``tf.distribute`` strategy the workers joined; the model was built in its scope.
        model: the compiled model (``models.build_model``).
        cluster: this worker's place in the cluster.
        n_classes: the classes (2: a one-column sigmoid head, binary cross-entropy).
    """

    def __init__(self, strategy: tf.distribute.Strategy, model: keras.Model, cluster: Cluster, n_classes: int) -> None:
        super().__init__(strategy, cluster)
        self.model, self.n_classes = model, n_classes
        loss = keras.losses.BinaryCrossentropy if n_classes == 2 else keras.losses.SparseCategoricalCrossentropy
        self.loss = loss(reduction=None)  # per row: the step scales it (``gradients``)
        with strategy.scope():
            # loss sum, correct predictions, rows: per worker, added across workers when read
            self._train_sums = _sums("train_sums")
            self._val_sums = _sums("val_sums")
            model.optimizer.build(model.trainable_variables)
        if strategy.num_replicas_in_sync == 1 and isinstance(model.optimizer, LazyAdam):
            # One replica: a SparseDense kernel's gradient lists each row the batch used once.
            model.optimizer.list_rows_once([layer.kernel for layer in model.layers if isinstance(layer, SparseDense)])
        self._train_step = tf.function(self._train_step_fn, autograph=False)
        self._train_steps = tf.function(self._train_steps_fn, autograph=False)
        self._val_step = tf.function(self._val_step_fn, autograph=False)

    # -- steps (traced once per iterator type) --

    def _sums_of(self, y: tf.Tensor, p: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Each row's loss (0 for a padding row), and the batch's (loss sum, correct, rows) without padding rows.

        A weight of 1 leaves every other row's numbers as they were, to the bit.
        """
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

    def gradients(self, x: Any, y: tf.Tensor) -> tuple[list[Any], tf.Tensor]:
        """One worker's batch: the gradients of its share of the step's loss, before the all-reduce.

        The share is ``mean(batch loss) / workers`` (the mean over the step's rows when every worker's batch is
        full: Keras' loss scaling).

        Args:
            x: the batch's features (a ``tf.SparseTensor`` of n-gram rows, or int32 token ids).
            y: its targets (``tfdata``'s shape for the head; a padding row's are negative).

        Returns:
            The gradients, in ``model.trainable_variables`` order, and the batch's (loss sum, correct, rows).
        """
        model = self.model
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            per_row, sums = self._sums_of(y, p)
            rows = tf.cast(tf.maximum(sums[2], 1.0), per_row.dtype)
            loss = tf.reduce_sum(per_row) / rows / self.workers
        return tape.gradient(loss, model.trainable_variables), sums

    def _step(self, x: Any, y: tf.Tensor) -> None:
        """One worker's training step on its batch: the gradients, the update, the round's sums."""
        grads, sums = self.gradients(x, y)
        self.model.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        self._train_sums.assign_add(sums)

    def _train_step_fn(self, iterator: Iterator) -> None:
        self.strategy.run(self._step, args=next(iterator))

    def _train_steps_fn(self, iterator: Iterator, count: tf.Tensor) -> None:
        def body(i: tf.Tensor) -> tuple[tf.Tensor]:
            self.strategy.run(self._step, args=next(iterator))
            return (i + 1,)

        tf.while_loop(lambda i: i < count, body, (tf.constant(0),))

    def _val_step_fn(self, iterator: Iterator) -> None:
        def step(x: Any, y: tf.Tensor) -> None:
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

    def distribute(self, make: Callable[[], tf.data.Dataset]) -> Iterator:
        """An iterator over this worker's batches, for the steps.

        Args:
            make: makes this worker's dataset of batches (each worker makes its own part).

        Returns:
            The strategy's distributed iterator over it.
        """
        options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
        return iter(self.strategy.distribute_datasets_from_function(lambda _: make(), options))

    def _state_variables(self) -> list[Any]:
        """What must be equal on every worker: the model's weights and the optimizer's state."""
        return [*self.model.weights, *self.model.optimizer.variables]

    def weights_digest(self) -> float:
        """This worker's digest of its weights and optimizer state.

        Returns:
            48 bits of their sha256, as a number ``gather`` carries exactly.
        """
        digest = hashlib.sha256()
        for v in self._state_variables():
            digest.update(np.ascontiguousarray(v.numpy()).tobytes())
        return float(int.from_bytes(digest.digest()[:6], "big"))

    def finish(self) -> None:
        """Wait until every worker is here: each calls it once it needs the others no more (after its last round).

        A barrier of TensorFlow's coordination service, not a collective (why: docs/design/training.md), at
        most ``FINISH_TIMEOUT_MS``; a no-op for one worker.
        """
        if self.workers > 1:
            from tensorflow.python.eager import context

            context.context().wait_at_barrier("streamtrain-fit-finish", FINISH_TIMEOUT_MS)

    def warm_up(self, batches: Callable[[], tf.data.Dataset]) -> None:
        """Trace the training and validation steps and run each once, so that the first real round does not pay.

        The training step moves the weights, counts a step in the optimizer and draws dropout masks: every
        weight and optimizer variable is put back as it was (the dropout generators are set at each round's
        start, ``reseed``). Only for one worker: the steps of a cluster would wait for the others.

        Args:
            batches: makes a dataset of one batch of the real batches' type (``tfdata.blank_batches``).
        """
        assert self.workers == 1, "a warm-up runs the steps alone"
        before = [v.numpy() for v in self._state_variables()]
        self._train_steps(self.distribute(batches), tf.constant(1))
        self._val_step(self.distribute(batches))
        for variable, value in zip(self._state_variables(), before):
            variable.assign(value)
        for sums in (self._train_sums, self._val_sums):
            sums.assign(tf.zeros(3, tf.float64))

    def train_round(
        self, batches: Iterator, steps: int, callbacks: keras.callbacks.CallbackList
    ) -> tuple[dict[str, float], float]:
        """Train ``steps`` batches from ``batches``, calling ``on_train_batch_begin`` before each call.

        One worker trains ``STEPS_PER_CALL`` steps a call (a loop in the graph: the same steps, in the same
        order, as one call each); a worker of a cluster, one step a call.

        Args:
            batches: a ``distribute`` iterator over the training batches.
            steps: the batches to train.
            callbacks: the round's callbacks, told the batch each call begins at.

        Returns:
            The round's ``loss`` and ``accuracy`` over every worker's rows, and the rows this worker trained.
        """
        self._train_sums.assign(tf.zeros(3, tf.float64))
        per_call = STEPS_PER_CALL if self.workers == 1 else 1
        for batch in range(0, steps, per_call):
            callbacks.on_train_batch_begin(batch)
            if self.workers == 1:
                self._train_steps(batches, tf.constant(min(per_call, steps - batch)))
            else:
                self._train_step(batches)
        mine = float(self.strategy.experimental_local_results(self._train_sums)[0].numpy()[2])
        return _metrics(self._train_sums, ""), mine

    def validate(self, batches: Iterator, steps: int) -> dict[str, float]:
        """Score ``steps`` validation batches from ``batches`` with the model as it is.

        Args:
            batches: a ``distribute`` iterator over the validation batches.
            steps: the batches to score.

        Returns:
            ``val_loss`` and ``val_accuracy`` over every worker's rows (NaN for no rows).
        """
        self._val_sums.assign(tf.zeros(3, tf.float64))
        for _ in range(steps):
            self._val_step(batches)
        return _metrics(self._val_sums, "val_")

    def reseed(self, seed: int, round_: int, step: int) -> None:
        """Set the dropout draws to those of (seed, round, step, worker) (``checkpoint.reseed``).

        So a resumed run draws what an uninterrupted one would.

        Args:
            seed: fit's seed.
            round_: the 0-based round about to train.
            step: the batches of that round already trained.
        """
        reseed(self.model, seed, round_, step, self.cluster.index)


def _wire(variable: Any) -> tf.DType:
    """The dtype a variable is broadcast in: float32 if it is, else float64."""
    return tf.float32 if tf.as_dtype(variable.dtype) == tf.float32 else tf.float64


def _sums(name: str) -> tf.Variable:
    """Three float64 sums (loss, correct, rows) per worker, added across workers when read."""
    return tf.Variable(
        tf.zeros(3, tf.float64),
        trainable=False,
        name=name,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.SUM,
    )


def _metrics(sums: tf.Variable, prefix: str) -> dict[str, float]:
    """``{prefix}loss`` and ``{prefix}accuracy`` of ``sums`` (NaN for no rows)."""
    loss, correct, rows = (float(v) for v in sums.read_value().numpy())
    rows = rows or float("nan")
    return {f"{prefix}loss": loss / rows, f"{prefix}accuracy": correct / rows}


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """End the process (exit 1) if the block has not finished within ``seconds``.

    For the one wait TensorFlow cannot interrupt: joining a cluster whose workers never all start blocks in C++,
    holding the GIL and deaf to signals, so no Python code can run until it returns. ``faulthandler``'s
    watchdog is a C thread: at the deadline it writes "Timeout" and where each thread was on stderr, then exits
    1.

    Args:
        seconds: the most the block may take.
        what: what the block waits for, logged first, so that what follows reads in context.

    Yields:
        Nothing: the block runs under the watchdog.
    """
    log.info(f"{what} (at most {seconds:g} s; then this process exits 1)")
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
