"""Deterministic train/validation assignment.

A row's split follows one of the named rules of ``SPLIT_RULES``. The
per-text rules are a pure function of the text: the same text lands in the
same split on every run and on every ``--append``, and exact duplicates can
never straddle train and validation. The indexed rule (``INDEXED_RULES``:
``lsh-bigrams``, the default) also looks at the rows before it, through the
dataset's band-key index (``vectorize.near_dups``), so a row and its
near-copies share a split. A dataset keeps the rule it was prepared with, so
rows appended later split the way the first ones did. ``assign_splits``
splits texts by any rule (an indexed one: as the rows of one stream, through
an index it is handed, else a new one); ``split_units`` gives the per-text
rules' value in [0, 1).

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
  For 65% of validation rows of IMDB grown x8 a near-copy sat in train, so
  validation scored what was trained on: no rule of one text alone keeps 8
  copies with 10% of tokens dropped together.
- ``lsh-bigrams`` (``DEFAULT_RULE``): in input order, a row takes the split
  that most of its LSH band keys (16 bands of 3 one-permutation MinHash
  bins over its word bigrams: ``near_dups.band_keys``) already hold, each
  key holding the split of the first row that had it (``near_dups.
  BandIndex``); a row no earlier row shares a band with (a text with too few
  bigrams has no key) splits by ``minhash2-words`` (``own_rule``). The
  manifest records its ``params`` and the index files. Same benchmark: the
  copies of 0.3% of reviews straddle (``tools/bench_split.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from streamtrain.vectorize import near_dups

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
SPLIT_RULES["lsh-bigrams"] = near_dups.RULE_TEXT.format(
    bands=near_dups.LSH_BANDS, rows=near_dups.LSH_ROWS, min_bigrams=near_dups.MIN_BIGRAMS
)
# Rules that group rows across texts: a row's split depends on the rows before it, through a ``BandIndex``.
INDEXED_RULES = {"lsh-bigrams": "minhash2-words"}  # -> the per-text rule of a row no earlier row is near
DEFAULT_RULE = "lsh-bigrams"


def own_rule(rule: str) -> str:
    """The per-text rule that decides a row's split under ``rule`` when no earlier row decides it."""
    return INDEXED_RULES.get(rule, rule)


def rule_params(rule: str) -> dict:
    """The parameters a manifest records with ``rule`` (``{}`` for the per-text rules)."""
    if rule not in INDEXED_RULES:
        return {}
    return {
        "bands": near_dups.LSH_BANDS,
        "rows": near_dups.LSH_ROWS,
        "min_bigrams": near_dups.MIN_BIGRAMS,
        "own_rule": own_rule(rule),
    }


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
    if rule in INDEXED_RULES:
        raise ValueError(f"{rule} splits a row by the rows before it, not by a unit of its text: use assign_splits")
    if rule == "blake2b":
        return np.fromiter((text_unit(t) for t in texts), dtype=np.float64, count=len(texts))
    from streamtrain.vectorize.words import GOLDEN_GAMMA, splitmix64, word_hashes

    words = words if words is not None else word_hashes(texts)
    keys, has_words = minhash_keys(texts, MINHASH_SALT, words)
    if rule == "minhash2-words":
        second, _ = minhash_keys(texts, MINHASH_SALT_2, words)
        with np.errstate(over="ignore"):
            keys = splitmix64(keys) * GOLDEN_GAMMA ^ second
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
    index: near_dups.BandIndex | None = None,
) -> np.ndarray:
    """Split code (TRAIN/VAL/TEST) for each text, by the named rule of ``SPLIT_RULES``.

    An indexed rule (``lsh-bigrams``) splits the texts as the training rows of a new dataset, in this order,
    with an ``index`` of their band keys when given (extended with theirs), else a new one.
    """
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}; known: {', '.join(SPLIT_RULES)}")
    if is_test:
        return np.full(len(texts), TEST, dtype=np.uint8)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if rule in INDEXED_RULES:
        from streamtrain.vectorize.words import word_hashes

        words = words if words is not None else word_hashes(texts)
        own = assign_splits(texts, val_fraction, False, own_rule(rule), words)
        index = index if index is not None else near_dups.BandIndex()
        return index.resolve(near_dups.band_keys(words), own)
    units = split_units(texts, rule, words)
    return np.where(units < val_fraction, VAL, TRAIN).astype(np.uint8)
