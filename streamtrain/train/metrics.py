"""``metrics.json``: a version's scores and how it trained (``Metrics``).

fit writes it (``version_run.fit_metrics``); ``report.md`` is rendered from it; ``inspect`` and the fit result
show it. ``epochs`` and ``best_epoch`` count passes over the training rows (fractional when a validation round
ends inside one), ``validations`` and ``best_validation`` validation rounds. Every field has a default so that a
``metrics.json`` an older release wrote, lacking a key, still reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Metrics:
    """A version's ``metrics.json``.

    Attributes:
        test_accuracy: accuracy on the test split (None: no test rows).
        test_loss: mean loss there.
        val_accuracy: accuracy on the whole validation split (None: no validation rows).
        val_loss: mean loss there.
        epochs: passes over the training rows that were run.
        best_epoch: the pass at which the kept weights were reached.
        validations: validation rounds run.
        best_validation: the round of the kept weights.
        validations_per_epoch: rounds per pass.
        train_rows: rows of the training split.
        val_rows: rows of the validation split scored at the end.
        validation_sample_rows: rows each round during training scored.
        test_rows: rows of the test split.
        classes: the class names, in the model's output order.
        model: the model family (``linear``, ``mlp``, ``sepcnn``).
        candidate: the selection's candidate, by name (None: written before the selection).
        workers: processes that trained it.
        rows_per_worker: rows each worker trained, per round of this run.
        weights_digests: each worker's weights digest at the end of training.
        test_confusion: the test split's confusion matrix (rows: truth, columns: prediction).
        train_seconds: training time (its rounds' validations included).
        validation_seconds: of ``train_seconds``, the time the rounds' validations took (this process's).
        train_samples_per_second: training rows a second.
    """

    test_accuracy: float | None = None
    test_loss: float | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    epochs: float | None = None
    best_epoch: float | None = None
    validations: int | None = None
    best_validation: int | None = None
    validations_per_epoch: int | None = None
    train_rows: int | None = None
    val_rows: int | None = None
    validation_sample_rows: int | None = None
    test_rows: int | None = None
    classes: list[str] = field(default_factory=list)
    model: str | None = None
    candidate: str | None = None
    workers: int | None = None
    rows_per_worker: list[list[int]] = field(default_factory=list)
    weights_digests: list[str] = field(default_factory=list)
    test_confusion: list[list[int]] = field(default_factory=list)
    train_seconds: float | None = None
    validation_seconds: float | None = None
    train_samples_per_second: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.json`` document."""
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Metrics:
        """From a ``metrics.json`` document of any release (keys it lacks take their defaults; others are ignored)."""
        return cls(**{f.name: doc[f.name] for f in fields(cls) if f.name in doc})
