"""Hashed word n-gram counts built on ``vectorize.words``: the raw counts TF-IDF is computed from.

An n-gram's key is a 64-bit hash composed from its words' hashes
(``words.word_hashes``): a unigram's key is its word's hash; each further
word folds in as ``splitmix64(key * GOLDEN_GAMMA ^ next)``. Its bucket
is ``key % buckets``. All of it is integer arithmetic on arrays, so the
same features can be computed by TensorFlow ops in a serving graph.

- ``count_ngrams``: texts -> a CSR matrix of n-gram counts per text over
  ``buckets`` (indices sorted within each row, no duplicates), the
  replacement of sklearn's ``HashingVectorizer`` (same tokens, another hash).
- ``grams``: word hashes -> every n-gram's text, key and token span.
- ``ngram_buckets``: n-gram strings (words joined by single spaces, as the
  names in ``feature_names.json`` are written) -> their buckets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from streamtrain.vectorize.words import GOLDEN_GAMMA, splitmix64, word_hashes

HASHER = "fnv1a64-splitmix64"  # recorded in ``NgramConfig.hasher``


def grams(
    offsets: np.ndarray, hashes: np.ndarray, ngram_range: tuple[int, int], spans: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Every n-gram of every text (its words within one text), n in ``ngram_range``.

    Args:
        offsets: ``word_hashes``' offsets (int64, texts + 1).
        hashes: ``word_hashes``' hashes (uint64).
        ngram_range: (smallest n, largest n).
        spans: also return each n-gram's token span.

    Returns:
        (text index, 64-bit key, first token's index, n) per n-gram, the last two None unless ``spans``.
    """
    lo, hi = ngram_range
    row = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    rows, keys, firsts, sizes = [], [], [], []
    key = hashes
    for n in range(1, hi + 1):
        if n > 1:  # the n-gram starting at token i: fold token i + n - 1 into the (n-1)-gram starting at i
            with np.errstate(over="ignore"):
                key = splitmix64(key[:-1] * GOLDEN_GAMMA ^ hashes[n - 1 :])
        if n < lo:
            continue
        whole = row[: len(key)] == row[n - 1 :] if n > 1 else None  # its n words are in one text
        rows.append(row[: len(key)][whole] if whole is not None else row)
        keys.append(key[whole] if whole is not None else key)
        if spans:
            first = np.flatnonzero(whole) if whole is not None else np.arange(len(key))
            firsts.append(first)
            sizes.append(np.full(len(first), n, np.int64))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64), None, None
    if len(rows) == 1:
        row_out, key_out = rows[0], keys[0]
    else:
        row_out, key_out = np.concatenate(rows), np.concatenate(keys)
    if not spans:
        return row_out, key_out, None, None
    return row_out, key_out, np.concatenate(firsts), np.concatenate(sizes)


def count_ngrams(
    texts: Sequence[str],
    ngram_range: tuple[int, int],
    buckets: int,
    words: tuple[np.ndarray, np.ndarray] | None = None,
) -> sp.csr_matrix:
    """Counts of each text's n-grams per bucket.

    Args:
        texts: the texts.
        ngram_range: (smallest n, largest n).
        buckets: the hash space; an n-gram's bucket is its key modulo this.
        words: ``word_hashes(texts)`` when the caller has it already.

    Returns:
        A float32 CSR matrix (texts x buckets), indices sorted within each row, no duplicates or explicit zeros.
    """
    offsets, hashes = words if words is not None else word_hashes(texts)
    n = len(texts)
    index_type = np.int32 if buckets <= np.iinfo(np.int32).max else np.int64
    from streamtrain.vectorize import kernels  # numba: imported on first use

    if kernels.AVAILABLE:
        counts, columns, indptr = kernels.ngram_counts(offsets, hashes, ngram_range, buckets)
        out = sp.csr_matrix((counts, columns.astype(index_type), indptr), shape=(n, buckets))
        out.has_sorted_indices = True
        return out
    return _count_sorted(offsets, hashes, ngram_range, buckets, index_type)


def _count_sorted(
    offsets: np.ndarray, hashes: np.ndarray, ngram_range: tuple[int, int], buckets: int, index_type: type
) -> sp.csr_matrix:
    """``count_ngrams`` in numpy: the statement of what ``kernels.ngram_counts`` computes."""
    rows, keys, _, _ = grams(offsets, hashes, ngram_range)
    n = len(offsets) - 1
    # One sort of (row, bucket) as a single int64 (row * buckets + bucket < 2**63 for any real chunk), then runs
    # of equal keys: each row's buckets sorted and counted, faster than scipy's COO -> CSR and sum_duplicates
    # (a sort per row; measurement: docs/design/hashing.md). In place where the arrays are this function's own
    # (``rows`` is always a new array; ``keys`` may be the caller's ``hashes``): at most three n-gram-sized arrays
    # at once, as scipy's route held.
    key = rows
    key *= buckets
    buckets_of = keys % np.uint64(buckets)
    key += buckets_of.view(np.int64)  # < buckets: the same value
    del buckets_of, rows, keys
    # Stable (timsort): the keys come as runs of one row each, ascending by row, which its merges skip through;
    # 2-3x numpy's default quicksort on these keys, the same result (docs/design/hashing.md).
    key.sort(kind="stable")
    total = len(key)
    new = np.ones(total, bool)
    np.not_equal(key[1:], key[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    del new
    distinct = key[starts]
    del key
    counts = np.diff(starts, append=total).astype(np.float32)
    del starts
    indptr = np.searchsorted(distinct, np.arange(n + 1, dtype=np.int64) * buckets)  # row r: [r, r + 1) * buckets
    np.remainder(distinct, buckets, out=distinct)
    out = sp.csr_matrix((counts, distinct.astype(index_type), indptr), shape=(n, buckets))
    out.has_sorted_indices = True  # and no duplicates: the runs above
    return out


def ngram_buckets(strings: Sequence[str], buckets: int) -> np.ndarray:
    """The bucket of each n-gram string, as ``count_ngrams`` puts it.

    Args:
        strings: n-grams, their words joined by single spaces (as ``feature_names.json`` writes them).
        buckets: the hash space.

    Returns:
        int64 bucket per string.

    Raises:
        ValueError: a word of a string is not exactly one word token.
    """
    words = [s.split(" ") for s in strings]
    sizes = np.fromiter((len(w) for w in words), np.int64, count=len(words))
    offsets, hashes = word_hashes([w for ws in words for w in ws])
    if not np.array_equal(np.diff(offsets), np.ones(len(offsets) - 1, np.int64)):
        raise ValueError("each word of an n-gram string must be one word token")
    first = np.zeros(len(words) + 1, np.int64)
    np.cumsum(sizes, out=first[1:])
    keys = hashes[first[:-1]] if len(hashes) else np.zeros(len(words), np.uint64)
    with np.errstate(over="ignore"):
        for j in range(1, int(sizes.max(initial=1))):
            longer = np.flatnonzero(sizes > j)
            keys[longer] = splitmix64(keys[longer] * GOLDEN_GAMMA ^ hashes[first[longer] + j])
    return (keys % np.uint64(buckets)).astype(np.int64)
