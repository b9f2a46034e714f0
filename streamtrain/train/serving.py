"""fit's serving step: export the version's SavedModel, and check it in a fresh TensorFlow before promotion.

``ServingStep.start`` is called as fit begins to finish a version: it
starts the checking process (``serve.check``), whose TensorFlow import then
overlaps the final scoring. ``ServingStep.export``, on a thread beside that
scoring, writes ``saved_model/`` into the version being built and hands it
to the checker with the dataset's validation sample (its leading
``CHECK_BYTES`` of text, ``leading_texts``), which the child scores
while fit goes on. ``ServingStep.decide``, when the promotion guard would
promote the version, waits for the check and compares. A failed export or
check turns the decision into "not promoted" with the cause as its reason
(exit 3, ``current`` unchanged); the check's record goes into
``promotion.json`` as ``serving_check``. A dataset whose vectorizer the
graph cannot repeat (made by an old release), or a fit with ``--no-export``,
gets no SavedModel, says why in ``serving``, and is promoted as before.
"""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.val_sample import read_val_sample
from streamtrain.errors import WriteError
from streamtrain.fs.versions import TRAINING
from streamtrain.serve.check import Checker, with_probes
from streamtrain.serve.export import SAVED_MODEL_DIR, exportable, traced_export, write_saved_model
from streamtrain.train.promotion import Decision
from streamtrain.vectorize.vectorizer import Vectorizer

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)
NOT_WANTED = "not asked for (--no-export)"
# Text the check scores at most (the validation sample's first texts): the graph's cost is in its bytes. IMDB's
# 2,641 validation reviews (3.4 MB) took about 0.5 s to score in the child; their first 1 MiB, 761 reviews, 0.13 s.
CHECK_BYTES = 1 << 20


@dataclass
class ServingStep:
    """fit's export and serving check of one version (see the module docstring); made by ``start``."""

    vectorizer: Vectorizer
    unexportable: str | None  # why the graph cannot repeat this vectorizer; None: it can
    checker: Checker | None
    texts: list[str]  # the validation sample's raw texts: what the check scores (with ``PROBES``)
    expected: np.ndarray | None = None  # their in-process probabilities, once computed
    ahead: Future | None = None  # ``traced_export`` of ``ahead_of``, traced while it trains (``trace_ahead``)
    ahead_of: keras.Model | None = None

    @classmethod
    def start(cls, data: str, manifest: Manifest, wanted: bool = True) -> ServingStep:
        """The step for a fit of ``data``: the checking process started, when there is something to check.

        Args:
            data: the dataset directory (its vectorizer and validation sample).
            manifest: its manifest.
            wanted: False for ``--no-export``: no SavedModel, no check.

        Returns:
            The step; without a checker when not wanted or the vectorizer cannot run as a graph.
        """
        vectorizer = Vectorizer.load(data)
        why = exportable(vectorizer) if wanted else NOT_WANTED
        if why is not None:
            return cls(vectorizer, why, None, [])
        texts, _ = read_val_sample(data, manifest)
        return cls(vectorizer, why, Checker.start(), leading_texts(texts, CHECK_BYTES))

    @property
    def labels(self) -> list[str]:
        """The vectorizer's class names, in probability column order."""
        return self.vectorizer.labels

    def trace_ahead(self, model: keras.Model) -> None:
        """Trace the export of ``model`` on a thread while it trains, for ``export`` to write if it wins.

        Only for a model whose training and validation steps are traced already (``fit.prebuild``): the
        thread then traces while the training thread only runs traced steps.

        Args:
            model: the model about to train.
        """
        if self.unexportable is not None or self.ahead is not None:
            return
        pool = ThreadPoolExecutor(1, thread_name_prefix="export-ahead")
        self.ahead, self.ahead_of = pool.submit(traced_export, self.vectorizer, model), model
        pool.shutdown(wait=False)

    def _traced(self, model: keras.Model) -> object | None:
        """The archive traced ahead for ``model``; None: none was, or its tracing failed (traced again then)."""
        if self.ahead is None or self.ahead_of is not model:
            return None
        try:
            return self.ahead.result()
        except Exception:  # the export traces again and says what fails
            return None

    def export(self, building: Path, model: keras.Model) -> str | None:
        """Write ``saved_model/`` into ``building`` and hand it to the checker.

        Runs beside the final scoring (fit calls it on a thread): tracing is Python, scoring is TensorFlow's
        own threads. A ``saved_model/`` left in ``building`` by a killed run that this one resumes is replaced.

        Args:
            building: the version being built.
            model: its trained model.

        Returns:
            None when written (or not exportable), else why exporting failed.

        Raises:
            WriteError: a full disk or a read-only directory (its own exit code).
            OSError: another failure of the file system.
        """
        if self.unexportable is not None:
            return None
        began = time.monotonic()
        version = building.name.removesuffix(TRAINING)
        if (building / SAVED_MODEL_DIR).exists():  # a killed run's, in the version it resumes: ours
            shutil.rmtree(building / SAVED_MODEL_DIR)  # (its staging directory: ``staging_dir`` sweeps it)
        try:
            write_saved_model(building / SAVED_MODEL_DIR, self.vectorizer, model, version, self._traced(model))
        except (OSError, WriteError):
            raise
        except Exception as exc:  # any other failure to export keeps current as it is
            return f"its SavedModel could not be exported: {type(exc).__name__}: {exc}"
        log.info(f"SavedModel exported in {time.monotonic() - began:.1f} s")
        if self.checker is not None:  # checked now, beside the scoring; ``decide`` uses it only for a promotion
            from streamtrain.train.scoring import predict_proba  # TensorFlow: imported by fit by now

            self.checker.submit(building / SAVED_MODEL_DIR, self.texts)
            self.expected = predict_proba(model, self.vectorizer.transform(with_probes(self.texts)), len(self.labels))
        return None

    def decide(self, decision: Decision, failed: str | None) -> Decision:
        """The promotion decision after the export and, when the version is to be promoted, the serving check.

        Closes the checking process.

        Args:
            decision: the promotion guard's decision (``promotion.decide``).
            failed: ``export``'s result.

        Returns:
            The decision with ``serving`` (and ``serving_check`` when checked); not promoted, with the cause as
            its reason, when the export or the check failed.
        """
        try:
            if self.unexportable is not None:
                level = logging.INFO if self.unexportable == NOT_WANTED else logging.WARNING
                log.log(level, f"no SavedModel for this version: {self.unexportable}")
                return replace(decision, serving=f"not exported: {self.unexportable}")
            if failed is not None:
                return _refused(decision, failed)
            decision = replace(decision, serving=f"exported to {SAVED_MODEL_DIR}/")
            if not decision.promoted or self.checker is None:
                return decision
            assert self.expected is not None
            result = self.checker.result(self.expected)
            decision = replace(decision, serving_check=result.record())
            if not result.passed:
                return _refused(decision, f"its SavedModel failed the serving check: {result.problem}")
            log.info(
                f"serving check: {result.texts} texts scored by a fresh TensorFlow within {result.max_difference:.2g} "
                f"of streamtrain's probabilities ({result.seconds:.1f} s)"
            )
            return decision
        finally:
            self.close()

    def close(self) -> None:
        """End the checking process, if any, and wait for a tracing ahead still running."""
        if self.checker is not None:
            self.checker.close()
        if self.ahead is not None:
            wait_for([self.ahead])
            self.ahead = self.ahead_of = None


def leading_texts(texts: list[str], max_bytes: int) -> list[str]:
    """The first of ``texts`` whose UTF-8 fits in ``max_bytes`` together; the first text always.

    Args:
        texts: texts in their order.
        max_bytes: the most bytes of UTF-8 kept (a text that would pass it ends the list).

    Returns:
        ``texts[:k]`` for the largest such ``k`` (at least 1 when there is a text).
    """
    total = 0
    for k, text in enumerate(texts):
        total += len(text.encode("utf-8"))
        if total > max_bytes and k > 0:
            return texts[:k]
    return list(texts)


def _refused(decision: Decision, why: str) -> Decision:
    """``decision`` turned into "not promoted" for ``why`` (logged as an error)."""
    log.error(f"not promoting: {why}")
    return replace(decision, promoted=False, reason=why)
