"""The compiled kernels compute what the numpy statements of the scheme compute, to the bit, on real corpora."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import datasets_dir, imdb_train_texts
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtrain.io.readers import read_chunks
from streamtrain.io.readers.base import ColumnSpec
from streamtrain.vectorize import kernels, near_dups, ngrams, words

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")

EDGES = [
    "",
    " ",
    "a",
    "ab",
    "é",  # folds to one byte: not a token
    "ж",  # one 2-byte character: not a token
    "日",  # one 3-byte character
    "𠀀",  # one 4-byte character
    "жж 𠀀𠀀 𝒳",
    "日本 語",
    "½ ﬁ Ǆ 한국어",  # replacements longer than the character
    "Straße ÉCOLE déjà-vu ς Σ a_b __ 12",
    "x" * 70_000,
    "the " * 5_000,  # one row with many equal n-grams
    "one two three four five six seven eight nine ten eleven twelve",
]


def _numpy_words(texts: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, np.ndarray]:
    with monkeypatch.context() as m:
        m.setattr(kernels, "AVAILABLE", False)
        return words.word_hashes(texts)


def _assert_same(texts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Word hashes, n-gram counts (three ranges, two hash spaces) and band keys, each path against the other."""
    compiled = words.word_hashes(texts)
    reference = _numpy_words(texts, monkeypatch)
    for a, b in zip(compiled, reference):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for ngram_range, buckets in (((1, 2), 1 << 21), ((1, 3), 1000), ((2, 3), 1 << 31)):
        fast = ngrams.count_ngrams(texts, ngram_range, buckets, compiled)
        with monkeypatch.context() as m:
            m.setattr(kernels, "AVAILABLE", False)
            slow = ngrams.count_ngrams(texts, ngram_range, buckets, compiled)
        for part in ("data", "indices", "indptr"):
            x, y = getattr(fast, part), getattr(slow, part)
            assert x.dtype == y.dtype and np.array_equal(x, y), (ngram_range, buckets, part)
        assert fast.shape == slow.shape and fast.has_sorted_indices
    keys = near_dups.band_keys(compiled)
    with monkeypatch.context() as m:
        m.setattr(kernels, "AVAILABLE", False)
        assert np.array_equal(keys, near_dups.band_keys(compiled))
    assert keys.dtype == np.uint64 and keys.shape == (len(texts), near_dups.LSH_BANDS)


def _texts(path, spec: ColumnSpec, limit: int) -> list[str]:
    texts: list[str] = []
    for chunk in read_chunks([path], spec):
        texts.extend(chunk.texts)
        if len(texts) >= limit:
            break
    return texts[:limit]


CORPORA = {
    "ag_news": ("ag_news/test.csv", ColumnSpec(text=(1, 2), label=0)),
    "banking77": ("banking77/train.csv", ColumnSpec(text=("text",), label="category")),
    "goemotions": ("goemotions/train.tsv", ColumnSpec(text=(0,), label=1)),  # emoji, accents, other scripts
    "sst2": ("sst2/test.tsv", ColumnSpec(text=("content",), label="label")),
}


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_same_as_numpy_on_real_corpora(name, monkeypatch):
    relative, spec = CORPORA[name]
    path = datasets_dir() / relative
    if not path.is_file():
        pytest.skip(f"{path} not found")
    texts = _texts(path, spec, 6000)
    assert len(texts) >= 1800  # SST-2's test file holds 1,821 phrases
    _assert_same(texts, monkeypatch)


def test_same_as_numpy_on_imdb(monkeypatch):
    texts = imdb_train_texts(3000)
    _assert_same(texts, monkeypatch)
    offsets, _ = words.word_hashes(texts)
    assert np.diff(offsets).mean() > 150  # long rows: the n-gram sort's larger bins


def test_same_as_numpy_on_edges(monkeypatch):
    _assert_same(EDGES, monkeypatch)
    _assert_same([], monkeypatch)
    offsets, hashes = words.word_hashes(["é ж 日 𠀀", "ab"])
    assert offsets.tolist() == [0, 0, 1] and len(hashes) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=60), max_size=20))
def test_same_as_numpy_on_any_text(texts):
    with pytest.MonkeyPatch.context() as monkeypatch:
        _assert_same(texts, monkeypatch)


def test_threads_get_the_same_results():
    """The kernels release the GIL and share no state: threads hashing at once get each call's own result."""
    texts = [f"row {i} " + " ".join(f"w{(i * j) % 977}" for j in range(40)) for i in range(4000)]
    expected = ngrams.count_ngrams(texts, (1, 2), 1 << 21)
    results: list = [None] * 4

    def run(k: int) -> None:
        results[k] = ngrams.count_ngrams(texts, (1, 2), 1 << 21)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all((r != expected).nnz == 0 and np.array_equal(r.indices, expected.indices) for r in results)


@pytest.mark.parametrize("size", [0, 1, 7, 5000, 300_000])
def test_index_lookups_and_merges_same_as_numpy(size, monkeypatch):
    """The band-key index's searches and merges of sorted runs: the compiled loops against numpy."""
    from streamtrain.vectorize.band_runs import merged_pair, positions

    rng = np.random.default_rng(size)
    keys = np.unique(rng.integers(0, 2**32, size * 2, dtype=np.uint64).astype(np.uint32))
    rng.shuffle(keys)
    run, other = np.sort(keys[:size]), np.sort(keys[size:])  # disjoint
    values = rng.integers(0, 3, len(run)).astype(np.uint8)
    other_values = rng.integers(0, 3, len(other)).astype(np.uint8)
    queries = np.sort(np.concatenate([run[::3], other[::2], np.array([0, 2**32 - 1], np.uint32)]))
    fast = positions(run, queries), merged_pair(run, values, other, other_values)
    with monkeypatch.context() as m:
        m.setattr(kernels, "AVAILABLE", False)
        slow = positions(run, queries), merged_pair(run, values, other, other_values)
    assert np.array_equal(fast[0], slow[0]) and fast[0].dtype == slow[0].dtype == np.int64
    hit = fast[0] >= 0
    assert np.array_equal(run[fast[0][hit]], queries[hit]) and hit.sum() >= len(run[::3])
    for a, b in zip(fast[1], slow[1]):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.all(np.diff(fast[1][0].astype(np.int64)) > 0)


@pytest.mark.parametrize("name", ["ag_news", "banking77"])
def test_document_frequencies_same_as_numpy(name, monkeypatch):
    """``DocFreq`` counted by the compiled loop and by ``np.add.at``, chunk after chunk of real rows."""
    from streamtrain.vectorize.tfidf import DocFreq

    relative, spec = CORPORA[name]
    path = datasets_dir() / relative
    if not path.is_file():
        pytest.skip(f"{path} not found")
    chunks = [ngrams.count_ngrams(c.texts, (1, 2), 1 << 18) for c in list(read_chunks([path], spec, 700))[:6]]
    results = []
    for available in (True, False):
        with monkeypatch.context() as m:
            m.setattr(kernels, "AVAILABLE", available)
            df = DocFreq(1 << 18)
            for k, counts in enumerate(chunks):
                df.update(counts, np.arange(counts.shape[0]) % (k + 2) == 0 if k % 2 else None)
            results.append(df)
    fast, slow = results
    assert fast.n_docs == slow.n_docs and np.array_equal(fast.df, slow.df) and fast.df.dtype == slow.df.dtype
    assert fast.df.max() > 5 and np.count_nonzero(fast.df) > 5_000
