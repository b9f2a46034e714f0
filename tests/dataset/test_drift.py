"""The drift measure: occurrences or tokens outside a fitted vectorizer, counted from what vectorizing computes."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from streamtrain.dataset.counts import CoverageRecord
from streamtrain.dataset.drift import Coverage, coverage_for, drift_line
from streamtrain.vectorize.sequence import SequenceConfig, SequenceState, TokenCounts
from streamtrain.vectorize.tfidf import NgramConfig, TfidfState


def test_ngram_occurrences_outside_the_selected_features():
    config = NgramConfig(hash_buckets=8, top_k=2)
    state = TfidfState(config, np.ones(8, np.float32), np.array([1, 5]))
    counts = sp.csr_matrix(np.array([[0, 2, 0, 3, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0, 0]]))
    rows, outside, total = state.featurize_counting(counts, np.zeros(3, np.int32), np.arange(3))
    featurized = state.featurize(counts, np.zeros(3, np.int32), np.arange(3))
    np.testing.assert_array_equal(rows.indptr, featurized.indptr)
    np.testing.assert_array_equal(rows.values, featurized.values)
    np.testing.assert_array_equal(outside, [3, 0, 4])
    np.testing.assert_array_equal(total, [6, 0, 4])
    coverage = coverage_for(state)
    coverage.add_train(outside, total, np.array([True, True, False]))  # the third row is not a training row
    assert (coverage.outside, coverage.total, coverage.rows, coverage.share) == (3, 6, 2, 0.5)
    line = drift_line(coverage, CoverageRecord("the measure", 0.25, 1, 4, 1))
    assert line == (
        "drift: 50.0% of the new rows' n-gram occurrences are outside the vectorizer's 2 features "
        "(25.0% when it was fitted); refit (prepare --refit) when this keeps growing"
    )
    assert "no baseline recorded" in drift_line(coverage, None)
    assert drift_line(Coverage("ngram", 2), None) == "drift: no new training rows to measure"


def test_tokens_outside_the_vocabulary():
    counts = TokenCounts(1 << 10)
    counts.update(["a b c", "a b", "a"])
    state = SequenceState.fit(SequenceConfig(top_k=2, max_length=3, hash_buckets=1 << 10), counts)  # a, b
    texts = ["a b c d", "a a", "z"]
    rows, outside, total = state.encode_counting(texts, np.zeros(3, np.int32), np.arange(3))
    np.testing.assert_array_equal(rows.tokens, state.encode(texts, np.zeros(3), np.arange(3)).tokens)
    np.testing.assert_array_equal(outside, [2, 0, 1])
    np.testing.assert_array_equal(total, [4, 2, 1])
    coverage = coverage_for(state)
    coverage.add_train(outside, total, np.array([True, False, True]))
    assert coverage.share == 3 / 5 and coverage.n_features == 2
    assert "tokens are outside the vectorizer's vocabulary of 2 tokens" in drift_line(coverage, None)
