"""fit: stream a prepared dataset into Keras and add a model version (``FitOptions``, ``fit``).

Training rows reach the model through ``BatchStream.forever_chunks``
(reshuffled every epoch, every row exactly once per epoch);
``steps_per_epoch`` and ``validation_steps`` come from the manifest. Early
stopping watches the validation loss and restores the best weights. Final
metrics are computed by the same streaming scorer that ``evaluate`` uses.
The model follows the dataset's encoding unless ``--model`` says otherwise:
the MLP for n-gram rows, sepCNN for token sequences. One log line per epoch
(``train.epoch_log``) on stderr; Keras' own per-step bar only at a terminal,
and never on stdout.

A run, in order: validate the dataset; take the model directory's writer
lock and the dataset's reader lock (``fs.locks``: a second fit exits 75 at
once, before TensorFlow is imported); adopt a 0.2 model directory; find an
interrupted version with the same resume key (training options + the
manifest's sha256) and continue it from its checkpoint (``train.checkpoint``),
or begin a new one (``fs.versions``), from scratch or ``--warm-start``
from ``current``; train; score; ask the promotion guard
(``train.promotion``); write the version's files, rename it into place,
switch ``current`` if promoted, prune to ``--keep``. A rejected version
raises ``NotPromoted`` (exit 3) after all of that.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest
from streamtrain.errors import DataError, NonFiniteError, NotPromoted, UsageError
from streamtrain.fs.atomic import atomic_write_text
from streamtrain.fs.checksums import sha256_file
from streamtrain.fs.locks import reader_lock, writer_lock
from streamtrain.fs.versions import Versions, new_id
from streamtrain.options import NON_NEGATIVE, POSITIVE, SECONDS, SHARE, check_options, effective, option
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
from streamtrain.train.runtime import import_tensorflow

log = logging.getLogger(__name__)
MODELS = ("auto", "mlp", "sepcnn")
MODEL_FOR_ENCODING = {"ngram": "mlp", "sequence": "sepcnn"}
# Measured on IMDB, seed 0: the MLP reaches 0.900 test accuracy at the guide's 0.2;
# sepCNN overfits by epoch 2 at 0.2 (0.862) and reaches 0.886 at 0.5.
DEFAULT_DROPOUT = {"mlp": 0.2, "sepcnn": 0.5}
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
)


def _dropout(value: float) -> bool:
    return 0.0 <= value < 1.0


@dataclass
class FitOptions:
    data: str = option(path=True, metavar="DIR", help="the prepared dataset directory (with manifest.json)")
    model_dir: str = option(path=True, metavar="DIR", help="the model directory to write")
    epochs: int = option(20, **POSITIVE, help="most epochs; early stopping usually ends sooner")
    batch_size: int = option(128, **POSITIVE, help="training rows per batch")
    learning_rate: float = option(1e-3, check=lambda v: v > 0, rule="positive", help="Adam learning rate")
    patience: int = option(
        2, **NON_NEGATIVE, help="validations without a better validation loss before stopping (see --validations)"
    )
    validations: int = option(
        4,
        **POSITIVE,
        help="validations per epoch: early stopping looks this often, so it stops this much sooner after the best",
    )
    seed: int = option(0, help="seed of shuffling, initialisation and dropout")
    model: str = option("auto", choices=MODELS, help="model family; auto: mlp for n-gram data, sepcnn for sequences")
    units: int = option(64, **POSITIVE, help="mlp: units per hidden layer")
    layers: int = option(2, **POSITIVE, help="mlp: hidden layers")
    blocks: int = option(2, **POSITIVE, help="sepcnn: convolution blocks")
    filters: int = option(64, **POSITIVE, help="sepcnn: filters of the first blocks")
    embedding_dim: int = option(200, **POSITIVE, help="sepcnn: embedding size")
    dropout: float | None = option(
        None,
        check=_dropout,
        rule="a number in [0, 1)",
        help="dropout rate; unset: " + ", ".join(f"{v} for {m}" for m, v in DEFAULT_DROPOUT.items()),
    )
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
    warm_start: bool = option(
        False, help="start from the current version's weights (same vectorizer and model shape required)"
    )
    wait: float = option(0.0, **SECONDS, help="seconds to wait for another run holding --model-dir before exiting 75")
    checkpoint_seconds: float = option(
        300.0,
        **SECONDS,
        help="also checkpoint inside an epoch this often, so a killed fit resumes at that step; 0: epoch ends only",
    )
    overwrite: bool = option(False, help="no longer needed (every fit adds a version); accepted for old crontabs")
    # Library-only knob: not on the command line.
    buffer_blocks: int = 8  # blocks read and shuffled together


def fit(opts: FitOptions) -> dict:
    """Train a new version of ``opts.model_dir`` and run the promotion guard; returns the metrics and the decision.

    Raises ``NotPromoted`` (exit 3) after keeping a version the guard rejected.
    """
    check_options(opts)
    if opts.overwrite:
        log.warning("--overwrite is no longer needed: every fit adds a version and keeps the last --keep")
    Manifest.load(opts.data)  # a dataset, before any lock file or directory is made (read again under the lock)
    # Locks first, before any work: a second fit of this model directory exits 75 within a second.
    with (
        writer_lock(opts.model_dir, "model directory", opts.wait),
        reader_lock(opts.data, opts.wait),
    ):
        return _fit_locked(opts)


def _fit_locked(opts: FitOptions) -> dict:
    root = Path(opts.model_dir)
    _check_model_dir(root)
    versions = Versions(root)
    adopt_flat(root)
    manifest = Manifest.load(opts.data)
    n_classes = len(manifest.labels)
    if manifest.rows("train") == 0:
        raise DataError("dataset has no training rows", opts.data)
    model_name = choose_model(opts.model, manifest.encoding)
    dropout = DEFAULT_DROPOUT[model_name] if opts.dropout is None else opts.dropout
    warm_from = _warm_start_source(opts, versions, manifest, model_name) if opts.warm_start else None
    manifest.check_shards(opts.data)  # every shard's size and sha256, before any training

    key = _resume_key(opts)
    building, resuming = _resume_or_begin(versions, key)
    checkpoint_dir = building / CHECKPOINT_DIR

    import_tensorflow()
    import keras

    from streamtrain.train.batches import BatchStream, SplitSource
    from streamtrain.train.checkpoint import Checkpoint, TrainingState, resume_model
    from streamtrain.train.epoch_log import EpochLog
    from streamtrain.train.guards import FiniteLoss, require_finite
    from streamtrain.train.modeldir import load_model, write_version
    from streamtrain.train.models import compile_model
    from streamtrain.train.plots import confusion_png, training_png
    from streamtrain.train.promotion import decide, summary_line
    from streamtrain.train.report import write_report
    from streamtrain.train.scoring import SCORE_BATCH, score_split
    from streamtrain.train.tensorboard import TensorBoardLog
    from streamtrain.train.tfdata import keras_dataset

    state = TrainingState.load(checkpoint_dir) if resuming else None
    if resuming and state is None:
        log.info(f"restarting the interrupted version {_version_of(building)} from epoch 1 (it completed no epoch)")
    keras.utils.set_random_seed(opts.seed)

    failures: list[BaseException] = []  # what the input pipeline raised, with its type and message intact

    def stream(split: str, shuffle: bool, batch_size: int) -> BatchStream:
        return BatchStream(SplitSource(opts.data, manifest, split), batch_size, shuffle, opts.seed, opts.buffer_blocks)

    train = stream("train", True, opts.batch_size)
    # Validation batches are scoring batches (1,024 n-gram rows): it runs --validations times an epoch, and
    # per-step overhead, not arithmetic, was most of its cost at the training batch size.
    val = stream("val", False, opts.score_batch_size or SCORE_BATCH[manifest.encoding])
    # Keras "epochs" are validation rounds: ``opts.validations`` per pass over the training rows, on one
    # continuous stream of epochs (a round may end inside an epoch); Checkpoint's state counts rounds.
    round_steps = -(-train.steps // opts.validations) if val.rows else train.steps
    per_epoch = opts.validations if val.rows else 1
    rounds = opts.epochs * per_epoch

    def train_from(done: int, step: int = 0):
        """The training batches from step ``step`` of round ``done + 1`` on."""
        epoch, skip = divmod(done * round_steps + step, train.steps)
        return keras_dataset(train, n_classes, failures, epoch, skip_batches=skip)

    if state is not None:
        model = resume_model(checkpoint_dir, state)
        done = state.epochs_done
        where = f"after epoch {done / per_epoch:g} of {opts.epochs}"
        if state.step:
            where = f"inside epoch {(done + 1) / per_epoch:g} of {opts.epochs}, at step {state.step} of {round_steps}"
        if per_epoch > 1:
            where += f" (validation round {done + 1 if state.step else done} of {rounds})"
        log.info(
            f"resuming version {_version_of(building)} {where} "
            f"(best validation loss {state.best} at epoch {state.best_epoch / per_epoch:g})"
        )
    elif warm_from is not None:
        model = compile_model(load_model(warm_from), n_classes, opts.learning_rate)
        log.info(f"warm start from the weights of version {warm_from.name}")
    else:
        model = build_model(model_name, manifest.n_features, manifest.row_width, len(manifest.labels), opts, dropout)
    config = {
        **effective(opts),
        "data": str(Path(opts.data).resolve()),
        "model_dir": str(root.resolve()),
        "steps_per_epoch": train.steps,
        "steps_per_validation": round_steps,
        "validation_steps": val.steps,
        "dataset_vectorizer_sha256": manifest.vectorizer["arrays_sha256"],
        "dataset_manifest_sha256": key["manifest_sha256"],
        "model": model_name,
        "dropout": dropout,
        "encoding": manifest.encoding,
        "warm_start_from": warm_from.name if warm_from is not None else None,
    }
    state = state or TrainingState()
    finite = FiniteLoss()
    checkpoint = Checkpoint(
        checkpoint_dir,
        state,
        opts.seed,
        opts.patience,
        bool(val.rows),
        opts.checkpoint_seconds,
        per_epoch,
        lambda: finite.problem is not None,
    )
    fit_kwargs: dict = {
        "callbacks": [
            finite,
            checkpoint,
            TensorBoardLog(building / TENSORBOARD_DIR, config),
            EpochLog(opts.epochs, per_epoch),
        ],
        "verbose": _keras_verbosity(),
        "shuffle": False,  # BatchStream shuffles; Keras cannot shuffle a stream
    }
    if val.rows:
        fit_kwargs["validation_data"] = keras_dataset(val, n_classes, failures)
        fit_kwargs["validation_steps"] = val.steps
    else:
        log.info("no validation rows: training all epochs without early stopping")
    log.info(
        f"training version {_version_of(building)} on {train.rows} rows ({train.steps} steps/epoch of "
        f"{opts.batch_size}), validating on {val.rows} rows ({val.steps} steps)"
    )
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras prints its epoch lines to stdout: results only there
            if state.step and not state.stopped:  # killed inside a round: first the rest of that round
                checkpoint.offset = state.step
                model.fit(
                    train_from(state.epochs_done, state.step),
                    initial_epoch=state.epochs_done,
                    epochs=state.epochs_done + 1,
                    steps_per_epoch=round_steps - state.step,
                    **fit_kwargs,
                )
            if not state.stopped and state.epochs_done < rounds:
                model.fit(
                    train_from(state.epochs_done),
                    initial_epoch=state.epochs_done,
                    epochs=rounds,
                    steps_per_epoch=round_steps,
                    **fit_kwargs,
                )
    except Exception as exc:
        if failures:  # the input pipeline's own error (a damaged shard), not TensorFlow's wrapping of it
            raise failures[0] from exc
        raise
    if finite.problem:
        versions.discard(building)
        raise NonFiniteError(f"{finite.problem}; no model was written (a lower --learning-rate may help)")
    checkpoint.restore_best(model)
    seconds = time.perf_counter() - started

    results = {
        split: score_split(model, opts.data, manifest, split, opts.score_batch_size) for split in ("val", "test")
    }
    hist = state.history
    rounds_run = state.epochs_done
    best_round = state.best_epoch if state.best is not None else rounds_run
    metrics = {
        "test_accuracy": results["test"]["accuracy"],
        "test_loss": results["test"]["loss"],
        "val_accuracy": results["val"]["accuracy"],
        "val_loss": results["val"]["loss"],
        "epochs": round(rounds_run / per_epoch, 3),  # passes over the training rows (rounds may end inside one)
        "best_epoch": round(best_round / per_epoch, 3),
        "validations": rounds_run,
        "best_validation": best_round,
        "validations_per_epoch": per_epoch,
        "train_rows": train.rows,
        "val_rows": val.rows,
        "test_rows": results["test"]["rows"],
        "classes": manifest.labels,
        "model": model_name,
        "test_confusion": results["test"]["confusion"],
        "train_seconds": round(seconds, 3),
        "train_samples_per_second": round(train.rows * rounds_run / per_epoch / seconds, 1) if seconds else None,
    }
    require_finite("refusing to write a model whose metrics are not finite", metric_numbers(metrics))
    decision = decide(
        model,
        metrics["val_accuracy"],
        opts.data,
        manifest,
        versions,
        opts.max_regression,
        opts.force,
        opts.score_batch_size,
    )
    best = best_round if state.best is not None else None
    training_png(hist, best, building / TRAINING_PNG, per_epoch)
    confusion_png(metrics["test_confusion"], manifest.labels, building / CONFUSION_PNG)
    write_report(
        building,
        metrics=metrics,
        history=hist,
        config=config,
        promotion=decision,
        manifest=manifest,
        version=_version_of(building),
    )
    write_version(building, model, opts.data, metrics, hist, config, decision)
    final = versions.finish(building)  # from here the version is complete and immutable
    shutil.rmtree(final / CHECKPOINT_DIR, ignore_errors=True)
    (final / RESUME_NAME).unlink(missing_ok=True)
    version = final.name
    before = versions.promote(version) if decision["promoted"] else None
    pruned = versions.prune(opts.keep, protect=(before, version))
    if pruned:
        log.info(f"removed {len(pruned)} old version(s) beyond --keep {opts.keep}: {', '.join(pruned)}")
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


def _check_model_dir(root: Path) -> None:
    """Refuse a non-empty directory that is neither a model directory nor empty (a wrong --model-dir)."""
    if root.is_file():
        raise UsageError(f"--model-dir {root} is a file")
    unknown = root.is_dir() and not Versions(root).exists() and not is_flat(root)
    if unknown and any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise UsageError(f"--model-dir {root} is not empty and holds no model versions: choose another directory")


def _keras_verbosity() -> int:
    """Keras' per-step bar where prepare would draw its bar (a terminal, text logs); else ``EpochLog``'s lines only."""
    from streamtrain import progress

    return 1 if progress.display(log) == progress.BAR else 0


def _version_of(building: Path) -> str:
    return building.name.removesuffix(".training")


def _resume_key(opts: FitOptions) -> dict:
    """What must be equal for a rerun to continue an interrupted one: the training options and the exact dataset."""
    options = {k: v for k, v in effective(opts).items() if k not in NOT_TRAINING}
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


def _warm_start_source(opts: FitOptions, versions: Versions, manifest: Manifest, model_name: str) -> Path:
    """The current version, when its weights fit this dataset and these options (else ``UsageError`` saying why)."""
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
    shape = ("units", "layers") if model_name == "mlp" else ("blocks", "filters", "embedding_dim")
    differ = [
        f"--{k.replace('_', '-')} {config.get(k)} -> {getattr(opts, k)}"
        for k in shape
        if config.get(k) != getattr(opts, k)
    ]
    if config.get("model") != model_name:
        differ.insert(0, f"model {config.get('model')} -> {model_name}")
    if differ:
        raise UsageError(
            f"--warm-start: the current model ({current}) has another shape: {', '.join(differ)}; "
            "use its options or drop --warm-start"
        )
    return path


def choose_model(requested: str, encoding: str) -> str:
    fitting = MODEL_FOR_ENCODING[encoding]
    if requested not in ("auto", fitting):
        raise UsageError(f"--model {requested} cannot read {encoding} rows; use --model {fitting} or auto")
    return fitting


def build_model(name: str, n_features: int, width: int, n_classes: int, opts: FitOptions, dropout: float):
    """A new ``name`` model ("mlp" or "sepcnn") with ``opts``' sizes: ``n_features`` n-gram features or tokens,
    ``width`` the sequence length (sepCNN only). fit and auto's bake-off both build their models here."""
    from streamtrain.train.models import build_mlp, build_sepcnn

    if name == "sepcnn":
        return build_sepcnn(
            n_features,
            width,
            n_classes,
            blocks=opts.blocks,
            filters=opts.filters,
            embedding_dim=opts.embedding_dim,
            dropout=dropout,
            learning_rate=opts.learning_rate,
        )
    return build_mlp(n_features, n_classes, opts.units, opts.layers, dropout, opts.learning_rate)
