"""lsh-bigrams: band keys of a text alone; the band index resolves rows in order, whatever the chunks."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import imdb_train_texts
from helpers import load_tool

from streamtrain.errors import DataError
from streamtrain.vectorize.near_dups import LSH_BANDS, BandIndex, band_keys
from streamtrain.vectorize.split import VAL, assign_splits
from streamtrain.vectorize.words import word_hashes

RULE = "lsh-bigrams"


def _keys(texts: list[str]) -> np.ndarray:
    return band_keys(word_hashes(texts))


def test_band_keys_are_a_function_of_the_text_alone():
    long = " ".join(f"the{i % 7} plot{i} of{i % 5} film{i}" for i in range(60))  # 239 distinct bigrams
    texts = [long, "too short to key", "", long.upper(), long + " and then some more words at the end"]
    keys = _keys(texts)
    assert keys.shape == (5, LSH_BANDS) and keys.dtype == np.uint64
    assert (keys[0] != 0).sum() > LSH_BANDS // 2 and (keys[1] == 0).all() and (keys[2] == 0).all()
    assert (keys[0] == keys[3]).all()  # words, not case
    assert (keys[0] == keys[4]).sum() >= 1  # a near-copy shares some bands
    for i, text in enumerate(texts):  # the same keys alone as among others
        assert (_keys([text])[0] == keys[i]).all()


def _stream(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Synthetic rows where many share long runs of words with earlier (and same-chunk) rows."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(400)]
    bases = [[rng.choice(vocab) for _ in range(60)] for _ in range(n // 4)]
    texts = []
    for _ in range(n):
        words = list(rng.choice(bases))
        for _ in range(rng.randint(0, 6)):
            words[rng.randrange(len(words))] = rng.choice(vocab)
        texts.append(" ".join(words) if rng.random() > 0.05 else "short one")
    own = np.array([rng.randint(0, 1) for _ in range(n)], dtype=np.uint8)
    return texts, own


@pytest.mark.parametrize("vote", [True, False])
def test_resolving_in_any_chunks_is_resolving_one_by_one(vote):
    texts, own = _stream(600, 3)
    keys = _keys(texts)
    one = BandIndex()
    expected = np.concatenate([one.resolve(keys[i : i + 1], own[i : i + 1], vote) for i in range(len(texts))])
    rng = random.Random(9)
    for _ in range(3):
        index, got, start = BandIndex(), [], 0
        while start < len(texts):
            size = rng.choice([1, 7, 64, 300])
            got.append(index.resolve(keys[start : start + size], own[start : start + size], vote))
            start += size
        assert np.concatenate(got).tolist() == expected.tolist()
        assert len(index) == len(one) and (index.added()[0] == one.added()[0]).all()
    assert (expected != own).any()  # rows did take earlier rows' values


def test_a_row_takes_what_most_of_its_bands_hold():
    rng = np.random.default_rng(0)
    keys = rng.integers(1, 2**63, size=(3, LSH_BANDS), dtype=np.uint64)
    index = BandIndex()
    index.resolve(keys[:2], np.array([1, 0], np.uint8))  # row 0 (value 1), row 1 (value 0): unrelated
    row = keys[1].copy()
    row[:2] = keys[0, :2]  # bands 0-1 as row 0, bands 2-15 as row 1
    assert index.resolve(row[None], np.array([1], np.uint8), vote=True).tolist() == [0]
    assert index.resolve(row[None], np.array([1], np.uint8), vote=False).tolist() == [1]  # the lowest band's
    assert index.resolve(keys[2:], np.array([1], np.uint8)).tolist() == [1]  # no band: its own


def test_the_index_file_round_trips_and_a_damaged_one_is_named(tmp_path):
    texts, own = _stream(300, 5)
    keys = _keys(texts)
    index = BandIndex()
    first = index.resolve(keys[:200], own[:200])
    index.save_added(tmp_path / "a.npz")
    loaded = BandIndex.load([tmp_path / "a.npz"])
    assert len(loaded) == len(index) and loaded.added()[0].size == 0
    assert loaded.resolve(keys[200:], own[200:]).tolist() == index.resolve(keys[200:], own[200:]).tolist()
    loaded.save_added(tmp_path / "b.npz")
    both = BandIndex.load([tmp_path / "a.npz", tmp_path / "b.npz"])
    keyed = (keys[:200] != 0).any(axis=1)  # a keyed row's own keys, all in the index now, give its value again
    again = both.resolve(keys[:200], own[:200] ^ 1)
    assert keyed.sum() > 150 and again[keyed].tolist() == first[keyed].tolist()
    damaged = bytearray((tmp_path / "a.npz").read_bytes())
    damaged[len(damaged) // 2 :] = b"\0" * (len(damaged) - len(damaged) // 2)
    (tmp_path / "c.npz").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=r"c\.npz"):
        BandIndex.load([tmp_path / "c.npz"])


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    """3,000 aclImdb train reviews (the first in archive order)."""
    return imdb_train_texts(3000)


@pytest.mark.parametrize("order", ["originals first", "shuffled"])
def test_token_dropout_copies_of_real_reviews_land_in_one_split(reviews, order):
    """Each review and 3 tools/grow.py token-dropout copies (rate 0.1); measured 0.9990 and 0.9983 whole."""
    grow = load_tool("grow")
    rng = random.Random(f"test_split_lsh/{order}")
    copies = 4
    rows = [(i, r) for i, r in enumerate(reviews)]
    rows += [(i, grow.token_dropout(r, 0.1, rng)) for _ in range(copies - 1) for i, r in enumerate(reviews)]
    if order == "shuffled":
        rng.shuffle(rows)
    cluster = np.array([i for i, _ in rows])
    texts = [t for _, t in rows]
    val = assign_splits(texts, 0.1, False, RULE)  # one stream ...
    index = BandIndex()  # ... the same as chunk by chunk through one index
    chunked = [assign_splits(texts[i : i + 1000], 0.1, False, RULE, index=index) for i in range(0, len(texts), 1000)]
    assert np.concatenate(chunked).tolist() == val.tolist()
    in_val = np.bincount(cluster, weights=val == VAL, minlength=len(reviews))
    whole = ((in_val == 0) | (in_val == copies)).mean()
    assert whole >= 0.99, whole
    assert 0.07 < (val == VAL).mean() < 0.13
