"""Deterministic train/validation assignment.

A row's split is a pure function of its text, by one of the named rules of
``SPLIT_RULES``: the same text lands in the same split on every run and on
every ``--append``, and exact duplicates can never straddle train and
validation. A dataset keeps the rule it was prepared with, so rows appended
later split the way the first ones did.

- ``blake2b``: a hash of the whole text. Near-copies (reposts, templated
  tickets, ``tools/grow.py``'s token-dropout copies) are unrelated texts to
  it and land on both sides, so validation scores what was trained on
  (0.999 accuracy on IMDB grown x8).
- ``minhash-words``: MinHash with one salted hash over the text's SET of
  words (``streamtrain.vectorize.words``). The word with
  the smallest salted hash is the text's key; two texts share it with
  probability equal to the Jaccard similarity of their word sets, so a copy
  with 10% of its tokens dropped shares its original's key, and split, most
  of the time. The minimum of hashes is not uniform, so the key is hashed
  again to decide the split. A text with no word falls back to ``blake2b``.
  Texts are grouped by their key: unrelated texts whose smallest-hash word
  is the same common word share a split too, which makes the realized
  validation fraction coarser than with ``blake2b``.
- ``minhash2-words`` (``DEFAULT_RULE``): two such keys under two salts,
  combined. Two texts share a split for sure when both keys agree
  (probability about J squared), so near-copies straddle a little more
  often than with one key, but texts are no longer grouped by a single
  common word: on the demo's templated tickets one key made 95 groups of
  4,000 texts and a 1.9% validation share, two keys make 981 groups and
  11.5%; on IMDB train 1,149 groups (8.4%) against 12,089 (10.1%). IMDB
  reviews with 7 token-dropout copies each (rate 0.1): the copies of 58%
  of reviews straddle with ``blake2b``, 6.2% with one key, 13.5% with two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "val", "test")

# Fixed for ever (changing it re-splits every minhash-words dataset): the first 64 bits of sqrt(2)'s fraction.
MINHASH_SALT = 0x6A09E667F3BCC908
MINHASH_SALT_2 = 0xBB67AE8584CAA73B  # the same of sqrt(3): the second key of "minhash2-words"
SPLIT_RULES: dict[str, str] = {
    "blake2b": "val iff int.from_bytes(blake2b(utf8(text), digest_size=8), 'little') / 2**64 < val_fraction",
    "minhash-words": (
        f"val iff splitmix64(min(splitmix64(h ^ {MINHASH_SALT:#x}) for h in set(word_hashes(text)))) / 2**64"
        " < val_fraction, with word_hashes and splitmix64 of streamtrain.vectorize.words;"
        " a text without words: the blake2b rule"
    ),
}
SPLIT_RULES["minhash2-words"] = (
    f"val iff splitmix64(splitmix64(k1) * 0x9e3779b97f4a7c15 ^ k2) / 2**64 < val_fraction, with"
    f" k1, k2 = min(splitmix64(h ^ salt) for h in set(word_hashes(text))) for salt {MINHASH_SALT:#x},"
    f" {MINHASH_SALT_2:#x}; a text without words: the blake2b rule"
)
DEFAULT_RULE = "minhash2-words"


def text_unit(text: str) -> float:
    """Uniform value in [0, 1) from a keyed-free 64-bit BLAKE2b hash of ``text``."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def minhash_keys(
    texts: Sequence[str], salt: int = MINHASH_SALT, words: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's MinHash key (uint64: the smallest salted word hash) and whether it has a word at all.

    The key of a text without words is 0 (and meaningless). ``salt`` is for
    studies of the rule (tools/bench_split.py); the rules use MINHASH_SALT and MINHASH_SALT_2.
    ``words``: ``word_hashes(texts)`` when the caller has it already.
    """
    from streamtrain.vectorize.words import splitmix64, word_hashes  # pyarrow: imported on first use

    offsets, hashes = words if words is not None else word_hashes(texts)
    salted = splitmix64(hashes ^ np.uint64(salt))
    has_words = np.diff(offsets) > 0
    keys = np.zeros(len(texts), dtype=np.uint64)
    if len(salted):
        # reduceat over the non-empty texts only: an empty text's segment would yield its neighbour's value.
        keys[has_words] = np.minimum.reduceat(salted, offsets[:-1][has_words])
    return keys, has_words


def split_units(
    texts: Sequence[str], rule: str = "blake2b", words: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Each text's value in [0, 1) under ``rule``: a text goes to validation iff it is < val_fraction.

    ``words``: ``word_hashes(texts)`` when the caller has it already (the MinHash rules need it).
    """
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}; known: {', '.join(SPLIT_RULES)}")
    if rule == "blake2b":
        return np.fromiter((text_unit(t) for t in texts), dtype=np.float64, count=len(texts))
    from streamtrain.vectorize.words import splitmix64, word_hashes

    words = words if words is not None else word_hashes(texts)
    keys, has_words = minhash_keys(texts, MINHASH_SALT, words)
    if rule == "minhash2-words":
        second, _ = minhash_keys(texts, MINHASH_SALT_2, words)
        with np.errstate(over="ignore"):
            keys = splitmix64(keys) * np.uint64(0x9E3779B97F4A7C15) ^ second
    units = splitmix64(keys).astype(np.float64) * 2.0**-64  # as exact as int / 2**64: a power of two
    for i in np.flatnonzero(~has_words).tolist():
        units[i] = text_unit(texts[i])
    return units


def assign_splits(
    texts: Sequence[str],
    val_fraction: float,
    is_test: bool,
    rule: str = "blake2b",
    words: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Split code (TRAIN/VAL/TEST) for each text, by the named rule of ``SPLIT_RULES``."""
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}; known: {', '.join(SPLIT_RULES)}")
    if is_test:
        return np.full(len(texts), TEST, dtype=np.uint8)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    units = split_units(texts, rule, words)
    return np.where(units < val_fraction, VAL, TRAIN).astype(np.uint8)
