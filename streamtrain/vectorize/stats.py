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

# The bytes that ``str.split()`` splits at among the ASCII characters (its whitespace there, \x1c-\x1f included).
_ASCII_SPACE = np.zeros(256, bool)
_ASCII_SPACE[[ord(c) for c in " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"]] = True


def words_per_text(texts: Sequence[str]) -> np.ndarray:
    """Each text's number of whitespace-separated words (int64), as the guide counts W: ``len(text.split())``.

    ASCII texts are counted in bulk on their bytes (the start of a word: a byte that is not whitespace after one
    that is, or at the text's start), the others one by one with ``str.split``; the same numbers either way.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(texts):
        return np.zeros(0, np.int64)
    array = pa.array(texts, pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], np.int64, len(texts) + 1)
    data = np.frombuffer(array.buffers()[2] or b"", np.uint8, int(offsets[-1]))
    space = _ASCII_SPACE[data]
    after_space = np.empty(len(data), bool)
    after_space[1:] = space[:-1]
    after_space[offsets[:-1][offsets[:-1] < len(data)]] = True  # a text's first byte follows a boundary
    starts = np.searchsorted(np.flatnonzero(~space & after_space), offsets)  # words begun before each offset
    counts = np.diff(starts).astype(np.int64)
    ascii_only = pc.string_is_ascii(array).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(~ascii_only).tolist():  # other whitespace (NBSP, U+3000, ...): Python's own count
        counts[i] = len(texts[i].split())
    return counts


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
