"""fit: stream a prepared dataset into a Keras model and add a model version (``FitOptions``, ``fit``).

Training rows reach the model through ``BatchStream.forever_chunks``
(reshuffled every epoch, every row exactly once per epoch);
``steps_per_epoch`` and ``validation_steps`` come from the manifest. The
training loop is ``train.loop.Trainer`` (not Keras ``fit``), the same for
one process and for a multi-worker cluster (``train.cluster``, from
``TF_CONFIG``; ``--workers N`` on the command line starts one on loopback).
Early stopping watches the validation loss and restores the best weights.
Final metrics are computed by the same streaming scorer that ``evaluate``
uses. The model follows the dataset's encoding unless ``--model`` says
otherwise: the MLP for n-gram rows, sepCNN for token sequences. One log
line per validation round (``train.epoch_log``) on stderr, never on stdout.

A run, in order: validate the dataset; take the model directory's writer
lock and the dataset's reader lock (``fs.locks``: a second fit exits 75 at
once, before TensorFlow is imported); adopt a 0.2 model directory; complete
a killed run's promotion step (``train.promote.recover``); check and load
``current`` (``promotion.load_current``: one that cannot be loaded stops fit
here, exit 65, unless ``--force``); find an
interrupted version with the same resume key (training options, number of
workers, the manifest's sha256) and continue it from its checkpoint
(``train.checkpoint``), or begin a new one (``fs.versions``), from scratch
or ``--warm-start`` from ``current``; train; score; ask the promotion guard
(``train.promotion``); write the version's files; finish it and switch
``current`` if promoted as one recoverable step (``train.promote.complete``);
prune to ``--keep``. A rejected version raises ``NotPromoted`` (exit 3)
after all of that. ``faults.point`` marks where the chaos test kills it.

In a cluster, worker 0 (the chief) does all of that; the other workers take
only the dataset's reader lock, build the same model, and train their part
of every batch (``_fit_worker``): they never open the model directory.

``prebuild`` builds the model before the dataset exists, from its
``ModelInputs``, and runs its steps once to trace them; ``fit(opts,
prebuilt)`` trains that model when the options and the manifest agree.
``train`` does this while its prepare child finishes: the same weights to the bit
(``tests/train/test_prebuild.py``), ~1 s sooner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamtrain import faults
from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest, ModelInputs
from streamtrain.errors import ClusterError, DataError, NonFiniteError, NotPromoted, UsageError
from streamtrain.fs.atomic import atomic_write_text
from streamtrain.fs.checksums import sha256_file
from streamtrain.fs.jsondoc import write_json
from streamtrain.fs.locks import reader_lock, writer_lock
from streamtrain.fs.versions import Versions, new_id
from streamtrain.options import NON_NEGATIVE, POSITIVE, SECONDS, SHARE, check_options, effective, option
from streamtrain.train import tune
from streamtrain.train.cluster import Cluster
from streamtrain.train.modeldir import (
    CHECKPOINT_DIR,
    CONFIG_NAME,
    CONFUSION_PNG,
    REPORT_NAME,
    RESUME_NAME,
    TENSORBOARD_DIR,
    TRAINING_PNG,
    adopt_flat,
    check,
    is_flat,
    metric_numbers,
    read_vectorizer_doc,
)
from streamtrain.train.promote import complete, log_adoption, recover
from streamtrain.train.promotion import load_current, majority_floor
from streamtrain.train.runtime import import_tensorflow, one_thread_per_op
from streamtrain.train.serving import ServingStep
from streamtrain.train.tune import Candidate

if TYPE_CHECKING:
    from streamtrain.train.batches import BatchStream

log = logging.getLogger(__name__)
MODELS = ("auto", *tune.MODELS)
MODELS_FOR_ENCODING = {"ngram": ("mlp", "linear"), "sequence": ("sepcnn",)}
# Options that do not change what is trained: a rerun that differs only in these still resumes.
NOT_TRAINING = (
    "model_dir",
    "wait",
    "keep",
    "max_regression",
    "force",
    "overwrite",
    "score_batch_size",
    "checkpoint_seconds",
    "workers",  # the cluster's size is in the key on its own (``_resume_key``)
    "join_timeout",
)


# Unset --validations: a validation every VALIDATION_ROWS training rows, at least MIN_VALIDATIONS an epoch. A corpus
# of near-copies (IMDB grown x8 by token dropout: 179k rows of 25k reviews) is learnt within a fraction of an
# epoch, and 4 validations an epoch saw its best only after it had passed; on IMDB itself (22k rows) the rule
# gives the 4 it had before. Chosen with 16 units on 6 seeds: test accuracy x8 0.9063 and x1 0.9074 on average.
VALIDATION_ROWS = 5_600
MIN_VALIDATIONS = 4
# What each of those validations scores: at most this many rows of the validation split (evenly spaced blocks, the
# same ones every time; the final metrics and the promotion guard score every row). With the split whole, a round
# cost grew with the corpus twice over (rounds per epoch with the training rows, rows per round with the
# validation rows): at IMDB x8 (21k validation rows) validating took as long as training.
VALIDATION_SAMPLE_ROWS = 8_192


def validations_per_epoch(opts_validations: int | None, train_rows: int) -> int:
    """``--validations``, or when unset the rule above."""
    if opts_validations is not None:
        return opts_validations
    return max(MIN_VALIDATIONS, round(train_rows / VALIDATION_ROWS))


def _dropout(value: float) -> bool:
    return 0.0 <= value < 1.0


@dataclass
class FitOptions:
    data: str = option(path=True, metavar="DIR", help="the prepared dataset directory (with manifest.json)")
    model_dir: str = option(path=True, metavar="DIR", help="the model directory to write")
    epochs: int | None = option(
        None,
        **POSITIVE,
        help="most epochs; early stopping usually ends sooner; unset: enough for "
        f"{tune.MIN_STEPS:,} steps, at least {tune.MIN_EPOCHS}",
    )
    batch_size: int = option(128, **POSITIVE, help="training rows per batch")
    learning_rate: float | None = option(
        None,
        check=lambda v: v > 0,
        rule="positive",
        help="Adam learning rate; unset: " + ", ".join(f"{v:g} for {m}" for m, v in tune.LEARNING_RATE.items()),
    )
    patience: int | None = option(
        None,
        **NON_NEGATIVE,
        help="validations without a better validation loss before stopping (see --validations); unset: those "
        f"covering {tune.PATIENCE_STEPS} training steps, at least {tune.MIN_PATIENCE}",
    )
    min_delta: float = option(
        0.0,
        check=lambda v: 0 <= v < 1,
        rule="a number in [0, 1)",
        help="a validation loss counts as better (for early stopping and the weights kept) when it beats the best "
        "by at least this fraction of the loss's fall since the first validation; 0: by any amount",
    )
    validations: int | None = option(
        None,
        **POSITIVE,
        help="validations per epoch: early stopping looks this often, so it stops this much sooner after the best; "
        f"unset: one every {VALIDATION_ROWS:,} training rows, at least {MIN_VALIDATIONS} (IMDB's 22k rows: 4)",
    )
    validation_rows: int = option(
        VALIDATION_SAMPLE_ROWS,
        **NON_NEGATIVE,
        help="rows of the validation split scored at each validation during training (evenly spaced blocks, the "
        "same each time; the final metrics use every row); 0: every row",
    )
    seed: int = option(0, help="seed of shuffling, initialisation and dropout")
    model: str = option(
        "auto",
        choices=MODELS,
        help="model family; auto: the model selection's pick (n-grams: mlp or linear; sequences: sepcnn)",
    )
    units: int | None = option(
        None, **POSITIVE, help="mlp: units per hidden layer; unset: chosen from the classes and by the selection"
    )
    layers: int | None = option(None, **POSITIVE, help=f"mlp: hidden layers; unset: {tune.LAYERS}")
    blocks: int = option(2, **POSITIVE, help="sepcnn: convolution blocks")
    filters: int = option(64, **POSITIVE, help="sepcnn: filters of the first blocks")
    embedding_dim: int = option(200, **POSITIVE, help="sepcnn: embedding size")
    dropout: float | None = option(
        None,
        check=_dropout,
        rule="a number in [0, 1)",
        help="dropout rate; unset: " + ", ".join(f"{v:g} for {m}" for m, v in tune.DROPOUT.items()),
    )
    tune_seconds: float | None = option(
        None,
        **SECONDS,
        help="model selection: seconds the candidates after the first may train; 0: train the prior's first "
        f"only; unset: {tune.BUDGET_FACTOR:g} x the first's seconds, at least {tune.MIN_BUDGET:g}",
    )
    retune: bool = option(False, help="search again instead of reusing the model the current version's selection chose")
    score_batch_size: int | None = option(
        None, **POSITIVE, help="rows scored at a time for the final metrics; unset: 1024 for n-grams, 256 for sequences"
    )
    keep: int = option(5, **POSITIVE, help="complete versions kept in --model-dir (current is never removed)")
    max_regression: float = option(
        0.005,
        **SHARE,
        help="promote the new version unless its validation accuracy is lower than current's by more than this",
    )
    force: bool = option(False, help="promote the new version whatever the promotion guard says")
    export: bool = option(
        True,
        help="write the version's SavedModel (saved_model/: raw text in) and check it in a fresh TensorFlow before "
        "promoting it; --no-export: neither (streamtrain export writes one later)",
    )
    serving_dir: str | None = option(
        None,
        path=True,
        metavar="DIR",
        help="also write each promoted version's SavedModel to DIR/N, the next integer (TensorFlow Serving's "
        "model base path: it serves the highest N)",
    )
    warm_start: bool = option(
        False, help="start from the current version's weights (same vectorizer and model shape required)"
    )
    wait: float = option(0.0, **SECONDS, help="seconds to wait for another run holding --model-dir before exiting 75")
    checkpoint_seconds: float = option(
        300.0,
        **SECONDS,
        help="also checkpoint inside an epoch this often, so a killed fit resumes at that step; 0: epoch ends only",
    )
    workers: int = option(
        1,
        **POSITIVE,
        help="train on this many worker processes: without TF_CONFIG, the command starts them on this machine "
        "(loopback); with TF_CONFIG (a real cluster), it must name this many",
    )
    join_timeout: float = option(
        600.0,
        **SECONDS,
        help="multi-worker: seconds a worker waits for all the workers of TF_CONFIG to start before exiting 1",
    )
    overwrite: bool = option(False, help="no longer needed (every fit adds a version); accepted for old crontabs")
    # Library-only knob: not on the command line.
    buffer_blocks: int = 8  # blocks read and shuffled together


def fit(opts: FitOptions, prebuilt: Prebuilt | None = None) -> dict:
    """Train a new version of ``opts.model_dir`` and run the promotion guard; returns the metrics and the decision.

    Raises ``NotPromoted`` (exit 3) after keeping a version the guard rejected.
    In a multi-worker cluster (``TF_CONFIG``, ``train.cluster``) every worker
    calls this: the chief does all of the above; the others only train, and
    return the rows they trained. ``prebuilt``: ``prebuild``'s model, used when it was built with these
    ``opts`` for the dataset's ``ModelInputs`` and is the first trial's candidate (else a model is built as usual).
    """
    check_options(opts)
    cluster = Cluster.from_env()
    if opts.workers > 1 and cluster.size != opts.workers:
        how = f"names {cluster.size}" if cluster.size > 1 else "is not set"
        raise UsageError(
            f"--workers {opts.workers}: TF_CONFIG {how}; the command line starts a local cluster itself "
            "(streamtrain fit --workers N), a library caller sets TF_CONFIG on each worker"
        )
    if opts.serving_dir is not None and not opts.export:
        raise UsageError("--serving-dir publishes the SavedModel that --no-export leaves out: drop one of them")
    if opts.serving_dir is not None:
        from streamtrain.serve.export import config_exportable
        from streamtrain.vectorize.vectorizer import load_config

        why = config_exportable(load_config(opts.data)[0])
        if why is not None:
            raise UsageError(f"--serving-dir: models of {opts.data} cannot be exported: {why}")
    if opts.overwrite and cluster.chief:
        log.warning("--overwrite is no longer needed: every fit adds a version and keeps the last --keep")
    Manifest.load(opts.data)  # a dataset, before any lock file or directory is made (read again under the lock)
    if not cluster.chief:  # reads the dataset only; the model directory is the chief's
        with reader_lock(opts.data, opts.wait):
            return _fit_worker(opts, cluster)
    # Locks first, before any work: a second fit of this model directory exits 75 within a second.
    with (
        writer_lock(opts.model_dir, "model directory", opts.wait),
        reader_lock(opts.data, opts.wait),
    ):
        return _fit_locked(opts, cluster, prebuilt)


@dataclass
class Prebuilt:
    """fit's model for ``candidate``, ``opts`` and a dataset of ``inputs``, in its ``Trainer``, built and warmed
    up ahead (``prebuild``)."""

    candidate: Candidate
    opts: FitOptions
    inputs: ModelInputs
    trainer: Any

    def fits(self, candidate: Candidate, opts: FitOptions, inputs: ModelInputs) -> bool:
        """Whether this is the model ``fit(opts)`` would build for ``candidate`` and a dataset of ``inputs``."""
        return self.candidate == candidate and self.opts == opts and self.inputs == inputs


def prebuild(opts: FitOptions, inputs: ModelInputs) -> Prebuilt:
    """The model of the prior's first candidate (``tune.candidates``) for a dataset of ``inputs``, with its
    training, validation and scoring functions traced and run once (``Trainer.warm_up``, ``scoring.warm_up``),
    for ``fit(opts, prebuilt)``.

    ``train`` calls it while its prepare child selects, names and writes: the ~1 s that the first round and
    the first scoring spent tracing is then spent beside prepare. One process only (no cluster).
    """
    import_tensorflow()
    from streamtrain.train import scoring
    from streamtrain.train.tfdata import blank_batches

    cluster = Cluster.from_env()
    if cluster.size > 1:
        raise UsageError("a model is prebuilt for a one-process fit only")
    candidate = tune.candidates(opts, tune.Profile(inputs.encoding, 0, inputs.n_classes, inputs.n_features))[0]
    trainer = _trainer(opts, candidate, inputs, _join(opts, cluster, inputs.encoding), cluster)
    trainer.warm_up(lambda: blank_batches(inputs.encoding, inputs.row_width, inputs.n_classes))
    scoring.warm_up(trainer.model, inputs)
    return Prebuilt(candidate, opts, inputs, trainer)


@dataclass
class _Plan:
    """What every worker derives alike from the options and the manifest: streams, rounds, the schedule."""

    manifest: Manifest
    train: BatchStream  # this worker's training rows
    val: BatchStream  # this worker's validation rows (of the sample, when the split is larger)
    per_epoch: int  # validation rounds per epoch
    round_steps: int
    schedule: tune.Schedule  # epochs and patience, from the options or the data

    @property
    def rounds(self) -> int:
        return self.schedule.epochs * self.per_epoch


def _plan(opts: FitOptions, manifest: Manifest, cluster: Cluster) -> _Plan:
    import_tensorflow()  # quietly, before anything imports it
    from streamtrain.train.batches import BatchStream, SplitSource, sample_blocks
    from streamtrain.train.scoring import SCORE_BATCH

    if manifest.rows("train") == 0:
        raise DataError("dataset has no training rows", opts.data)
    if opts.model != "auto":
        choose_model(opts.model, manifest.encoding)  # refuses a model that cannot read these rows

    def stream(split: str, shuffle: bool, batch_size: int, sample: int = 0) -> BatchStream:
        source = SplitSource(opts.data, manifest, split)
        per_worker = -(-batch_size // cluster.size)
        blocks = sample_blocks(source, sample) if sample and source.rows > sample else None
        return BatchStream(
            source, per_worker, shuffle, opts.seed, opts.buffer_blocks, cluster.index, cluster.size, blocks
        )

    train = stream("train", True, opts.batch_size)
    # Validation batches are scoring batches (1,024 n-gram rows): it runs several times an epoch, and
    # per-step overhead, not arithmetic, was most of its cost at the training batch size.
    val = stream("val", False, opts.score_batch_size or SCORE_BATCH[manifest.encoding], opts.validation_rows)
    # A Keras "epoch" is a validation round: ``validations_per_epoch`` per pass over the training rows, on one
    # continuous stream of epochs (a round may end inside an epoch); Checkpoint's state counts rounds.
    wanted = min(validations_per_epoch(opts.validations, manifest.rows("train")), train.steps)
    round_steps = -(-train.steps // wanted) if val.rows else train.steps
    per_epoch = wanted if val.rows else 1
    return _Plan(manifest, train, val, per_epoch, round_steps, tune.schedule(opts, train.steps, round_steps))


def _fit_locked(opts: FitOptions, cluster: Cluster, prebuilt: Prebuilt | None) -> dict:
    root = Path(opts.model_dir)
    _check_model_dir(root)
    versions = Versions(root)
    adopted = adopt_flat(root)
    if adopted is not None:
        log_adoption(versions, adopted)  # in promotions.jsonl, like every version that became current
    recover(versions)  # a killed run's promotion step, before current is read
    manifest = Manifest.load(opts.data)
    plan = _plan(opts, manifest, cluster)  # imports TensorFlow
    current = load_current(versions, opts.force)  # before any training: one that cannot be loaded stops fit here
    floor = majority_floor(opts.data, manifest)  # early stopping's and the promotion guard's, computed once
    if opts.warm_start and current is not None and current.model is None:
        raise DataError(
            f"--warm-start: the current model ({current.version}) cannot be loaded: {current.problem}; point current "
            f"at a good version (streamtrain promote {root} VERSION) or drop --warm-start"
        )
    choices, reused_from, searched = _choices(opts, manifest, versions, cluster)
    warm_from = _warm_start_source(opts, versions, manifest, choices[0]) if opts.warm_start else None
    # Join the other workers before the long checks: they wait for the chief in a collective, which has no deadline.
    strategy = _join(opts, cluster, manifest.encoding)
    manifest.check_shards(opts.data)  # every shard's size and sha256, before any training
    key = _resume_key(opts, cluster)
    building, resuming = _resume_or_begin(versions, key)
    # The serving check's process imports TensorFlow while the model trains (train.serving).
    serving = ServingStep.start(opts.data, manifest, opts.export)
    try:
        search = _Search(opts, plan, cluster, strategy, building, key, floor, current, warm_from, prebuilt)
        winner, selection = search.run(choices, reused_from, searched, resuming)
        faults.point("after-train")
        # The other workers may leave now: nothing below talks to them, and the chief's scoring is its own work.
        winner.trainer.finish()
        return _finish(opts, plan, versions, building, winner, selection, current, floor, serving)
    finally:
        serving.close()


def _choices(
    opts: FitOptions, manifest: Manifest, versions: Versions, cluster: Cluster
) -> tuple[list[Candidate], str | None, bool]:
    """The candidates to train, in order; the version whose selection they reuse (None: none); and whether this
    is a search of the prior's own candidates (``tune.Selection.searched``: what a later fit reuses).

    Reused: ``current``'s searched selection when it was made for this dataset's vectorizer and neither
    ``--retune`` nor a model option asks otherwise; ``--warm-start`` trains current's own candidate;
    ``--tune-seconds 0`` and a cluster train the prior's first candidate alone (a cluster's search runs in one
    process: ``--workers 1 --retune``).
    """
    found = tune.candidates(opts, tune.Profile.of(manifest))
    warm = _current_candidate(versions) if opts.warm_start else None
    if warm is not None:  # the shape of the weights it starts from
        return [tune.with_user_options(warm, opts)], None, False
    if tune.user_set(opts):
        return found, None, False
    reused = None if opts.retune else _current_selection(versions, manifest)
    if reused is not None:
        return [reused[1].chosen], reused[0], True
    if opts.tune_seconds == 0:
        return found[:1], None, False
    if cluster.size > 1 and len(found) > 1:
        log.info(
            f"a cluster trains the prior's first candidate ({found[0].name}); the model selection runs in one "
            "process (fit --workers 1 --retune), and later cluster fits reuse it"
        )
        return found[:1], None, False
    return found, None, len(found) > 1


def _current_selection(versions: Versions, manifest: Manifest) -> tuple[str, tune.Selection] | None:
    """``current``'s version and selection, when it has a searched one made for this dataset's vectorizer."""
    from streamtrain.train.promotion import same_vectorizer

    version = versions.current()
    if version is None:
        return None
    path = versions.path(version)
    try:
        doc = json.loads((path / tune.SELECTION_NAME).read_text(encoding="utf-8"))
        selection = tune.Selection.from_json(doc)
        same = same_vectorizer(read_vectorizer_doc(path), manifest)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (version, selection) if same and selection.searched else None


def _join(opts: FitOptions, cluster: Cluster, encoding: str):
    """The strategy, joined to every worker of the cluster (within ``--join-timeout``)."""
    from streamtrain.train.loop import deadline

    if encoding == "ngram":  # before anything starts TensorFlow's runtime (the strategy, the seed, the model)
        one_thread_per_op()
    waiting = f"{cluster.name}: waiting for the {cluster.size} workers of TF_CONFIG to start"
    with deadline(opts.join_timeout, waiting) if cluster.size > 1 else contextlib.nullcontext():
        return cluster.strategy()  # with several workers, waits for every one of them to start


def _fit_worker(opts: FitOptions, cluster: Cluster) -> dict:
    """A worker other than the chief: train in step with the others; the chief's broadcasts say what and where."""
    from streamtrain.train.guards import FiniteLoss
    from streamtrain.train.loop import Channel

    manifest = Manifest.load(opts.data)
    plan = _plan(opts, manifest, cluster)  # imports TensorFlow
    strategy = _join(opts, cluster, manifest.encoding)
    candidate = tune.Candidate.decode(Channel(strategy, cluster).broadcast(tune.Candidate.blank()))
    trainer = _trainer(opts, candidate, manifest.model_inputs, strategy, cluster)
    log.info(f"{cluster.name} of {cluster.size}: {plan.train.worker_rows} training rows an epoch")
    rows, _ = _train(opts, plan, trainer, [FiniteLoss(plan.per_epoch)], None)
    trainer.finish()  # waits until every worker has trained its last round
    return {"worker": cluster.index, "workers": cluster.size, "rows_per_worker": rows}


def _trainer(opts: FitOptions, candidate: Candidate, inputs: ModelInputs, strategy, cluster: Cluster):
    """``candidate``'s model, built alike on every worker (so the strategy's variable broadcasts pair up), in its
    ``Trainer``."""
    import keras

    from streamtrain.train.loop import Trainer

    keras.utils.set_random_seed(opts.seed)  # the initial weights (the chief's reach the others: the strategy's)
    with strategy.scope():
        model = build_model(candidate, inputs.n_features, inputs.row_width, inputs.n_classes, opts)
    return Trainer(strategy, model, cluster, inputs.n_classes)


@dataclass
class _Run:
    """A trained trial: its model (best weights restored) in its trainer, and what fit records of it."""

    candidate: Candidate
    trainer: Any
    state: Any  # checkpoint.TrainingState
    checkpoint: Any  # checkpoint.Checkpoint, None for a leader rebuilt from disk after a resume
    directory: Path  # its checkpoint directory
    rows: list  # [round][worker] rows trained
    digests: list[str]
    seconds: float
    config: dict
    val: dict | None = None  # the validation split's score, when the selection scored it


TRIALS_NAME = "trials.json"  # finished trials of a search, in the version's checkpoint directory


class _Search:
    """The chief's trials of one fit, in order, within the budget (``train.tune``); keeps the leader's model.

    One candidate trains in ``checkpoint/`` as every fit did; several train in ``checkpoint/trial-I/``, each
    finished trial is recorded in ``checkpoint/trials.json`` (a resumed fit skips it), and a loser's
    directory is removed as soon as it loses.
    """

    def __init__(self, opts, plan, cluster, strategy, building, key, floor, current, warm_from, prebuilt):
        self.opts, self.plan, self.cluster, self.strategy = opts, plan, cluster, strategy
        self.building, self.key, self.floor, self.current, self.warm_from = building, key, floor, current, warm_from
        self.prebuilt = prebuilt

    def run(
        self, choices: list[Candidate], reused_from: str | None, searched: bool, resuming: bool
    ) -> tuple[_Run, tune.Selection]:
        several = len(choices) > 1
        if several and not self.plan.val.rows:
            log.info("no validation rows: no model selection, the prior's first candidate trains")
            choices, several = choices[:1], False
        record = self.building / CHECKPOINT_DIR / TRIALS_NAME
        done = _read_trials(record) if resuming and several else []
        trials: list[tune.Trial] = []
        leader: _Run | None = None
        budget: float | None = None
        for i, candidate in enumerate(choices):
            directory = self.building / CHECKPOINT_DIR / (f"trial-{i}" if several else "")
            if i < len(done) and done[i].candidate == candidate:
                log.info(f"trial {i + 1} of {len(choices)}: {candidate.name}, trained before the interruption")
                trials.append(done[i])
                if tune.pick(trials) == i and done[i].val_accuracy is not None:
                    leader = self._rebuild(candidate, directory, done[i])
                continue
            until = None
            if i > 0:
                budget = tune.budget(self.opts, trials[0].seconds) if budget is None else budget
                spent = sum(t.seconds for t in trials[1:])
                if spent >= budget:
                    trials.append(tune.Trial(candidate, skipped=f"the budget of {budget:.0f} s was spent"))
                    continue
                until = time.monotonic() + budget - spent
            if several:
                log.info(f"trial {i + 1} of {len(choices)}: {candidate.name}")
            elif reused_from is None:  # a reused one is said once, with its version, below
                log.info(f"model: {candidate.name}")
            run, trial = self._trial(candidate, directory, until, first=i == 0, scored=several)
            trials.append(trial)
            if run is not None and tune.pick(trials) == i:
                if leader is not None:
                    shutil.rmtree(leader.directory, ignore_errors=True)
                leader = run
            elif run is not None:
                shutil.rmtree(run.directory, ignore_errors=True)
            if several:
                atomic_write_text(record, json.dumps([t.to_json() for t in trials]))
                if i + 1 < len(choices):
                    faults.point("after-trial")
        if leader is None:
            self._discard()
            problems = "; ".join(f"{t.candidate.name}: {t.skipped}" for t in trials if t.skipped)
            raise NonFiniteError(f"{problems}; no model was written (a lower --learning-rate may help)")
        selection = tune.Selection(trials, tune.pick(trials), budget, reused_from, searched)
        if several or reused_from is not None:
            log.info(tune.line(selection))
        return leader, selection

    def _resolved(self, candidate: Candidate) -> FitOptions:
        schedule = self.plan.schedule
        return dataclasses.replace(candidate.options(self.opts), epochs=schedule.epochs, patience=schedule.patience)

    def _model(self, candidate: Candidate, opts: FitOptions):
        inputs = self.plan.manifest.model_inputs
        prebuilt, self.prebuilt = self.prebuilt, None  # the first trial's at most
        if self.cluster.size > 1:  # tell the other workers what to build (they have no model directory)
            from streamtrain.train.loop import Channel

            Channel(self.strategy, self.cluster).broadcast(candidate.encode())
        if prebuilt is not None and prebuilt.fits(candidate, self.opts, inputs):
            log.debug("training the model built while the dataset was prepared (its steps already traced)")
            return prebuilt.trainer
        if prebuilt is not None:
            log.debug(f"not the prebuilt model: built for {prebuilt.inputs} and other options or this dataset")
        return _trainer(opts, candidate, inputs, self.strategy, self.cluster)

    def _trial(
        self, candidate: Candidate, directory: Path, until: float | None, first: bool, scored: bool
    ) -> tuple[_Run | None, tune.Trial]:
        """Train ``candidate`` (resuming its checkpoint when there is one) until its early stopping or ``until``."""
        from streamtrain.train.checkpoint import Checkpoint, TrainingState, restore
        from streamtrain.train.epoch_log import EpochLog
        from streamtrain.train.guards import Deadline, FiniteLoss
        from streamtrain.train.scoring import score_split
        from streamtrain.train.tensorboard import TensorBoardLog

        opts, plan = self._resolved(candidate), self.plan
        trainer = self._model(candidate, opts)
        model, per_epoch = trainer.model, plan.per_epoch
        state = TrainingState.load(directory) if directory.is_dir() else None
        if state is not None:
            restore(model, directory, state)
            log.info(f"resuming version {_version_of(self.building)} {_where(state, opts, plan)}")
        elif self.warm_from is not None:
            model.set_weights(self.current.model.get_weights())
            log.info(f"warm start from the weights of version {self.warm_from.name}")
        config = _config(opts, plan, self.cluster, candidate, self.warm_from, self.key)
        state = state or TrainingState()
        finite, deadline = FiniteLoss(per_epoch), Deadline(until)
        checkpoint = Checkpoint(
            directory,
            state,
            opts.seed,
            plan.schedule.patience,
            bool(plan.val.rows),
            opts.checkpoint_seconds,
            per_epoch,
            lambda: finite.problem is not None,
            min_delta=opts.min_delta,
            min_rounds=per_epoch,  # never stop on the initial plateau: not before one full epoch, nor before
            floor=self.floor.rate if self.floor is not None else None,  # the best round beats the promotion floor
        )
        checkpoint.offset = state.step if not state.stopped else 0
        # One TensorBoard run per trial (tensorboard/<candidate>/) when several train, so they can be compared.
        board = self.building / TENSORBOARD_DIR / (candidate.slug if scored else "")
        callbacks = [
            finite,
            checkpoint,
            TensorBoardLog(board, config),
            deadline,
            EpochLog(plan.schedule.epochs, per_epoch),
        ]
        if first:
            _log_start(opts, plan, self.building, self.cluster)
        loaded = state.epochs_done > 0 or state.step > 0 or self.warm_from is not None
        start = [state.epochs_done, state.step, state.stopped, loaded]
        began = time.perf_counter()
        rows, digests = _train(opts, plan, trainer, callbacks, start)  # on an error, the other workers fail too
        seconds = time.perf_counter() - began
        rounds, best = state.epochs_done, state.best_epoch if state.best is not None else state.epochs_done
        trial = tune.Trial(candidate, rounds=rounds, best_round=best, seconds=round(seconds, 3), cut=deadline.cut)
        trial.history = {k: state.history.get(k, []) for k in ("val_accuracy", "val_loss")}
        if finite.problem:
            with contextlib.suppress(OSError):
                checkpoint.flush()  # nothing may still be writing into what we remove
            if not scored:
                self._discard()
                raise NonFiniteError(f"{finite.problem}; no model was written (a lower --learning-rate may help)")
            trial.skipped = finite.problem
            return None, trial
        checkpoint.restore_best(model)
        run = _Run(candidate, trainer, state, checkpoint, directory, rows, digests, seconds, config)
        if scored:
            checkpoint.flush()
            run.val = score_split(model, opts.data, plan.manifest, "val", opts.score_batch_size)
            trial.val_accuracy, trial.val_loss = run.val["accuracy"], run.val["loss"]
        return run, trial

    def _rebuild(self, candidate: Candidate, directory: Path, trial: tune.Trial) -> _Run:
        """A finished trial's model from its checkpoint directory (a resumed search whose leader it is)."""
        from streamtrain.train.checkpoint import TrainingState, load_best, restore

        opts = self._resolved(candidate)
        trainer = self._model(candidate, opts)
        state = TrainingState.load(directory)
        if state is None:
            raise DataError("a finished trial's checkpoint is missing; remove the .training version", str(directory))
        if state.best_weights:
            load_best(trainer.model, directory / state.best_weights)
        else:
            restore(trainer.model, directory, state)
        config = _config(opts, self.plan, self.cluster, candidate, self.warm_from, self.key)
        run = _Run(candidate, trainer, state, None, directory, [], [], trial.seconds, config)
        from streamtrain.train.scoring import score_split

        run.val = score_split(trainer.model, opts.data, self.plan.manifest, "val", opts.score_batch_size)
        return run

    def _discard(self) -> None:
        Versions(self.building.parent.parent).discard(self.building)


def _read_trials(path: Path) -> list[tune.Trial]:
    try:
        return [tune.Trial.from_json(doc) for doc in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _where(state, opts: FitOptions, plan: _Plan) -> str:
    """Where a resumed trial continues, in words."""
    done, per_epoch = state.epochs_done, plan.per_epoch
    where = f"after epoch {done / per_epoch:g} of {opts.epochs}"
    if state.step:
        where = f"inside epoch {(done + 1) / per_epoch:g} of {opts.epochs}, at step {state.step} of {plan.round_steps}"
    if per_epoch > 1:
        where += f" (validation round {done + 1 if state.step else done} of {plan.rounds})"
    if state.best is not None:
        where += f"; best validation loss {state.best:.4f} at epoch {state.best_epoch / per_epoch:g}"
    return where


def _config(
    opts: FitOptions, plan: _Plan, cluster: Cluster, candidate: Candidate, warm_from: Path | None, key: dict
) -> dict:
    """What ``fit_config.json`` records: the options as trained, and where the rows came from (``key``: the
    resume key, with the manifest's sha256)."""
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


def _log_start(opts: FitOptions, plan: _Plan, building: Path, cluster: Cluster) -> None:
    train, val = plan.train, plan.val
    if not val.rows:
        log.info("no validation rows: training all epochs without early stopping")
    workers = f" on {cluster.size} workers ({train.batch_size} rows a step each)" if cluster.size > 1 else ""
    val_rows = plan.manifest.rows("val")
    validated = f"{val.rows} rows" if val.rows == val_rows else f"a sample of {val.rows} of {val_rows} rows"
    log.info(
        f"training version {_version_of(building)} on {train.rows} rows ({train.steps} steps/epoch of "
        f"{opts.batch_size}{workers}), validating on {validated} ({val.steps} steps) every {plan.round_steps} steps"
    )


def _finish(
    opts: FitOptions,
    plan: _Plan,
    versions: Versions,
    building: Path,
    winner: _Run,
    selection: tune.Selection,
    current,
    floor,
    serving: ServingStep,
) -> dict:
    """Score the winner, ask the promotion guard, export and check its SavedModel (``train.serving``), write the
    version and complete it (promoting it or not)."""
    from streamtrain.train.guards import require_finite
    from streamtrain.train.modeldir import write_version
    from streamtrain.train.plots import confusion_png, training_png
    from streamtrain.train.promotion import decide, summary_line
    from streamtrain.train.report import write_report
    from streamtrain.train.scoring import score_split

    model, state, manifest, per_epoch = winner.trainer.model, winner.state, plan.manifest, plan.per_epoch
    hist = state.history
    rounds_run = state.epochs_done
    best_round = state.best_epoch if state.best is not None else rounds_run
    best = best_round if state.best is not None else None
    # The pictures are drawn on a thread while the model is scored (TensorFlow runs without the GIL): matplotlib's
    # import and the two drawings, ~0.7 s of a fit, overlap the scoring.
    with ThreadPoolExecutor(2, thread_name_prefix="beside") as plots:
        exported = plots.submit(serving.export, building, model)  # the SavedModel, traced while the model is scored
        drawn = [plots.submit(training_png, hist, best, building / TRAINING_PNG, per_epoch)]
        results = {"val": winner.val or score_split(model, opts.data, manifest, "val", opts.score_batch_size)}
        results["test"] = score_split(model, opts.data, manifest, "test", opts.score_batch_size)
        trial = selection.trials[selection.winner]
        if trial.val_accuracy is None:  # one candidate: its score is the final one
            trial.val_accuracy, trial.val_loss = results["val"]["accuracy"], results["val"]["loss"]
        metrics = _metrics(plan, winner, results, rounds_run, best_round)
        require_finite("refusing to write a model whose metrics are not finite", metric_numbers(metrics))
        decision = decide(
            model,
            metrics["val_accuracy"],
            opts.data,
            manifest,
            current,
            floor,
            opts.max_regression,
            opts.force,
            opts.score_batch_size,
        )
        drawn.append(plots.submit(confusion_png, metrics["test_confusion"], manifest.labels, building / CONFUSION_PNG))
        decision = serving.decide(decision, exported.result())
        for picture in drawn:
            picture.result()
    write_report(
        building,
        metrics=metrics,
        history=hist,
        config=winner.config,
        promotion=decision,
        manifest=manifest,
        version=_version_of(building),
        selection=selection,
    )
    if winner.checkpoint is not None:
        winner.checkpoint.flush()  # the last commit, written while the model was scored, is on disk
    write_json(building / tune.SELECTION_NAME, selection.to_json())
    write_version(building, model, opts.data, metrics, hist, winner.config, decision)
    faults.point("after-write")
    # One recoverable step (train.promote): journal, drop the checkpoint, rename into place, switch current.
    final, before = complete(versions, building, decision["promoted"], decision["reason"], opts.serving_dir)
    version = final.name
    pruned = versions.prune(opts.keep, protect=(before, version))
    if pruned:
        log.info(f"removed {len(pruned)} old version(s) beyond --keep {opts.keep}: {', '.join(pruned)}")
    faults.point("after-prune")
    log.log(logging.INFO if decision["promoted"] else logging.WARNING, summary_line(version, decision))
    result = {
        **metrics,
        "version": version,
        "promoted": decision["promoted"],
        "promotion": decision,
        "report": str(final / REPORT_NAME),
    }
    if not decision["promoted"]:
        raise NotPromoted(summary_line(version, decision), result)
    return result


def _metrics(plan: _Plan, winner: _Run, results: dict, rounds_run: int, best_round: int) -> dict:
    per_epoch = plan.per_epoch
    return {
        "test_accuracy": results["test"]["accuracy"],
        "test_loss": results["test"]["loss"],
        "val_accuracy": results["val"]["accuracy"],
        "val_loss": results["val"]["loss"],
        "epochs": round(rounds_run / per_epoch, 3),  # passes over the training rows (rounds may end inside one)
        "best_epoch": round(best_round / per_epoch, 3),
        "validations": rounds_run,
        "best_validation": best_round,
        "validations_per_epoch": per_epoch,
        "train_rows": plan.train.rows,
        "val_rows": results["val"]["rows"],
        "validation_sample_rows": plan.val.rows,  # what each validation during training scored
        "test_rows": results["test"]["rows"],
        "classes": plan.manifest.labels,
        "model": winner.candidate.model,
        "candidate": winner.candidate.name,
        "workers": winner.trainer.cluster.size,
        "rows_per_worker": winner.rows,  # [round][worker]: rows each worker trained in each round of this run
        "weights_digests": winner.digests,  # each worker's, at the end of training (equal, or training failed)
        "test_confusion": results["test"]["confusion"],
        "train_seconds": round(winner.seconds, 3),
        "train_samples_per_second": (
            round(plan.train.rows * rounds_run / per_epoch / winner.seconds, 1) if winner.seconds else None
        ),
    }


def _train(opts: FitOptions, plan: _Plan, trainer, callbacks: list, start: list | None) -> tuple[list, list[str]]:
    """The rounds, from where the chief says (``start``: rounds done, step, stopped, whether its weights are loaded).

    Returns the rows each worker trained in each round, and the workers' digests of their final weights
    (none for one worker). An input pipeline error is re-raised as itself (a
    ``DataError`` naming the shard), a lost worker as ``ClusterError``.
    """
    import keras

    from streamtrain.train.tfdata import keras_dataset

    cluster, model = trainer.cluster, trainer.model
    n_classes = len(plan.manifest.labels)
    train, val, round_steps = plan.train, plan.val, plan.round_steps
    failures: list[BaseException] = []  # what the input pipeline raised, with its type and message intact
    rows: list[list[int]] = []
    try:
        done, step, stopped, loaded = (int(v) for v in trainer.broadcast([float(v) for v in start or [0] * 4]))
        if loaded:
            trainer.sync_variables()

        def batches(split, epoch: int = 0, skip: int = 0):
            return trainer.distribute(lambda: keras_dataset(split, n_classes, failures, epoch, skip))

        epoch, skip = divmod(done * round_steps + step, train.steps)
        training = batches(train, epoch, skip)
        validating = batches(val) if val.rows else None
        hooks = keras.callbacks.CallbackList(callbacks, model=model)
        hooks.on_train_begin()
        while not stopped and done < plan.rounds:
            trainer.reseed(opts.seed, done, step)
            hooks.on_epoch_begin(done)
            logs, mine = trainer.train_round(training, round_steps - step, hooks)
            rows.append([int(r) for r in trainer.gather(mine)])
            if validating is not None:
                logs.update(trainer.validate(validating, val.steps))
            hooks.on_epoch_end(done, logs)
            done, step = done + 1, 0
            stopped = bool(trainer.broadcast([float(bool(model.stop_training))])[0])
        hooks.on_train_end()
        digests = [f"{int(d):012x}" for d in trainer.gather(trainer.weights_digest())] if cluster.size > 1 else []
    except Exception as exc:
        if failures:  # the input pipeline's own error (a damaged shard), not TensorFlow's wrapping of it
            raise failures[0] from exc
        lost = _lost_worker(exc, cluster)
        if lost:
            raise ClusterError(lost) from exc
        raise
    if len(set(digests)) > 1:
        raise ClusterError(
            f"the workers' weights differ after training (digests {', '.join(digests)}): no model was written"
        )
    return rows, digests


def _lost_worker(exc: BaseException, cluster) -> str | None:
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


def _check_model_dir(root: Path) -> None:
    """Refuse (exit 2, untouched) a file or a non-empty directory that is neither a versioned model directory
    nor the 0.2 layout (``is_flat``: a user's own ``model.keras`` is not one), and (65) a ``current`` that
    does not point at a version inside ``versions/``."""
    if root.is_file():
        raise UsageError(f"--model-dir {root} is a file")
    unknown = root.is_dir() and not Versions(root).exists() and not is_flat(root)
    if unknown and any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise UsageError(
            f"--model-dir {root} is not empty and is not a model directory streamtrain wrote (no versions/, not "
            "the 0.2 layout): nothing was changed; choose another directory"
        )
    if (problem := Versions(root).link_problem()) is not None:
        raise DataError(f"{problem}: point it at a version again or remove it; nothing was changed", str(root))


def _version_of(building: Path) -> str:
    return building.name.removesuffix(".training")


def _resume_key(opts: FitOptions, cluster: Cluster) -> dict:
    """What must be equal for a rerun to continue an interrupted one: the training options, the number of
    workers (each reads its own part of every epoch) and the exact dataset."""
    options = {k: v for k, v in effective(opts).items() if k not in NOT_TRAINING}
    if cluster.size > 1:  # a one-worker key stays what it was before multi-worker fit
        options["workers"] = cluster.size
    return {
        "options": options,
        "data": str(Path(opts.data).resolve()),
        "manifest_sha256": sha256_file(Path(opts.data) / MANIFEST_NAME),
    }


def _resume_or_begin(versions: Versions, key: dict) -> tuple[Path, bool]:
    """The version to train and whether it is an interrupted one with the same key, else a new one.

    Interrupted versions with another key can never be resumed by this
    command line and are removed (we hold the writer lock, so they are not
    being trained).
    """
    found: Path | None = None
    for building in reversed(versions.training()):
        try:
            recorded = json.loads((building / RESUME_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if found is None and recorded == key:
            found = building
            continue
        why = "its options or dataset differ" if recorded is not None else "it has no resume record"
        log.info(f"removing the interrupted version {building.name}: {why}, so this run cannot continue it")
        versions.discard(building)
    if found is not None:
        return found, True
    building = versions.begin(new_id())
    atomic_write_text(building / RESUME_NAME, json.dumps(key))
    return building, False


def _warm_start_source(opts: FitOptions, versions: Versions, manifest: Manifest, candidate: Candidate) -> Path:
    """The current version, when its weights fit this dataset and ``candidate`` (else ``UsageError`` saying why)."""
    from streamtrain.train.promotion import same_vectorizer

    current = versions.current()
    if current is None:
        raise UsageError(f"--warm-start: {opts.model_dir} has no current model to start from; fit without it first")
    path = versions.path(current)
    check(path)
    if not same_vectorizer(read_vectorizer_doc(path), manifest):
        raise UsageError(
            f"--warm-start: the current model ({current}) was trained with another vectorizer or label map than "
            f"{opts.data} (after prepare --refit, or another dataset); train from scratch (drop --warm-start)"
        )
    config = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
    wanted = candidate.options(opts)
    shape = {"mlp": ("units", "layers"), "sepcnn": ("blocks", "filters", "embedding_dim")}.get(candidate.model, ())
    differ = [
        f"--{k.replace('_', '-')} {config.get(k)} -> {getattr(wanted, k)}"
        for k in shape
        if config.get(k) != getattr(wanted, k)
    ]
    if config.get("model") != candidate.model:
        differ.insert(0, f"model {config.get('model')} -> {candidate.model}")
    if differ:
        raise UsageError(
            f"--warm-start: the current model ({current}) has another shape: {', '.join(differ)}; "
            "use its options or drop --warm-start"
        )
    return path


def _current_candidate(versions: Versions) -> Candidate | None:
    """The candidate ``current`` was trained as, from its ``fit_config.json`` (for ``--warm-start``)."""
    version = versions.current()
    if version is None:
        return None
    try:
        config = json.loads((versions.path(version) / CONFIG_NAME).read_text(encoding="utf-8"))
        model = config["model"]
        sizes = (config.get("units") or 0, config.get("layers") or 0) if model == "mlp" else (0, 0)
        return Candidate(model, *sizes, float(config["learning_rate"]), float(config["dropout"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def choose_model(requested: str, encoding: str) -> str:
    """``requested`` when it can read rows of ``encoding`` (else ``UsageError``); auto: the encoding's first."""
    fitting = MODELS_FOR_ENCODING[encoding]
    if requested not in ("auto", *fitting):
        raise UsageError(f"--model {requested} cannot read {encoding} rows; use --model {' or '.join(fitting)} or auto")
    return fitting[0] if requested == "auto" else requested


def build_model(candidate: Candidate, n_features: int, width: int, n_classes: int, opts: FitOptions):
    """A new model of ``candidate`` (its family, width, learning rate and dropout; the sepCNN's sizes from
    ``opts``): ``n_features`` n-gram features or tokens, ``width`` the sequence length (sepCNN only). fit and
    the vectorizer bake-off both build their models here."""
    from streamtrain.train.models import build_mlp, build_sepcnn

    if candidate.model == "sepcnn":
        return build_sepcnn(
            n_features,
            width,
            n_classes,
            blocks=opts.blocks,
            filters=opts.filters,
            embedding_dim=opts.embedding_dim,
            dropout=candidate.dropout,
            learning_rate=candidate.learning_rate,
        )
    layers = candidate.layers if candidate.model == "mlp" else 0
    return build_mlp(n_features, n_classes, candidate.units, layers, candidate.dropout, candidate.learning_rate)
