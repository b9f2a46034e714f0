"""Token-id sequences, the guide's second path, fitted in bounded memory.

As the guide's Keras ``Tokenizer``: lower case, Keras' filters made spaces,
split on whitespace; the ``top_k`` most frequent tokens kept; each text cut or
padded at the front to the longest text's length (at most ``max_length``).
Tokens are counted by hash bucket (CRC-32 into ``hash_buckets``), so counting
needs a fixed array, never a dictionary of every word.

- ``SequenceConfig``: the knobs (JSON-serializable). ``lowercase`` is the
  tokenizer version: ``CONTEXT`` (``str.lower`` of the whole text: datasets
  made before the field) or ``CODEPOINT`` (each code point lowered alone, as a
  serving graph can: new datasets); they differ for a capital sigma ending a
  word (``ς`` against ``σ``).
- ``tokenize``: text -> tokens, by either version.
- ``TokenCounts``: token frequency per bucket and the longest text (mergeable).
- ``SequenceState``: the fitted vocabulary (bucket -> id by frequency rank,
  0 = padding) and length; turns texts into ``TokenRows``.

Rationale of ``CODEPOINT``: docs/design/serving-graph.md
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache, cached_property

import numpy as np

from streamtrain.vectorize.defaults import HASH_BUCKETS, MAX_LENGTH, TOP_K
from streamtrain.vectorize.rows import TokenRows

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
_TABLE = str.maketrans({c: " " for c in KERAS_FILTERS})
_CACHE_LIMIT = 1 << 20  # token -> bucket memo; cleared when full, so memory stays bounded
CONTEXT = "context"  # ``SequenceConfig.lowercase``: ``str.lower`` of the whole text (datasets made before the field)
CODEPOINT = "codepoint"  # each code point lowered alone, context-free: what a serving graph reproduces
LOWERCASE = (CONTEXT, CODEPOINT)
_LAST_CODE_POINT = 0x10FFFF


@dataclass(frozen=True)
class SequenceConfig:
    """The sequence recipe's knobs, as ``vectorizer.json`` records them.

    Raises:
        ValueError: ``lowercase`` is not one of ``LOWERCASE``.
    """

    top_k: int = TOP_K
    max_length: int = MAX_LENGTH
    hash_buckets: int = HASH_BUCKETS
    # How text is lowered before the split: ``CONTEXT`` (the default, what a JSON without the field was made
    # with) or ``CODEPOINT`` (new datasets; a capital sigma ending a word becomes σ, not ς).
    lowercase: str = CONTEXT

    def __post_init__(self) -> None:
        if self.lowercase not in LOWERCASE:
            raise ValueError(f"unknown sequence lowercase {self.lowercase!r}: one of {LOWERCASE}")

    def to_json(self) -> dict:
        """The config as a JSON object."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> SequenceConfig:
        """The config ``to_json`` wrote; a missing field takes its default (``lowercase``: ``CONTEXT``)."""
        return cls(**obj)


def tokenize(text: str, lowercase: str = CONTEXT) -> list[str]:
    """The text's tokens: lowered, Keras' filters made spaces, split on whitespace.

    Args:
        text: the text.
        lowercase: the tokenizer version (``SequenceConfig.lowercase``): ``CONTEXT`` or ``CODEPOINT``.

    Returns:
        The tokens, in order.
    """
    if lowercase == CODEPOINT:
        return text.translate(_codepoint_table()).split()
    return text.lower().translate(_TABLE).split()


def codepoint_lowered(cp: int) -> str:
    """What ``CODEPOINT`` tokenizing makes of code point ``cp`` before the split.

    Args:
        cp: a code point.

    Returns:
        ``chr(cp).lower()`` with each of Keras' filters as a space (so, with Python's whitespace, a separator).
    """
    return chr(cp).lower().translate(_TABLE)


@cache
def _codepoint_table() -> dict[int, str]:
    """``str.translate``'s table for ``CODEPOINT``: the code points ``codepoint_lowered`` changes (built once)."""
    table = {}
    for cp in range(_LAST_CODE_POINT + 1):
        lowered = codepoint_lowered(cp)
        if lowered != chr(cp):
            table[cp] = lowered
    return table


class _Buckets:
    """Token -> bucket via CRC-32, memoized in a bounded dict."""

    def __init__(self, buckets: int):
        self.buckets = buckets
        self.memo: dict[str, int] = {}

    def __call__(self, tokens: list[str]) -> np.ndarray:
        memo = self.memo
        if len(memo) > _CACHE_LIMIT:
            memo.clear()
        out = np.empty(len(tokens), np.int64)
        for i, t in enumerate(tokens):
            b = memo.get(t)
            if b is None:
                b = memo[t] = zlib.crc32(t.encode("utf-8")) % self.buckets
            out[i] = b
        return out


def _flat_buckets(hasher: _Buckets, texts: Sequence[str], lowercase: str) -> tuple[np.ndarray, np.ndarray]:
    """All tokens' buckets, concatenated, and the token count of each text."""
    docs = [tokenize(t, lowercase) for t in texts]
    lengths = np.fromiter((len(d) for d in docs), np.int64, count=len(docs))
    return hasher([t for d in docs for t in d]), lengths


@dataclass
class TokenCounts:
    """Token frequency per bucket over training rows, and the longest text in tokens.

    Attributes:
        buckets: the hash space.
        counts: int64 per bucket, the tokens counted there.
        longest: the most tokens of one text.
        lowercase: the tokenizer version (``SequenceConfig.lowercase``); ``SequenceState.fit`` refuses counts
            made with another than its config's.
    """

    buckets: int
    counts: np.ndarray = field(default=None)  # type: ignore[arg-type]  # filled in __post_init__
    longest: int = 0
    lowercase: str = CONTEXT

    def __post_init__(self) -> None:
        if self.counts is None:
            self.counts = np.zeros(self.buckets, np.int64)
        if self.lowercase not in LOWERCASE:
            raise ValueError(f"unknown sequence lowercase {self.lowercase!r}: one of {LOWERCASE}")
        self._hasher = _Buckets(self.buckets)

    def update(self, texts: Sequence[str]) -> None:
        """Count the tokens of ``texts`` (training rows)."""
        flat, lengths = _flat_buckets(self._hasher, texts, self.lowercase)
        np.add.at(self.counts, flat, 1)  # the texts' tokens only: not a pass over every bucket per call
        if len(lengths):
            self.longest = max(self.longest, int(lengths.max()))

    def merge(self, other: TokenCounts) -> TokenCounts:
        """The counts of both, as one ``TokenCounts``.

        Raises:
            ValueError: ``other`` was made with another tokenizer version.
        """
        if other.lowercase != self.lowercase:
            raise ValueError("only counts made with the same lowercase version merge")
        longest = max(self.longest, other.longest)
        return TokenCounts(self.buckets, self.counts + other.counts, longest, self.lowercase)


@dataclass
class SequenceState:
    """The fitted sequence vectorizer: what prepare writes and predict reads."""

    config: SequenceConfig
    vocab: np.ndarray  # int64 bucket ids, most frequent first; token id = position + 1
    length: int  # sequence width

    @classmethod
    def fit(cls, config: SequenceConfig, counts: TokenCounts) -> SequenceState:
        """The vocabulary of ``counts``: its ``config.top_k`` most frequent buckets (ties: the lower bucket).

        Args:
            config: the recipe.
            counts: the training rows' token counts, made with ``config.lowercase``.

        Returns:
            The state; its length is the longest text's, between 1 and ``config.max_length``.

        Raises:
            ValueError: ``counts`` was made with another tokenizer version.
        """
        if counts.lowercase != config.lowercase:
            raise ValueError(f"tokens counted with lowercase {counts.lowercase!r}, config has {config.lowercase!r}")
        seen = np.flatnonzero(counts.counts)
        order = np.lexsort((seen, -counts.counts[seen]))[: config.top_k]  # by frequency, ties by bucket
        return cls(config, seen[order], max(1, min(counts.longest, config.max_length)))

    @property
    def n_features(self) -> int:
        """Embedding input size: vocabulary plus the padding id 0."""
        return len(self.vocab) + 1

    @cached_property
    def _id_of_bucket(self) -> np.ndarray:
        ids = np.zeros(self.config.hash_buckets, np.int32)
        ids[self.vocab] = np.arange(1, len(self.vocab) + 1, dtype=np.int32)
        return ids

    @cached_property
    def _hasher(self) -> _Buckets:
        return _Buckets(self.config.hash_buckets)

    def encode(self, texts: Sequence[str], labels: np.ndarray, row_ids: np.ndarray) -> TokenRows:
        """Texts -> fixed-width token ids: unknown tokens dropped, the last ``length`` kept, zeros in front.

        Args:
            texts: the texts.
            labels: one class id per text.
            row_ids: one global row id per text.

        Returns:
            The rows, ``length`` wide.
        """
        return self.encode_counting(texts, labels, row_ids)[0]

    def encode_counting(
        self, texts: Sequence[str], labels: np.ndarray, row_ids: np.ndarray
    ) -> tuple[TokenRows, np.ndarray, np.ndarray]:
        """``encode``, plus the drift measure.

        Args:
            texts: the texts.
            labels: one class id per text.
            row_ids: one global row id per text.

        Returns:
            (the rows, per text its tokens outside the vocabulary, per text all its tokens).
        """
        flat, lengths = _flat_buckets(self._hasher, texts, self.config.lowercase)
        ids = self._id_of_bucket[flat]
        known = ids > 0
        owner = np.repeat(np.arange(len(texts)), lengths)[known]
        ids = ids[known]
        kept_per_doc = np.bincount(owner, minlength=len(texts))
        ends = np.cumsum(kept_per_doc)
        from_end = ends[owner] - np.arange(len(ids)) - 1  # 0 for each text's last known token
        keep = from_end < self.length
        tokens = np.zeros((len(texts), self.length), np.int32)
        tokens[owner[keep], self.length - 1 - from_end[keep]] = ids[keep]
        rows = TokenRows(tokens, np.asarray(labels, np.int32), np.asarray(row_ids, np.int64))
        return rows, lengths - kept_per_doc, lengths

    def transform(self, texts: Sequence[str]) -> TokenRows:
        """Raw texts -> token rows, labelled -1, with row ids 0..n-1."""
        n = len(texts)
        return self.encode(texts, np.full(n, -1, np.int32), np.arange(n))

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays, as ``vectorizer.npz`` stores them: ``vocab`` and ``length``."""
        return {"vocab": self.vocab, "length": np.array(self.length)}

    @classmethod
    def from_arrays(cls, config: SequenceConfig, arrays: dict[str, np.ndarray]) -> SequenceState:
        """The state of ``config`` and the arrays ``arrays`` returned."""
        return cls(config, arrays["vocab"].astype(np.int64), int(arrays["length"]))
