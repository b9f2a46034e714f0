"""The promotion guard (``decide``): does a newly trained version replace ``current``?

First the floor (``majority_floor``): a candidate whose validation accuracy does not beat the validation
split's majority-class rate (what always answering the most frequent class scores) is kept unpromoted; fit
computes the floor once and gives it to early stopping too. Then both models are measured on the same rows,
the candidate dataset's validation rows: its whole validation split when ``current`` was trained with the
dataset's vectorizer and label map (the nightly case, after ``prepare --append``), else its validation
sample (``dataset.val_sample``, after ``prepare --refit`` or on another dataset), each model reading the raw
texts through its own vectorizer (a class the current model does not know counts as its error). The
candidate is promoted when its accuracy is at least the current model's minus ``max_regression``. With no
current model the first finite one above the floor is promoted; with no validation rows there is nothing to
compare on (nor a floor), and the candidate is kept unpromoted unless it is the first. ``force`` promotes
anyway (what can be compared still recorded). The decision is ``promotion.json``'s document.
``load_current`` checks and loads ``current`` before fit trains anything: one that cannot be loaded stops
fit (``DataError``, exit 65), unless ``force``.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamtrain.dataset.manifest import Manifest
from streamtrain.errors import DataError
from streamtrain.fs.versions import Versions
from streamtrain.train import modeldir

if TYPE_CHECKING:
    import keras

    from streamtrain.vectorize.vectorizer import Vectorizer

log = logging.getLogger(__name__)


def same_vectorizer(vectorizer_doc: dict, manifest: Manifest) -> bool:
    """Whether a model's ``vectorizer.json`` is the dataset's: same arrays, same config, same label map.

    Args:
        vectorizer_doc: the model's ``vectorizer.json`` (``modeldir.read_vectorizer_doc``).
        manifest: the dataset's manifest.

    Returns:
        True when all three are equal.
    """
    return (
        vectorizer_doc.get("arrays_sha256") == manifest.vectorizer.arrays_sha256
        and vectorizer_doc.get("labels") == manifest.labels
        and vectorizer_doc.get("config") == manifest.vectorizer.config
    )


@dataclass(frozen=True)
class MajorityFloor:
    """The majority-class rate of a dataset's validation split: the accuracy a model must beat to be promoted."""

    rate: float  # rows of the most frequent class / rows of the split
    label: str  # that class
    rows: int  # rows of the validation split

    def beaten_by(self, accuracy: float | None) -> bool:
        """Whether ``accuracy`` (None: not measured) is above the rate."""
        return accuracy is not None and accuracy > self.rate

    def record(self, accuracy: float | None) -> dict:
        """``promotion.json``'s ``floor``: the rate, its class, the candidate's accuracy and whether it beat it."""
        return {
            "majority_class_rate": round(self.rate, 6),
            "majority_class": self.label,
            "val_rows": self.rows,
            "candidate_accuracy": None if accuracy is None else round(accuracy, 6),
            "beaten": self.beaten_by(accuracy),
        }

    def verdict(self, accuracy: float | None) -> str:
        """Why ``accuracy``, not above the rate, is a chance-level model, in words."""
        shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
        return (
            f"validation accuracy {shown} does not beat the majority-class rate {self.rate:.4f} of the "
            f"validation split (always answering {self.label!r}): a chance-level model"
        )


def majority_floor(data: str, manifest: Manifest) -> MajorityFloor | None:
    """The validation split's ``MajorityFloor``, from the manifest's rows per class.

    Args:
        data: the dataset directory (its validation labels are read when the manifest lacks the counts).
        manifest: its manifest.

    Returns:
        The floor; None without validation rows.
    """
    rows = manifest.rows("val")
    if not rows:
        return None
    counts = np.asarray(manifest.stats.rows_per_class.get("val") or [], dtype=np.int64)
    if len(counts) != len(manifest.labels) or int(counts.sum()) != rows:  # a manifest without them: count
        from streamtrain.train.batches import BatchStream, SplitSource

        counts = np.zeros(len(manifest.labels), np.int64)
        for batch in BatchStream(SplitSource(data, manifest, "val"), 8192).epoch(0):
            counts += np.bincount(batch.labels, minlength=len(counts))
    top = int(counts.argmax())
    return MajorityFloor(float(counts[top]) / rows, manifest.labels[top], rows)


def _raw_accuracy(model: keras.Model, vectorizer: Vectorizer, texts: list[str], truth: list[str], batch: int) -> float:
    """``model``'s accuracy on raw ``texts`` read through ``vectorizer``, ``batch`` at a time."""
    from streamtrain.train.scoring import predict_proba

    right = 0
    labels = np.asarray(vectorizer.labels, dtype=object)
    for lo in range(0, len(texts), batch):
        p = predict_proba(model, vectorizer.transform(texts[lo : lo + batch]), len(vectorizer.labels))
        right += int((labels[p.argmax(axis=1)] == np.asarray(truth[lo : lo + batch], dtype=object)).sum())
    return right / len(texts)


@dataclass
class Current:
    """The current version as fit found it before training: loaded, or (with ``--force``) why it could not be."""

    version: str
    path: Path
    model: Any = None
    vectorizer_doc: dict | None = None
    problem: str | None = None


def load_current(versions: Versions, force: bool) -> Current | None:
    """``current``, checked against its checksums and loaded.

    Args:
        versions: the model directory's versions.
        force: ``--force``: return one that cannot be loaded unloaded, with the problem (the new version is
            then promoted without a comparison).

    Returns:
        The current version; None when there is none yet.

    Raises:
        DataError: it cannot be loaded (damaged, missing, refused by ``safe_mode``), saying what to do;
            not with ``force``.
    """
    version = versions.current()
    if version is None:
        return None
    try:
        path = versions.path(version)
        modeldir.check(path)
        return Current(version, path, modeldir.load_model(path), modeldir.read_vectorizer_doc(path))
    except (DataError, OSError, ValueError) as exc:
        problem = " ".join(str(exc).split())  # Keras' messages span lines
        if force:
            log.warning(f"--force: the current model ({version}) cannot be loaded; not comparing: {problem}")
            return Current(version, versions.dir / version, problem=problem)
        root = versions.root
        raise DataError(
            f"the current model ({version}) cannot be loaded, so no new version can be compared with it: "
            f"{problem}. Nothing was trained. Point current at a good version with `streamtrain promote {root} "
            f"VERSION` (streamtrain inspect {root} lists them), or fit --force to promote the new version "
            "without comparing"
        ) from exc


@dataclass(frozen=True)
class Decision:
    """``promotion.json``: whether a new version replaces ``current``, and why.

    ``decide`` makes it; ``train.serving.ServingStep.decide`` adds what the export and the serving check found
    and can turn it into "not promoted". Optional parts are absent from the file when unset.

    Attributes:
        at: when it was decided (UTC, ISO 8601).
        current_version: the version it was compared with; None: there was none.
        max_regression: the guard's allowance (``--max-regression``).
        forced: ``--force``.
        promoted: whether ``current`` moves to the new version.
        reason: why, in one sentence.
        floor: the majority-class floor's record (owner: ``MajorityFloor.record``).
        compared_on: the rows both models were scored on, in words.
        rows: how many.
        candidate_accuracy: the new model's accuracy on them.
        current_accuracy: the current model's.
        serving: what became of the version's SavedModel.
        serving_check: the serving check's record (owner: ``serve.check``).
    """

    at: str
    current_version: str | None
    max_regression: float | None
    forced: bool
    promoted: bool = False
    reason: str = ""
    floor: dict[str, Any] | None = None
    compared_on: str | None = None
    rows: int | None = None
    candidate_accuracy: float | None = None
    current_accuracy: float | None = None
    serving: str | None = None
    serving_check: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``promotion.json`` document (keys in the order 0.12 wrote them)."""
        head = {"at": self.at, "current_version": self.current_version, "max_regression": self.max_regression}
        compared = {"floor": self.floor, "compared_on": self.compared_on, "rows": self.rows}
        accuracies = {"candidate_accuracy": self.candidate_accuracy, "current_accuracy": self.current_accuracy}
        serving = {"serving": self.serving, "serving_check": self.serving_check}
        present = {k: v for k, v in (compared | accuracies).items() if v is not None}
        tail = {k: v for k, v in serving.items() if v is not None}
        return {**head, "forced": self.forced, **present, "promoted": self.promoted, "reason": self.reason, **tail}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Decision:
        """From a ``promotion.json`` document (one of 0.9 or later: a key it lacks is unset)."""
        return cls(**{f.name: doc[f.name] for f in fields(cls) if f.name in doc})

    def line(self, version: str) -> str:
        """The decision on ``version`` in one log line: promoted and why, or why not and what current stays."""
        if self.promoted:
            return f"version {version} promoted to current: {self.reason}"
        stays = self.current_version or "nothing"
        return (
            f"version {version} kept but NOT promoted: {self.reason}; current stays {stays} "
            "(fit --force would have promoted it)"
        )


def _floor_decision(doc: Decision, floor: MajorityFloor, candidate_val_accuracy: float | None) -> Decision | None:
    """The decision when the candidate does not beat the floor (recorded in ``doc``), else None (compare on)."""
    if floor.beaten_by(candidate_val_accuracy):
        return None
    verdict = floor.verdict(candidate_val_accuracy)
    if doc.forced:
        return replace(doc, promoted=True, reason=f"forced (--force) despite {verdict}")
    return replace(doc, promoted=False, reason=f"not better than chance: {verdict}")


def decide(
    candidate: keras.Model,
    candidate_val_accuracy: float | None,
    data: str,
    manifest: Manifest,
    current: Current | None,
    floor: MajorityFloor | None,
    max_regression: float,
    force: bool,
    score_batch_size: int | None = None,
) -> Decision:
    """The promotion decision for a newly trained model (see the module docstring).

    Args:
        candidate: the new version's trained model.
        candidate_val_accuracy: its accuracy on the dataset's validation split (None: no rows).
        data: the dataset directory.
        manifest: its manifest.
        current: the current version (``load_current``); None: there is none.
        floor: the validation split's majority-class rate (``majority_floor``); None: no validation rows.
        max_regression: the most the candidate may be worse than current by and still be promoted.
        force: promote whatever the guard says (``--force``).
        score_batch_size: rows scored at a time; None: ``scoring.SCORE_BATCH``.

    Returns:
        ``promotion.json``'s record: ``promoted``, ``reason``, when, what was compared and on which rows.
    """
    doc = Decision(
        at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        current_version=current.version if current is not None else None,
        max_regression=max_regression,
        forced=force,
    )
    if floor is not None:
        doc = replace(doc, floor=floor.record(candidate_val_accuracy))
        below = _floor_decision(doc, floor, candidate_val_accuracy)
        if below is not None:
            return below
    if current is None:
        return replace(doc, promoted=True, reason="first model (no current version)")
    if current.model is None or current.vectorizer_doc is None:
        return replace(
            doc, promoted=True, reason=f"forced (--force); the current model was not loaded: {current.problem}"
        )
    compared = _compare(candidate, candidate_val_accuracy, data, manifest, current, score_batch_size)
    return _verdict(replace(doc, compared_on=compared.on, rows=compared.rows), compared, max_regression, force)


@dataclass
class Comparison:
    """Both models' accuracies on the same rows (None: no rows to compare on)."""

    on: str  # the rows, in words (``promotion.json``'s ``compared_on``)
    rows: int
    ours: float | None  # the candidate's
    theirs: float | None  # the current model's


def _compare(
    candidate: keras.Model,
    candidate_val_accuracy: float | None,
    data: str,
    manifest: Manifest,
    current: Current,
    score_batch_size: int | None,
) -> Comparison:
    """The candidate and ``current`` (loaded) measured on the same rows.

    Those are the dataset's validation split when they share its vectorizer, else its validation sample's raw
    texts, each model through its own vectorizer.
    """
    from streamtrain.train.scoring import score_batch, score_split

    assert current.model is not None and current.vectorizer_doc is not None, "a loaded current"
    batch = score_batch(manifest.encoding, score_batch_size)
    if same_vectorizer(current.vectorizer_doc, manifest):
        scored = score_split(current.model, data, manifest, "val", batch)
        rows = scored["rows"]
        on = f"the dataset's validation split ({rows} rows; both models use its vectorizer)"
        return Comparison(on, rows, candidate_val_accuracy, scored["accuracy"])
    from streamtrain.dataset.val_sample import read_val_sample
    from streamtrain.vectorize.vectorizer import Vectorizer

    texts, truth = read_val_sample(data, manifest)
    on = (
        f"the dataset's validation sample ({len(texts)} raw texts), each model through its own vectorizer "
        "(the current model was trained with a different vectorizer)"
    )
    if not texts:
        return Comparison(on, 0, None, None)
    ours = _raw_accuracy(candidate, Vectorizer.load(data), texts, truth, batch)
    theirs = _raw_accuracy(current.model, modeldir.load_vectorizer(current.path), texts, truth, batch)
    return Comparison(on, len(texts), ours, theirs)


def _verdict(doc: Decision, compared: Comparison, max_regression: float, force: bool) -> Decision:
    """The decision on ``compared``: promoted unless the candidate is worse than current by more than allowed.

    ``force``: promoted anyway.
    """
    ours, theirs = compared.ours, compared.theirs
    if not compared.rows or ours is None or theirs is None:
        reason = "no validation rows to compare the two models on (prepare with --val-fraction > 0)"
        return replace(doc, promoted=force, reason="forced (--force); " + reason if force else reason)
    doc = replace(doc, candidate_accuracy=round(ours, 6), current_accuracy=round(theirs, 6))
    change = ours - theirs
    verdict = (
        f"validation accuracy {ours:.4f} against the current {theirs:.4f} ({change:+.4f}; "
        f"the guard allows -{max_regression:g})"
    )
    if change >= -max_regression:
        return replace(doc, promoted=True, reason=verdict)
    if force:
        return replace(doc, promoted=True, reason=f"forced (--force) despite {verdict}")
    return replace(doc, promoted=False, reason=f"worse than current: {verdict}")
