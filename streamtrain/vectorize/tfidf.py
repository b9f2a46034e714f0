"""TF-IDF word n-grams as in Google's text-classification guide, fitted in memory bounded by the configuration.

The guide's recipe (sklearn's ``TfidfVectorizer(ngram_range=(1, 2), min_df=2,
strip_accents='unicode')``, then ``SelectKBest(f_classif)``) with n-grams
hashed into ``NgramConfig.hash_buckets`` buckets instead of a vocabulary, so
every statistic is an array sized by the configuration, never by the corpus:

- ``NgramConfig``: the recipe's knobs (JSON-serializable).
- ``hash_counts``: texts -> raw n-gram counts per bucket (stateless).
- ``DocFreq``: document frequency per bucket (pass 1, mergeable).
- ``ClassMoments``: per-class sums of the TF-IDF values of the F-test's
  candidate buckets (pass 2, mergeable); ``fit_selection`` keeps the
  ``top_k`` best of them by ANOVA F-value.
- ``TfidfState``: the fitted vectorizer (IDF per bucket, the selected
  buckets); turns counts into feature rows, the same at prepare and predict.

Rationale, memory and measurements: docs/design/tfidf.md
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from streamtrain.vectorize.defaults import HASH_BUCKETS, MIN_DF, TOP_K
from streamtrain.vectorize.rows import SparseRows

SKLEARN_HASHER = "sklearn-murmur3"  # NgramConfig.hasher of datasets made before streamtrain 0.4


@dataclass(frozen=True)
class NgramConfig:
    """The n-gram recipe's knobs, as ``vectorizer.json`` records them.

    A JSON written before a field existed reads back with that field's default, which is what such datasets were
    made with (``hasher``: sklearn's murmurhash3; ``sublinear_tf``: raw counts).
    """

    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = MIN_DF
    top_k: int = TOP_K
    hash_buckets: int = HASH_BUCKETS
    lowercase: bool = True
    strip_accents: str | None = "unicode"
    token_pattern: str = r"(?u)\b\w\w+\b"
    # How n-grams become buckets: ``ngrams.HASHER`` (the words' FNV-1a, composed by splitmix64), or, for
    # datasets made before it (no "hasher" in their JSON), sklearn's murmurhash3 via ``HashingVectorizer``.
    hasher: str = SKLEARN_HASHER
    # Term frequency as 1 + ln(count) (sklearn's ``sublinear_tf``): new datasets use it, older ones have raw
    # counts. Measurement: docs/design/tfidf.md
    sublinear_tf: bool = False

    def to_json(self) -> dict:
        """The config as a JSON object (``ngram_range`` a list)."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> NgramConfig:
        """The config ``to_json`` wrote; a missing field takes its default."""
        return cls(**{**obj, "ngram_range": tuple(obj["ngram_range"])})


def _hasher(config: NgramConfig) -> Any:  # a HashingVectorizer; sklearn is imported on first use
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


def hash_counts(
    config: NgramConfig, texts: Sequence[str], words: tuple[np.ndarray, np.ndarray] | None = None
) -> sp.csr_matrix:
    """Raw n-gram counts per text over ``config.hash_buckets``.

    Args:
        config: the recipe; its ``hasher`` picks ``ngrams.count_ngrams`` or sklearn's ``HashingVectorizer``.
        texts: the texts.
        words: ``words.word_hashes(texts)`` when the caller has it (used by the ``ngrams.HASHER`` scheme only).

    Returns:
        A float32 CSR matrix (texts x buckets), indices sorted within each row, no duplicates.

    Raises:
        ValueError: ``config.hasher`` is unknown.
    """
    if config.hasher != SKLEARN_HASHER:
        from streamtrain.vectorize.ngrams import HASHER, count_ngrams

        if config.hasher != HASHER:
            raise ValueError(f"unknown n-gram hasher {config.hasher!r}")
        return count_ngrams(texts, config.ngram_range, config.hash_buckets, words)
    counts = _hasher(config).transform(texts)
    counts.sort_indices()
    return counts


@dataclass
class DocFreq:
    """Document frequency of each bucket over the training rows; ``merge`` adds two.

    Attributes:
        buckets: the hash space.
        n_docs: rows counted.
        df: int64 per bucket, the rows it occurs in.
    """

    buckets: int
    n_docs: int = 0
    df: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__

    def __post_init__(self) -> None:
        if self.df is None:
            self.df = np.zeros(self.buckets, np.int64)

    def update(self, counts: sp.csr_matrix, rows: np.ndarray | None = None) -> None:
        """Count the rows of ``counts`` (``hash_counts``'s: no duplicate bucket within a row); ``rows``: only these."""
        from streamtrain.vectorize import kernels  # numba: imported on first use

        indices = counts.indices[: counts.indptr[-1]]
        if rows is not None:
            indices = indices[np.repeat(rows, np.diff(counts.indptr))]
        self.n_docs += counts.shape[0] if rows is None else int(np.count_nonzero(rows))
        kernels.add_ones(self.df, indices) if kernels.AVAILABLE else np.add.at(self.df, indices, 1)

    def merge(self, other: DocFreq) -> DocFreq:
        """The frequencies of both, as one ``DocFreq`` over the same buckets."""
        return DocFreq(self.buckets, self.n_docs + other.n_docs, self.df + other.df)

    def idf(self, min_df: int) -> np.ndarray:
        """The smoothed IDF per bucket, as sklearn's: ln((1 + n) / (1 + df)) + 1.

        Args:
            min_df: a bucket occurring in fewer rows is outside the vocabulary.

        Returns:
            float32 per bucket; 0 outside the vocabulary.
        """
        idf = np.log((1.0 + self.n_docs) / (1.0 + self.df)) + 1.0
        return np.where(self.df >= min_df, idf, 0.0).astype(np.float32)


@dataclass
class ClassMoments:
    """Per-class count and sum, and overall sum of squares, of each candidate bucket's values.

    ``candidates``: the sorted bucket ids the statistics are kept for (the vocabulary, df >= min_df, known
    after pass 1); values in other buckets are ignored. Arrays: ``sums`` (classes x candidates) and ``sumsq``
    (candidates), float64; ``merge`` adds two with the same candidates.
    """

    candidates: np.ndarray
    n_classes: int
    counts: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__
    sums: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__
    sumsq: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__

    def __post_init__(self) -> None:
        self.candidates = np.asarray(self.candidates, np.int64)
        if np.any(np.diff(self.candidates) <= 0) or (len(self.candidates) and self.candidates[0] < 0):
            raise ValueError("candidates must be sorted, distinct, non-negative bucket ids")
        if self.counts is None:
            n = len(self.candidates)
            self.counts = np.zeros(self.n_classes, np.int64)
            self.sums = np.zeros((self.n_classes, n), np.float64)
            self.sumsq = np.zeros(n, np.float64)

    @cached_property
    def _position_of_bucket(self) -> np.ndarray:
        """The int32 candidate position of each bucket id up to the largest candidate, -1 elsewhere.

        Also -1 in the last slot, where ``np.take(..., mode="clip")`` puts every larger id.
        """
        top = int(self.candidates[-1]) + 1 if len(self.candidates) else 0
        return bucket_table(self.candidates, top + 1)

    def positions(self, buckets: np.ndarray) -> np.ndarray:
        """The candidate position of each bucket id.

        Args:
            buckets: bucket ids.

        Returns:
            int32 positions in ``candidates``; -1 for a bucket that is not a candidate.
        """
        return np.take(self._position_of_bucket, np.asarray(buckets, np.int64), mode="clip")

    def update(self, rows: SparseRows) -> None:
        """Add rows whose ``indices`` are bucket ids; values in buckets that are not candidates are ignored.

        Temporaries: a few arrays the size of the rows' entries, and one the size of the candidates.

        Args:
            rows: TF-IDF values over all buckets, labelled with class ids below ``n_classes``.
        """
        pos = self.positions(rows.indices)
        owner = np.repeat(rows.labels, np.diff(rows.indptr))
        keep = pos >= 0
        pos, owner, vals = pos[keep], owner[keep], rows.values[keep].astype(np.float64, copy=False)
        n = len(self.candidates)
        labels = np.bincount(rows.labels, minlength=self.n_classes)
        self.counts += labels
        self.sumsq += np.bincount(pos, vals * vals, minlength=n)
        for c in np.flatnonzero(labels):  # one class at a time: temporaries of one candidates-sized array
            mine = owner == c
            self.sums[c] += np.bincount(pos[mine], vals[mine], minlength=n)

    def merge(self, other: ClassMoments) -> ClassMoments:
        """The statistics of both, as one ``ClassMoments``.

        Raises:
            ValueError: ``other`` has other candidates or another number of classes.
        """
        if self.n_classes != other.n_classes or not np.array_equal(self.candidates, other.candidates):
            raise ValueError("only moments over the same candidates and classes merge")
        return ClassMoments(
            self.candidates,
            self.n_classes,
            self.counts + other.counts,
            self.sums + other.sums,
            self.sumsq + other.sumsq,
        )

    def f_scores(self) -> np.ndarray:
        """ANOVA F-value per candidate, as sklearn's ``f_classif``; NaN becomes 0, infinity the largest float64.

        In place on four candidates-sized arrays; the same operations, in the same order, as summing over the
        classes x candidates array at once.
        """
        n = self.counts.sum()
        present = np.flatnonzero(self.counts > 0)
        k = len(present)
        correction = self.sums.sum(axis=0)
        np.square(correction, out=correction)
        correction /= n  # total**2 / n
        ss_between = np.zeros(len(self.candidates), np.float64)
        term = np.empty_like(ss_between)
        for c in present:
            np.square(self.sums[c], out=term)
            term /= self.counts[c]
            ss_between += term
        ss_between -= correction
        ss_within = np.subtract(self.sumsq, correction, out=term)
        del correction
        ss_within -= ss_between
        with np.errstate(divide="ignore", invalid="ignore"):
            ss_between /= max(k - 1, 1)
            ss_within /= max(n - k, 1)
            ss_between /= ss_within  # the F-value
        return np.nan_to_num(ss_between, copy=False, nan=0.0, posinf=np.finfo(np.float64).max)


def bucket_table(buckets: np.ndarray, size: int) -> np.ndarray:
    """A dense position table: a gather through it maps bucket ids to positions, cheaper than a binary search.

    Args:
        buckets: distinct bucket ids below ``size``.
        size: the table's length.

    Returns:
        int32 of ``size`` entries: ``i`` at bucket id ``buckets[i]``, -1 elsewhere.
    """
    table = np.full(size, -1, np.int32)
    table[buckets] = np.arange(len(buckets), dtype=np.int32)
    return table


def top_k_buckets(candidates: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best-scoring candidates, ties to the lower bucket.

    Args:
        candidates: sorted bucket ids.
        scores: one per candidate.
        k: how many to keep.

    Returns:
        int64 bucket ids sorted by id (all candidates when there are at most ``k``).
    """
    ids = np.asarray(candidates, np.int64)
    if len(ids) <= k:
        return ids
    order = np.lexsort((ids, -scores))[:k]
    return np.sort(ids[order])


@dataclass
class TfidfState:
    """The fitted n-gram vectorizer: what prepare writes and predict reads."""

    config: NgramConfig
    idf: np.ndarray  # float32 per bucket; 0 outside the min_df vocabulary
    selected: np.ndarray  # int64 sorted bucket ids, one per output feature

    @property
    def n_features(self) -> int:
        """Row width: the number of selected buckets."""
        return len(self.selected)

    @cached_property
    def _column_of_bucket(self) -> np.ndarray:
        return bucket_table(self.selected, self.config.hash_buckets)

    def tfidf_buckets(self, counts: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalized TF-IDF values over all vocabulary buckets, in sklearn's order of work.

        Args:
            counts: ``hash_counts``'s raw counts.

        Returns:
            (float64 value per entry of ``counts``, the row of each entry).
        """
        values = counts.data.astype(np.float64)  # a new array: the steps below work in place (same results)
        if self.config.sublinear_tf:
            np.log(values, out=values)
            values += 1.0
        values *= np.take(self.idf, counts.indices, mode="clip")  # bucket ids are in range: no check (faster)
        lengths = np.diff(counts.indptr)
        owner = np.repeat(np.arange(counts.shape[0]), lengths)
        norms = np.sqrt(np.bincount(owner, values * values, minlength=counts.shape[0]))
        norms[norms == 0] = 1.0
        values /= norms[owner]
        return values, owner

    def featurize(self, counts: sp.csr_matrix, labels: np.ndarray, row_ids: np.ndarray) -> SparseRows:
        """Counts over buckets -> feature rows over the selected buckets.

        Args:
            counts: ``hash_counts``'s raw counts.
            labels: one class id per row.
            row_ids: one global row id per row.

        Returns:
            The rows, ``n_features`` columns wide.
        """
        return self.featurize_counting(counts, labels, row_ids)[0]

    def featurize_counting(
        self, counts: sp.csr_matrix, labels: np.ndarray, row_ids: np.ndarray
    ) -> tuple[SparseRows, np.ndarray, np.ndarray]:
        """``featurize``, plus the drift measure from the same intermediate arrays.

        Args:
            counts: ``hash_counts``'s raw counts.
            labels: one class id per row.
            row_ids: one global row id per row.

        Returns:
            (the rows, per row its n-gram occurrences outside the selected buckets, per row all of them), the
            occurrences as float64 sums of counts.
        """
        n = counts.shape[0]
        values, owner = self.tfidf_buckets(counts)
        cols = np.take(self._column_of_bucket, counts.indices, mode="clip")  # in range, as in ``tfidf_buckets``
        keep = cols >= 0
        kept_owner = owner[keep]
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(kept_owner, minlength=n), out=indptr[1:])
        rows = SparseRows(
            indptr,
            cols[keep],
            values[keep].astype(np.float32),
            np.asarray(labels, np.int32),
            np.asarray(row_ids, np.int64),
            self.n_features,
        )
        occurrences = counts.data.astype(np.float64)
        total = np.bincount(owner, occurrences, minlength=n)
        inside = np.bincount(kept_owner, occurrences[keep], minlength=n)
        return rows, total - inside, total  # sums of whole counts: exact in float64

    def transform(self, texts: Sequence[str]) -> SparseRows:
        """Raw texts -> feature rows, labelled -1, with row ids 0..n-1."""
        n = len(texts)
        return self.featurize(hash_counts(self.config, texts), np.full(n, -1, np.int32), np.arange(n))

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays, as ``vectorizer.npz`` stores them: ``idf`` and ``selected``."""
        return {"idf": self.idf, "selected": self.selected}

    @classmethod
    def from_arrays(cls, config: NgramConfig, arrays: dict[str, np.ndarray]) -> TfidfState:
        """The state of ``config`` and the arrays ``arrays`` returned."""
        return cls(config, arrays["idf"].astype(np.float32), arrays["selected"].astype(np.int64))


def auto_min_df(doc_freq: DocFreq, top_k: int) -> int:
    """The vocabulary's least document frequency when the user set none: 1 when every n-gram fits, else ``MIN_DF``.

    An n-gram seen in one training row is dropped only to make room: when the buckets seen in training (df >= 1)
    number at most ``top_k``, all of them are features; past that the guide's ``MIN_DF`` applies, so a large
    corpus's features are unchanged. Why (measurements): docs/design/tfidf.md

    Args:
        doc_freq: the training rows' document frequencies.
        top_k: the features the F-test keeps.

    Returns:
        1 or ``MIN_DF``.
    """
    return 1 if int(np.count_nonzero(doc_freq.df)) <= top_k else MIN_DF


def candidate_buckets(doc_freq: DocFreq, min_df: int, most: int) -> np.ndarray:
    """The F-test's candidates: the vocabulary, capped so that the test's memory stops growing with the corpus.

    Args:
        doc_freq: the training rows' document frequencies.
        min_df: the vocabulary's least document frequency.
        most: the cap (prepare: ``defaults.MAX_CANDIDATES``).

    Returns:
        Sorted int64 bucket ids: the vocabulary, or its ``most`` most frequent buckets (ties to the lower bucket)
        when it is larger.
    """
    vocabulary = np.flatnonzero(doc_freq.df >= min_df)
    if len(vocabulary) <= most:
        return vocabulary
    order = np.lexsort((vocabulary, -doc_freq.df[vocabulary]))[:most]
    return np.sort(vocabulary[order])


def fit_selection(config: NgramConfig, moments: ClassMoments, idf: np.ndarray) -> TfidfState:
    """Freeze the vectorizer: the ``config.top_k`` best candidates by F-value.

    Args:
        config: the recipe.
        moments: the class statistics of the candidates (``candidate_buckets``).
        idf: ``DocFreq.idf``; only candidates with idf > 0 (in the vocabulary) can be selected.

    Returns:
        The fitted state.
    """
    vocabulary = idf[moments.candidates] > 0
    scores, candidates = moments.f_scores(), moments.candidates
    if not vocabulary.all():
        scores, candidates = scores[vocabulary], candidates[vocabulary]
    selected = top_k_buckets(candidates, scores, config.top_k)
    return TfidfState(config, idf, selected)
