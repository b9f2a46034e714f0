"""``vectorize.stats.WordCounts``: a histogram of words per sample that adds and merges exactly, and gives the
number of samples S and the median W of the guide's S/W rule (checked against ``statistics.median``)."""

from __future__ import annotations

import statistics

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtrain.vectorize.stats import WordCounts, words_per_text


def test_words_are_whitespace_separated():
    texts = ["one", "two words", "  spaced \t out\nacross lines  ", "", "   ", "don't-split hyphens"]
    got = words_per_text(texts)
    assert got.dtype == np.int64
    assert got.tolist() == [1, 2, 4, 0, 0, 2]
    assert words_per_text([]).tolist() == []


# Every character str.split() splits at, ASCII or not, beside word characters of both kinds and a NUL.
_SPLIT_ALPHABET = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_SPLIT_ALPHABET += "\u200b\ufeffab-\x00\x7fé東"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=_SPLIT_ALPHABET, max_size=40), max_size=30))
def test_words_are_counted_as_str_split_counts_them(texts):
    """ASCII texts are counted in bulk on their bytes, the others by str.split: either way len(text.split())."""
    got = words_per_text(texts)
    assert got.dtype == np.int64 and got.tolist() == [len(t.split()) for t in texts]


def test_an_empty_histogram_has_no_samples_and_median_zero():
    counts = WordCounts()
    assert counts.samples == 0 and counts.median() == 0.0
    counts.update([])
    counts.add(np.zeros(0, np.int64))
    assert counts.samples == 0 and counts.median() == 0.0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=200))
def test_the_median_is_the_middle_value_or_the_mean_of_the_two(lengths):
    counts = WordCounts()
    counts.add(np.array(lengths, np.int64))
    assert counts.samples == len(lengths)
    assert counts.median() == statistics.median(lengths)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=80), st.lists(st.integers(0, 90), max_size=80))
def test_histograms_of_parts_merge_into_the_histogram_of_the_whole(first, second):
    a, b, whole = WordCounts(), WordCounts(), WordCounts()
    a.add(np.array(first, np.int64))
    b.add(np.array(second, np.int64))
    whole.add(np.array(first + second, np.int64))
    for merged in (a.merge(b), b.merge(a)):
        assert merged.samples == whole.samples
        n = max(len(merged.hist), len(whole.hist))
        np.testing.assert_array_equal(
            np.pad(merged.hist, (0, n - len(merged.hist))), np.pad(whole.hist, (0, n - len(whole.hist)))
        )
        assert merged.median() == whole.median()
    assert a.samples == len(first) and b.samples == len(second)  # merging makes a new one


def test_counting_texts_in_chunks_is_counting_them_at_once():
    texts = [" ".join(["w"] * (i % 13)) for i in range(101)]
    once, chunked = WordCounts(), WordCounts()
    once.update(texts)
    for lo in range(0, 101, 17):
        chunked.update(texts[lo : lo + 17])
    np.testing.assert_array_equal(once.hist, chunked.hist)
    assert once.hist[3] == sum(1 for i in range(101) if i % 13 == 3)
    assert once.median() == statistics.median(i % 13 for i in range(101))
