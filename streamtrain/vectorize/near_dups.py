"""Near-duplicate grouping for the ``lsh-bigrams`` split: band keys of word-bigram sets, and the index over them.

- ``band_keys``, per text, a pure function of it (run in prepare's chunk
  workers): ``LSH_BANDS`` 64-bit keys from one-permutation MinHash of its word
  bigrams, ``LSH_ROWS`` bins a band (0: the band has no key). Two texts share
  a band's key with probability about J ** ``LSH_ROWS``, J the Jaccard
  similarity of their bigram sets; a text with fewer than ``MIN_BIGRAMS``
  non-empty bins has no key.
- ``BandIndex``, band key -> value, fed in input order in one process:
  ``resolve`` gives each row the value most of its matching bands hold (ties:
  the lowest band's among the most held), or its own value when none matches,
  and inserts its new keys with that value. A key, once in, never changes, and
  the result does not depend on how the rows are cut into calls. Keys are
  compared by their top 32 bits. ``save_added`` and ``load``: the runs one
  prepare added, as an ``.npz`` without pickle. With a scratch directory its
  memory is bounded: added keys past ``MEMORY_KEYS`` and loaded runs are read
  from files a partition at a time (``band_runs``).

Rationale, layout and measurements: docs/design/split.md
"""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from streamtrain.errors import DataError, writing
from streamtrain.vectorize.band_runs import (
    PARTITION_STARTS,
    DiskFilter,
    SortedRun,
    merge_runs,
    merged_pair,
    merged_parts,
    positions,
    saved_runs,
    write_run,
)

LSH_BANDS = 16
LSH_ROWS = 3
MIN_BIGRAMS = 8  # fewer distinct bigrams: no band keys (the per-text rule decides)
# Fixed for ever (changing them re-splits every lsh-bigrams dataset): the first 64 bits of sqrt(5)'s and
# sqrt(7)'s fractions, salting the bigram hashes and the band keys.
BIGRAM_SALT = 0x3C6EF372FE94F82B
BAND_SALT = 0xA54FF53A5F1D36F1
MAX_RUN = 1 << 20  # keys in a run that merging may produce (4 MiB of fingerprints)
MEMORY_KEYS = 1 << 21  # added keys an index with scratch holds in memory; past it they go to disk as one run
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
    """Salted hashes of each text's adjacent word pairs.

    Args:
        offsets: ``word_hashes``' offsets.
        hashes: ``word_hashes``' hashes.

    Returns:
        (offsets, bigram hashes), CSR-style like ``word_hashes``; a text of n words has n - 1 pairs.
    """
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
    """Each text's band keys; a few numpy passes over the bigrams, whatever the number of bins.

    Args:
        words: ``word_hashes(texts)``.
        bands: bands per text.
        rows: MinHash bins per band.
        min_bigrams: a text with fewer non-empty bins gets no keys.

    Returns:
        uint64, shape (texts, bands); 0 where a band has no key.
    """
    from streamtrain.vectorize import kernels

    if kernels.AVAILABLE:
        return kernels.band_keys(*words, bands, rows, min_bigrams, BIGRAM_SALT, BAND_SALT)
    return _band_keys_numpy(words, bands, rows, min_bigrams)


def _band_keys_numpy(words: tuple[np.ndarray, np.ndarray], bands: int, rows: int, min_bigrams: int) -> np.ndarray:
    """``band_keys`` in numpy: the statement of what ``kernels.band_keys`` computes."""
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
    """Band key -> value, as 32-bit fingerprints in sorted runs; no Python object per key.

    The runs are kept per partition (the fingerprint's top ``band_runs.PARTITION_BITS`` bits), so a lookup
    searches the runs of its key's partition only and a merge stays within one: their number grows with the
    logarithm of a partition's keys, not with the index's size. With ``scratch``, memory is bounded: once the
    added keys held in memory pass ``memory_keys`` they go to a file there as one run (``band_runs``), and
    ``load`` copies the saved runs there; without it, loaded runs are held in memory.

    Args:
        bands: band keys per row.
        rows: MinHash bins per band (recorded, checked by ``load``).
        dtype: the values' type (prepare: uint8 split codes).
        scratch: where added keys past ``memory_keys`` go (``close`` deletes those files); None: all in memory.
        memory_keys: see ``scratch``.
    """

    def __init__(
        self,
        bands: int = LSH_BANDS,
        rows: int = LSH_ROWS,
        dtype: type = np.uint8,
        scratch: Path | None = None,
        memory_keys: int = MEMORY_KEYS,
    ):
        self.bands, self.rows, self.dtype = bands, rows, np.dtype(dtype)
        self.scratch, self.memory_keys = scratch, memory_keys
        partitions = len(PARTITION_STARTS) - 1
        self._keys: list[list[np.ndarray]] = [[] for _ in range(partitions)]  # runs resolve added, merged
        self._values: list[list[np.ndarray]] = [[] for _ in range(partitions)]
        self._in_memory = 0  # keys in ``_keys``
        self._spilled: list[SortedRun] = []  # runs resolve added, written to scratch: longest first
        self._saved: list[SortedRun] = []  # runs ``load`` found, read where they are
        self._filter: DiskFilter | None = None  # the keys of both (``_filtered``)
        self._files = 0  # scratch files named so far

    def __len__(self) -> int:
        return self.added_count() + sum(run.length for run in self._saved)

    def _find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each key is in the index, and its value where it is."""
        # Sorted queries: binary searches in increasing order stay in cache (measurement: docs/design/split.md).
        order = np.argsort(keys)
        ordered = keys[order]
        found = np.zeros(len(keys), dtype=bool)
        values = np.zeros(len(keys), dtype=self.dtype)
        for p, lo, hi in _partitions(ordered):
            queries, where = ordered[lo:hi], order[lo:hi]
            for run, vals in zip(self._keys[p], self._values[p]):
                at = positions(run, queries)
                hit = at >= 0
                found[where[hit]] = True
                values[where[hit]] = vals[at[hit]]
        if self._filter is not None:  # the runs on disk: only keys found nowhere yet that the filter may hold
            ask = np.flatnonzero(~found[order])
            ask = ask[self._filter.may_hold(ordered[ask])]
            for disk_run in self._spilled + self._saved:
                hit, held = disk_run.lookup(ordered[ask])
                found[order[ask[hit]]] = True
                values[order[ask[hit]]] = held
                ask = ask[~hit]  # keys of different runs are disjoint
        return found, values

    def resolve(self, keys: np.ndarray, own: np.ndarray, vote: bool = True) -> np.ndarray:
        """Each row's value, resolved in input order; inserts the rows' new keys with their rows' values.

        Args:
            keys: ``band_keys`` of the rows, shape (rows, bands).
            own: each row's own value, taken when no band of it matches.
            vote: the value most matching bands hold (ties: the lowest band's among the most held); False: the
                lowest matching band's.

        Returns:
            One value per row, of the index's dtype.

        Raises:
            ValueError: ``keys`` has another number of bands than the index.
        """
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
        """Keys not in the index yet (sorted, distinct), with their values: a new run in each partition they fall in."""
        for p, lo, hi in _partitions(keys):
            self._push(self._keys[p], self._values[p], keys[lo:hi].copy(), values[lo:hi].astype(self.dtype))
        self._in_memory += len(keys)
        if self.scratch is not None and self._in_memory > self.memory_keys:
            self._spill()

    def _spill(self) -> None:
        """Write the added keys held in memory to scratch as one run, and let them go.

        The new run is merged with the previous one while that one is at most 4 times as long (as ``_push``
        does in memory), so the runs on disk stay few: their number grows with the logarithm of the keys.
        """
        assert self.scratch is not None
        self.scratch.mkdir(parents=True, exist_ok=True)
        parts = (merged_parts(self._keys[p], self._values[p], self.dtype) for p in range(len(self._keys)))
        run = write_run(self._scratch_file(), parts, self._in_memory, self.dtype)
        for runs in self._keys + self._values:
            runs.clear()
        self._in_memory = 0
        self._spilled.append(run)
        self._filtered([run])
        while len(self._spilled) > 1 and self._spilled[-2].length <= 4 * self._spilled[-1].length:
            newer, older = self._spilled.pop(), self._spilled.pop()
            self._spilled.append(merge_runs(self._scratch_file(), older, newer))

    def _scratch_file(self) -> Path:
        """A new file name in scratch."""
        assert self.scratch is not None
        self._files += 1
        return self.scratch / f"band-run-{self._files:05d}"

    def _filtered(self, new: list[SortedRun]) -> None:
        """Add the ``new`` runs' keys (runs already held) to the filter, remade from every run when outgrown.

        The filter doubles as the keys do, so remaking it reads each key a bounded number of times in all.
        """
        size = DiskFilter.sized(sum(run.length for run in self._spilled + self._saved))
        if self._filter is None or self._filter.log2_bits < size:
            self._filter = DiskFilter(size)
            new = self._spilled + self._saved
        for run in new:
            self._filter.add_run(run)

    @staticmethod
    def _push(runs: list[np.ndarray], run_values: list[np.ndarray], keys: np.ndarray, values: np.ndarray) -> None:
        """Append a run to a partition's; merged into the previous one while that is not much longer."""
        runs.append(keys)
        run_values.append(values)
        while len(runs) > 1 and len(runs[-2]) <= 4 * len(runs[-1]) and len(runs[-2]) + len(runs[-1]) <= MAX_RUN:
            k2, v2 = runs.pop(), run_values.pop()
            k1, v1 = runs.pop(), run_values.pop()
            merged, values_out = merged_pair(k1, v1, k2, v2)
            runs.append(merged)
            run_values.append(values_out)

    def added_count(self) -> int:
        """How many keys ``resolve`` inserted since the index was made or loaded."""
        return self._in_memory + sum(run.length for run in self._spilled)

    def _added_parts(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per partition, in order, the keys ``resolve`` inserted (sorted) and their values."""
        for p in range(len(self._keys)):
            on_disk = [run.read(p) for run in self._spilled]
            keys = self._keys[p] + [k for k, _ in on_disk]
            values = self._values[p] + [v for _, v in on_disk]
            yield merged_parts(keys, values, self.dtype)

    def added(self) -> tuple[np.ndarray, np.ndarray]:
        """The keys ``resolve`` inserted since the index was made or loaded, and their values, as one copy.

        For tests and tools; ``save_added`` writes the runs without one.

        Returns:
            (sorted uint32 fingerprints, their values).
        """
        parts = list(self._added_parts())
        return np.concatenate([k for k, _ in parts]), np.concatenate([v for _, v in parts])

    def save_added(self, path: str | Path) -> None:
        """Write the keys ``resolve`` added, one sorted run per partition, to an ``.npz`` without pickle.

        Each partition's runs (in memory and on disk) are merged as it is written, so writing holds one
        partition's keys more at most.

        Args:
            path: the file: ``keys_I`` and ``values_I`` per run, ``runs``, ``bands`` and ``rows``.

        Raises:
            WriteError: the file system refused the write.
        """
        with writing(path), zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:

            def put(name: str, array: Any) -> None:
                with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)

            written = 0
            for keys, values in self._added_parts():
                if len(keys):
                    put(f"keys_{written}", keys)
                    put(f"values_{written}", values)
                    written += 1
            put("runs", np.int64(written))
            put("bands", np.int64(self.bands))
            put("rows", np.int64(self.rows))

    def close(self) -> None:
        """Close the runs' files and delete those this index wrote to scratch; the index is empty after."""
        for run in self._spilled + self._saved:
            run.close()
        self._spilled, self._saved, self._filter = [], [], None
        for runs in self._keys + self._values:
            runs.clear()
        self._in_memory = 0

    @classmethod
    def load(
        cls, paths: list[Path], bands: int = LSH_BANDS, rows: int = LSH_ROWS, scratch: Path | None = None
    ) -> BandIndex:
        """The index of the runs ``save_added`` wrote (keys of different files are disjoint).

        Args:
            paths: the files, a dataset's own and its appends'.
            bands: band keys per row the files must hold.
            rows: MinHash bins per band the files must have used.
            scratch: the index's (the class); the runs are copied there, not held in memory.

        Returns:
            The index; ``added_count`` is 0.

        Raises:
            DataError: naming a file that is unreadable or does not hold such runs.
        """
        index = cls(bands, rows, scratch=scratch)
        if scratch is not None:
            scratch.mkdir(parents=True, exist_ok=True)
        try:
            for path in paths:
                saved, runs = saved_runs(Path(path), index.dtype, scratch, index._scratch_file)
                index._saved.extend(runs)
                if saved != (bands, rows):
                    raise DataError(
                        f"split index of {saved[0]} bands of {saved[1]} rows, expected {bands} of {rows}", str(path)
                    )
                index._filtered(runs)
        except BaseException:
            index.close()
            raise
        return index


def _partitions(keys: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """``(partition, start, stop)`` of each partition that sorted fingerprints ``keys`` have keys in."""
    bounds = np.searchsorted(keys, PARTITION_STARTS).tolist()
    for p, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if lo < hi:
            yield p, lo, hi


def _first(match: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row: the value of its lowest matching band."""
    return values[np.arange(len(values)), np.argmax(match, axis=1)]


def _vote(match: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row: the value most of its matching bands hold (ties: the lowest band's among the most held)."""
    same = (values[:, :, None] == values[:, None, :]) & match[:, None, :]
    held = np.where(match, same.sum(axis=2), -1)
    return values[np.arange(len(values)), np.argmax(held, axis=1)]
