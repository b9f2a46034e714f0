"""``vectorize.sampling.SystematicSample``: every stride-th training row in input order, the stride doubling while
the sample exceeds its bounds, so it spreads over the whole input and ends between half and all of a bound."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtrain.vectorize.sampling import SystematicSample


def kept(sample: SystematicSample) -> list[tuple[int, str, int, int]]:
    """The kept rows, (position, text, label, bytes), as the subclasses (``NameSample``, ``ChoiceSample``) read them."""
    return list(sample._kept)


def offer_all(sample: SystematicSample, texts: list[str], train: np.ndarray, cuts: list[int], labels=None) -> None:
    bounds = [0, *sorted(cuts), len(texts)]
    for lo, hi in pairwise(bounds):
        sample.offer(texts[lo:hi], train[lo:hi], None if labels is None else labels[lo:hi])


def test_bounds_must_be_positive():
    for items, size in ((0, 10), (10, 0), (-1, -1)):
        with pytest.raises(ValueError, match="positive"):
            SystematicSample(items, size, 100)


def test_under_its_bounds_it_keeps_every_training_row_with_its_label():
    sample = SystematicSample(100, 10_000, 1000)
    texts = [f"text {i}" for i in range(10)]
    train = np.array([i % 3 != 2 for i in range(10)])  # rows 2, 5, 8 are not training rows
    sample.offer(texts, train, np.arange(10) * 10)
    assert sample.stride == 1 and sample.seen == 7 and len(sample) == 7
    assert [(text, label) for _, text, label, _ in kept(sample)] == [
        (texts[i], 10 * i) for i in range(10) if i % 3 != 2
    ]
    assert sample.text_bytes == sum(len(texts[i]) for i in range(10) if i % 3 != 2)
    sample.offer(["unlabelled"], np.array([True]))
    assert kept(sample)[-1][1:3] == ("unlabelled", -1)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.lists(st.integers(0, 300), max_size=6))
def test_the_sample_is_every_stride_th_training_row_within_its_row_bound(n, max_items, cuts):
    """Independent computation: the kept rows are exactly the training rows at positions 0, s, 2s, ... for the
    final stride s, which is the smallest power of two that fits ``max_items`` (and the count is more than half
    of the bound once the stride has grown)."""
    rng = np.random.default_rng(n)
    train = rng.random(n) < 0.7
    texts = [f"t{i}" for i in range(n)]
    sample = SystematicSample(max_items, 10**9, 100)
    offer_all(sample, texts, train, [c for c in cuts if c <= n])
    positions = [i for i in range(n) if train[i]]  # input order -> position among training rows
    stride = sample.stride
    expected = [texts[i] for k, i in enumerate(positions) if k % stride == 0]
    assert [text for _, text, _, _ in kept(sample)] == expected
    assert stride & (stride - 1) == 0  # a power of two
    assert len(expected) <= max_items or len(expected) == 1
    if stride > 1:
        assert -(-len(positions) // (stride // 2)) > max_items  # half the stride would not have fitted
        assert 2 * len(sample) >= max_items  # at least half the bound


def test_the_byte_bound_thins_the_sample_too_and_texts_are_cut():
    sample = SystematicSample(10**6, 100, 8)
    texts = ["é" * 20 for _ in range(64)]  # cut to 8 characters: 16 bytes of UTF-8 each
    sample.offer(texts, np.ones(64, bool))
    assert all(text == "é" * 8 and size == 16 for _, text, _, size in kept(sample))
    assert sample.text_bytes == 16 * len(sample) <= 100
    assert sample.stride == 16 and len(sample) == 4  # 64 rows of 16 bytes: every 16th fits 100 bytes
    assert sample.text_bytes >= 50


def test_chunking_does_not_change_the_sample():
    texts = [f"row {i} " * (i % 7 + 1) for i in range(500)]
    train = np.array([i % 5 != 0 for i in range(500)])
    whole = SystematicSample(37, 2000, 20)
    whole.offer(texts, train)
    for cuts in ([1, 2, 3], [250], list(range(0, 500, 9)), [499]):
        cut = SystematicSample(37, 2000, 20)
        offer_all(cut, texts, train, cuts)
        assert kept(cut) == kept(whole) and cut.stride == whole.stride and cut.seen == whole.seen


def test_clear_releases_the_rows_and_keeps_counting():
    sample = SystematicSample(4, 10**6, 100)
    sample.offer([str(i) for i in range(10)], np.ones(10, bool))
    stride, seen = sample.stride, sample.seen
    sample.clear()
    assert len(sample) == 0 and sample.text_bytes == 0
    assert (sample.stride, sample.seen) == (stride, seen) == (4, 10)
    sample.offer([str(i) for i in range(10, 20)], np.ones(10, bool))
    assert [text for _, text, _, _ in kept(sample)] == ["12", "16"]  # positions 12 and 16: still every 4th
