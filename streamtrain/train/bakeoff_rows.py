"""The bake-off's rows: both families' vectorizers fitted on its sample in memory, as prepare fits them.

``train.bakeoff`` trains on what these return: TF-IDF rows (``ngram_rows``: prepare's document frequencies,
weighing and F-test selection over the sample's own vocabulary, ``fit_ngrams``) and token rows
(``sequence_rows``: ``SequenceState.fit``). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import scipy.sparse as sp

from streamtrain.vectorize.rows import SparseRows, TokenRows
from streamtrain.vectorize.sequence import SequenceConfig, SequenceState, TokenCounts
from streamtrain.vectorize.tfidf import DocFreq, NgramConfig, TfidfState, hash_counts


def fit_ngrams(config: NgramConfig, counts: sp.csr_matrix, labels: np.ndarray) -> tuple[TfidfState, np.ndarray]:
    """The n-gram vectorizer fitted on rows' n-gram ``counts`` (``hash_counts``) as prepare fits it.

    prepare's steps in memory: ``DocFreq``'s IDF with ``min_df``, TF-IDF weighing
    (``TfidfState.tfidf_buckets``), the top-k vocabulary buckets by ANOVA F-value (sklearn's ``f_classif``,
    which ``ClassMoments`` computes in a stream; ties to the lower bucket). Returns the state over squeezed
    buckets, and the vocabulary: squeezed bucket j is hash bucket ``vocabulary[j]`` (a bucket outside the
    vocabulary weighs 0 anyway), so memory follows the sample, not ``config.hash_buckets``. No column is
    selected when no n-gram is in ``min_df`` rows, or the rows hold one class.
    """
    from sklearn.feature_selection import f_classif

    doc_freq = DocFreq(config.hash_buckets)
    doc_freq.update(counts)
    idf = doc_freq.idf(config.min_df)
    vocabulary = np.flatnonzero(idf > 0)
    squeezed = dataclasses.replace(config, hash_buckets=max(len(vocabulary), 1))
    weigher = TfidfState(squeezed, idf[vocabulary], np.zeros(0, np.int64))
    selected = np.zeros(0, np.int64)
    if len(vocabulary) and len(np.unique(labels)) > 1:
        train = squeeze(counts, vocabulary)
        values, _ = weigher.tfidf_buckets(train)
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")  # constant features: F is NaN, scored 0 as ClassMoments scores them
            scores = np.nan_to_num(
                f_classif(sp.csr_matrix((values, train.indices, train.indptr), train.shape), labels)[0]
            )
        selected = np.sort(np.lexsort((np.arange(len(vocabulary)), -scores))[: config.top_k]).astype(np.int64)
    return TfidfState(squeezed, weigher.idf, selected), vocabulary


def ngram_rows(
    config: NgramConfig, texts: list[str], labels: np.ndarray, val_texts: list[str], val_labels: np.ndarray
) -> tuple[SparseRows, SparseRows]:
    """TF-IDF rows of both samples, the vectorizer fitted on ``texts`` (``fit_ngrams``; 0 columns: none selected)."""
    counts = hash_counts(config, texts)
    state, vocabulary = fit_ngrams(config, counts, labels)
    train = state.featurize(squeeze(counts, vocabulary), labels, np.arange(len(texts), dtype=np.int64))
    val = squeeze(hash_counts(config, val_texts), vocabulary)
    return train, state.featurize(val, val_labels, np.arange(len(val_texts), dtype=np.int64))


def squeeze(counts: sp.csr_matrix, buckets: np.ndarray) -> sp.csr_matrix:
    """``counts`` over ``buckets`` (sorted ids): bucket ``buckets[j]`` becomes column j; the others are dropped."""
    n = max(len(buckets), 1)
    pos = np.minimum(np.searchsorted(buckets, counts.indices), n - 1)
    keep = buckets[pos] == counts.indices if len(buckets) else np.zeros(len(counts.indices), bool)
    owner = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))[keep]
    indptr = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(owner, minlength=counts.shape[0]), out=indptr[1:])
    return sp.csr_matrix((counts.data[keep], pos[keep].astype(np.int32), indptr), shape=(counts.shape[0], n))


def sequence_rows(
    config: SequenceConfig, texts: list[str], labels: np.ndarray, val_texts: list[str], val_labels: np.ndarray
) -> tuple[SequenceState, TokenRows, TokenRows]:
    """The sequence vectorizer fitted on ``texts`` as prepare fits it, and both samples' token rows."""
    counts = TokenCounts(config.hash_buckets, lowercase=config.lowercase)
    counts.update(texts)
    state = SequenceState.fit(config, counts)
    train = state.encode(texts, labels, np.arange(len(texts), dtype=np.int64))
    return state, train, state.encode(val_texts, val_labels, np.arange(len(val_texts), dtype=np.int64))
