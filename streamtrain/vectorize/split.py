"""Deterministic train/validation assignment by a named rule (``SPLIT_RULES``), recorded with each dataset.

The per-text rules (``blake2b``, ``minhash-words``, ``minhash2-words``) are a
pure function of the text: the same text lands in the same split on every run
and every ``--append``, and exact duplicates never straddle train and
validation. The indexed rule (``INDEXED_RULES``: ``lsh-bigrams``, the
``DEFAULT_RULE``) also looks at the rows before it, through the dataset's
band-key index (``vectorize.near_dups``), so a row and its near-copies share a
split; a row no earlier row is near splits by its ``own_rule``. A dataset
keeps the rule it was prepared with, so appended rows split as the first ones
did. ``assign_splits`` splits texts by any rule; ``split_units`` gives a
per-text rule's value in [0, 1). ``SPLIT_RULES`` states each rule exactly, as
the manifest records it.

Rationale and measurements: docs/design/split.md
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
    """The per-text rule that decides a row's split under ``rule`` when no earlier row decides it.

    Args:
        rule: a name of ``SPLIT_RULES``.

    Returns:
        ``INDEXED_RULES[rule]`` for an indexed rule, else ``rule`` itself.
    """
    return INDEXED_RULES.get(rule, rule)


def rule_params(rule: str) -> dict:
    """The parameters a manifest records with ``rule``.

    Args:
        rule: a name of ``SPLIT_RULES``.

    Returns:
        ``bands``, ``rows``, ``min_bigrams`` and ``own_rule`` for an indexed rule; ``{}`` for a per-text rule.
    """
    if rule not in INDEXED_RULES:
        return {}
    return {
        "bands": near_dups.LSH_BANDS,
        "rows": near_dups.LSH_ROWS,
        "min_bigrams": near_dups.MIN_BIGRAMS,
        "own_rule": own_rule(rule),
    }


def text_unit(text: str) -> float:
    """The ``blake2b`` rule's value of ``text``: its unkeyed 64-bit BLAKE2b hash, little-endian, / 2**64, in [0, 1)."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def minhash_keys(
    texts: Sequence[str], salt: int = MINHASH_SALT, words: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's MinHash key: the smallest salted hash of its words.

    Args:
        texts: the texts.
        salt: xored into each word hash before ``splitmix64``; the rules use ``MINHASH_SALT`` and
            ``MINHASH_SALT_2``, others are for studies of the rule (``tools/bench_split.py``).
        words: ``word_hashes(texts)`` when the caller has it already.

    Returns:
        (uint64 keys, whether each text has a word); the key of a text without words is 0 and meaningless.
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
    """Each text's value in [0, 1) under a per-text rule: a text goes to validation iff it is < val_fraction.

    Args:
        texts: the texts.
        rule: a per-text rule of ``SPLIT_RULES``.
        words: ``word_hashes(texts)`` when the caller has it already (the MinHash rules use it).

    Returns:
        float64 per text.

    Raises:
        ValueError: ``rule`` is unknown or indexed (use ``assign_splits``).
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
    """The split code (``TRAIN``, ``VAL`` or ``TEST``) of each text, by a named rule of ``SPLIT_RULES``.

    Args:
        texts: the texts, in input order.
        val_fraction: the share of validation rows asked for, in [0, 1).
        is_test: the texts are test rows: all ``TEST``.
        rule: the rule's name. An indexed rule (``lsh-bigrams``) splits the texts as rows following those already
            in ``index``, in this order.
        words: ``word_hashes(texts)`` when the caller has it already.
        index: an indexed rule's band-key index, extended with the texts' new keys; None: a new one.

    Returns:
        uint8 split code per text.

    Raises:
        ValueError: ``rule`` is unknown, or ``val_fraction`` is outside [0, 1) (test rows aside).
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
