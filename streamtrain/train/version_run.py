"""One version's life in the chief of a fit, stage by stage (``VersionRun``), under fit's locks.

Who owns what: ``train.fit`` takes the locks and calls the stages in this order; each stage is one method
(its docstring says what it does), and what a stage finds is an attribute the later ones read:
``check_and_adopt`` (the model directory is streamtrain's; a killed promotion completed), ``load`` (the
manifest, the ``Plan``, ``current``, the promotion floor), ``choose`` (the candidates, the warm start's
source), ``join`` (the other workers), ``resume_or_begin`` (an interrupted version with the same resume
key, ``resume_key``, or a new one), ``serving`` (the serving check's process, around the stages after it),
``train`` (the trials), ``score_and_decide`` (final metrics, the promotion guard, the SavedModel, the
pictures), ``write`` (the version's files), ``promote`` (finish and switch ``current`` as one recoverable
step), ``prune`` (to ``--keep``) and ``result`` (fit's result; a rejected version raises ``NotPromoted``,
exit 3, after all of that). ``faults.point`` marks where the chaos test kills it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamtrain import faults
from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest
from streamtrain.errors import DataError, NotPromoted, UsageError
from streamtrain.fs.atomic import atomic_write_text
from streamtrain.fs.checksums import sha256_file
from streamtrain.fs.jsondoc import write_json
from streamtrain.fs.versions import Versions, new_id
from streamtrain.options import effective
from streamtrain.train import tune
from streamtrain.train.cluster import Cluster
from streamtrain.train.metrics import Metrics
from streamtrain.train.modeldir import (
    CONFIG_NAME,
    CONFUSION_PNG,
    REPORT_NAME,
    RESUME_NAME,
    TRAINING_PNG,
    adopt_flat,
    check,
    is_flat,
    metric_numbers,
    read_vectorizer_doc,
)
from streamtrain.train.plan import Plan, make_plan
from streamtrain.train.promote import complete, log_adoption, recover
from streamtrain.train.promotion import Current, Decision, MajorityFloor, load_current, majority_floor
from streamtrain.train.rounds import join
from streamtrain.train.selection import Choices, Search, choose
from streamtrain.train.serving import ServingStep
from streamtrain.train.trial import Trained, Trials, version_of
from streamtrain.train.tune import Candidate

if TYPE_CHECKING:
    from streamtrain.train.fit import FitOptions, Prebuilt

log = logging.getLogger(__name__)
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
    "workers",  # the cluster's size is in the key on its own (``resume_key``)
    "join_timeout",
)


class VersionRun:
    """One version of ``opts.model_dir``, from the checks before training to the promotion and the pruning.

    Args:
        opts: fit's options, checked.
        cluster: the cluster; this process is its chief.
    """

    # Set by the stages, in order (see the module docstring).
    manifest: Manifest
    plan: Plan
    current: Current | None
    floor: MajorityFloor | None
    choices: Choices
    warm_from: Path | None
    strategy: Any
    key: dict
    building: Path  # versions/<id>.training
    resuming: bool
    serving_step: ServingStep
    winner: Trained
    selection: tune.Selection
    metrics: Metrics  # metrics.json
    decision: Decision  # promotion.json
    final: Path  # the version's directory once finished
    before: str | None  # current before the promotion step

    def __init__(self, opts: FitOptions, cluster: Cluster) -> None:
        self.opts, self.cluster = opts, cluster
        self.root = Path(opts.model_dir)
        self.versions = Versions(self.root)

    def check_and_adopt(self) -> None:
        """Refuse a model directory streamtrain did not write, adopt a 0.2 one, complete a killed promotion step."""
        check_model_dir(self.root)
        adopted = adopt_flat(self.root)
        if adopted is not None:
            log_adoption(self.versions, adopted)  # in promotions.jsonl, like every version that became current
        recover(self.versions)  # a killed run's promotion step, before current is read

    def load(self) -> None:
        """Read the manifest, make the ``Plan`` (imports TensorFlow), load ``current``, find the promotion floor.

        A missing shard or one whose size differs from its record stops fit before TensorFlow loads (exit 65;
        the checksums are checked in ``resume_or_begin``). A ``current`` that cannot be loaded stops fit here
        (``DataError``, exit 65) unless ``--force``; with ``--warm-start`` even then.
        """
        opts = self.opts
        self.manifest = Manifest.load(opts.data)
        self.manifest.check_sizes(opts.data)  # a truncated shard fails before TensorFlow loads (hashed in resume)
        self.plan = make_plan(opts, self.manifest, self.cluster)  # imports TensorFlow
        self.current = load_current(self.versions, opts.force)  # before any training: one that cannot be loaded
        self.floor = majority_floor(opts.data, self.manifest)  # early stopping's and the promotion guard's
        current = self.current
        if opts.warm_start and current is not None and current.model is None:
            raise DataError(
                f"--warm-start: the current model ({current.version}) cannot be loaded: {current.problem}; point "
                f"current at a good version (streamtrain promote {self.root} VERSION) or drop --warm-start"
            )

    def choose(self) -> None:
        """Choose the candidates (``selection.choose``) and, for ``--warm-start``, the version to start from."""
        opts = self.opts
        self.choices = choose(opts, self.manifest, self.versions, self.cluster)
        first = self.choices.candidates[0]
        self.warm_from = warm_start_source(opts, self.versions, self.manifest, first) if opts.warm_start else None

    def join(self) -> None:
        """Join the other workers of a cluster (``rounds.join``)."""
        # Before the long checks: the other workers wait for the chief in a collective, which has no deadline.
        self.strategy = join(self.opts, self.cluster, self.manifest.encoding)

    def resume_or_begin(self) -> None:
        """Check every shard, then continue the interrupted version with the same resume key, or begin one."""
        self.manifest.check_shards(self.opts.data)  # every shard's size and sha256, before any training
        self.key = resume_key(self.opts, self.cluster)
        self.building, self.resuming = resume_or_begin(self.versions, self.key)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """The serving check's process, importing TensorFlow while the model trains (``train.serving``)."""
        self.serving_step = ServingStep.start(self.opts.data, self.manifest, self.opts.export)
        try:
            yield
        finally:
            self.serving_step.close()

    def train(self, prebuilt: Prebuilt | None) -> None:
        """Train the trials (``selection.Search``; ``prebuilt`` for the first), keep the winner, let the workers go."""
        opts, plan, cluster = self.opts, self.plan, self.cluster
        trials = Trials(
            opts,
            plan,
            cluster,
            self.strategy,
            self.building,
            self.key,
            self.floor,
            self.current,
            self.warm_from,
            prebuilt,
            self.serving_step.trace_ahead,
        )
        self.winner, self.selection = Search(trials).run(self.choices, self.resuming)
        faults.point("after-train")
        # The other workers may leave now: nothing below talks to them, and the chief's scoring is its own work.
        self.winner.trainer.finish()

    def score_and_decide(self) -> None:
        """Score the winner and ask the promotion guard, while its SavedModel is exported and the pictures drawn.

        The export, then the drawings, run on one thread beside the scoring (TensorFlow runs without the GIL): the
        export first and alone, as the serving check starts when it ends; the SavedModel is checked when the
        version is to be promoted (``ServingStep.decide``).
        """
        from streamtrain.train.plots import confusion_png, training_png

        building, model, state = self.building, self.winner.trainer.model, self.winner.state
        best = state.best_round if state.best is not None else None
        labels = self.manifest.labels
        with ThreadPoolExecutor(1, thread_name_prefix="beside") as beside:
            exported = beside.submit(self.serving_step.export, building, model)
            drawn = [beside.submit(training_png, state.history, best, building / TRAINING_PNG, self.plan.per_epoch)]
            self.metrics = self._score()
            decision = self._decide()
            drawn.append(beside.submit(confusion_png, self.metrics.test_confusion, labels, building / CONFUSION_PNG))
            self.decision = self.serving_step.decide(decision, exported.result())
            for picture in drawn:
                picture.result()

    def _score(self) -> Metrics:
        """The winner's metrics (``metrics.json``), every number finite; its trial's score when it had none."""
        from streamtrain.train.guards import require_finite
        from streamtrain.train.scoring import score_split

        opts, model = self.opts, self.winner.trainer.model
        val = self.winner.val or score_split(model, opts.data, self.manifest, "val", opts.score_batch_size)
        results = {"val": val, "test": score_split(model, opts.data, self.manifest, "test", opts.score_batch_size)}
        trial = self.selection.trials[self.selection.winner]
        if trial.val_accuracy is None:  # one candidate: its score is the final one
            trial.val_accuracy, trial.val_loss = results["val"]["accuracy"], results["val"]["loss"]
        metrics = fit_metrics(self.plan, self.winner, results)
        require_finite("refusing to write a model whose metrics are not finite", metric_numbers(metrics.to_json()))
        return metrics

    def _decide(self) -> Decision:
        """The promotion guard's decision on the winner (``promotion.decide``)."""
        from streamtrain.train.promotion import decide

        opts = self.opts
        return decide(
            self.winner.trainer.model,
            self.metrics.val_accuracy,
            opts.data,
            self.manifest,
            self.current,
            self.floor,
            opts.max_regression,
            opts.force,
            opts.score_batch_size,
        )

    def write(self) -> None:
        """The version's files in ``versions/<id>.training``: report, selection, model, vectorizer, metrics."""
        from streamtrain.train.modeldir import write_version
        from streamtrain.train.report import write_report

        winner, building, history = self.winner, self.building, self.winner.state.history
        write_report(
            building,
            metrics=self.metrics,
            history=history,
            config=winner.config,
            promotion=self.decision.to_json(),
            manifest=self.manifest,
            version=version_of(building),
            selection=self.selection,
        )
        if winner.checkpoint is not None:
            winner.checkpoint.flush()  # the last commit, written while the model was scored, is on disk
        write_json(building / tune.SELECTION_NAME, self.selection.to_json())
        model = winner.trainer.model
        metrics, decision = self.metrics.to_json(), self.decision.to_json()
        write_version(building, model, self.opts.data, metrics, history, winner.config, decision)
        faults.point("after-write")

    def promote(self) -> None:
        """Finish the version and switch ``current`` (when promoted) as one recoverable step (``train.promote``)."""
        decision = self.decision
        self.final, self.before = complete(
            self.versions, self.building, decision.promoted, decision.reason, self.opts.serving_dir
        )

    def prune(self) -> None:
        """Remove the oldest complete versions beyond ``--keep`` (never ``current`` nor the one it replaced)."""
        keep = self.opts.keep
        pruned = self.versions.prune(keep, protect=(self.before, self.final.name))
        if pruned:
            log.info(f"removed {len(pruned)} old version(s) beyond --keep {keep}: {', '.join(pruned)}")
        faults.point("after-prune")

    def result(self) -> dict:
        """The result of fit: metrics, version, decision, report; ``NotPromoted`` (exit 3) carries it if refused."""
        version, decision = self.final.name, self.decision
        log.log(logging.INFO if decision.promoted else logging.WARNING, decision.line(version))
        result = {
            **self.metrics.to_json(),
            "version": version,
            "promoted": decision.promoted,
            "promotion": decision.to_json(),
            "report": str(self.final / REPORT_NAME),
        }
        if not decision.promoted:
            raise NotPromoted(decision.line(version), result)
        return result


def fit_metrics(plan: Plan, winner: Trained, results: dict) -> Metrics:
    """``metrics.json``: the winner's scores (``results``: its ``val`` and ``test`` ``score_split``), how it trained.

    ``epochs`` and ``best_epoch`` count passes over the training rows (fractional when a round ends inside one),
    ``validations`` and ``best_validation`` rounds.
    """
    per_epoch, state = plan.per_epoch, winner.state
    rounds_run = state.rounds_done
    best_round = state.best_round if state.best is not None else rounds_run
    return Metrics(
        test_accuracy=results["test"]["accuracy"],
        test_loss=results["test"]["loss"],
        val_accuracy=results["val"]["accuracy"],
        val_loss=results["val"]["loss"],
        epochs=round(rounds_run / per_epoch, 3),
        best_epoch=round(best_round / per_epoch, 3),
        validations=rounds_run,
        best_validation=best_round,
        validations_per_epoch=per_epoch,
        train_rows=plan.train.rows,
        val_rows=results["val"]["rows"],
        validation_sample_rows=plan.val.rows,  # what each validation during training scored
        test_rows=results["test"]["rows"],
        classes=plan.manifest.labels,
        model=winner.candidate.model,
        candidate=winner.candidate.name,
        workers=winner.trainer.cluster.size,
        rows_per_worker=winner.rows,  # [round][worker]: rows each worker trained in each round of this run
        weights_digests=winner.digests,  # each worker's, at the end of training (equal, or training failed)
        test_confusion=results["test"]["confusion"],
        train_seconds=round(winner.seconds, 3),
        validation_seconds=round(winner.validation_seconds, 3),
        train_samples_per_second=(
            round(plan.train.rows * rounds_run / per_epoch / winner.seconds, 1) if winner.seconds else None
        ),
    )


def check_model_dir(root: Path) -> None:
    """Refuse the model directory ``root`` when fit must not write into it, leaving it untouched.

    Raises:
        UsageError: a file, or a non-empty directory that is neither a versioned model directory nor the 0.2
            layout (``is_flat``: a user's own ``model.keras`` is not one).
        DataError: a ``current`` that does not point at a version inside ``versions/``.
    """
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


def resume_key(opts: FitOptions, cluster: Cluster) -> dict:
    """What must be equal for a rerun to continue an interrupted version.

    Args:
        opts: fit's options.
        cluster: the cluster.

    Returns:
        ``options`` (those that change what is trained; the workers when several: each reads its own part of
        every epoch), ``data`` (its absolute path) and ``manifest_sha256``.
    """
    options = {k: v for k, v in effective(opts).items() if k not in NOT_TRAINING}
    if cluster.size > 1:  # a one-worker key stays what it was before multi-worker fit
        options["workers"] = cluster.size
    return {
        "options": options,
        "data": str(Path(opts.data).resolve()),
        "manifest_sha256": sha256_file(Path(opts.data) / MANIFEST_NAME),
    }


def resume_or_begin(versions: Versions, key: dict) -> tuple[Path, bool]:
    """The version to train: an interrupted one with the same ``key`` (``resume_key``), else a new one.

    Interrupted versions with another key can never be resumed by this command line and are removed (we hold
    the writer lock, so they are not being trained).

    Args:
        versions: the model directory's versions.
        key: this run's resume key, recorded in a new version.

    Returns:
        The version's ``.training`` directory, and whether it is an interrupted one.
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


def warm_start_source(opts: FitOptions, versions: Versions, manifest: Manifest, candidate: Candidate) -> Path:
    """The current version's directory, for ``--warm-start``, when its weights fit this dataset and ``candidate``.

    Args:
        opts: fit's options.
        versions: the model directory's versions.
        manifest: the dataset's manifest.
        candidate: the first trial's model.

    Raises:
        UsageError: no current version, or one trained with another vectorizer, label map or model shape.
        DataError: the current version is damaged.
    """
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
