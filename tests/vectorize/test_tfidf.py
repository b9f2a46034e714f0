"""The bounded-memory vectorizer reproduces the guide's sklearn recipe on real text."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif

from streamtrain.io.readers import ColumnSpec, read_chunks
from streamtrain.vectorize.ngram_names import top_features
from streamtrain.vectorize.rows import SparseRows
from streamtrain.vectorize.stats import WordCounts
from streamtrain.vectorize.tfidf import (
    ClassMoments,
    DocFreq,
    NgramConfig,
    TfidfState,
    auto_min_df,
    candidate_buckets,
    fit_selection,
    hash_counts,
)


def _ag_news(path):
    texts, labels = [], []
    for chunk in read_chunks([path], ColumnSpec(text=(1, 2), label=0)):
        texts += chunk.texts
        labels += chunk.labels
    return texts, np.array([int(l) - 1 for l in labels], np.int32)


def _moments(
    config: NgramConfig, texts, labels, parts: int = 1, candidates: np.ndarray | None = None
) -> tuple[ClassMoments, np.ndarray]:
    """The F-test's statistics and the IDF, from ``parts`` independent pieces merged together, as separate workers
    would; over the vocabulary's buckets unless ``candidates`` are given."""
    pieces = np.array_split(np.arange(len(texts)), parts)
    counts = [hash_counts(config, [texts[i] for i in p]) for p in pieces]
    df = DocFreq(config.hash_buckets)
    for c in counts:
        piece = DocFreq(config.hash_buckets)
        piece.update(c)
        df = df.merge(piece)
    idf = df.idf(config.min_df)
    weigher = TfidfState(config, idf, np.zeros(0, np.int64))
    candidates = np.flatnonzero(idf > 0) if candidates is None else candidates
    moments = ClassMoments(candidates, int(labels.max()) + 1)
    for c, p in zip(counts, pieces):
        values, _ = weigher.tfidf_buckets(c)
        piece = ClassMoments(candidates, moments.n_classes)
        piece.update(
            SparseRows(c.indptr.astype(np.int64), c.indices, values, labels[p], p.astype(np.int64), c.shape[1])
        )
        moments = moments.merge(piece)
    return moments, idf


def _fit(config: NgramConfig, texts, labels, parts: int = 1) -> TfidfState:
    moments, idf = _moments(config, texts, labels, parts)
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


def test_document_frequency_of_chosen_rows_counts_those_rows_only(ag):
    """Counting a chunk's training rows by mask gives the frequencies of those rows alone, as counting them cut out."""
    texts, _ = ag
    texts = texts[:4096]
    config = NgramConfig(top_k=500, hash_buckets=1 << 18)
    counts = hash_counts(config, texts)
    chosen = np.arange(len(texts)) % 5 != 2  # as a chunk's training rows, validation rows among them
    masked, sliced = DocFreq(config.hash_buckets), DocFreq(config.hash_buckets)
    masked.update(counts, chosen)
    sliced.update(counts[chosen])
    assert masked.n_docs == sliced.n_docs == int(chosen.sum())
    np.testing.assert_array_equal(masked.df, sliced.df)
    assert masked.df.sum() == (counts[chosen] > 0).sum() and masked.df.max() <= int(chosen.sum())


def test_f_scores_match_sklearn_f_classif():
    rng = np.random.default_rng(0)
    x = rng.random((200, 30)) * (rng.random((200, 30)) < 0.3)
    y = rng.integers(0, 3, 200).astype(np.int32)
    x[y == 1, 4] += 0.5  # one informative column
    csr = sp.csr_matrix(x)
    moments = ClassMoments(np.arange(30), 3)
    moments.update(SparseRows(csr.indptr.astype(np.int64), csr.indices, csr.data, y, np.arange(200), 30))
    expected, _ = f_classif(x, y)
    np.testing.assert_allclose(moments.f_scores(), np.nan_to_num(expected), rtol=1e-9)
    assert moments.f_scores().argmax() == 4


@pytest.fixture(scope="module")
def ag_hashed_20(ag):
    """AG News with 20 labels (a stable function of the row number: every class has rows), 2**18 buckets."""
    texts, _ = ag
    labels = ((np.arange(len(texts)) * 7919) % 20).astype(np.int32)
    return NgramConfig(top_k=500, hash_buckets=1 << 18), texts, labels


def test_statistics_over_candidates_equal_the_full_ones_on_those_buckets(ag_hashed_20):
    config, texts, labels = ag_hashed_20
    full, idf = _moments(config, texts, labels, candidates=np.arange(config.hash_buckets))
    ours, _ = _moments(config, texts, labels)
    cands = np.flatnonzero(idf > 0)
    assert 0 < len(cands) < config.hash_buckets // 4
    np.testing.assert_array_equal(ours.candidates, cands)
    np.testing.assert_array_equal(ours.counts, full.counts)
    np.testing.assert_array_equal(ours.sums, full.sums[:, cands])
    np.testing.assert_array_equal(ours.sumsq, full.sumsq[cands])
    np.testing.assert_array_equal(ours.f_scores(), full.f_scores()[cands])
    # Outside the vocabulary every TF-IDF value is 0: the full statistics hold nothing there.
    assert not full.sums[:, idf == 0].any() and not full.sumsq[idf == 0].any()
    # The same selection and the same top features per class, whether over candidates or every bucket.
    state = fit_selection(config, ours, idf)
    np.testing.assert_array_equal(state.selected, fit_selection(config, full, idf).selected)
    top = top_features(ours, state.selected)
    assert top == top_features(full, state.selected)
    assert sum(map(len, top)) > 0


def test_merge_of_two_halves_equals_the_whole(ag_hashed_20):
    config, texts, labels = ag_hashed_20
    whole, _ = _moments(config, texts, labels, parts=1)
    halves, _ = _moments(config, texts, labels, parts=2)
    np.testing.assert_array_equal(halves.counts, whole.counts)
    np.testing.assert_allclose(halves.sums, whole.sums, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(halves.sumsq, whole.sumsq, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(halves.f_scores(), whole.f_scores(), rtol=1e-9)
    other = ClassMoments(whole.candidates[1:], whole.n_classes)
    with pytest.raises(ValueError, match="same candidates"):
        whole.merge(other)


def test_memory_is_candidates_times_classes_not_hash_buckets(ag_hashed_20):
    _, texts, labels = ag_hashed_20
    held = {}
    for buckets in (1 << 18, 1 << 21):
        config = NgramConfig(hash_buckets=buckets)
        moments, idf = _moments(config, texts, labels)
        n, classes = len(moments.candidates), moments.n_classes
        assert n == int((idf > 0).sum()) and classes == 20
        held[buckets] = sum(a.nbytes for a in (moments.candidates, moments.counts, moments.sums, moments.sumsq))
        assert held[buckets] == 8 * (n * (classes + 2) + classes)  # candidates, sums and sumsq; counts
    # 8 times the buckets, about the same candidates (fewer collisions): about the same memory, a tenth of
    # the 8 x classes x buckets that dense sums would take.
    assert held[1 << 21] < 1.1 * held[1 << 18]
    assert held[1 << 21] < 8 * 20 * (1 << 21) / 10


def test_selection_picks_among_candidates_in_the_vocabulary_and_names_only_candidates():
    idf = np.array([0, 1.5, 0, 2.0, 1.2, 0], np.float32)
    x = sp.csr_matrix(np.array([[0, 1, 0, 1, 0, 0], [0, 0, 5, 1, 1, 0], [0, 1, 0, 0, 1, 0]], np.float64))
    labels = np.array([0, 1, 1], np.int32)
    rows = SparseRows(x.indptr.astype(np.int64), x.indices, x.data, labels, np.arange(3), 6)
    config = NgramConfig(top_k=2, hash_buckets=6)
    some = ClassMoments(np.array([1, 3]), 2)
    some.update(rows)  # bucket 2 (not a candidate) is left out
    np.testing.assert_array_equal(some.sums, [[1.0, 1.0], [1.0, 1.0]])
    assert set(fit_selection(config, some, idf).selected) == {1, 3}  # bucket 4 was not scored
    df = DocFreq(6, 3, np.array([0, 2, 1, 3, 2, 0]))
    assert list(candidate_buckets(df, 2, 10)) == [1, 3, 4] and list(candidate_buckets(df, 2, 2)) == [1, 3]
    more = ClassMoments(np.array([1, 2, 3, 4]), 2)  # a superset of the vocabulary: bucket 2 is never picked
    more.update(rows)
    assert set(fit_selection(NgramConfig(top_k=3, hash_buckets=6), more, idf).selected) == {1, 3, 4}
    with pytest.raises(ValueError, match="not one of the moments' candidates"):
        top_features(some, np.array([4]))
    with pytest.raises(ValueError, match="sorted"):
        ClassMoments(np.array([3, 1]), 2)


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


def test_singletons_are_features_only_while_every_ngram_seen_fits(ag):
    """``auto_min_df``: 1 while the n-grams seen in training fit in ``top_k``; past that the guide's 2."""
    texts, _ = ag
    config = NgramConfig()
    df = DocFreq(config.hash_buckets)
    df.update(hash_counts(config, texts))
    seen = int(np.count_nonzero(df.df))
    singletons = int(np.count_nonzero(df.df == 1))
    assert singletons > seen // 2  # 7,600 news texts: most of their n-grams occur once
    assert auto_min_df(df, top_k=seen) == 1
    assert auto_min_df(df, top_k=seen - 1) == 2
    assert auto_min_df(df, top_k=200_000) == 1


def test_prepare_keeps_the_singletons_of_a_small_corpus_and_drops_them_when_they_do_not_fit(tmp_path, ag_news_csv):
    """Unset ``--min-df`` resolves from the data, is recorded resolved, and a set one stands."""
    from streamtrain.dataset.manifest import Manifest
    from streamtrain.dataset.prepare import PrepareOptions
    from streamtrain.prepare import prepare

    columns = {"text_column": [1, 2], "label_column": 0, "header": False}
    runs = {"auto": {}, "narrow": {"top_k": 5_000}, "set": {"min_df": 3}}
    got = {}
    for name, extra in runs.items():
        data = tmp_path / name
        prepare(PrepareOptions(inputs=[str(ag_news_csv)], data=str(data), vectorizer="ngram", **columns, **extra))
        manifest = Manifest.load(data)
        got[name] = (manifest.vectorizer.config["min_df"], manifest.n_features)
    assert got["auto"][0] == 1 and got["narrow"] == (2, 5_000) and got["set"][0] == 3
    assert got["auto"][1] > 3 * got["set"][1]  # the singletons kept: several times the features of min_df 3
