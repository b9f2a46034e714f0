"""The bounded-memory vectorizer reproduces the guide's sklearn recipe on real text."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif

from streamtrain.dataset.rows import SparseRows
from streamtrain.io.readers import ColumnSpec, read_chunks
from streamtrain.vectorize.stats import WordCounts
from streamtrain.vectorize.tfidf import (
    ClassMoments,
    DocFreq,
    NgramConfig,
    TfidfState,
    fit_selection,
    hash_counts,
)


def _ag_news(path):
    texts, labels = [], []
    for chunk in read_chunks([path], ColumnSpec(text=(1, 2), label=0)):
        texts += chunk.texts
        labels += chunk.labels
    return texts, np.array([int(l) - 1 for l in labels], np.int32)


def _fit(config: NgramConfig, texts, labels, parts: int = 1) -> TfidfState:
    """Fit in ``parts`` independent pieces merged together, as separate workers would."""
    pieces = np.array_split(np.arange(len(texts)), parts)
    counts = [hash_counts(config, [texts[i] for i in p]) for p in pieces]
    df = DocFreq(config.hash_buckets)
    for c in counts:
        piece = DocFreq(config.hash_buckets)
        piece.update(c)
        df = df.merge(piece)
    idf = df.idf(config.min_df)
    weigher = TfidfState(config, idf, np.zeros(0, np.int64))
    moments = ClassMoments(config.hash_buckets, int(labels.max()) + 1)
    for c, p in zip(counts, pieces):
        values, _ = weigher.tfidf_buckets(c)
        piece = ClassMoments(config.hash_buckets, moments.n_classes)
        piece.update(
            SparseRows(c.indptr.astype(np.int64), c.indices, values, labels[p], p.astype(np.int64), c.shape[1])
        )
        moments = moments.merge(piece)
    return fit_selection(config, moments, idf)


@pytest.fixture(scope="module")
def ag(ag_news_csv):
    return _ag_news(ag_news_csv)


def test_close_to_sklearn_tfidf_and_selectkbest_on_ag_news(ag):
    """Hashing approximates the guide's exact recipe: same features, near-equal values, same accuracy."""
    from sklearn.linear_model import LogisticRegression

    texts, labels = ag
    k = 2000
    config = NgramConfig(top_k=k)  # the shipped hash space
    ours = _fit(config, texts, labels)

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, strip_accents="unicode", dtype=np.float64)
    x = vec.fit_transform(texts)
    select = SelectKBest(f_classif, k=k).fit(x, labels)
    names = vec.get_feature_names_out()[select.get_support()]
    hasher = HashingVectorizer(n_features=config.hash_buckets, alternate_sign=False, norm=None)
    # The bucket each sklearn-selected n-gram hashes to.
    theirs = np.array([hasher._get_hasher().transform([[n]]).indices[0] for n in names])

    overlap = len(np.intersect1d(ours.selected, theirs))
    assert overlap >= 0.98 * k, f"only {overlap} of {k} selected features agree with sklearn"

    x_ref = select.transform(x).tocsc()
    rows = ours.transform(texts)
    x_ours = sp.csr_matrix((rows.values, rows.indices, rows.indptr), shape=(len(texts), k))
    col_of_bucket = {b: i for i, b in enumerate(ours.selected)}
    shared = [(j, col_of_bucket[b]) for j, b in enumerate(theirs) if b in col_of_bucket]
    ref = x_ref[:, [j for j, _ in shared]].toarray()
    got = x_ours.tocsc()[:, [i for _, i in shared]].toarray()
    nonzero = (ref != 0) | (got != 0)
    assert np.corrcoef(ref[nonzero], got[nonzero])[0, 1] > 0.99
    assert np.median(np.abs(ref - got)[nonzero] / np.abs(ref[nonzero]).clip(1e-9)) < 0.05

    train = np.arange(len(texts)) % 5 != 0
    acc = [
        LogisticRegression(max_iter=1000).fit(m[train], labels[train]).score(m[~train], labels[~train])
        for m in (select.transform(x), x_ours)
    ]
    assert abs(acc[0] - acc[1]) <= 0.01, f"sklearn {acc[0]:.4f} vs streamtrain {acc[1]:.4f}"
    assert acc[1] > 0.8


def test_merged_statistics_equal_one_pass(ag):
    texts, labels = ag
    texts, labels = texts[:3000], labels[:3000]
    config = NgramConfig(top_k=500, hash_buckets=1 << 18)
    one = _fit(config, texts, labels, parts=1)
    three = _fit(config, texts, labels, parts=3)
    np.testing.assert_array_equal(one.selected, three.selected)
    np.testing.assert_allclose(one.idf, three.idf)


def test_f_scores_match_sklearn_f_classif():
    rng = np.random.default_rng(0)
    x = rng.random((200, 30)) * (rng.random((200, 30)) < 0.3)
    y = rng.integers(0, 3, 200).astype(np.int32)
    x[y == 1, 4] += 0.5  # one informative column
    csr = sp.csr_matrix(x)
    moments = ClassMoments(30, 3)
    moments.update(SparseRows(csr.indptr.astype(np.int64), csr.indices, csr.data, y, np.arange(200), 30))
    expected, _ = f_classif(x, y)
    np.testing.assert_allclose(moments.f_scores(), np.nan_to_num(expected), rtol=1e-9)
    assert moments.f_scores().argmax() == 4


def test_transform_is_deterministic_and_unit_norm_before_selection():
    texts = ["the cat sat on the mat", "the dog sat", "a cat and a dog", "the mat"] * 3
    labels = np.array([0, 1, 0, 1] * 3, np.int32)
    state = _fit(NgramConfig(top_k=1000, hash_buckets=1 << 16), texts, labels)
    a, b = state.transform(texts), state.transform(list(texts))
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.values, b.values)
    # Every n-gram here has df >= 2 and fewer than top_k exist, so nothing is dropped: rows are unit length.
    norms = np.sqrt(np.add.reduceat(a.values.astype(np.float64) ** 2, a.indptr[:-1]))
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)


def test_word_counts_median_matches_numpy():
    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 50, 101)
    texts = [" ".join(["w"] * n) for n in lengths]
    wc = WordCounts()
    wc.update(texts[:40])
    other = WordCounts()
    other.update(texts[40:])
    merged = wc.merge(other)
    assert merged.samples == 101
    assert merged.median() == np.median(lengths)
    merged.update(["one more"])
    assert merged.median() == np.median(np.append(lengths, 2))
