"""Corpus statistics gathered while streaming, in memory bounded by the longest text.

``WordCounts`` keeps a histogram of words per sample (whitespace split, as
in the guide), enough for the number of samples S and the median W that the
guide's S/W rule needs. Histograms add, so statistics of separate passes or
workers merge exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def words_per_text(texts: Sequence[str]) -> np.ndarray:
    """Each text's number of whitespace-separated words (int64), as the guide counts W."""
    return np.fromiter((len(t.split()) for t in texts), np.int64, count=len(texts))


@dataclass
class WordCounts:
    """A histogram of words per sample: ``hist[w]`` samples have ``w`` words."""

    hist: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def update(self, texts: Sequence[str]) -> None:
        """Count ``texts``, one sample each."""
        self.add(words_per_text(texts))

    def add(self, lengths: np.ndarray) -> None:
        """Count samples of the given word counts (``words_per_text``: a worker can compute them)."""
        if not len(lengths):
            return
        counts = np.bincount(lengths)
        if len(counts) > len(self.hist):
            self.hist = np.pad(self.hist, (0, len(counts) - len(self.hist)))
        self.hist[: len(counts)] += counts

    def merge(self, other: WordCounts) -> WordCounts:
        """The counts of both, as one ``WordCounts``."""
        n = max(len(self.hist), len(other.hist))
        return WordCounts(np.pad(self.hist, (0, n - len(self.hist))) + np.pad(other.hist, (0, n - len(other.hist))))

    @property
    def samples(self) -> int:
        """S: the number of samples counted."""
        return int(self.hist.sum())

    def median(self) -> float:
        """Median words per sample (mean of the two middle values for an even count)."""
        n = self.samples
        if n == 0:
            return 0.0
        cdf = np.cumsum(self.hist)
        lo = int(np.searchsorted(cdf, (n - 1) // 2 + 1))
        hi = int(np.searchsorted(cdf, n // 2 + 1))
        return (lo + hi) / 2.0
