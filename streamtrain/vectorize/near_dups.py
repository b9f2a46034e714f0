"""Near-duplicate grouping for the split: LSH band keys of word-bigram sets, and the streaming index over them.

The ``lsh-bigrams`` split rule (``vectorize.split``) keeps near-copies of a
text (reposts, templated texts, ``tools/grow.py``'s token-dropout copies) in
the split of the first of them, which no rule computed from one text alone
can do. This module owns its two halves:

- ``band_keys``, per text, a pure function of it (run in prepare's chunk
  workers): the set of its word bigrams (adjacent word hashes of
  ``vectorize.words``, combined as ``splitmix64(h1 * K ^ h2)`` with a salt),
  one-permutation MinHash into ``LSH_BANDS * LSH_ROWS`` bins (each bigram
  hashed once; the top bits of its salted hash pick the bin; the bin keeps
  the smallest hash), and per band of ``LSH_ROWS`` consecutive bins a 64-bit
  key: ``splitmix64`` folded over the band index and its bins' minima. Two
  texts share a band's key with probability about J ** LSH_ROWS, J the
  Jaccard similarity of their bigram sets. A band with an empty bin has no
  key (0); a text with fewer than ``MIN_BIGRAMS`` non-empty bins (so fewer
  distinct bigrams) has none.
- ``BandIndex``, a map band key -> value (the split code in prepare, a root
  row in ``tools/bench_split.py``), fed in input order in one process:
  ``resolve`` gives each row the value most of its matching bands hold (the
  value of the first row that had each band's key; ties: the lowest band's
  among the most held), or its own value when no band matches, and inserts
  every key of the row not there yet with the row's value. Rows of
  one call are resolved in order too (a row matching an earlier row of the
  same call takes its value), so the result does not depend on how the rows
  are cut into calls. A key, once in, never changes.

Why 16 bands of 3 rows and a vote, measured on IMDB train with 7
token-dropout copies per review (rate 0.1), originals first as in
``grow.py``'s output (200,000 rows; straddling: share of the 25,000
clusters not in one split; foreign: rows that took their value from
another review's row):

=========================  ==========  =========  =============  ========
bands x rows               straddling  foreign    largest group  no key
=========================  ==========  =========  =============  ========
12 x 2, lowest band        0.069       0.578      1,734 rows     0.0003
16 x 3, lowest band        0.0092      0.050      122 rows       0.0027
16 x 3, vote               0.0024      0.044      120 rows       0.0027
20 x 4, lowest band        0.0143      0.008      40 rows        0.035
=========================  ==========  =========  =============  ========

A bin's minimum is often a common bigram (``of the``), and one-permutation
MinHash puts each common bigram in a fixed bin, so a band of 3 such minima
recurs across unrelated reviews: about 5% of rows match some other review.
Four rows cut that, but leave more bands with an empty bin (no key) and
match fewer copies. A copy matches its original in about 5 of 16 bands
(0.7 ** 3 = 0.34 each) and a stray review in about 1, so the vote keeps the
copy with its cluster. A stray match costs nothing but the row's own
(random) split.

The index holds each key's top 32 bits (a fingerprint: 4 bytes a key, so
IMDB grown x16, 5.8 M keys, costs prepare 29 MB, not the 200 MB that 64-bit
keys and whole-index merges took, which broke prepare's flat memory; two
keys share a fingerprint with probability 2**-32, and a false match only
gives a row another row's split, as a stray match does) in sorted uint32
runs with a uint8 or int64 value per key; a new run is merged into the
previous one while it is at least half as long and the two hold at most
``MAX_RUN`` keys (so merging needs at most that much scratch, and there are
O(log n) runs plus one per ``MAX_RUN`` keys). No Python object per key.
``save_added`` writes the runs a run of prepare added, as they are, to one
``.npz`` (no pickle: ``keys_I`` sorted, ``values_I``, ``runs``, ``bands``,
``rows``): a new dataset's whole index, or what one append added; ``load``
takes those runs back (keys of different files are disjoint).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from streamtrain.errors import DataError, writing

LSH_BANDS = 16
LSH_ROWS = 3
MIN_BIGRAMS = 8  # fewer distinct bigrams: no band keys (the per-text rule decides)
# Fixed for ever (changing them re-splits every lsh-bigrams dataset): the first 64 bits of sqrt(5)'s and
# sqrt(7)'s fractions, salting the bigram hashes and the band keys.
BIGRAM_SALT = 0x3C6EF372FE94F82B
BAND_SALT = 0xA54FF53A5F1D36F1
MAX_RUN = 1 << 20  # keys in a run that merging may produce (4 MiB of fingerprints)
_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)

RULE_TEXT = (
    "per non-test row in input order: bigram hashes b = splitmix64(splitmix64(h1 * 0x9e3779b97f4a7c15 ^ h2) ^ "
    f"{BIGRAM_SALT:#x}) of adjacent word_hashes(text) (streamtrain.vectorize.words); with {{bands}} * {{rows}} bins, "
    "bin = (b >> 32) * n_bins >> 32, bin minimum m; band i (bins i*rows .. i*rows+rows-1, all non-empty) key = "
    f"fold of x = splitmix64(x * 0x9e3779b97f4a7c15 ^ m) from x = splitmix64(i ^ {BAND_SALT:#x}) (0 -> 1); "
    "no keys with fewer than {min_bigrams} non-empty bins. Each key holds the split of the first row (in input "
    "order, appended rows after the dataset's) that had it (keys compared by their top 32 bits); a row takes the "
    "split most of its keys already held hold (ties: that of the lowest such band), else the minhash2-words rule "
    "of its own text"
)


def bigram_hashes(offsets: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Salted hashes of each text's adjacent word pairs, CSR-style (``offsets``, ``hashes``) like ``word_hashes``."""
    from streamtrain.vectorize.words import GOLDEN_GAMMA, splitmix64  # pyarrow: imported on first use

    counts = np.diff(offsets)
    pairs = np.maximum(counts - 1, 0)
    out_offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(pairs, out=out_offsets[1:])
    if len(hashes) < 2:
        return out_offsets, np.zeros(0, dtype=np.uint64)
    keep = np.ones(len(hashes) - 1, dtype=bool)
    ends = offsets[1:][counts > 0] - 1  # the last word of each text starts no pair
    keep[ends[ends < len(keep)]] = False
    with np.errstate(over="ignore"):
        mixed = splitmix64(hashes[:-1][keep] * GOLDEN_GAMMA ^ hashes[1:][keep])
    return out_offsets, splitmix64(mixed ^ np.uint64(BIGRAM_SALT))


def band_keys(
    words: tuple[np.ndarray, np.ndarray], bands: int = LSH_BANDS, rows: int = LSH_ROWS, min_bigrams: int = MIN_BIGRAMS
) -> np.ndarray:
    """Each text's band keys, shape (texts, bands), uint64; 0 where a band has no key.

    ``words``: ``word_hashes(texts)``. A few numpy passes over the bigrams, whatever the number of bins.
    """
    from streamtrain.vectorize.words import GOLDEN_GAMMA, splitmix64

    offsets, hashes = words
    n, bins = len(offsets) - 1, bands * rows
    keys = np.zeros((n, bands), dtype=np.uint64)
    b_offsets, bigrams = bigram_hashes(offsets, hashes)
    if not len(bigrams):
        return keys
    text = np.repeat(np.arange(n, dtype=np.int64), np.diff(b_offsets))
    # bin = floor(b * bins / 2**64), from the top 32 bits: exact for bins < 2**32.
    cell = text * bins + ((bigrams >> np.uint64(32)) * np.uint64(bins) >> np.uint64(32)).astype(np.int64)
    flat_minima = np.full(n * bins, _EMPTY, dtype=np.uint64)
    np.minimum.at(flat_minima, cell, bigrams)
    minima = flat_minima.reshape(n, bands, rows)
    # Texts with fewer than min_bigrams non-empty bins (so fewer distinct bigrams) get no keys.
    filled = (minima != _EMPTY).sum(axis=(1, 2))
    usable = (minima != _EMPTY).all(axis=2) & (filled >= min_bigrams)[:, None]
    with np.errstate(over="ignore"):
        x = np.broadcast_to(splitmix64(np.arange(bands, dtype=np.uint64) ^ np.uint64(BAND_SALT)), (n, bands)).copy()
        for r in range(rows):
            x = splitmix64(x * GOLDEN_GAMMA ^ minima[:, :, r])
    x[x == 0] = 1
    keys[usable] = x[usable]
    return keys


class BandIndex:
    """Band key -> value, in sorted runs (see the module docstring). ``dtype``: the values' (uint8 splits)."""

    def __init__(self, bands: int = LSH_BANDS, rows: int = LSH_ROWS, dtype: type = np.uint8):
        self.bands, self.rows, self.dtype = bands, rows, np.dtype(dtype)
        self._keys: list[np.ndarray] = []  # runs that resolve added, merged as they grow
        self._values: list[np.ndarray] = []
        self._base_keys: list[np.ndarray] = []  # runs loaded from files, searched as they are
        self._base_values: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(k) for k in self._keys + self._base_keys)

    def _find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each key is in the index, and its value where it is."""
        # Sorted queries: binary searches in increasing order stay in cache (6x faster than unsorted on x8 IMDB).
        order = np.argsort(keys)
        ordered = keys[order]
        found = np.zeros(len(keys), dtype=bool)
        values = np.zeros(len(keys), dtype=self.dtype)
        for run, vals in zip(self._keys + self._base_keys, self._values + self._base_values):
            at = np.minimum(np.searchsorted(run, ordered), len(run) - 1)
            hit = run[at] == ordered
            found[order[hit]] = True
            values[order[hit]] = vals[at[hit]]
        return found, values

    def resolve(self, keys: np.ndarray, own: np.ndarray, vote: bool = True) -> np.ndarray:
        """Each row's value, in order (module docstring); inserts the rows' new keys. ``own``: the rows' own values."""
        n, bands = keys.shape
        if bands != self.bands:
            raise ValueError(f"{bands} band keys per row, the index has {self.bands}")
        live = np.flatnonzero(keys.ravel())  # 0: the band has no key
        flat = (keys.ravel() >> np.uint64(32)).astype(np.uint32)  # fingerprints (module docstring)
        found, old_values = self._find(flat[live])
        # Keys not in the index: the first row holding each inserts it; later rows of this call match it.
        new = live[~found]
        distinct, first_at, inverse = np.unique(flat[new], return_index=True, return_inverse=True)
        owner = new[first_at] // bands  # row-major: the first occurrence is in the earliest row
        later = owner[inverse] < new // bands
        match = np.zeros(n * bands, dtype=bool)
        match[live[found]] = True
        match[new[later]] = True
        values = np.zeros(n * bands, dtype=self.dtype)
        values[live[found]] = old_values[found]
        parent = np.full(n * bands, -1, dtype=np.int64)
        parent[new[later]] = owner[inverse[later]]
        match, values, parent = match.reshape(n, bands), values.reshape(n, bands), parent.reshape(n, bands)
        pick = _vote if vote else _first
        out = np.array(own, dtype=self.dtype, copy=True)
        dependent = (parent >= 0).any(axis=1)
        alone = np.flatnonzero(match.any(axis=1) & ~dependent)
        out[alone] = pick(match[alone], values[alone])
        for i in np.flatnonzero(dependent).tolist():  # rows matching earlier rows of this call: in order
            mine = values[i : i + 1].copy()
            inner = parent[i] >= 0
            mine[0, inner] = out[parent[i, inner]]
            out[i] = pick(match[i : i + 1], mine)[0]
        if len(distinct):
            self._add(distinct, out[owner])
        return out

    def _add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """A run of keys not in the index yet (sorted, distinct); merged while the last run is not much longer."""
        self._keys.append(keys)
        self._values.append(values.astype(self.dtype, copy=False))
        while (
            len(self._keys) > 1
            and len(self._keys[-2]) <= 2 * len(self._keys[-1])
            and len(self._keys[-2]) + len(self._keys[-1]) <= MAX_RUN
        ):
            k2, v2 = self._keys.pop(), self._values.pop()
            k1, v1 = self._keys.pop(), self._values.pop()
            self._keys.append(merged := np.empty(len(k1) + len(k2), dtype=np.uint32))
            self._values.append(values_out := np.empty(len(merged), dtype=self.dtype))
            at = np.searchsorted(k1, k2) + np.arange(len(k2))
            other = np.ones(len(merged), dtype=bool)
            other[at] = False
            merged[at], values_out[at] = k2, v2
            merged[other], values_out[other] = k1, v1

    def added_count(self) -> int:
        """How many keys ``resolve`` inserted since the index was made or loaded."""
        return sum(len(k) for k in self._keys)

    def added(self) -> tuple[np.ndarray, np.ndarray]:
        """The keys (fingerprints, sorted) that ``resolve`` inserted since the index was made or loaded, and their
        values, as one copy (for tests and tools; ``save_added`` writes the runs without one)."""
        if not self._keys:
            return np.zeros(0, np.uint32), np.zeros(0, self.dtype)
        keys, values = np.concatenate(self._keys), np.concatenate(self._values)
        order = np.argsort(keys)
        return keys[order], values[order]

    def save_added(self, path: str | Path) -> None:
        """The runs ``resolve`` added, as they are, as an ``.npz`` (no pickle): ``keys_I``, ``values_I``, ``runs``,
        ``bands``, ``rows``."""
        arrays: dict[str, Any] = {f"keys_{i}": k for i, k in enumerate(self._keys)}
        arrays.update({f"values_{i}": v for i, v in enumerate(self._values)})
        arrays.update(runs=np.int64(len(self._keys)), bands=np.int64(self.bands), rows=np.int64(self.rows))
        with writing(path), open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, paths: list[Path], bands: int = LSH_BANDS, rows: int = LSH_ROWS) -> BandIndex:
        """The index of the runs that ``save_added`` wrote to ``paths`` (searched as they are: a refit writes one
        file); ``DataError`` naming a file that does not hold such runs."""
        index = cls(bands, rows)
        for path in paths:
            try:
                with np.load(path, allow_pickle=False) as doc:
                    saved = (int(doc["bands"]), int(doc["rows"]))
                    runs = [(doc[f"keys_{i}"], doc[f"values_{i}"]) for i in range(int(doc["runs"]))]
            except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise DataError(f"unreadable split index: {exc}", str(path)) from exc
            if saved != (bands, rows):
                raise DataError(
                    f"split index of {saved[0]} bands of {saved[1]} rows, expected {bands} of {rows}", str(path)
                )
            for keys, values in runs:
                if (
                    keys.dtype != np.uint32
                    or values.dtype != index.dtype
                    or keys.shape != values.shape
                    or keys.ndim != 1
                ):
                    raise DataError("split index arrays of the wrong type or shape", str(path))
                if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
                    raise DataError("split index keys are not sorted and distinct", str(path))
                if len(keys):
                    index._base_keys.append(keys)
                    index._base_values.append(values)
        return index


def _first(match: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row: the value of its lowest matching band."""
    return values[np.arange(len(values)), np.argmax(match, axis=1)]


def _vote(match: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row: the value most of its matching bands hold (ties: the lowest band's among the most held)."""
    same = (values[:, :, None] == values[:, None, :]) & match[:, None, :]
    held = np.where(match, same.sum(axis=2), -1)
    return values[np.arange(len(values)), np.argmax(held, axis=1)]
