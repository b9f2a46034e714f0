"""TF-IDF word n-grams as in Google's text-classification guide, fitted in bounded memory.

The guide's recipe is sklearn's ``TfidfVectorizer(ngram_range=(1, 2),
min_df=2, strip_accents='unicode')`` followed by ``SelectKBest(f_classif,
k=20000)``. Both need a vocabulary of every n-gram, which grows with the
corpus. Here n-grams are hashed (murmurhash3, sklearn's
``HashingVectorizer``) into a fixed number of buckets, so every statistic is
an array whose size is set by the configuration, never by the data:

- ``NgramConfig``: the recipe's knobs (JSON-serializable).
- ``hash_counts``: texts -> raw n-gram counts over the buckets (stateless).
- ``DocFreq``: document frequency per bucket (pass 1, mergeable).
- ``ClassMoments``: per-class sums of the TF-IDF values of every bucket,
  for the ANOVA F-test (pass 2, mergeable).
- ``TfidfState``: the fitted vectorizer (IDF of every bucket and the k
  selected buckets); turns counts into the final feature rows, identically
  at prepare and at predict time.

Memory: 8 bytes x buckets for the document frequencies, plus
8 x (classes + 1) x buckets for the F-test: allocated in full from the start,
so a small corpus uses as much as a huge one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from streamtrain.dataset.rows import SparseRows
from streamtrain.vectorize.defaults import HASH_BUCKETS, MIN_DF, TOP_K


@dataclass(frozen=True)
class NgramConfig:
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = MIN_DF
    top_k: int = TOP_K
    hash_buckets: int = HASH_BUCKETS
    lowercase: bool = True
    strip_accents: str | None = "unicode"
    token_pattern: str = r"(?u)\b\w\w+\b"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> NgramConfig:
        return cls(**{**obj, "ngram_range": tuple(obj["ngram_range"])})


def _hasher(config: NgramConfig):  # -> HashingVectorizer; sklearn is imported on first use
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=config.hash_buckets,
        ngram_range=config.ngram_range,
        lowercase=config.lowercase,
        strip_accents=config.strip_accents,
        token_pattern=config.token_pattern,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )


def hash_counts(config: NgramConfig, texts: Sequence[str]) -> sp.csr_matrix:
    """Raw n-gram counts per text over ``config.hash_buckets`` (sorted, no duplicates)."""
    counts = _hasher(config).transform(texts)
    counts.sort_indices()
    return counts


@dataclass
class DocFreq:
    """Document frequency of each bucket over the training rows; ``merge`` adds two."""

    buckets: int
    n_docs: int = 0
    df: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__

    def __post_init__(self) -> None:
        if self.df is None:
            self.df = np.zeros(self.buckets, np.int64)

    def update(self, counts: sp.csr_matrix) -> None:
        self.n_docs += counts.shape[0]
        self.df += np.bincount(counts.indices, minlength=self.buckets)

    def merge(self, other: DocFreq) -> DocFreq:
        return DocFreq(self.buckets, self.n_docs + other.n_docs, self.df + other.df)

    def idf(self, min_df: int) -> np.ndarray:
        """sklearn's smoothed IDF, ln((1 + n) / (1 + df)) + 1; 0 outside the vocabulary."""
        idf = np.log((1.0 + self.n_docs) / (1.0 + self.df)) + 1.0
        return np.where(self.df >= min_df, idf, 0.0).astype(np.float32)


@dataclass
class ClassMoments:
    """Per-class count and sum, and overall sum of squares, of each bucket's values."""

    buckets: int
    n_classes: int
    counts: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__
    sums: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__
    sumsq: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__

    def __post_init__(self) -> None:
        if self.counts is None:
            self.counts = np.zeros(self.n_classes, np.int64)
            self.sums = np.zeros((self.n_classes, self.buckets), np.float64)
            self.sumsq = np.zeros(self.buckets, np.float64)

    def update(self, rows: SparseRows) -> None:
        """Add rows whose ``indices`` are bucket ids."""
        owner = np.repeat(rows.labels, np.diff(rows.indptr)).astype(np.int64)
        vals = rows.values.astype(np.float64)
        b = self.buckets
        self.counts += np.bincount(rows.labels, minlength=self.n_classes)
        self.sumsq += np.bincount(rows.indices, vals * vals, minlength=b)
        for c in range(self.n_classes):  # one class at a time keeps temporaries at one bucket array
            mine = owner == c
            self.sums[c] += np.bincount(rows.indices[mine], vals[mine], minlength=b)

    def merge(self, other: ClassMoments) -> ClassMoments:
        return ClassMoments(
            self.buckets,
            self.n_classes,
            self.counts + other.counts,
            self.sums + other.sums,
            self.sumsq + other.sumsq,
        )

    def f_scores(self) -> np.ndarray:
        """ANOVA F-value per bucket, as sklearn's ``f_classif``; NaN -> 0."""
        n = self.counts.sum()
        present = self.counts > 0
        k = int(present.sum())
        total = self.sums.sum(axis=0)
        correction = total**2 / n
        ss_between = (self.sums[present] ** 2 / self.counts[present, None]).sum(axis=0) - correction
        ss_within = self.sumsq - correction - ss_between
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (ss_between / max(k - 1, 1)) / (ss_within / max(n - k, 1))
        return np.nan_to_num(f, nan=0.0, posinf=np.finfo(np.float64).max)


def top_k_buckets(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best-scoring of the ``candidates`` mask (ties to the lower bucket), sorted by bucket id."""
    ids = np.flatnonzero(candidates)
    if len(ids) <= k:
        return ids
    order = np.lexsort((ids, -scores[ids]))[:k]
    return np.sort(ids[order])


@dataclass
class TfidfState:
    """The fitted n-gram vectorizer: what prepare writes and predict reads."""

    config: NgramConfig
    idf: np.ndarray  # float32 per bucket; 0 outside the min_df vocabulary
    selected: np.ndarray  # int64 sorted bucket ids, one per output feature

    @property
    def n_features(self) -> int:
        return len(self.selected)

    @cached_property
    def _column_of_bucket(self) -> np.ndarray:
        col = np.full(self.config.hash_buckets, -1, np.int32)
        col[self.selected] = np.arange(len(self.selected), dtype=np.int32)
        return col

    def tfidf_buckets(self, counts: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalized TF-IDF values over all vocabulary buckets (sklearn's order of work)."""
        values = counts.data.astype(np.float64) * self.idf[counts.indices]
        lengths = np.diff(counts.indptr)
        owner = np.repeat(np.arange(counts.shape[0]), lengths)
        norms = np.sqrt(np.bincount(owner, values * values, minlength=counts.shape[0]))
        norms[norms == 0] = 1.0
        return values / norms[owner], owner

    def featurize(self, counts: sp.csr_matrix, labels: np.ndarray, row_ids: np.ndarray) -> SparseRows:
        """Counts over buckets -> final rows over the selected features."""
        values, owner = self.tfidf_buckets(counts)
        cols = self._column_of_bucket[counts.indices]
        keep = cols >= 0
        indptr = np.zeros(counts.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(owner[keep], minlength=counts.shape[0]), out=indptr[1:])
        return SparseRows(
            indptr,
            cols[keep],
            values[keep].astype(np.float32),
            np.asarray(labels, np.int32),
            np.asarray(row_ids, np.int64),
            self.n_features,
        )

    def outside_occurrences(self, counts: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Per row: n-gram occurrences (summed counts) outside the selected features, and all of them (drift)."""
        n = counts.shape[0]
        owner = np.repeat(np.arange(n), np.diff(counts.indptr))
        data = counts.data.astype(np.float64)
        outside = self._column_of_bucket[counts.indices] < 0
        return np.bincount(owner[outside], data[outside], minlength=n), np.bincount(owner, data, minlength=n)

    def transform(self, texts: Sequence[str]) -> SparseRows:
        """Raw texts -> feature rows (labels -1, row ids 0..n-1)."""
        n = len(texts)
        return self.featurize(hash_counts(self.config, texts), np.full(n, -1, np.int32), np.arange(n))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"idf": self.idf, "selected": self.selected}

    @classmethod
    def from_arrays(cls, config: NgramConfig, arrays: dict[str, np.ndarray]) -> TfidfState:
        return cls(config, arrays["idf"].astype(np.float32), arrays["selected"].astype(np.int64))


def fit_selection(config: NgramConfig, moments: ClassMoments, idf: np.ndarray) -> TfidfState:
    """Pick the top-k vocabulary buckets (idf > 0: df >= min_df) by F-value and freeze the vectorizer."""
    selected = top_k_buckets(idf > 0, moments.f_scores(), config.top_k)
    return TfidfState(config, idf, selected)
