"""How much training text a frozen vectorizer cannot represent: the drift measure of ``prepare --append``.

n-grams: the share of hashed n-gram occurrences (the sum of the counts that
``featurize`` weighs) falling outside the selected features. Sequences: the
share of tokens whose bucket is outside the vocabulary (``encode`` drops
them: there is no out-of-vocabulary id). Both are counted over training-split
rows only (``Coverage``), from arrays that vectorizing computes anyway. The
first prepare records the measure on the rows the vectorizer was fitted on
(``stats.coverage``, the baseline); each append records its new rows'
beside it (``drift``) and logs both (``drift_line``): a share that keeps
growing says ``prepare --refit`` is due.

Design: docs/design/nightly.md
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
    """The occurrences (or tokens) of training rows outside a vectorizer, and in all, summed over chunks."""

    encoding: str
    n_features: int
    outside: float = 0.0  # occurrences or tokens outside the features
    total: float = 0.0
    rows: int = 0

    def add_train(self, outside: np.ndarray, total: np.ndarray, train: np.ndarray) -> None:
        """Add a chunk's training rows.

        Args:
            outside: per row, the n-gram occurrences (``TfidfState.featurize_counting``) or tokens
                (``SequenceState.encode_counting``) outside the vectorizer.
            total: per row, all of them.
            train: the mask of training rows.
        """
        self.add(outside[train], total[train])

    def add(self, outside: np.ndarray, total: np.ndarray) -> None:
        """Add rows' counts outside the vectorizer (``outside``) and in all (``total``), every row counted."""
        self.outside += float(np.sum(outside))
        self.total += float(np.sum(total))
        self.rows += len(total)

    @property
    def share(self) -> float | None:
        """The share outside; None when nothing was counted."""
        return self.outside / self.total if self.total else None

    def record(self) -> CoverageRecord:
        """What the manifest records of it (``stats.coverage``; an append's ``drift`` adds the baseline)."""
        return CoverageRecord(MEASURES[self.encoding], self.share, round(self.outside), round(self.total), self.rows)

    def drift(self, baseline: CoverageRecord | None) -> Drift:
        """An append's ``drift``: this coverage of its new rows beside the dataset's.

        Args:
            baseline: the manifest's ``stats.coverage``; None when not recorded.

        Returns:
            The record, with the baseline's share.
        """
        share = None if baseline is None else baseline.outside_share
        return Drift(**self.record().__dict__, baseline=share)


def coverage_for(state: TfidfState | SequenceState) -> Coverage:
    """An empty ``Coverage`` for a fitted vectorizer.

    Args:
        state: the fitted n-gram or sequence state.

    Returns:
        Its encoding, and its features (for sequences: the vocabulary, without the padding id).
    """
    encoding = "ngram" if isinstance(state, TfidfState) else "sequence"
    width = state.n_features if encoding == "ngram" else state.n_features - 1  # without the padding id
    return Coverage(encoding, width)


def drift_line(new: Coverage, baseline: CoverageRecord | None) -> str:
    """The log line of an append: the new rows' share outside the vectorizer, beside the recorded baseline.

    Args:
        new: the append's coverage.
        baseline: the manifest's ``stats.coverage``; None when not recorded.

    Returns:
        One line, ending with when to refit.
    """
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
