"""fit's rounds on the one training loop: the strategy joined, a model built in its ``Trainer``, its rounds run.

Who owns what: ``join`` creates the ``tf.distribute`` strategy (joining
every worker of a cluster within ``--join-timeout``); ``new_trainer``
builds a candidate's model alike on every worker, in its ``train.loop.Trainer``;
``train_rounds`` runs a trial's validation rounds from where the chief says
(``Start``, broadcast) until the plan's last round or a stop, on every
worker in step, driving the Keras callbacks as Keras ``fit`` would. Round
``r`` trains the batches from step ``r * round_steps`` of the one stream
of epochs, so a resumed trial reads the batches an uninterrupted one would,
with the dropout draws of (seed, round, step) (``Trainer.reseed``). What the
rounds decide (stopping, checkpoints) is the callbacks'; what they return
is ``Rounds``. ``pipeline`` builds each input pipeline once per plan,
for every trial that starts where it does. An input pipeline error is
re-raised as itself (a ``DataError`` naming the shard), a lost worker as
``ClusterError``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamtrain.errors import ClusterError
from streamtrain.train.cluster import Cluster
from streamtrain.train.runtime import one_thread_per_op

if TYPE_CHECKING:
    from collections.abc import Iterator

    from streamtrain.dataset.manifest import ModelInputs
    from streamtrain.train.batches import BatchStream
    from streamtrain.train.fit import FitOptions
    from streamtrain.train.plan import Plan
    from streamtrain.train.tune import Candidate


@dataclass(frozen=True)
class Start:
    """Where a trial's rounds begin (the chief's word: ``train_rounds`` broadcasts it)."""

    rounds_done: int = 0
    step: int = 0  # batches of round ``rounds_done + 1`` already trained
    stopped: bool = False  # early stopping had ended the trial
    loaded: bool = False  # the chief's model holds loaded weights (a resume or a warm start): share them

    def numbers(self) -> list[float]:
        """As numbers, for ``Channel.broadcast``, in field order."""
        return [float(self.rounds_done), float(self.step), float(self.stopped), float(self.loaded)]


@dataclass
class Rounds:
    """What a trial's rounds return besides the model they trained."""

    rows_per_worker: list[list[int]]  # [round][worker]: rows each worker trained in each round of this process
    digests: list[str]  # each worker's digest of its final weights (none for one worker)
    validation_seconds: float = 0.0  # of this process's rounds, the time spent validating


def join(opts: FitOptions, cluster: Cluster, encoding: str) -> Any:
    """The ``tf.distribute`` strategy, joined to every worker of the cluster.

    For n-gram rows each TensorFlow op runs on one thread (``runtime.one_thread_per_op``), set before
    anything starts TensorFlow's runtime.

    Args:
        opts: fit's options (``join_timeout``: how long to wait for the other workers).
        cluster: this worker's place in the cluster.
        encoding: the dataset's encoding, ``ngram`` or ``sequence``.

    Returns:
        ``Cluster.strategy()``: the default strategy for one process. A cluster whose workers do not all
        start within ``--join-timeout`` ends this process (exit 1, ``loop.deadline``).
    """
    from streamtrain.train.loop import deadline

    if encoding == "ngram":  # before anything starts TensorFlow's runtime (the strategy, the seed, the model)
        one_thread_per_op()
    waiting = f"{cluster.name}: waiting for the {cluster.size} workers of TF_CONFIG to start"
    with deadline(opts.join_timeout, waiting) if cluster.size > 1 else contextlib.nullcontext():
        return cluster.strategy()  # with several workers, waits for every one of them to start


def new_trainer(opts: FitOptions, candidate: Candidate, inputs: ModelInputs, strategy: Any, cluster: Cluster) -> Any:
    """``candidate``'s model in its ``Trainer``, built alike on every worker (so the variable broadcasts pair up).

    Args:
        opts: fit's options (the seed of the initial weights, the sepCNN's sizes).
        candidate: the model to build.
        inputs: the dataset's model inputs (features, row width, classes).
        strategy: the joined strategy (``join``); the model is built in its scope.
        cluster: this worker's place in the cluster.

    Returns:
        The ``loop.Trainer``.
    """
    import keras

    from streamtrain.train.loop import Trainer
    from streamtrain.train.models import build_model

    keras.utils.set_random_seed(opts.seed)  # the initial weights (the chief's reach the others: the strategy's)
    with strategy.scope():
        model = build_model(candidate, inputs.n_features, inputs.row_width, inputs.n_classes, opts)
    return Trainer(strategy, model, cluster, inputs.n_classes)


def train_rounds(seed: int, plan: Plan, trainer: Any, callbacks: list, start: Start) -> Rounds:
    """Train the rounds from ``start`` until the plan's last or a stop, on every worker in step.

    Args:
        seed: fit's seed (the dropout draws of each round and step).
        plan: the plan (streams, rounds, steps per round).
        trainer: the trial's ``loop.Trainer``.
        callbacks: Keras callbacks, driven as Keras ``fit`` drives them (an "epoch" is a round).
        start: where to begin; the chief's is broadcast, the others' ignored.

    Returns:
        The rows each worker trained in each round, and the workers' weight digests (several workers).

    Raises:
        DataError: the input pipeline failed reading a shard (its own error, not TensorFlow's wrapping).
        ClusterError: a worker was lost, or the workers' weights differ after training.
    """
    failures: list[list[BaseException]] = []  # what each input pipeline raised, with its type and message intact
    try:
        rows, validation_seconds = _run(seed, plan, trainer, callbacks, start, failures)
        cluster = trainer.cluster
        digests = [f"{int(d):012x}" for d in trainer.gather(trainer.weights_digest())] if cluster.size > 1 else []
    except Exception as exc:
        raised = [failure for failed in failures for failure in failed]
        if raised:  # the input pipeline's own error (a damaged shard), not TensorFlow's wrapping of it
            raise raised[0] from exc
        lost = _lost_worker(exc, trainer.cluster)
        if lost:
            raise ClusterError(lost) from exc
        raise
    if len(set(digests)) > 1:
        raise ClusterError(
            f"the workers' weights differ after training (digests {', '.join(digests)}): no model was written"
        )
    return Rounds(rows, digests, validation_seconds)


def _run(
    seed: int, plan: Plan, trainer: Any, callbacks: list, start: Start, failures: list
) -> tuple[list[list[int]], float]:
    """The loop of ``train_rounds``: the rows each worker trained in each round, and the seconds validating."""
    import keras

    model = trainer.model
    train, val, round_steps = plan.train, plan.val, plan.round_steps
    rows: list[list[int]] = []
    seconds = 0.0
    done, step, stopped, loaded = (int(v) for v in trainer.broadcast(start.numbers()))
    if loaded:
        trainer.sync_variables()

    def batches(split: BatchStream, epoch: int = 0, skip: int = 0) -> Iterator:
        dataset, failed = pipeline(plan, split, epoch, skip)
        failures.append(failed)
        return trainer.distribute(lambda: dataset)

    epoch, skip = divmod(done * round_steps + step, train.steps)
    training = batches(train, epoch, skip)
    validating = batches(val) if val.rows else None
    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    hooks.on_train_begin()
    while not stopped and done < plan.rounds:
        trainer.reseed(seed, done, step)
        hooks.on_epoch_begin(done)  # Keras' "epoch": a round
        logs, mine = trainer.train_round(training, round_steps - step, hooks)
        rows.append([int(r) for r in trainer.gather(mine)])
        if validating is not None:
            began = time.perf_counter()
            logs.update(trainer.validate(validating, val.steps))
            seconds += time.perf_counter() - began
        hooks.on_epoch_end(done, logs)
        done, step = done + 1, 0
        stopped = bool(trainer.broadcast([float(bool(model.stop_training))])[0])
    hooks.on_train_end()
    return rows, seconds


def pipeline(plan: Plan, split: BatchStream, epoch: int = 0, skip: int = 0) -> tuple[Any, list[BaseException]]:
    """``split``'s batches from batch ``skip`` of ``epoch`` (``tfdata.keras_dataset``), and what reading them raised.

    Built once per plan, stream and start (in ``plan.pipelines``), and iterated afresh by every trial that
    starts there, as every new trial does at the first batch; its failures are forgotten when a trial takes it.

    Args:
        plan: the fit's plan (its streams, its classes).
        split: one of its streams.
        epoch: the epoch to start in.
        skip: the batches of ``epoch`` already trained.

    Returns:
        The ``tf.data.Dataset``, and the list its reading generator appends its exception to.
    """
    from streamtrain.train.tfdata import keras_dataset

    key = pipeline_key(split, epoch, skip)
    if key not in plan.pipelines:
        failures: list[BaseException] = []
        plan.pipelines[key] = (keras_dataset(split, len(plan.manifest.labels), failures, epoch, skip), failures)
    dataset, failed = plan.pipelines[key]
    failed.clear()
    return dataset, failed


def pipeline_key(split: BatchStream, epoch: int = 0, skip: int = 0) -> tuple[int, int, int]:
    """Where ``plan.pipelines`` keeps ``split``'s pipeline from batch ``skip`` of ``epoch`` (``pipeline``).

    The plan holds its streams: their ids stand while it does. ``fit.Prebuilt.lend`` puts the pipelines built
    ahead there for a fresh start.
    """
    return id(split), epoch, skip


def _lost_worker(exc: BaseException, cluster: Cluster) -> str | None:
    """What to say when ``exc`` is TensorFlow reporting a failed peer, else None."""
    import re

    import tensorflow as tf

    if cluster.size == 1 or not isinstance(exc, tf.errors.OpError):
        return None
    text = str(exc)
    tasks = sorted({int(t) for t in re.findall(r"/job:worker/(?:replica:0/)?task:(\d+)", text)} - {cluster.index})
    who = ", ".join(f"worker {t}" for t in tasks) or "another worker"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    telling = [line for line in lines if re.search(r"aborted by|unhealthy|connection|socket|heartbeat", line, re.I)]
    first = (telling or lines or [type(exc).__name__])[0][:200]
    return (
        f"{cluster.name}: lost contact with {who} ({first}); the run stopped. "
        "Rerun the same command on every worker to resume from the last checkpoint"
    )
