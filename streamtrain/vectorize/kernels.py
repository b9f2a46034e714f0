"""Compiled loops (numba) for the hashing that prepare's first pass does per byte, token and n-gram.

Each kernel computes exactly what the numpy function it names computes, bit for bit; the numpy functions
stay as the readable statement of the scheme and as the path where numba cannot be imported.

- ``token_hashes``: normalized bytes and text bounds -> each text's word-token hashes
  (``words.word_spans`` + ``words._token_hashes``).
- ``ngram_counts``: word hashes -> CSR n-gram counts per bucket (``ngrams.count_ngrams``).
- ``band_keys``: word hashes -> LSH band keys (``near_dups.band_keys``).
- ``lookup_sorted``, ``merge_sorted``: the split index's searches and merges of sorted runs
  (``band_runs.positions``, ``band_runs.merged_pair``).
- ``add_ones``: document frequencies (``tfidf.DocFreq.update``).

The kernels release the GIL (prepare runs them on worker threads) and are compiled on first use into numba's
cache beside this file (or ``NUMBA_CACHE_DIR``). ``AVAILABLE`` says whether numba imported.

Why compiled loops, and what they gain: docs/design/hashing.md
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import numba
except ImportError:  # a platform without numba's wheels: the numpy path
    numba = None  # type: ignore[assignment]
AVAILABLE = numba is not None

# words' and near_dups' constants, restated: they import this module (lazily), so it cannot import them without
# an import cycle; tests/vectorize/test_kernels.py fails if any of them differs.
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_SPACE = 0x20


def _jit(fn: Any) -> Any:
    """``fn`` compiled (no Python objects, GIL released, cached on disk); ``fn`` itself without numba."""
    if numba is None:  # pragma: no cover
        return fn
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # no writable cache directory (numba names none): compiled in each process instead
        return numba.njit(nogil=True)(fn)


@_jit
def _mix(z: np.uint64) -> np.uint64:
    """splitmix64 of one value (``words.splitmix64``)."""
    z = z + GOLDEN_GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@_jit
def _token_loop(data: np.ndarray, bounds: np.ndarray, offsets: np.ndarray, hashes: np.ndarray) -> int:
    """Fill ``offsets[1:]`` and ``hashes`` (sized for the most tokens ``data`` can hold); returns the tokens."""
    k = 0
    for t in range(len(bounds) - 1):
        i, end = bounds[t], bounds[t + 1]
        while i < end:
            if data[i] == _SPACE:
                i += 1
                continue
            j, h = i, FNV_OFFSET
            while j < end and data[j] != _SPACE:
                h = (h ^ np.uint64(data[j])) * FNV_PRIME
                j += 1
            size = j - i
            lead = data[i]
            one_char = (lead >= 0xF0 and size == 4) or (0xE0 <= lead < 0xF0 and size == 3)
            one_char = one_char or (0xC0 <= lead < 0xE0 and size == 2)
            if size >= 2 and not one_char:  # 2+ bytes that are not a single multi-byte character
                hashes[k] = _mix(h)
                k += 1
            i = j
        offsets[t + 1] = k
    return k


def token_hashes(data: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each text's word-token hashes, from ``words.word_spans``' normalized bytes and text bounds.

    Args:
        data: uint8, the texts end to end, each starting with a space; word bytes are the non-space ones.
        bounds: int64, the texts' offsets into ``data`` (texts + 1).

    Returns:
        (offsets, hashes) as ``words.word_hashes`` gives them.
    """
    offsets = np.zeros(len(bounds), dtype=np.int64)
    hashes = np.empty(len(data) // 2 + 1, dtype=np.uint64)  # a token takes 2+ bytes and a separator
    k = _token_loop(data, bounds.astype(np.int64, copy=False), offsets, hashes)
    return offsets, hashes[:k].copy()


@_jit
def _sort_small(a: np.ndarray, n: int, tmp: np.ndarray, count: np.ndarray, bits: int) -> None:
    """``a[:n]`` sorted in place (values in [0, 2**bits)): scattered by their top bits, then insertion-sorted.

    About one value a bin (at most 2**16 bins), so the insertion sort moves each value a step or two: no
    comparison sort's unpredictable branches on a row of a hundred hashed buckets.
    """
    if n < 2:
        return
    digit = 1
    while (1 << digit) < n and digit < 16:
        digit += 1
    digit = min(digit, bits)
    shift = bits - digit
    count[: (1 << digit) + 1] = 0
    for i in range(n):
        count[(a[i] >> shift) + 1] += 1
    for d in range(1 << digit):
        count[d + 1] += count[d]
    for i in range(n):
        d = a[i] >> shift
        tmp[count[d]] = a[i]
        count[d] += 1
    for i in range(n):
        v, j = tmp[i], i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@_jit
def _gram_loop(
    offsets: np.ndarray, hashes: np.ndarray, lo: int, hi: int, buckets: int, indptr: np.ndarray, indices: np.ndarray
) -> np.ndarray:
    """Fill ``indptr`` and ``indices`` (distinct sorted buckets per row); returns the counts."""
    counts = np.empty(len(indices), dtype=np.float32)
    longest = 0
    for r in range(len(offsets) - 1):
        longest = max(longest, offsets[r + 1] - offsets[r])
    keys = np.empty(max(longest, 1), dtype=np.uint64)
    row = np.empty(max(longest, 1) * (hi - lo + 1), dtype=np.int64)
    tmp, count = np.empty_like(row), np.empty((1 << 16) + 1, dtype=np.int64)
    bits = 1
    while (1 << bits) < buckets:
        bits += 1
    m = np.uint64(buckets)
    out = 0
    for r in range(len(offsets) - 1):
        a, size = offsets[r], offsets[r + 1] - offsets[r]
        filled = 0
        for n in range(1, hi + 1):
            for i in range(size - n + 1):
                if n == 1:
                    keys[i] = hashes[a + i]
                else:
                    keys[i] = _mix(keys[i] * GOLDEN_GAMMA ^ hashes[a + i + n - 1])
                if n >= lo:
                    row[filled] = np.int64(keys[i] % m)
                    filled += 1
        _sort_small(row, filled, tmp, count, bits)
        for i in range(filled):
            if i == 0 or row[i] != row[i - 1]:
                indices[out] = row[i]
                counts[out] = 1.0
                out += 1
            else:
                counts[out - 1] += 1.0
        indptr[r + 1] = out
    return counts[:out]


def ngram_counts(
    offsets: np.ndarray, hashes: np.ndarray, ngram_range: tuple[int, int], buckets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text's n-gram counts per bucket, as ``ngrams.count_ngrams`` makes them.

    Args:
        offsets: ``word_hashes``' offsets.
        hashes: ``word_hashes``' hashes.
        ngram_range: (smallest n, largest n).
        buckets: the hash space.

    Returns:
        (counts float32, buckets int64 sorted within each row, indptr int64): a CSR matrix's arrays; the buckets
        are a view of a buffer sized for the most entries (the caller's ``astype`` copies them).
    """
    lo, hi = ngram_range
    sizes = np.diff(offsets)
    entries = int(sum(np.maximum(sizes - n + 1, 0).sum() for n in range(lo, hi + 1)))
    indptr = np.zeros(len(offsets), dtype=np.int64)
    indices = np.empty(entries, dtype=np.int64)
    counts = _gram_loop(offsets.astype(np.int64, copy=False), hashes, lo, hi, buckets, indptr, indices)
    return counts.copy(), indices[: len(counts)], indptr  # counts: a copy the row's length, not the bound's


@_jit
def _band_loop(
    offsets: np.ndarray, hashes: np.ndarray, bands: int, rows: int, min_bigrams: int, bigram_salt: np.uint64,
    band_salt: np.uint64, keys: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``keys`` (texts x bands, zeros) with each text's band keys."""
    bins = bands * rows
    minima = np.empty(bins, dtype=np.uint64)
    for t in range(len(offsets) - 1):
        a, b = offsets[t], offsets[t + 1]
        if b - a < 2:
            continue
        minima[:] = _EMPTY
        for i in range(a, b - 1):
            g = _mix(_mix(hashes[i] * GOLDEN_GAMMA ^ hashes[i + 1]) ^ bigram_salt)
            cell = ((g >> np.uint64(32)) * np.uint64(bins)) >> np.uint64(32)
            if g < minima[cell]:
                minima[cell] = g
        filled = 0
        for c in range(bins):
            if minima[c] != _EMPTY:
                filled += 1
        if filled < min_bigrams:
            continue
        for band in range(bands):
            x = _mix(np.uint64(band) ^ band_salt)
            usable = True
            for r in range(rows):
                v = minima[band * rows + r]
                if v == _EMPTY:
                    usable = False
                    break
                x = _mix(x * GOLDEN_GAMMA ^ v)
            if usable:
                keys[t, band] = x if x != 0 else np.uint64(1)


def band_keys(
    offsets: np.ndarray, hashes: np.ndarray, bands: int, rows: int, min_bigrams: int, bigram_salt: int,
    band_salt: int,
) -> np.ndarray:  # fmt: skip
    """Each text's band keys, as ``near_dups.band_keys`` makes them (its arguments, and its salts).

    Returns:
        uint64, shape (texts, bands); 0 where a band has no key.
    """
    keys = np.zeros((len(offsets) - 1, bands), dtype=np.uint64)
    _band_loop(offsets.astype(np.int64, copy=False), hashes, bands, rows, min_bigrams, np.uint64(bigram_salt),
               np.uint64(band_salt), keys)  # fmt: skip
    return keys


@_jit
def _merge_loop(
    k1: np.ndarray, v1: np.ndarray, k2: np.ndarray, v2: np.ndarray, keys: np.ndarray, values: np.ndarray
) -> None:
    """Fill ``keys``/``values`` with the two sorted runs merged; a key of ``k2`` goes before an equal one of ``k1``."""
    i = j = 0
    for o in range(len(keys)):
        if j < len(k2) and (i == len(k1) or k2[j] <= k1[i]):
            keys[o], values[o] = k2[j], v2[j]
            j += 1
        else:
            keys[o], values[o] = k1[i], v1[i]
            i += 1


def merge_sorted(k1: np.ndarray, v1: np.ndarray, k2: np.ndarray, v2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs of keys with their values, merged in one pass (``near_dups.BandIndex._push``'s merge).

    Returns:
        (keys, values), of ``k1``'s and ``v1``'s dtypes.
    """
    keys, values = np.empty(len(k1) + len(k2), k1.dtype), np.empty(len(k1) + len(k2), v1.dtype)
    _merge_loop(k1, v1, k2, v2, keys, values)
    return keys, values


@_jit
def _lookup_loop(run: np.ndarray, queries: np.ndarray, at: np.ndarray) -> None:
    """``at[k]``: where sorted ``queries[k]`` is in sorted ``run``, or -1; each search gallops on from the last."""
    lo, n = 0, len(run)
    for k in range(len(queries)):
        q = queries[k]
        step, hi = 1, lo
        while hi < n and run[hi] < q:  # gallop: the first index at or past q lies in (lo, hi]
            lo = hi + 1
            hi = lo + step
            step *= 2
        hi = min(hi, n)
        while lo < hi:  # binary search in [lo, hi)
            mid = (lo + hi) >> 1
            if run[mid] < q:
                lo = mid + 1
            else:
                hi = mid
        at[k] = lo if lo < n and run[lo] == q else -1


def lookup_sorted(run: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Where each of the sorted ``queries`` is in the sorted ``run`` (int64), -1 where it is not."""
    at = np.empty(len(queries), np.int64)
    _lookup_loop(run, queries, at)
    return at


@_jit
def add_ones(counts: np.ndarray, at: np.ndarray) -> None:
    """``np.add.at(counts, at, 1)`` in one pass (document frequencies: every ``at`` a valid index)."""
    for i in range(len(at)):
        counts[at[i]] += 1
