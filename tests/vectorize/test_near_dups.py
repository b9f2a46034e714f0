"""``vectorize.near_dups``: band keys of word-bigram sets (identical texts share every key, texts with disjoint
bigrams none, and a pair shares a band with probability about J ** LSH_ROWS), and the rules of ``BandIndex``
that ``test_split_lsh.py`` does not cover: chains inside one call, keys that never change, refused files."""

from __future__ import annotations

import numpy as np
import pytest

from streamtrain.errors import DataError
from streamtrain.vectorize.near_dups import LSH_BANDS, LSH_ROWS, MIN_BIGRAMS, BandIndex, band_keys, bigram_hashes
from streamtrain.vectorize.words import word_hashes


def keys_of(texts: list[str]) -> np.ndarray:
    return band_keys(word_hashes(texts))


def words(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_a_text_of_n_words_has_n_minus_1_bigrams_that_never_cross_texts():
    texts = ["aa bb cc", "", "single", "dd ee", "bb cc"]  # words of two characters or more, as sklearn's
    offsets, hashes = bigram_hashes(*word_hashes(texts))
    assert np.diff(offsets).tolist() == [2, 0, 0, 1, 1]
    assert hashes.dtype == np.uint64 and len(hashes) == 4
    assert hashes[3] == hashes[1]  # "bb cc" is the same pair in any text
    _, crossing = bigram_hashes(*word_hashes(["cc dd"]))  # "aa bb cc" then "dd ee": no pair (cc, dd)
    assert crossing[0] not in hashes
    _, swapped = bigram_hashes(*word_hashes(["cc bb"]))
    assert swapped[0] != hashes[1]  # a pair is ordered


def test_identical_texts_share_every_key_and_texts_with_disjoint_bigrams_share_none():
    base = " ".join(words("w", 400))
    texts = [base, base, " ".join(words("x", 400)), " ".join(reversed(words("w", 400)))]  # reversed: other pairs
    keys = keys_of(texts)
    assert (keys[0] != 0).all()  # 399 bigrams fill every one of the 48 bins
    np.testing.assert_array_equal(keys[0], keys[1])
    for other in (2, 3):
        assert not np.intersect1d(keys[0], keys[other]).size


def test_unrelated_texts_rarely_share_a_key():
    texts = [" ".join(f"t{t}w{i}" for i in range(300)) for t in range(200)]  # 200 texts, no bigram in common
    keys = keys_of(texts)
    live = keys[keys != 0]
    assert live.size > 0.9 * keys.size
    assert np.unique(live).size == live.size  # not one key shared among 3,000 and more


def shared_bands(j_pairs: list[tuple[str, str]]) -> float:
    """Among bands keyed in both texts of each pair, the share with equal keys."""
    keys = keys_of([t for pair in j_pairs for t in pair])
    a, b = keys[0::2], keys[1::2]
    both = (a != 0) & (b != 0)
    return float((a == b)[both].mean())


def pair_with_jaccard(i: int, shared: int, own: int) -> tuple[str, str, float]:
    """Two texts whose bigram sets have ``shared`` bigrams in common and ``own`` more each; their Jaccard."""
    common = words(f"c{i}_", shared + 1)  # shared + 1 words: ``shared`` bigrams
    a = common + words(f"a{i}_", own)  # the junction adds one bigram of its own: own bigrams beside
    b = common + words(f"b{i}_", own)
    return " ".join(a), " ".join(b), shared / (shared + 2 * own)


@pytest.mark.parametrize(("own", "low", "high"), [(25, 0.45, 0.7), (150, 0.05, 0.15)])
def test_a_pair_shares_a_band_with_probability_about_jaccard_to_the_rows(own, low, high):
    pairs = [pair_with_jaccard(i, 250, own) for i in range(120)]
    jaccard = pairs[0][2]  # 250 / 300 = 0.83, 250 / 550 = 0.45
    expected = jaccard**LSH_ROWS  # 0.58, 0.094
    assert low < expected < high
    got = shared_bands([(a, b) for a, b, _ in pairs])
    assert low < got < high, (got, expected)


def test_texts_with_fewer_distinct_bigrams_than_the_minimum_have_no_keys():
    few = " ".join(words("f", MIN_BIGRAMS))  # MIN_BIGRAMS - 1 bigrams
    repetitive = " ".join(["la", "di", "da"] * 100)  # 3 distinct bigrams, many times
    enough = " ".join(words("g", 3 * MIN_BIGRAMS))
    keys = keys_of([few, repetitive, enough, ""])
    assert (keys[0] == 0).all() and (keys[1] == 0).all() and (keys[3] == 0).all()
    assert (keys[2] != 0).any()
    assert keys.shape == (4, LSH_BANDS) and keys.dtype == np.uint64


def random_keys(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 2**63, size=(n, LSH_BANDS), dtype=np.uint64)


def test_a_row_matching_an_earlier_row_of_the_same_call_takes_its_value_down_a_chain():
    keys = random_keys(3, 0)
    keys[1, :8] = keys[0, :8]  # row 1 is near row 0 (bands 0-7)
    keys[2, 8:] = keys[1, 8:]  # row 2 is near row 1 (bands 8-15), not row 0
    index = BandIndex()
    assert index.resolve(keys, np.array([1, 0, 0], np.uint8)).tolist() == [1, 1, 1]
    assert len(index) == index.added_count() == 8 + 16 + 8  # each distinct key once


def test_a_key_keeps_the_value_it_was_inserted_with():
    keys = random_keys(2, 1)
    index = BandIndex()
    assert index.resolve(keys[:1], np.array([1], np.uint8)).tolist() == [1]
    before = index.added()
    again = index.resolve(keys[:1], np.array([0], np.uint8))  # the same row, another own value
    assert again.tolist() == [1]
    after = index.added()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    blank = np.zeros((1, LSH_BANDS), np.uint64)  # no keys: its own value, nothing inserted
    assert index.resolve(blank, np.array([0], np.uint8)).tolist() == [0] and len(index) == LSH_BANDS


def test_rows_with_another_number_of_bands_are_refused():
    with pytest.raises(ValueError, match="8 band keys per row, the index has 16"):
        BandIndex().resolve(np.ones((2, 8), np.uint64), np.zeros(2, np.uint8))


def save(path, keys, values, bands=LSH_BANDS, rows=LSH_ROWS):
    np.savez(path, keys_0=keys, values_0=values, runs=np.int64(1), bands=np.int64(bands), rows=np.int64(rows))
    return path


@pytest.mark.parametrize(
    ("keys", "values", "bands", "problem"),
    [
        (np.array([1, 5], np.uint32), np.array([0, 1], np.uint8), 8, "split index of 16 bands of 3 rows, expected"),
        (np.array([5, 3], np.uint32), np.array([0, 1], np.uint8), 16, "not sorted and distinct"),
        (np.array([3, 3], np.uint32), np.array([0, 1], np.uint8), 16, "not sorted and distinct"),
        (np.array([1, 5], np.uint64), np.array([0, 1], np.uint8), 16, "wrong type or shape"),
        (np.array([1, 5], np.uint32), np.array([0], np.uint8), 16, "wrong type or shape"),
    ],
)
def test_a_split_index_file_that_is_not_one_is_named(tmp_path, keys, values, bands, problem):
    path = save(tmp_path / "index.npz", keys, values)
    with pytest.raises(DataError, match=problem) as caught:
        BandIndex.load([path], bands=bands)
    assert str(path) in str(caught.value)


def test_loaded_runs_answer_like_the_index_that_wrote_them(tmp_path):
    keys = random_keys(50, 2)
    own = (np.arange(50) % 2).astype(np.uint8)
    index = BandIndex()
    index.resolve(keys, own)
    index.save_added(tmp_path / "a.npz")
    loaded = BandIndex.load([tmp_path / "a.npz"])
    assert len(loaded) == len(index) == 50 * LSH_BANDS and loaded.added_count() == 0
    np.testing.assert_array_equal(loaded.resolve(keys, 1 - own), own)  # every row finds its own keys


def test_an_index_with_scratch_answers_as_in_memory_holds_at_most_its_bound_and_leaves_nothing(tmp_path):
    """Past ``memory_keys`` the added keys go to scratch files; rows matching keys only there still find them."""
    rng = np.random.default_rng(7)
    keys = random_keys(3000, 3)
    own = rng.integers(0, 2, 3000).astype(np.uint8)
    late = np.arange(2000, 3000)
    keys[late, :10] = keys[late - 2000, :10]  # each late row is near an early one (10 of 16 bands)
    own[late] = own[late - 2000] ^ 1  # ... and would split the other way alone
    scratch = tmp_path / "scratch"
    on_disk, in_memory = BandIndex(scratch=scratch, memory_keys=4000), BandIndex()
    got = [on_disk.resolve(keys[i : i + 100], own[i : i + 100]) for i in range(0, 3000, 100)]
    want = [in_memory.resolve(keys[i : i + 100], own[i : i + 100]) for i in range(0, 3000, 100)]
    assert np.concatenate(got).tolist() == np.concatenate(want).tolist()
    assert (np.concatenate(got)[late] == own[late - 2000]).all()  # every late row took its early row's split
    # The early rows' keys went to disk long before the late rows came; the runs there were merged as they grew.
    assert on_disk._in_memory <= 4000 + 100 * LSH_BANDS < on_disk.added_count() - 1000 * LSH_BANDS
    assert 1 <= len(list(scratch.iterdir())) <= 3
    assert len(on_disk) == len(in_memory) == on_disk.added_count()
    assert all((a == b).all() for a, b in zip(on_disk.added(), in_memory.added()))
    on_disk.save_added(tmp_path / "disk.npz")
    in_memory.save_added(tmp_path / "memory.npz")
    assert (tmp_path / "disk.npz").read_bytes() == (tmp_path / "memory.npz").read_bytes()
    on_disk.close()
    assert list(scratch.iterdir()) == [] and len(on_disk) == 0


def test_an_index_loaded_into_scratch_answers_from_its_copies_and_deletes_only_them(tmp_path):
    keys = random_keys(200, 4)
    index = BandIndex()
    first = index.resolve(keys, np.zeros(200, np.uint8) + 1)
    path = tmp_path / "index.npz"
    index.save_added(path)
    scratch = tmp_path / "scratch"
    loaded = BandIndex.load([path], scratch=scratch)
    path.write_bytes(b"")  # the dataset's file changes: the loaded index no longer reads it
    assert len(list(scratch.iterdir())) >= 1 and len(loaded) == 200 * LSH_BANDS
    assert loaded.resolve(keys, np.zeros(200, np.uint8)).tolist() == first.tolist()  # answered from the copies
    assert loaded.added_count() == 0
    loaded.close()
    assert list(scratch.iterdir()) == [] and path.exists()  # its copies gone; the file it read is not its to delete
