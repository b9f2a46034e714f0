"""One trial of a fit: one candidate trained in the version being built, resumable, until its own early stopping.

Who owns what: ``Trials`` holds what every trial of one version shares
(the options, the ``Plan``, the cluster's strategy, the version's
directory and resume key, the promotion floor, ``current`` and the
warm-start source, a prebuilt model) and trains one candidate at a time
(``Trials.train``): its model built (or the prebuilt one taken), its
checkpoint resumed or the warm start's weights loaded, its rounds run
through ``rounds.train_rounds`` with the callbacks (``FiniteLoss``, the
``Checkpoint`` that also does early stopping, TensorBoard, the budget's
``Deadline``, the leader's ``Horizon``: ``Limits``, ``EpochLog``), and its best round's weights restored. It
returns the ``Trained`` model and the ``tune.Trial`` record; which
candidates train, and which one wins, is ``train.selection``'s.
``Trials.rebuild`` loads a trial finished before an interruption from its
checkpoint directory. ``trial_config`` is what ``fit_config.json`` records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamtrain.errors import DataError, NonFiniteError
from streamtrain.fs.versions import Versions
from streamtrain.options import effective
from streamtrain.train import tune
from streamtrain.train.cluster import Cluster
from streamtrain.train.modeldir import TENSORBOARD_DIR
from streamtrain.train.plan import Plan
from streamtrain.train.rounds import Start, new_trainer, train_rounds
from streamtrain.train.tune import Candidate

if TYPE_CHECKING:
    from streamtrain.train.checkpoint import Checkpoint, TrainingState
    from streamtrain.train.fit import FitOptions, Prebuilt
    from streamtrain.train.guards import Deadline, FiniteLoss, Horizon
    from streamtrain.train.promotion import Current, MajorityFloor

log = logging.getLogger(__name__)


@dataclass
class Trained:
    """A trained trial: its model (best weights restored) in its trainer, and what fit records of it."""

    candidate: Candidate
    trainer: Any  # loop.Trainer
    state: TrainingState
    checkpoint: Checkpoint | None  # None for a leader rebuilt from disk after a resume
    directory: Path  # its checkpoint directory
    rows: list  # [round][worker] rows trained
    digests: list[str]
    seconds: float
    config: dict
    val: dict | None = None  # the validation split's score, when the selection scored it
    validation_seconds: float = 0.0  # of ``seconds``, validating (this process's rounds)


@dataclass(frozen=True)
class Limits:
    """Where a trial stops besides its own early stopping (``Trials.train``)."""

    until: float | None = None  # the end of the round that reaches this ``time.monotonic()`` time (the budget)
    horizon: tune.Lead | None = None  # ``tune.horizon``: the leader, trailed at equal rounds


@dataclass
class Trials:
    """What the trials of one version share, and the training of each (see the module docstring)."""

    opts: FitOptions
    plan: Plan
    cluster: Cluster
    strategy: Any
    building: Path  # the version being built (``versions/<id>.training``)
    key: dict  # its resume key (``version_run.resume_key``)
    floor: MajorityFloor | None
    current: Current | None
    warm_from: Path | None  # the version a warm start takes its weights from
    prebuilt: Prebuilt | None  # the first trial's model, when it fits
    ahead: Callable[[Any], None] | None = None  # told the prebuilt model when it trains (``ServingStep.trace_ahead``)

    def train(
        self, candidate: Candidate, directory: Path, limits: Limits, first: bool, scored: bool
    ) -> tuple[Trained | None, tune.Trial]:
        """Train ``candidate`` (resuming its checkpoint when there is one) until its early stopping or ``limits``.

        Args:
            candidate: the model to train.
            directory: its checkpoint directory.
            limits: where else it stops (the budget's time, the leader's horizon).
            first: the selection's first trial (logs what training is about to do).
            scored: one of several trials: score it on the whole validation split, and log it under its
                own TensorBoard run.

        Returns:
            The trained model (best weights restored) and the trial's record; no model for a trial whose loss
            became non-finite when ``scored`` (a selection goes on without it, ``skipped`` says why).

        Raises:
            NonFiniteError: the loss became non-finite in an unscored trial (the version is removed).
            ClusterError: a worker was lost.
        """
        from streamtrain.train.guards import Deadline, FiniteLoss, Horizon

        opts, plan = self.resolved(candidate), self.plan
        trainer = self._trainer(candidate, opts)
        state = self._starting_state(trainer.model, directory, opts)
        config = trial_config(opts, plan, self.cluster, candidate, self.warm_from, self.key)
        finite, deadline = FiniteLoss(plan.per_epoch), Deadline(limits.until)
        checkpoint = self._checkpoint(directory, state, opts, finite)
        behind = Horizon(limits.horizon, state, plan.schedule.min_rounds)
        callbacks = self._callbacks(candidate, config, finite, checkpoint, (deadline, behind), scored)
        if first:
            _log_start(opts, plan, self.building, self.cluster)
        loaded = state.rounds_done > 0 or state.step > 0 or self.warm_from is not None
        began = time.perf_counter()
        start = Start(state.rounds_done, state.step, state.stopped, loaded)
        rounds = train_rounds(opts.seed, plan, trainer, callbacks, start)  # on an error, the other workers fail too
        seconds = time.perf_counter() - began
        trial = _record(candidate, state, seconds, deadline.cut, behind.behind)
        if finite.problem:
            with contextlib.suppress(OSError):
                checkpoint.flush()  # nothing may still be writing into what we remove
            if not scored:
                self.discard()
                raise NonFiniteError(f"{finite.problem}; no model was written (a lower --learning-rate may help)")
            trial.skipped = finite.problem
            return None, trial
        checkpoint.restore_best(trainer.model)
        run = Trained(
            candidate, trainer, state, checkpoint, directory, rounds.rows_per_worker, rounds.digests, seconds, config
        )
        run.validation_seconds = rounds.validation_seconds
        if scored:
            checkpoint.flush()
            run.val = self._score(run)
            trial.val_accuracy, trial.val_loss = run.val["accuracy"], run.val["loss"]
        return run, trial

    def rebuild(self, candidate: Candidate, directory: Path, trial: tune.Trial) -> Trained:
        """A finished trial's model from its checkpoint directory (a resumed search whose leader it is).

        Args:
            candidate: the trial's model.
            directory: its checkpoint directory.
            trial: its record (its seconds).

        Returns:
            The model with its best weights, scored on the whole validation split.

        Raises:
            DataError: the checkpoint is missing.
        """
        from streamtrain.train.checkpoint import TrainingState, load_best, restore

        opts = self.resolved(candidate)
        trainer = self._trainer(candidate, opts)
        state = TrainingState.load(directory)
        if state is None:
            raise DataError("a finished trial's checkpoint is missing; remove the .training version", str(directory))
        if state.best_weights:
            load_best(trainer.model, directory / state.best_weights)
        else:
            restore(trainer.model, directory, state)
        config = trial_config(opts, self.plan, self.cluster, candidate, self.warm_from, self.key)
        run = Trained(candidate, trainer, state, None, directory, [], [], trial.seconds, config)
        run.val = self._score(run)
        return run

    def discard(self) -> None:
        """Remove the version being built (a fit that ends without a model)."""
        Versions(self.building.parent.parent).discard(self.building)

    def resolved(self, candidate: Candidate) -> FitOptions:
        """The options ``candidate`` trains with: its own, and the plan's epochs and patience.

        Args:
            candidate: the trial's model.

        Returns:
            fit's options with those replaced.
        """
        schedule = self.plan.schedule
        return dataclasses.replace(candidate.options(self.opts), epochs=schedule.epochs, patience=schedule.patience)

    def _trainer(self, candidate: Candidate, opts: FitOptions) -> Any:
        """``candidate``'s model in its ``Trainer``: the prebuilt one when it fits (the first trial's at most)."""
        inputs = self.plan.manifest.model_inputs
        prebuilt, self.prebuilt = self.prebuilt, None
        if self.cluster.size > 1:  # tell the other workers what to build (they have no model directory)
            from streamtrain.train.loop import Channel

            Channel(self.strategy, self.cluster).broadcast(candidate.encode())
        if prebuilt is not None and prebuilt.fits(candidate, self.opts, inputs):
            log.debug("training the model built while the dataset was prepared (its steps already traced)")
            if self.ahead is not None:
                self.ahead(prebuilt.trainer.model)
            prebuilt.lend(self.plan)
            return prebuilt.trainer
        if prebuilt is not None:
            log.debug(f"not the prebuilt model: built for {prebuilt.inputs} and other options or this dataset")
        return new_trainer(opts, candidate, inputs, self.strategy, self.cluster)

    def _starting_state(self, model: Any, directory: Path, opts: FitOptions) -> TrainingState:
        """The trial's committed state with its weights loaded (a resume), or a new one.

        A new one starts from the warm start's weights when there is one.
        """
        from streamtrain.train.checkpoint import TrainingState, restore

        state = TrainingState.load(directory) if directory.is_dir() else None
        if state is not None:
            restore(model, directory, state)
            log.info(f"resuming version {version_of(self.building)} {_where(state, opts, self.plan)}")
            return state
        if self.warm_from is not None:
            assert self.current is not None and self.current.model is not None, "a warm start loads current"
            model.set_weights(self.current.model.get_weights())
            log.info(f"warm start from the weights of version {self.warm_from.name}")
        return TrainingState()

    def _checkpoint(self, directory: Path, state: TrainingState, opts: FitOptions, finite: FiniteLoss) -> Checkpoint:
        """The trial's ``Checkpoint`` (and early stopping), continuing ``state``."""
        from streamtrain.train.checkpoint import Checkpoint

        plan = self.plan
        checkpoint = Checkpoint(
            directory,
            state,
            opts.seed,
            plan.schedule.patience,
            bool(plan.val.rows),
            opts.checkpoint_seconds,
            plan.per_epoch,
            lambda: finite.problem is not None,
            min_delta=opts.min_delta,
            min_rounds=plan.schedule.min_rounds,  # never on the initial plateau: not before these rounds, nor before
            floor=self.floor.rate if self.floor is not None else None,  # the best round beats the promotion floor
        )
        checkpoint.offset = state.step if not state.stopped else 0
        return checkpoint

    def _callbacks(
        self,
        candidate: Candidate,
        config: dict,
        finite: FiniteLoss,
        checkpoint: Checkpoint,
        stops: tuple[Deadline, Horizon],
        scored: bool,
    ) -> list:
        """The trial's callbacks, in the order they run at a round's end."""
        from streamtrain.train.epoch_log import EpochLog
        from streamtrain.train.tensorboard import TensorBoardLog

        # One TensorBoard run per trial (tensorboard/<candidate>/) when several train, so they can be compared.
        board = self.building / TENSORBOARD_DIR / (candidate.slug if scored else "")
        log_lines = EpochLog(self.plan.schedule.epochs, self.plan.per_epoch)
        return [finite, checkpoint, TensorBoardLog(board, config), *stops, log_lines]

    def _score(self, run: Trained) -> dict:
        """``run``'s model on the whole validation split."""
        from streamtrain.train.scoring import score_split

        opts = self.opts
        return score_split(run.trainer.model, opts.data, self.plan.manifest, "val", opts.score_batch_size)


def _record(candidate: Candidate, state: TrainingState, seconds: float, cut: bool, behind: bool) -> tune.Trial:
    """The trial's record so far (its score comes after)."""
    rounds = state.rounds_done
    best = state.best_round if state.best is not None else rounds
    trial = tune.Trial(candidate, rounds=rounds, best_round=best, seconds=round(seconds, 3), cut=cut, behind=behind)
    trial.history = {k: state.history.get(k, []) for k in ("val_accuracy", "val_loss")}
    return trial


def version_of(building: Path) -> str:
    """The version's id, from the directory it is built in (``versions/<id>.training``)."""
    return building.name.removesuffix(".training")


def _where(state: TrainingState, opts: FitOptions, plan: Plan) -> str:
    """Where a resumed trial continues, in words."""
    done, per_epoch = state.rounds_done, plan.per_epoch
    where = f"after epoch {done / per_epoch:g} of {opts.epochs}"
    if state.step:
        where = f"inside epoch {(done + 1) / per_epoch:g} of {opts.epochs}, at step {state.step} of {plan.round_steps}"
    if per_epoch > 1:
        where += f" (validation round {done + 1 if state.step else done} of {plan.rounds})"
    if state.best is not None:
        where += f"; best validation loss {state.best:.4f} at epoch {state.best_round / per_epoch:g}"
    return where


def trial_config(
    opts: FitOptions, plan: Plan, cluster: Cluster, candidate: Candidate, warm_from: Path | None, key: dict
) -> dict:
    """What ``fit_config.json`` records: the options as trained, and where the rows came from.

    Args:
        opts: the trial's options (``Trials.resolved``).
        plan: the plan (steps and rows).
        cluster: the cluster (its size).
        candidate: the trial's model.
        warm_from: the version a warm start took its weights from.
        key: the resume key, with the manifest's sha256.

    Returns:
        ``fit_config.json``'s document.
    """
    manifest = plan.manifest
    return {
        **effective(opts),
        "data": str(Path(opts.data).resolve()),
        "model_dir": str(Path(opts.model_dir).resolve()),
        "workers": cluster.size,
        "steps_per_epoch": plan.train.steps,
        "steps_per_validation": plan.round_steps,
        "validation_steps": plan.val.steps,
        "validation_sample_rows": plan.val.rows,
        "dataset_vectorizer_sha256": manifest.vectorizer.arrays_sha256,
        "dataset_manifest_sha256": key["manifest_sha256"],
        "model": candidate.model,
        "candidate": candidate.name,
        "dropout": opts.dropout,
        "encoding": manifest.encoding,
        "warm_start_from": warm_from.name if warm_from is not None else None,
    }


def _log_start(opts: FitOptions, plan: Plan, building: Path, cluster: Cluster) -> None:
    """Log what the training is about to do: rows, steps, validations."""
    train, val = plan.train, plan.val
    if not val.rows:
        log.info("no validation rows: training all epochs without early stopping")
    workers = f" on {cluster.size} workers ({train.batch_size} rows a step each)" if cluster.size > 1 else ""
    val_rows = plan.manifest.rows("val")
    validated = f"{val.rows} rows" if val.rows == val_rows else f"a sample of {val.rows} of {val_rows} rows"
    log.info(
        f"training version {version_of(building)} on {train.rows} rows ({train.steps} steps/epoch of "
        f"{opts.batch_size}{workers}), validating on {validated} ({val.steps} steps) every {plan.round_steps} steps"
    )
