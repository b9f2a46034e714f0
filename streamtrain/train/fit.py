"""fit: stream a prepared dataset into a Keras model and add a model version (``FitOptions``, ``fit``).

Who owns what: this module owns the options (``FitOptions``) and the entry point. ``fit`` checks the options
and the dataset, takes the model directory's writer lock and the dataset's reader lock (``fs.locks``: a second
fit exits 75 at once, before TensorFlow is imported), then runs the stages of one version
(``train.version_run.VersionRun``): the model selection's trials on the one training loop
(``train.loop.Trainer``) with early stopping and checkpoints, the final metrics by evaluate's scorer, the
promotion guard, the version written and promoted. A rejected version raises ``NotPromoted`` (exit 3) after
all of that. A killed fit rerun with the same options resumes from its last checkpoint: the end of a round,
or inside a round the step of a ``--checkpoint-seconds`` commit (``train.checkpoint``). In a cluster
(``train.cluster``, from ``TF_CONFIG``; ``--workers N`` on the command line starts one on loopback) worker 0
does all of that; the others take only the dataset's reader lock and train their part of every batch
(``_fit_worker``), never opening the model directory. ``prebuild`` builds and traces the model before the
dataset exists (``train`` does it while prepare writes); ``fit(opts, prebuilt)`` trains that model when the
options and the manifest agree, to the same weights (``tests/train/test_prebuild.py``).

Measurements: docs/design/training-speed.md
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from streamtrain.dataset.manifest import Manifest, ModelInputs
from streamtrain.errors import UsageError
from streamtrain.fs.locks import reader_lock, writer_lock
from streamtrain.options import NON_NEGATIVE, POSITIVE, SECONDS, SHARE, check_options, option
from streamtrain.train import tune
from streamtrain.train.cluster import Cluster
from streamtrain.train.plan import (
    MAX_VALIDATIONS,
    MIN_VALIDATIONS,
    VALIDATION_ROWS,
    VALIDATION_SAMPLE_ROWS,
    Plan,
    make_plan,
    val_batch_size,
)
from streamtrain.train.rounds import Start, join, new_trainer, pipeline_key, train_rounds
from streamtrain.train.runtime import import_tensorflow
from streamtrain.train.tune import Candidate
from streamtrain.train.version_run import VersionRun

log = logging.getLogger(__name__)
MODELS = ("auto", *tune.MODELS)


def _dropout(value: float) -> bool:
    """Whether ``value`` is a dropout rate: in [0, 1)."""
    return 0.0 <= value < 1.0


@dataclass
class FitOptions:
    """The options of ``streamtrain fit`` (each field's ``help`` says what it means).

    ``buffer_blocks`` is the library's alone, not on the command line.
    """

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
        f"unset: one every {VALIDATION_ROWS:,} training rows, at least {MIN_VALIDATIONS} and at most "
        f"{MAX_VALIDATIONS} (IMDB's 22k rows: 4)",
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
    """Train a new version of ``opts.model_dir`` and run the promotion guard.

    In a multi-worker cluster (``TF_CONFIG``) every worker calls this: the chief does everything; the others
    only train.

    Args:
        opts: the options.
        prebuilt: ``prebuild``'s model, used when built with these ``opts`` for the dataset's ``ModelInputs``
            as the first trial's candidate (else a model is built as usual).

    Returns:
        The chief: the metrics and the decision. Another worker: the rows it trained.

    Raises:
        NotPromoted: after keeping a version the guard rejected (exit 3).
        UsageError: options that contradict each other or TF_CONFIG.
        Busy: another run holds the model directory or the dataset (exit 75).
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


def _fit_locked(opts: FitOptions, cluster: Cluster, prebuilt: Prebuilt | None) -> dict:
    """The chief's fit under the locks: one version's stages, in order (``train.version_run``)."""
    run = VersionRun(opts, cluster)
    run.check_and_adopt()
    run.load()
    run.choose()
    run.join()
    run.resume_or_begin()
    with run.serving():
        run.train(prebuilt)
        run.score_and_decide()
        run.write()
        run.promote()
        run.prune()
        return run.result()


def _fit_worker(opts: FitOptions, cluster: Cluster) -> dict:
    """A worker other than the chief: train in step with the others; the chief's broadcasts say what and where."""
    from streamtrain.train.guards import FiniteLoss
    from streamtrain.train.loop import Channel

    manifest = Manifest.load(opts.data)
    plan = make_plan(opts, manifest, cluster)  # imports TensorFlow
    strategy = join(opts, cluster, manifest.encoding)
    candidate = tune.Candidate.decode(Channel(strategy, cluster).broadcast(tune.Candidate.blank()))
    trainer = new_trainer(opts, candidate, manifest.model_inputs, strategy, cluster)
    log.info(f"{cluster.name} of {cluster.size}: {plan.train.worker_rows} training rows an epoch")
    rounds = train_rounds(opts.seed, plan, trainer, [FiniteLoss(plan.per_epoch)], Start())
    trainer.finish()  # waits until every worker has trained its last round
    return {"worker": cluster.index, "workers": cluster.size, "rows_per_worker": rounds.rows_per_worker}


@dataclass
class Prebuilt:
    """A model built and warmed up ahead (``prebuild``), in its ``Trainer``, with what it was built for."""

    candidate: Candidate
    opts: FitOptions
    inputs: ModelInputs
    trainer: Any
    # The training and validation pipelines, built unbound (``tfdata.LateChunks``), by split: ``lend``.
    pipelines: dict[str, tuple[Any, Any, int]] = field(default_factory=dict, repr=False)

    def fits(self, candidate: Candidate, opts: FitOptions, inputs: ModelInputs) -> bool:
        """Whether this is the model ``fit(opts)`` would build for ``candidate`` and a dataset of ``inputs``.

        Args:
            candidate: fit's first trial's candidate.
            opts: fit's options.
            inputs: the dataset's model inputs.

        Returns:
            True when all three are what it was built for.
        """
        return self.candidate == candidate and self.opts == opts and self.inputs == inputs

    def lend(self, plan: Plan) -> None:
        """Bind the pipelines built ahead to ``plan``'s streams, as ``rounds.pipeline`` builds them for a fresh start.

        A stream whose batch size or rows are not the ones built for gets its pipeline built as usual.

        Args:
            plan: the plan of the fit that trains this model (one worker, the model's dataset).
        """
        from streamtrain.train.tfdata import stream_chunks

        for split, stream in (("train", plan.train), ("val", plan.val)):
            dataset, late, batch_size = self.pipelines.pop(split, (None, None, 0))
            built_for = (batch_size, self.inputs.encoding, self.inputs.row_width)
            if dataset is None or (stream.batch_size, stream.source.encoding, stream.source.width) != built_for:
                continue
            key = pipeline_key(stream)
            if key in plan.pipelines:
                continue
            failures: list[BaseException] = []
            late.bind(stream_chunks(stream, failures))
            plan.pipelines[key] = (dataset, failures)


def prebuild(opts: FitOptions, inputs: ModelInputs) -> Prebuilt:
    """Build the prior's first candidate for a dataset of ``inputs``, for ``fit(opts, prebuilt)``.

    Its training, validation and scoring functions are traced and run once (``Trainer.warm_up``,
    ``scoring.warm_up``), and matplotlib is imported for the pictures (``plots.preload``). ``train`` calls it
    while its prepare child selects, names and writes, so the time the first round, the first scoring and the
    first picture spent on these is spent beside prepare.

    Args:
        opts: fit's options.
        inputs: the dataset's model inputs, as prepare announced them.

    Returns:
        The model in its ``Trainer``, with what it was built for.

    Raises:
        UsageError: ``TF_CONFIG`` names a cluster (one process only).
    """
    import_tensorflow()
    from streamtrain.train import plots, scoring
    from streamtrain.train.tfdata import LateChunks, batches_of, blank_batches

    cluster = Cluster.from_env()
    if cluster.size > 1:
        raise UsageError("a model is prebuilt for a one-process fit only")
    candidate = tune.candidates(opts, tune.Profile(inputs.encoding, 0, inputs.n_classes, inputs.n_features))[0]
    trainer = new_trainer(opts, candidate, inputs, join(opts, cluster, inputs.encoding), cluster)
    trainer.warm_up(lambda: blank_batches(inputs.encoding, inputs.row_width, inputs.n_classes))
    scoring.warm_up(trainer.model, inputs)
    plots.preload()
    pipelines = {}
    for split, batch_size in (("train", opts.batch_size), ("val", val_batch_size(opts, inputs.encoding))):
        late = LateChunks()
        dataset = batches_of(inputs.encoding, late, batch_size, inputs.row_width, inputs.n_classes)
        pipelines[split] = (dataset, late, batch_size)
    return Prebuilt(candidate, opts, inputs, trainer, pipelines)
