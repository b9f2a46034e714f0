"""How much training text a frozen vectorizer cannot represent: the drift measure of ``prepare --append``.

n-grams: the share of hashed n-gram occurrences (the sum of the counts that
``featurize`` weighs) falling outside the selected features. Sequences: the
share of tokens whose bucket is outside the vocabulary (``encode`` drops
them: there is no out-of-vocabulary id). Both are counted over training-split
rows only, from arrays that vectorizing computes anyway.

The first prepare records the measure on the training rows the vectorizer
was fitted on (``manifest.stats.coverage``, in-sample, so the baseline is
the best it will ever be); each append measures its new training rows and
logs both, so a share that keeps growing says the vocabulary has gone stale
and ``prepare --refit`` is due.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamtrain.dataset.counts import CoverageRecord, Drift
from streamtrain.vectorize.sequence import SequenceState
from streamtrain.vectorize.tfidf import TfidfState

MEASURES = {
    "ngram": "share of hashed n-gram occurrences in training rows outside the selected features",
    "sequence": "share of tokens in training rows outside the vocabulary",
}


@dataclass
class Coverage:
    encoding: str
    n_features: int
    outside: float = 0.0  # occurrences or tokens outside the features
    total: float = 0.0
    rows: int = 0

    def add_train(self, outside: np.ndarray, total: np.ndarray, train: np.ndarray) -> None:
        """Add the training rows (mask ``train``) of a chunk's per-row counts outside the vectorizer and in all:
        n-gram occurrences (``TfidfState.featurize_counting``) or tokens (``SequenceState.encode_counting``)."""
        self.add(outside[train], total[train])

    def add(self, outside: np.ndarray, total: np.ndarray) -> None:
        self.outside += float(np.sum(outside))
        self.total += float(np.sum(total))
        self.rows += len(total)

    @property
    def share(self) -> float | None:
        return self.outside / self.total if self.total else None

    def record(self) -> CoverageRecord:
        """What the manifest records of it (``stats.coverage``; an append's ``drift`` adds the baseline)."""
        return CoverageRecord(MEASURES[self.encoding], self.share, round(self.outside), round(self.total), self.rows)

    def drift(self, baseline: CoverageRecord | None) -> Drift:
        """An append's ``drift``: this coverage of its new rows beside the dataset's ``baseline``."""
        share = None if baseline is None else baseline.outside_share
        return Drift(**self.record().__dict__, baseline=share)


def coverage_for(state: TfidfState | SequenceState) -> Coverage:
    encoding = "ngram" if isinstance(state, TfidfState) else "sequence"
    width = state.n_features if encoding == "ngram" else state.n_features - 1  # without the padding id
    return Coverage(encoding, width)


def drift_line(new: Coverage, baseline: CoverageRecord | None) -> str:
    """The log line of an append: the new rows' share outside the vectorizer, beside the recorded baseline."""
    what = (
        f"n-gram occurrences are outside the vectorizer's {new.n_features} features"
        if new.encoding == "ngram"
        else f"tokens are outside the vectorizer's vocabulary of {new.n_features} tokens"
    )
    if new.share is None:
        return "drift: no new training rows to measure"
    then = None if baseline is None else baseline.outside_share
    when = f"{then:.1%} when it was fitted" if then is not None else "no baseline recorded for the fitted data"
    return f"drift: {new.share:.1%} of the new rows' {what} ({when}); refit (prepare --refit) when this keeps growing"
