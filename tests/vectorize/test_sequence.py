"""Token-id sequences: the guide's tokenizer, vocabulary by frequency, front padding/truncation."""

from __future__ import annotations

import numpy as np

from streamtrain.vectorize.sequence import SequenceConfig, SequenceState, TokenCounts, tokenize
from streamtrain.vectorize.vectorizer import Vectorizer


def _fit(texts, **kw) -> SequenceState:
    counts = TokenCounts(1 << 16)
    counts.update(texts)
    return SequenceState.fit(SequenceConfig(hash_buckets=1 << 16, **kw), counts)


def test_tokenize_like_keras_tokenizer():
    assert tokenize("Hello, World! It's 5-star (really).\nNew\tline") == [
        "hello",
        "world",
        "it's",
        "5",
        "star",
        "really",
        "new",
        "line",
    ]


def test_vocabulary_ranks_by_frequency_and_drops_unknown_tokens():
    texts = ["a a a b b c", "a b", "d"]
    state = _fit(texts, top_k=2)
    assert state.n_features == 3  # a, b and the padding id
    rows = state.transform(["c a b d a"])  # c, d are out of the top 2
    assert state.length == 6  # the longest training text
    assert rows.tokens.tolist() == [[0, 0, 0, 1, 2, 1]]


def test_pads_and_truncates_at_the_front():
    state = _fit(["w1 w2 w3 w4 w5 w6 w7 w8"], max_length=4)
    assert state.length == 4
    ids = state.transform(["w1 w2 w3 w4 w5 w6", "w7", ""]).tokens
    w = {t: state.transform([t]).tokens[0, -1] for t in ["w3", "w4", "w5", "w6", "w7"]}
    assert ids[0].tolist() == [w["w3"], w["w4"], w["w5"], w["w6"]]  # keeps the end of the text
    assert ids[1].tolist() == [0, 0, 0, w["w7"]]
    assert ids[2].tolist() == [0, 0, 0, 0]
    assert len(set(w.values())) == 5 and 0 not in w.values()


def test_token_counts_merge_equals_one_pass():
    texts = [f"t{i % 7} t{i % 3} t{i % 11}" for i in range(300)]
    one = TokenCounts(1 << 12)
    one.update(texts)
    assert one.counts.sum() == 3 * len(texts)  # every occurrence, a token repeated within a call included
    assert np.count_nonzero(one.counts) <= 11  # t0 ... t10
    a, b = TokenCounts(1 << 12), TokenCounts(1 << 12)
    a.update(texts[:100])
    b.update(texts[100:])
    merged = a.merge(b)
    np.testing.assert_array_equal(merged.counts, one.counts)
    assert merged.longest == one.longest == 3


def test_vectorizer_files_round_trip_for_both_kinds(tmp_path):
    from streamtrain.vectorize.tfidf import NgramConfig, TfidfState

    seq = Vectorizer(_fit(["x y z", "y z", "z"]), ["no", "yes"])
    ngram = Vectorizer(
        TfidfState(NgramConfig(hash_buckets=64), np.ones(64, np.float32), np.arange(0, 64, 2)), ["no", "yes"]
    )
    for vec, kind in ((seq, "sequence"), (ngram, "ngram")):
        d = tmp_path / kind
        d.mkdir()
        doc = vec.save(d)
        back = Vectorizer.load(d)
        assert doc["kind"] == back.kind == kind and back.labels == ["no", "yes"]
        texts = ["x z y", "y y"]
        a, b = vec.transform(texts), back.transform(texts)
        for field in ("tokens",) if kind == "sequence" else ("indptr", "indices", "values"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
