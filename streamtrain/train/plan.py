"""What every worker of a fit derives alike from the options and the manifest (``Plan``, ``make_plan``).

Who owns what: this module owns the units of a fit's training. An *epoch*
is one pass over the training rows (``Plan.train.steps`` batches); a
*round* is one validation round: ``Plan.round_steps`` training steps, then
a validation on ``Plan.val`` (``Plan.per_epoch`` rounds an epoch, on one
continuous stream of epochs, so a round may end inside an epoch). Keras
callbacks see a round as their "epoch"; the checkpoint counts rounds
(``TrainingState.rounds_done``); ``tune.schedule`` turns ``--epochs`` and
``--patience`` into ``Plan.schedule``. Every worker computes the same plan
from the same inputs, so no worker has to be told it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamtrain.dataset.manifest import Manifest
from streamtrain.errors import DataError, UsageError
from streamtrain.train import tune
from streamtrain.train.cluster import Cluster
from streamtrain.train.runtime import import_tensorflow

if TYPE_CHECKING:
    from streamtrain.train.batches import BatchStream
    from streamtrain.train.fit import FitOptions

MODELS_FOR_ENCODING = {"ngram": ("mlp", "linear"), "sequence": ("sepcnn",)}
# Unset --validations: a validation every VALIDATION_ROWS training rows, at least MIN_VALIDATIONS and at most
# MAX_VALIDATIONS an epoch, so a corpus of near-copies, learnt within a fraction of an epoch, is validated before its
# best has passed, and at millions of rows a round's training outgrows its validation (why these numbers:
# docs/design/training.md).
VALIDATION_ROWS = 5_600
MIN_VALIDATIONS = 4
MAX_VALIDATIONS = 32
# What each of those validations scores: at most this many rows of the validation split (evenly spaced blocks, the
# same ones every time; the final metrics and the promotion guard score every row), so a round's cost does not grow
# with the validation split.
VALIDATION_SAMPLE_ROWS = 8_192


def validations_per_epoch(opts_validations: int | None, train_rows: int) -> int:
    """Validation rounds per epoch.

    Args:
        opts_validations: ``--validations``.
        train_rows: the dataset's training rows.

    Returns:
        ``--validations``, or when unset one per ``VALIDATION_ROWS`` training rows, at least ``MIN_VALIDATIONS``
        and at most ``MAX_VALIDATIONS``.
    """
    if opts_validations is not None:
        return opts_validations
    return min(MAX_VALIDATIONS, max(MIN_VALIDATIONS, round(train_rows / VALIDATION_ROWS)))


def choose_model(requested: str, encoding: str) -> str:
    """The model family to train on rows of ``encoding``.

    Args:
        requested: ``--model``: a family, or ``auto``.
        encoding: the dataset's encoding, ``ngram`` or ``sequence``.

    Returns:
        ``requested``, or for ``auto`` the encoding's first family (``MODELS_FOR_ENCODING``).

    Raises:
        UsageError: ``requested`` cannot read rows of ``encoding``.
    """
    fitting = MODELS_FOR_ENCODING[encoding]
    if requested not in ("auto", *fitting):
        raise UsageError(f"--model {requested} cannot read {encoding} rows; use --model {' or '.join(fitting)} or auto")
    return fitting[0] if requested == "auto" else requested


@dataclass
class Plan:
    """What every worker derives alike from the options and the manifest: streams, rounds, the schedule."""

    manifest: Manifest
    train: BatchStream  # this worker's training rows
    val: BatchStream  # this worker's validation rows (of the sample, when the split is larger)
    per_epoch: int  # validation rounds per epoch
    round_steps: int  # training steps per round
    schedule: tune.Schedule  # epochs and patience, from the options or the data
    # The input pipelines built for the trials, by (stream, epoch, skipped batches): ``rounds.pipeline``.
    pipelines: dict[tuple[int, int, int], Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rounds(self) -> int:
        """The most rounds a trial may train: ``schedule.epochs`` epochs."""
        return self.schedule.epochs * self.per_epoch


def make_plan(opts: FitOptions, manifest: Manifest, cluster: Cluster) -> Plan:
    """This worker's plan; imports TensorFlow (quietly, before anything else does).

    Args:
        opts: fit's options.
        manifest: the dataset's manifest.
        cluster: this worker's place in the cluster (each reads its own part of every batch).

    Returns:
        The plan: the training stream (shuffled), the validation stream (at most ``--validation-rows`` of the
        split, in scoring-size batches), rounds per epoch, steps per round and the schedule.

    Raises:
        DataError: the dataset has no training rows.
        UsageError: ``--model`` cannot read the dataset's rows.
    """
    import_tensorflow()
    from streamtrain.train.batches import BatchStream, SplitSource, sample_blocks

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
    val = stream("val", False, val_batch_size(opts, manifest.encoding), opts.validation_rows)
    wanted = min(validations_per_epoch(opts.validations, manifest.rows("train")), train.steps)
    round_steps = -(-train.steps // wanted) if val.rows else train.steps
    per_epoch = wanted if val.rows else 1
    return Plan(manifest, train, val, per_epoch, round_steps, tune.schedule(opts, train.steps, round_steps, per_epoch))


def val_batch_size(opts: FitOptions, encoding: str) -> int:
    """Rows per validation batch: ``--score-batch-size``, else the encoding's scoring batch (``SCORE_BATCH``).

    Validation batches are scoring batches: it runs several times an epoch, and per-step overhead, not
    arithmetic, was most of its cost at the training batch size (docs/design/training.md). ``make_plan`` and
    ``fit.prebuild`` (whose validation pipeline a plan's stream takes only at this size) both use it.
    """
    from streamtrain.train.scoring import score_batch

    return score_batch(encoding, opts.score_batch_size)
