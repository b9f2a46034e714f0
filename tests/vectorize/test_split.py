"""Split rules: blake2b unchanged; the MinHash rules keep many near-copies of real reviews on one side, lsh-bigrams
nearly all (more of it in test_split_lsh.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import imdb_train_texts
from helpers import load_tool

from streamtrain.vectorize.split import (
    DEFAULT_RULE,
    INDEXED_RULES,
    SPLIT_RULES,
    TEST,
    TRAIN,
    VAL,
    assign_splits,
    minhash_keys,
    split_units,
    text_unit,
)

MINHASH_RULES = [rule for rule in SPLIT_RULES if rule != "blake2b" and rule not in INDEXED_RULES]  # per-text
TEXTS = ["hello", "", "Hello world", "the cat sat on the mat", "ÉCOLE", "😀", "a !", "x" * 1000]


def test_rules_named():
    assert {"blake2b", "minhash-words"} <= set(SPLIT_RULES) and DEFAULT_RULE in SPLIT_RULES
    assert all(isinstance(v, str) and v for v in SPLIT_RULES.values())
    with pytest.raises(ValueError, match="unknown split rule"):
        assign_splits(TEXTS, 0.1, is_test=False, rule="md5")


def test_blake2b_unchanged():
    """The rule of datasets prepared before, byte for byte: blake2b-64 little-endian of the UTF-8 text."""
    assert text_unit("hello") == 0.48908835688137386 and text_unit("") == 0.7058483037031943
    expected = np.where([text_unit(t) < 0.5 for t in TEXTS], VAL, TRAIN)
    assert assign_splits(TEXTS, 0.5, is_test=False).tolist() == expected.tolist()  # still the default
    assert assign_splits(TEXTS, 0.5, is_test=False, rule="blake2b").tolist() == expected.tolist()
    assert assign_splits(TEXTS, 0.5, is_test=True, rule="minhash-words").tolist() == [TEST] * len(TEXTS)
    with pytest.raises(ValueError, match="val_fraction"):
        assign_splits(TEXTS, 1.0, is_test=False, rule="minhash-words")


@pytest.mark.parametrize("rule", MINHASH_RULES)
def test_minhash_is_over_the_word_set(rule):
    """Order, repetition, case, accents and punctuation of words do not matter; texts without words use blake2b."""
    units = split_units(["the cat sat", "Sat, sat! THE cat.", "cät the sat", "the dog sat"], rule)
    assert units[0] == units[1] == units[2]
    _, has_words = minhash_keys(["", "a !", "😀", "ok"])
    assert has_words.tolist() == [False, False, False, True]
    no_words = ["", "a !", "😀 ?"]
    assert split_units(no_words, rule).tolist() == [text_unit(t) for t in no_words]


@pytest.mark.parametrize("rule", MINHASH_RULES)
def test_minhash_same_text_same_split_in_any_batch(rule):
    texts = [f"review {i}: the plot {'was great' if i % 3 else 'made no sense'} and word{i}" for i in range(300)]
    texts += ["", "!!", "ab"] * 5
    whole = dict(zip(texts, split_units(texts, rule)))
    rng = random.Random(7)
    shuffled = texts[:]
    rng.shuffle(shuffled)
    start = 0
    while start < len(shuffled):
        size = rng.randint(1, 50)
        chunk = shuffled[start : start + size]
        assert split_units(chunk, rule).tolist() == [whole[t] for t in chunk]
        start += size


@pytest.fixture(scope="module")
def imdb_train() -> list[str]:
    """The 25,000 aclImdb train reviews, read straight from the archive (no extraction)."""
    texts = imdb_train_texts()
    assert len(texts) == 25_000
    return texts


def test_minhash_val_fraction_on_imdb(imdb_train):
    """Realized val fraction on IMDB train at 0.1; measured blake2b 0.0966, minhash-words 0.0838, minhash2 0.1062.

    minhash-words is the coarsest: reviews are grouped by their smallest-hash
    word, and its largest group (a common word) holds 1,625 reviews (6.5%);
    under other salts, up to half of them (tools/bench_split.py).
    """
    measured = {rule: (assign_splits(imdb_train, 0.1, is_test=False, rule=rule) == VAL).mean() for rule in SPLIT_RULES}
    assert abs(measured["blake2b"] - 0.1) < 0.01
    for rule in [*MINHASH_RULES, *INDEXED_RULES]:
        assert abs(measured[rule] - 0.1) < 0.03, measured


def test_near_copies_straddle_far_less(imdb_train):
    """grow.py's token-dropout copies (rate 0.1) of real reviews, val fraction 0.2: share of 4-copy groups straddling.

    Measured (4 seeds): blake2b 0.567-0.593 (1 - 0.8**4 - 0.2**4 = 0.590: copies are unrelated texts to it),
    minhash-words 0.045-0.056, minhash2-words 0.133-0.156 (both keys must survive the dropout).
    """
    grow = load_tool("grow")
    rng = random.Random("test_split")
    copies = 4
    texts = []
    for review in imdb_train[::16]:  # 1,563 reviews, both classes
        texts += [review] + [grow.token_dropout(review, 0.1, rng) for _ in range(copies - 1)]
    straddle = {}
    for rule in SPLIT_RULES:
        val = (assign_splits(texts, 0.2, is_test=False, rule=rule) == VAL).reshape(-1, copies)
        straddle[rule] = (val.any(axis=1) & ~val.all(axis=1)).mean()
    assert straddle["blake2b"] > 0.5
    assert straddle["minhash-words"] < straddle["blake2b"] / 5, straddle
    if "minhash2-words" in straddle:
        assert straddle["minhash2-words"] < straddle["blake2b"] / 3, straddle
    for rule in INDEXED_RULES:  # measured: lsh-bigrams 0.0026 (4 copies, val fraction 0.2)
        assert straddle[rule] < 0.02, straddle
