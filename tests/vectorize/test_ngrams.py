"""The fast n-gram hasher counts exactly the n-grams sklearn's analyzer finds, on real text, chunk by chunk."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from streamtrain.io.readers import ColumnSpec, read_chunks
from streamtrain.vectorize.ngram_names import build
from streamtrain.vectorize.ngrams import HASHER, count_ngrams, ngram_buckets
from streamtrain.vectorize.tfidf import NgramConfig, hash_counts

BUCKETS = 1 << 20


def _texts(path) -> list[str]:
    return [t for chunk in read_chunks([path], ColumnSpec(text=(1, 2), label=0)) for t in chunk.texts]


def _from_analyzer(texts: list[str], ngram_range=(1, 2)) -> sp.csr_matrix:
    """Counts built from sklearn's own analyzer strings, each string bucketed by ``ngram_buckets``."""
    analyze = HashingVectorizer(ngram_range=ngram_range, strip_accents="unicode").build_analyzer()
    grams = [analyze(t) for t in texts]
    flat = [g for gs in grams for g in gs]
    rows = np.repeat(np.arange(len(texts)), [len(gs) for gs in grams])
    cols = ngram_buckets(flat, BUCKETS)
    return sp.csr_matrix((np.ones(len(flat), np.float32), (rows, cols)), shape=(len(texts), BUCKETS))


def test_same_ngrams_as_sklearns_analyzer_on_ag_news(ag_news_csv):
    texts = _texts(ag_news_csv)
    ours = count_ngrams(texts, (1, 2), BUCKETS)
    theirs = _from_analyzer(texts)
    theirs.sum_duplicates()
    assert ours.nnz > 10 * len(texts)
    assert (ours != theirs).nnz == 0  # every text, every n-gram, every count
    assert np.all(np.diff(ours.indices[ours.indptr[0] : ours.indptr[1]]) > 0)  # sorted, no duplicate


def test_unigrams_trigrams_and_tricky_text_agree_too():
    texts = ["", "a", "Déjà vu, DÉJÀ VU!", "snake_case x2 42 ok", "naïve café", "one two three four", "日本語 テキスト"]
    for ngram_range in [(1, 1), (2, 3), (1, 3)]:
        theirs = _from_analyzer(texts, ngram_range)
        theirs.sum_duplicates()
        assert (count_ngrams(texts, ngram_range, BUCKETS) != theirs).nnz == 0, ngram_range


def test_counts_do_not_depend_on_how_texts_are_chunked(ag_news_csv):
    texts = _texts(ag_news_csv)[:3000]
    whole = count_ngrams(texts, (1, 2), BUCKETS)
    parts = sp.vstack([count_ngrams(texts[i : i + 777], (1, 2), BUCKETS) for i in range(0, len(texts), 777)])
    assert (whole != parts).nnz == 0


def test_config_selects_the_hasher_and_names_follow_it(ag_news_csv):
    texts = _texts(ag_news_csv)[:2000]
    new = NgramConfig(hash_buckets=BUCKETS, hasher=HASHER)
    legacy = NgramConfig(hash_buckets=BUCKETS)  # datasets made before: sklearn's murmurhash3
    assert (hash_counts(new, texts) != count_ngrams(texts, (1, 2), BUCKETS)).nnz == 0
    assert (hash_counts(legacy, texts) != hash_counts(new, texts)).nnz > 0
    # Naming: the most frequent string of each of a few busy buckets is one whose bucket it is.
    counts = hash_counts(new, texts)
    busy = np.argsort(-np.asarray(counts.sum(axis=0)).ravel(), kind="stable")[:50]
    selected = np.sort(busy)
    names, occurrences, _, shares = build(new, selected, texts)
    assert all(n is not None for n in names) and min(occurrences) > 0
    assert np.array_equal(ngram_buckets(names, BUCKETS), selected)
    assert "the" in names and all(0 < s <= 1 for s in shares)


def test_every_name_is_one_of_the_analyzers_strings_in_its_bucket(ag_news_csv):
    """Names are decoded in bulk (one gather, one decode): each is a string sklearn's analyzer makes, whose bucket
    is its column, also for accented, non-Latin and 1-character-word text and for trigrams."""
    tricky = ["Déjà vu, DÉJÀ VU!", "a b c naïve café x", "日本語 テキスト 日本語", "snake_case x2 42 ok ½ ﬁne"]
    texts = _texts(ag_news_csv)[:3000] + tricky
    for ngram_range in [(1, 2), (1, 3)]:
        config = NgramConfig(hash_buckets=BUCKETS, hasher=HASHER, ngram_range=ngram_range)
        selected = np.unique(hash_counts(config, texts).indices)
        names, occurrences, _, _ = build(config, selected, texts)
        analyze = HashingVectorizer(ngram_range=ngram_range, strip_accents="unicode").build_analyzer()
        strings = {g for t in texts for g in analyze(t)}
        assert all(n is not None for n in names) and min(occurrences) > 0
        assert set(names) <= strings
        assert {"日本語 テキスト", "naive cafe", "snake_case x2"} <= set(names)  # accents stripped, CJK kept
        assert np.array_equal(ngram_buckets(names, BUCKETS), selected)


def test_names_do_not_depend_on_how_the_sample_is_chunked(ag_news_csv, monkeypatch):
    """``build`` names the sample ``CHUNK_CHARS`` at a time: a name, its count, the other n-grams of its bucket and
    its share are the same whether the texts come in one chunk or in hundreds, across chunk boundaries."""
    from streamtrain.vectorize import ngram_names

    texts = _texts(ag_news_csv)[:3000]
    config = NgramConfig(hash_buckets=BUCKETS, hasher=HASHER)
    selected = np.unique(hash_counts(config, texts).indices)[::3]
    monkeypatch.setattr(ngram_names, "CHUNK_CHARS", 1 << 30)
    whole = build(config, selected, texts)
    monkeypatch.setattr(ngram_names, "CHUNK_CHARS", 1000)
    assert len(list(ngram_names._chunked(texts, ngram_names.CHUNK_CHARS))) > 100
    assert build(config, selected, texts) == whole
    names, occurrences, others, shares = whole
    assert sum(n is not None for n in names) > 1000 and max(occurrences) > 1
    assert max(others) > 0 and min(s for s in shares if s) < 1
