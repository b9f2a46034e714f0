"""The validation sample: the bottom-k of the val rows by key, bounded, whatever the order; written, checked, merged."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
from conftest import DEMO_TEST
from helpers import prepare_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.prepare import PrepareOptions, prepare
from streamtrain.dataset.val_sample import ValSample, load_sample, read_val_sample, sample_key
from streamtrain.errors import DataError
from streamtrain.vectorize.split import VAL, assign_splits


def expected(rows: list[tuple[str, str]], max_rows: int, max_bytes: int) -> list[tuple[int, str, str]]:
    """The rule, computed directly: every row whose key is below the first key at which a bound is exceeded."""
    ordered = sorted((sample_key(t), t, label) for t, label in rows)
    keys = [k for k, _, _ in ordered]
    count, size = 0, 0
    for key in sorted(set(keys)):
        group = [r for r in ordered if r[0] == key]
        count += len(group)
        size += sum(len(t.encode()) for _, t, _ in group)
        if count > max_rows or size > max_bytes:
            return [r for r in ordered if r[0] < key]
    return ordered


def sampled(rows, max_rows, max_bytes, chunk=7, seed=0) -> ValSample:
    order = list(rows)
    random.Random(seed).shuffle(order)
    sample = ValSample(max_rows, max_bytes)
    for lo in range(0, len(order), chunk):
        part = order[lo : lo + chunk]
        sample.add_many([t for t, _ in part], [label for _, label in part])
    return sample


def corpus(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    rows = [(f"text {i} " + "x" * int(rng.integers(0, 300)), f"c{i % 3}") for i in range(n)]
    return rows + rows[:20]  # exact duplicates: equal keys, kept or dropped together


def test_the_sample_is_the_bottom_k_whatever_the_order_and_chunking():
    rows = corpus(2000)
    want = expected(rows, 100, 10**9)
    assert len(want) == 100
    for seed, chunk in [(0, 1), (1, 7), (2, 500), (3, 5000)]:
        assert sampled(rows, 100, 10**9, chunk, seed).rows() == want


def test_the_byte_bound_keeps_the_longest_prefix_that_fits():
    rows = corpus(2000)
    huge = ("h" * 50_000, "c0")  # whatever its key, at most it and the rows below it fit
    for bound in (5_000, 40_000, 60_000):
        want = expected([*rows, huge], 10_000, bound)
        got = [sampled([*rows, huge], 10_000, bound, 13, seed) for seed in range(3)]
        assert all(g.rows() == want for g in got)
        assert got[0].text_bytes == sum(len(t.encode()) for _, t, _ in want) <= bound
    small = [f"s{i}" for i in range(50)]
    big = sorted([f"{i} " + "B" * 200 for i in range(21)], key=sample_key)[10]  # a key near the middle
    below = [t for t in sorted(small, key=sample_key) if sample_key(t) < sample_key(big)]
    assert 0 < len(below) < len(small)  # blake2b keys: fixed, so this holds once and for all
    sample = ValSample(100, 100)
    sample.add(big, "x")  # over the byte bound alone: nothing at or above its key is ever kept
    assert len(sample) == 0 and sample.below_key == sample_key(big)
    sample.add_many(small, ["x"] * len(small))
    assert [t for _, t, _ in sample.rows()] == below


def test_a_recorded_sample_plus_new_rows_is_the_sample_of_all(tmp_path):
    rows = corpus(3000, seed=1)
    old, new = rows[:1800], rows[1800:]
    for max_rows, max_bytes in [(150, 10**9), (10_000, 20_000), (150, 30_000)]:
        first = sampled(old, max_rows, max_bytes)
        record = first.write(tmp_path, f"s-{max_rows}-{max_bytes}.parquet")
        assert record is not None and record.rows == len(first) and record.max_rows == max_rows
        merged = load_sample(tmp_path, record)
        assert not merged.changed and merged.rows() == first.rows()
        merged.add_many([t for t, _ in new], [label for _, label in new])
        assert merged.rows() == expected(rows, max_rows, max_bytes) == sampled(rows, max_rows, max_bytes).rows()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.text(min_size=1, max_size=30), st.sampled_from(["a", "b"])), max_size=60),
    max_rows=st.integers(1, 20),
    max_bytes=st.integers(1, 200),
    chunk=st.integers(1, 10),
    seed=st.integers(0, 10),
)
def test_any_stream_any_chunking_gives_the_rule(rows, max_rows, max_bytes, chunk, seed):
    rows = [(t, label) for t, label in rows if _encodable(t)]
    sample = sampled(rows, max_rows, max_bytes, chunk, seed)
    assert sample.rows() == expected(rows, max_rows, max_bytes)
    assert len(sample) <= max_rows and sample.text_bytes <= max_bytes


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_prepare_keeps_the_val_rows_and_verify_covers_the_file(tmp_path):
    data = prepare_csv(DEMO_TEST, tmp_path / "d", val_fraction=0.2, vectorizer="sequence")
    m = Manifest.load(data)
    texts, labels = read_val_sample(data, m)
    assert len(texts) == m.rows("val") == m.val_sample.rows > 100  # fewer than the bound: every val row
    every = [row[0] for row in csv.reader(DEMO_TEST.open(encoding="utf-8"))][1:]
    val = {t for t, s in zip(every, assign_splits(every, 0.2, False, m.split.name)) if s == VAL}
    assert set(texts) <= val and set(labels) <= set(m.labels)
    assert "5000 rows" in m.val_sample.rule and m.val_sample.path == "val_sample.parquet"
    assert m.problems(data) == []
    path = data / m.val_sample.path
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert m.problems(data) == ["val_sample.parquet: damaged: its sha256 checksum differs from the one recorded"]
    with pytest.raises(DataError, match="validation sample damaged"):
        read_val_sample(data, m)


def test_no_val_rows_no_sample(tmp_path):
    m = prepare(
        PrepareOptions(inputs=[str(DEMO_TEST)], data=str(tmp_path / "d"), val_fraction=0.0, hash_buckets=1 << 16)
    )
    assert m.val_sample is None and read_val_sample(tmp_path / "d", m) == ([], [])
    assert not (tmp_path / "d" / "val_sample.parquet").exists()
