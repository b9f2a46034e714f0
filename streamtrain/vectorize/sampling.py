"""``SystematicSample``: every stride-th training row in input order, bounded in rows and bytes.

The stride doubles (and the kept rows are thinned to it) whenever the sample
would exceed ``max_items`` rows or ``max_bytes`` bytes of UTF-8 text, so the
sample spreads over the whole input (a corpus ordered by class is sampled in
every class) and ends between half and all of either bound. Each text is cut
to ``max_chars``. The feature names' sample (``ngram_names.NameSample``) and
the auto choice's labelled sample (``choice.ChoiceSample``) are both this.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SystematicSample:
    """Every ``stride``-th training row in input order, the stride doubling while the sample exceeds a bound.

    Args:
        max_items: most rows kept.
        max_bytes: most bytes of UTF-8 text kept.
        max_chars: a longer text is cut to this many characters.

    Raises:
        ValueError: ``max_items`` or ``max_bytes`` is not positive.
    """

    def __init__(self, max_items: int, max_bytes: int, max_chars: int):
        if max_items < 1 or max_bytes < 1:
            raise ValueError("the sample's bounds must be positive")
        self.max_items, self.max_bytes, self.max_chars = max_items, max_bytes, max_chars
        self.stride = 1  # keep training rows whose position among all training rows is a multiple of this
        self.seen = 0  # training rows offered so far
        self.text_bytes = 0
        self._kept: list[tuple[int, str, int, int]] = []  # (position, text, label id or -1, UTF-8 bytes)

    def __len__(self) -> int:
        return len(self._kept)

    def offer(self, texts: Sequence[str], train: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Offer a chunk's rows; only the training rows are sampled.

        Args:
            texts: the chunk's texts, in input order.
            train: true for the training rows.
            labels: their label ids, kept with them (None: -1).
        """
        rows = np.flatnonzero(train)
        start, k = self.seen, (-self.seen) % self.stride
        while k < len(rows):
            text = texts[rows[k]][: self.max_chars]
            size = len(text.encode("utf-8"))
            self._kept.append((start + k, text, -1 if labels is None else int(labels[rows[k]]), size))
            self.text_bytes += size
            while (len(self._kept) > self.max_items or self.text_bytes > self.max_bytes) and len(self._kept) > 1:
                self._thin()
            k += 1
            k += (-(start + k)) % self.stride
        self.seen += len(rows)

    def _thin(self) -> None:
        self.stride *= 2
        self._kept = [kept for kept in self._kept if kept[0] % self.stride == 0]
        self.text_bytes = sum(kept[3] for kept in self._kept)

    def clear(self) -> None:
        """Release the kept rows (the stride and the count of rows seen stay)."""
        self._kept = []
        self.text_bytes = 0
