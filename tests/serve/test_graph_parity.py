"""The serving graph computes exactly ``Vectorizer.transform``'s features: on real corpora, on every code point,
on generated text, and after a SavedModel round trip in a process without streamtrain."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import datasets_dir, imdb_texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtrain.dataset.prepare import PrepareOptions
from streamtrain.io.readers import ColumnSpec, read_chunks
from streamtrain.serve.codepoints import LAST, UNIDATA_VERSION, ngram_table, sequence_table
from streamtrain.serve.export import exportable
from streamtrain.serve.graph import VectorizerGraph
from streamtrain.vectorize.defaults import MAX_CANDIDATES
from streamtrain.vectorize.rows import SparseRows
from streamtrain.vectorize.sequence import CODEPOINT, SequenceConfig, SequenceState, TokenCounts, _flat_buckets
from streamtrain.vectorize.tfidf import (
    ClassMoments,
    DocFreq,
    NgramConfig,
    TfidfState,
    candidate_buckets,
    fit_selection,
    hash_counts,
)
from streamtrain.vectorize.vectorizer import Vectorizer
from streamtrain.vectorize.words import _folded

TEXTS = tf.TensorSpec([None], tf.string)
SMALL = 1 << 12  # hash buckets of the small vectorizers: generated words land in selected buckets
# Text that tokenizers disagree about: final sigma, expansions (½, ligatures, Hangul), combining marks, İ, controls.
TRICKY = [
    "",
    " ",
    "\t\n \u00a0\u2028",
    "a",
    "ΟΔΟΣ ΣΟΦΟΣ σοφός Σ ΣΣ",
    "Déjà vu, DÉJÀ VU! naïve café e\u0301te\u0301 \u0301x",
    "½ ¼ 7½/10 ﬁne ﬀ ǆ Ǆ ㎢ ⑴ …word… ﷺ",
    "한국어 텍스트 가각 日本語 テキスト",
    "İstanbul İİ ß ẞ ǅ",
    "snake_case x2 42 ok __init__",
    "emoji 😀👍🏽 x😀y \U0001d400\U0001d401",
    "\x00ab\x01cd\x1c ef\x7f",
    "don't it's — “quoted” «x»",
    "a" * 17 + " " + "é" * 9 + " " + "x" * 1200,
    "日" * 400 + " ab",
]


def _ag_news() -> tuple[list[str], np.ndarray]:
    path = datasets_dir() / "ag_news" / "test.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    texts, labels = [], []
    for chunk in read_chunks([path], ColumnSpec(text=(1, 2), label=0)):
        texts += chunk.texts
        labels += chunk.labels
    return texts, np.array([int(label) - 1 for label in labels], np.int32)


def _imdb_test() -> list[str]:
    """aclImdb's 25,000 test reviews, read straight from the archive."""
    return imdb_texts("test")


def _fit_ngrams(config: NgramConfig, texts: list[str], labels: np.ndarray) -> Vectorizer:
    """prepare's n-gram fit in memory: IDF with min_df, candidates, ANOVA F-values of TF-IDF values, top k."""
    counts = hash_counts(config, texts)
    doc_freq = DocFreq(config.hash_buckets)
    doc_freq.update(counts)
    idf = doc_freq.idf(config.min_df)
    values, _ = TfidfState(config, idf, np.zeros(0, np.int64)).tfidf_buckets(counts)
    moments = ClassMoments(candidate_buckets(doc_freq, config.min_df, MAX_CANDIDATES), int(labels.max()) + 1)
    rows = SparseRows(counts.indptr.astype(np.int64), counts.indices, values, labels, np.arange(len(texts)), 0)
    moments.update(rows)
    return Vectorizer(fit_selection(config, moments, idf), [str(c) for c in range(int(labels.max()) + 1)])


def _fit_sequences(config: SequenceConfig, texts: list[str]) -> Vectorizer:
    counts = TokenCounts(config.hash_buckets, lowercase=config.lowercase)
    counts.update(texts)
    return Vectorizer(SequenceState.fit(config, counts), ["0"])


@pytest.fixture(scope="module")
def ag_news() -> tuple[list[str], np.ndarray]:
    return _ag_news()


@pytest.fixture(scope="module")
def prepared(ag_news) -> dict[str, Vectorizer]:
    """Vectorizers fitted on AG News as prepare fits them, with its options (sequences: ``CODEPOINT``)."""
    texts, labels = ag_news
    opts = PrepareOptions(data="unused")
    return {
        "ngram": _fit_ngrams(opts.ngram(), texts, labels),
        "sequence": _fit_sequences(dataclasses.replace(opts.sequence(), lowercase=CODEPOINT), texts),
    }


@pytest.fixture(scope="module")
def small() -> dict[str, Vectorizer]:
    """Small vectorizers (4,096 buckets, nearly all selected; n-grams up to 3) fitted on generated text, so that
    generated words hit selected features."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdeΣσςéß日한"), rng.integers(1, 5))) for _ in range(3000)] + TRICKY
    texts = [" ".join(rng.choice(words, 12)) for _ in range(2000)]
    labels = rng.integers(0, 2, len(texts)).astype(np.int32)
    config = NgramConfig(ngram_range=(1, 3), min_df=1, top_k=SMALL, hash_buckets=SMALL, hasher="fnv1a64-splitmix64")
    sequence = SequenceConfig(top_k=SMALL, max_length=7, hash_buckets=SMALL, lowercase=CODEPOINT)
    return {
        "ngram": _fit_ngrams(dataclasses.replace(config, sublinear_tf=True), texts, labels),
        "sequence": _fit_sequences(sequence, texts),
    }


def _traced(graph: VectorizerGraph):
    return tf.function(lambda texts: graph(texts), input_signature=[TEXTS])


def _assert_same(vectorizer: Vectorizer, out, texts: list[str], exact: bool = True) -> None:
    """The graph's output equals ``vectorizer.transform(texts)``: indices exactly, values bit for bit."""
    expected = vectorizer.transform(texts)
    if vectorizer.kind == "sequence":
        np.testing.assert_array_equal(out.numpy(), expected.tokens)
        return
    assert isinstance(expected, SparseRows)
    assert out.dense_shape.numpy().tolist() == [len(texts), vectorizer.n_features]
    np.testing.assert_array_equal(out.indices.numpy(), expected.coo_indices())
    assert out.values.dtype == tf.float32
    np.testing.assert_array_equal(out.values.numpy(), expected.values)


def test_exportable_says_why_not():
    old_ngrams = Vectorizer(TfidfState(NgramConfig(), np.zeros(4, np.float32), np.zeros(0, np.int64)), ["a"])
    counts = TokenCounts(8)
    old_sequences = Vectorizer(SequenceState.fit(SequenceConfig(hash_buckets=8), counts), ["a"])
    assert "murmur3" in (exportable(old_ngrams) or "")
    assert "context" in (exportable(old_sequences) or "")
    with pytest.raises(ValueError, match="murmur3"):
        VectorizerGraph(old_ngrams)
    assert SequenceConfig.from_json({"top_k": 1, "max_length": 2, "hash_buckets": 8}).lowercase == "context"


def test_tables_reproduce_python_for_every_code_point():
    """Every code point's table entry is what ``words._folded`` / the ``CODEPOINT`` lowering makes of it."""
    fold, lower = ngram_table(), sequence_table()
    rng = np.random.default_rng(1)
    for cp in [*range(0x3000), *rng.integers(0x3000, LAST + 1, 20_000).tolist(), 0xAC00, 0xD7A3, 0xFDFA, LAST]:
        if 0xD800 <= cp < 0xE000:
            continue
        assert fold.codes(cp) == [ord(c) for c in _folded(cp).decode()], hex(cp)
        lowered = chr(cp).lower()
        expected = [32 if c.isspace() or c in '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~' else ord(c) for c in lowered]
        assert lower.codes(cp) == expected, hex(cp)
    assert UNIDATA_VERSION


@pytest.mark.slow
def test_every_code_point_inside_around_and_between_words(small):
    """Raw n-gram counts and token buckets equal numpy's with each code point 0..0x10FFFF in every position."""
    cps = [cp for cp in range(LAST + 1) if not 0xD800 <= cp < 0xE000]
    texts = [" ".join(f"a{c}b{c}{c} {c}" for c in map(chr, cps[i : i + 64])) for i in range(0, len(cps), 64)]
    ngrams, sequences = VectorizerGraph(small["ngram"]), VectorizerGraph(small["sequence"])
    state = small["ngram"].state
    assert isinstance(state, TfidfState)
    for i in range(0, len(texts), 6000):
        part = texts[i : i + 6000]
        counts = tf.function(ngrams.bucket_counts, input_signature=[TEXTS])(tf.constant(part))
        expected = hash_counts(state.config, part).tocoo()
        np.testing.assert_array_equal(counts.indices.numpy(), np.stack([expected.row, expected.col], axis=1))
        np.testing.assert_array_equal(counts.values.numpy(), expected.data)
        buckets = tf.function(sequences.token_buckets, input_signature=[TEXTS])(tf.constant(part))
        seq = small["sequence"].state
        assert isinstance(seq, SequenceState)
        flat, lengths = _flat_buckets(seq._hasher, part, CODEPOINT)
        np.testing.assert_array_equal(buckets.flat_values.numpy(), flat)
        np.testing.assert_array_equal(buckets.row_lengths().numpy(), lengths)


def test_ag_news_and_tricky_text(prepared, ag_news):
    texts = ag_news[0] + TRICKY
    for kind, vectorizer in prepared.items():
        graph = VectorizerGraph(vectorizer)
        assert graph.kind == kind and graph.n_features == vectorizer.n_features
        _assert_same(vectorizer, _traced(graph)(tf.constant(texts)), texts)
        _assert_same(vectorizer, graph(tf.constant(TRICKY[:3])), TRICKY[:3])  # eager call


@pytest.mark.slow
def test_imdb_test_reviews(prepared):
    texts = _imdb_test()
    assert len(texts) == 25_000
    for vectorizer in prepared.values():
        graph = _traced(VectorizerGraph(vectorizer))
        for i in range(0, len(texts), 5000):
            _assert_same(vectorizer, graph(tf.constant(texts[i : i + 5000])), texts[i : i + 5000])


PIECES = [*TRICKY[:13], "Σ", "ς", "ΟΔΟΣ.", "ab", "the", "\u0301", "\u00ad", "\ufeff", "\ufffd", "Ⅷ", "①", "ǰ", "ŉ"]
_word = st.one_of(
    st.sampled_from(PIECES),
    st.text(max_size=8),
    st.text(alphabet="abcdeΣσςéß日한", min_size=1, max_size=5),
    st.text(alphabet="abcé日😀", min_size=17, max_size=40),  # past the first 16-byte block
)
_text = st.lists(_word, max_size=12).flatmap(
    lambda ws: st.sampled_from(["", " ", "\n", ", "]).map(lambda s: s.join(ws))
)


def _differing_rows(vectorizer: Vectorizer, out, texts: list[str]) -> list[str]:
    """The texts whose graph row differs from ``vectorizer.transform``'s (to name a batch's failures)."""
    expected = vectorizer.transform(texts)
    if not isinstance(expected, SparseRows):
        return [texts[i] for i in np.flatnonzero(np.any(out.numpy() != expected.tokens, axis=1))]
    rows = out.indices.numpy()[:, 0]
    ours = np.split(
        np.stack([out.indices.numpy()[:, 1], out.values.numpy().view(np.int32)]),
        np.cumsum(np.bincount(rows, minlength=len(texts)))[:-1],
        axis=1,
    )
    theirs = np.split(np.stack([expected.indices, expected.values.view(np.int32)]), expected.indptr[1:-1], axis=1)
    return [t for t, a, b in zip(texts, ours, theirs) if not np.array_equal(a, b)]


def test_generated_text(small):
    """2,000 generated texts checked in one batch: the same rows for both kinds, and the same raw n-gram counts
    (which generated words reach even where they miss the selected features). A failure names its texts."""
    texts: list[str] = ["x" * 1100 + "é", "", "  "]

    @settings(max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(text=_text)
    def collect(text: str) -> None:
        texts.append(text)

    collect()
    assert len(texts) > 2000
    for kind, vectorizer in small.items():
        out = _traced(VectorizerGraph(vectorizer))(tf.constant(texts))
        assert not _differing_rows(vectorizer, out, texts), kind
        _assert_same(vectorizer, out, texts)
    state = small["ngram"].state
    assert isinstance(state, TfidfState)
    counts = tf.function(VectorizerGraph(small["ngram"]).bucket_counts, input_signature=[TEXTS])(tf.constant(texts))
    expected = hash_counts(state.config, texts).tocoo()
    np.testing.assert_array_equal(counts.indices.numpy(), np.stack([expected.row, expected.col], axis=1))
    np.testing.assert_array_equal(counts.values.numpy(), expected.data)


def test_invalid_utf8_does_not_crash(small):
    bad = tf.constant([b"ab\xff\xfecd", b"\xe2\x82", b"ok \xed\xa0\x80 fine", b"\xc0\x80x", b"abc\xf0"])
    for vectorizer in small.values():
        out = VectorizerGraph(vectorizer)(bad)
        assert (out.dense_shape if vectorizer.kind == "ngram" else tf.shape(out)).numpy()[0] == 5


_CHILD = """
import json, sys
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
texts = tf.constant(json.loads(open(sys.argv[2], encoding="utf-8").read()))
ngrams, sequences = loaded.serve_ngrams(texts), loaded.serve_sequences(texts)
assert "streamtrain" not in sys.modules, "the SavedModel needed streamtrain"
np.savez(sys.argv[3], indices=ngrams.indices.numpy(), values=ngrams.values.numpy(),
         shape=ngrams.dense_shape.numpy(), tokens=sequences.numpy(),
         unicode=loaded.ngrams.unidata_version.numpy())
"""


def test_saved_model_in_a_process_without_streamtrain(small, tmp_path):
    module = tf.Module()
    module.ngrams, module.sequences = VectorizerGraph(small["ngram"]), VectorizerGraph(small["sequence"])
    module.serve_ngrams = tf.function(lambda texts: module.ngrams(texts), input_signature=[TEXTS])
    module.serve_sequences = tf.function(lambda texts: module.sequences(texts), input_signature=[TEXTS])
    tf.saved_model.save(module, str(tmp_path / "model"))
    texts = [*TRICKY, "the end of it", "ab cd ab cd"]
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = [sys.executable, "-c", _CHILD, "model", "texts.json", "out.npz"]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as out:
        expected = small["ngram"].transform(texts)
        assert isinstance(expected, SparseRows)
        np.testing.assert_array_equal(out["indices"], expected.coo_indices())
        np.testing.assert_array_equal(out["values"], expected.values)
        assert out["shape"].tolist() == [len(texts), small["ngram"].n_features]
        np.testing.assert_array_equal(out["tokens"], small["sequence"].transform(texts).tokens)
        assert out["unicode"].item().decode() == UNIDATA_VERSION
