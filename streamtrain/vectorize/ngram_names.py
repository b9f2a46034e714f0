"""Readable names of n-gram features: the strings behind the selected hash buckets, from a bounded sample.

n-gram features are hash buckets (``tfidf.hash_counts``), so the strings
behind them are lost. Prepare keeps a systematic sample of the training texts
(``NameSample``: at most ``SAMPLE_TEXTS`` texts and ``SAMPLE_BYTES`` bytes)
and, after selection, writes ``feature_names.json`` (``NameSample.write``):
each selected column named by the most frequent sampled n-gram in its bucket
(``build``; None when none was seen), its count, the number of other n-grams
seen there (hash collisions) and its share of the bucket's sampled
occurrences (below ``CLEAR_SHARE``: collided); and per class the
``TOP_PER_CLASS`` columns of largest class mean - rest mean of TF-IDF
(``top_features``). Only n-grams hashed by ``ngrams.HASHER`` are named. The
manifest records the file under ``feature_names`` (``{}``: none), and
``dataset.manifest`` checks it for ``streamtrain verify``; ``load`` reads it.

How names are computed and what it costs: docs/design/hashing.md
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtrain.errors import DataError
from streamtrain.fs.atomic import atomic_write_text
from streamtrain.fs.checksums import file_record, record_problem
from streamtrain.fs.jsondoc import dumps
from streamtrain.vectorize.sampling import SystematicSample
from streamtrain.vectorize.tfidf import ClassMoments, NgramConfig, TfidfState, bucket_table

FEATURE_NAMES = "feature_names.json"
FORMAT = "streamtrain-feature-names"
FORMAT_VERSION = 1
SAMPLE_TEXTS = 20_000  # training texts kept for naming, at most
SAMPLE_BYTES = 8 << 20  # bytes of UTF-8 text kept for naming, at most
MAX_TEXT_CHARS = 1 << 16  # a longer text is cut (its later n-grams are not sampled)
CHUNK_CHARS = 1 << 20  # characters of the sample named at a time (``build``): bounds the n-grams' temporaries
TOP_PER_CLASS = 10
CLEAR_SHARE = 0.9  # a name that accounts for less of its bucket's sampled occurrences marks the column collided
log = logging.getLogger(__name__)
TOP_RULE = (
    "per class, the selected columns with the largest mean TF-IDF over the class's training rows minus the mean "
    f"over the training rows of all other classes (top {TOP_PER_CLASS}, positive differences only)"
)


class NameSample(SystematicSample):
    """The names' sample: training texts in input order, bounded in texts and bytes.

    Every ``stride``-th training text, as ``sampling.SystematicSample`` keeps it; each text cut to
    ``MAX_TEXT_CHARS``.

    Args:
        max_texts: most texts kept.
        max_bytes: most bytes of UTF-8 text kept.
    """

    def __init__(self, max_texts: int = SAMPLE_TEXTS, max_bytes: int = SAMPLE_BYTES):
        super().__init__(max_texts, max_bytes, MAX_TEXT_CHARS)

    @property
    def max_texts(self) -> int:
        """The most texts kept."""
        return self.max_items

    @property
    def texts(self) -> list[str]:
        """The kept texts, in input order."""
        return [kept[1] for kept in self._kept]

    def offer(self, texts: Sequence[str], train: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Offer a chunk's texts; only the training texts are sampled.

        Args:
            texts: the chunk's texts, in input order.
            train: true for the training texts.
            labels: ignored (the names need no labels).
        """
        super().offer(texts, train)

    def record(self) -> dict:
        """The sample's size, stride and bounds, and its rule in words (``feature_names.json``'s ``sample``)."""
        return {
            "texts": len(self._kept),
            "text_bytes": self.text_bytes,
            "training_texts": self.seen,
            "stride": self.stride,
            "max_texts": self.max_texts,
            "max_bytes": self.max_bytes,
            "max_text_chars": MAX_TEXT_CHARS,
            "rule": (
                "every stride-th training text in input order, the stride doubling while the sample exceeds "
                "max_texts texts or max_bytes bytes; each selected column is named by the most frequent of the "
                "sample's n-grams that hash to its bucket"
            ),
        }

    def write(
        self, directory: str | Path, state: TfidfState, top: list[list[tuple[int, float]]], labels: list[str]
    ) -> dict:
        """Name ``state``'s columns from the sample and write ``feature_names.json``; the sample is released.

        Args:
            directory: the dataset directory (being staged).
            state: the fitted n-gram vectorizer (hashed by ``ngrams.HASHER``).
            top: per class, in ``labels`` order, ``top_features``'s (column, score) pairs.
            labels: the class names.

        Returns:
            The manifest's ``feature_names`` record: ``path``, ``bytes``, ``sha256``, ``columns``, ``named``,
            ``collided`` and ``sample`` (without its rule).
        """
        names, counts, others, shares = build(state.config, state.selected, self.texts)
        sample = self.record()
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "columns": len(names),
            "names": names,
            "counts": counts,
            "others": others,
            "shares": shares,
            "top_features": {
                "rule": TOP_RULE,
                "classes": {
                    label: [{"column": c, "name": names[c], "score": round(s, 6)} for c, s in pairs]
                    for label, pairs in zip(labels, top)
                },
            },
            "sample": sample,
        }
        path = Path(directory) / FEATURE_NAMES
        atomic_write_text(path, dumps(doc, indent=None) + "\n")
        self.clear()
        return {
            **file_record(directory, FEATURE_NAMES),
            "columns": len(names),
            "named": sum(n is not None for n in names),
            "collided": sum(s is not None and s < CLEAR_SHARE for s in shares),
            "sample": {k: v for k, v in sample.items() if k != "rule"},
        }


def build(
    config: NgramConfig, selected: np.ndarray, texts: Sequence[str]
) -> tuple[list[str | None], list[int], list[int], list[float | None]]:
    """Name each selected column by the most frequent sampled n-gram in its bucket (ties: the lower key).

    The texts are taken ``CHUNK_CHARS`` characters at a time (``_ChunkGrams``), so the n-grams' temporaries are a
    chunk's, not the whole sample's; the result does not depend on the chunking.

    Args:
        config: the n-gram recipe; its ``hasher`` must be ``ngrams.HASHER``.
        selected: the selected bucket ids, one per column.
        texts: the sampled texts.

    Returns:
        Per column: (name, its occurrences, the number of other n-grams seen in the bucket, the name's share of the
        bucket's sampled occurrences), name and share None when no sampled n-gram fell in the bucket.

    Raises:
        ValueError: ``config.hasher`` is not ``ngrams.HASHER``.
    """
    from streamtrain.vectorize.ngrams import HASHER

    if config.hasher != HASHER:
        raise ValueError(f"features are named for n-grams hashed by {HASHER}, not {config.hasher}")
    selected = np.asarray(selected, np.int64)
    n = len(selected)
    names: list[str | None] = [None] * n
    if not n or not texts:
        return names, [0] * n, [0] * n, [None] * n
    # Each n-gram's column (-1: not selected) by a table over all buckets: a gather, cheaper than a binary search
    # of the selected buckets (docs/design/hashing.md).
    table = bucket_table(selected, config.hash_buckets)
    chunks = [_ChunkGrams.of(part, config, table) for part in _chunked(texts, CHUNK_CHARS)]
    # Every chunk's distinct n-grams in order, so a key's first entry is its first occurrence in the sample.
    distinct, at, codes = _distinct(np.concatenate([c.keys for c in chunks]))
    count = np.bincount(codes, np.concatenate([c.counts for c in chunks]), len(distinct)).astype(np.int64)
    column = np.concatenate([c.columns for c in chunks])[at]
    seen = np.bincount(column, minlength=n)
    total = np.bincount(column, count, minlength=n)
    order = np.lexsort((distinct, -count, column))  # per column: most frequent first, then the lower key
    winners = order[np.r_[True, column[order][1:] != column[order][:-1]]] if len(order) else order
    counts = [0] * n
    for c, name, k in zip(column[winners].tolist(), _winner_names(chunks, at[winners]), count[winners].tolist()):
        names[c], counts[c] = name, k
    others = np.maximum(seen - 1, 0).tolist()
    shares = [round(c / t, 4) if t else None for c, t in zip(counts, total.tolist())]
    return names, counts, others, shares


@dataclass
class _ChunkGrams:
    """One chunk's distinct n-grams in selected buckets, in order of first occurrence, and its tokens' spans."""

    keys: np.ndarray  # uint64, each distinct key once
    counts: np.ndarray  # int64, its occurrences in the chunk
    columns: np.ndarray  # int64, its column
    first: np.ndarray  # int64, the first occurrence's first token (in the chunk)
    size: np.ndarray  # int64, its tokens
    data: np.ndarray  # the chunk's normalized bytes (``words.word_spans``)
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, texts: Sequence[str], config: NgramConfig, table: np.ndarray) -> _ChunkGrams:
        """The n-grams of ``texts`` whose bucket has a column in ``table`` (``tfidf.bucket_table``)."""
        from streamtrain.vectorize.ngrams import grams
        from streamtrain.vectorize.words import _token_hashes, word_spans

        data, offsets, starts, lengths = word_spans(texts)
        _, keys, first, size = grams(offsets, _token_hashes(data, starts, lengths), config.ngram_range, spans=True)
        assert first is not None and size is not None, "grams gives spans when asked"
        pos = table[keys % np.uint64(config.hash_buckets)]
        hit = np.flatnonzero(pos >= 0)
        distinct, at, codes = _distinct(keys[hit])
        at = hit[at]  # each distinct n-gram's first occurrence
        counts = np.bincount(codes, minlength=len(distinct))
        spans = starts.astype(np.int32), lengths.astype(np.int32)  # within a chunk's bytes: half the memory kept
        return cls(distinct, counts, pos[at].astype(np.int64), first[at], size[at], data, *spans)


def _chunked(texts: Sequence[str], max_chars: int) -> Iterator[Sequence[str]]:
    """``texts`` in consecutive parts of about ``max_chars`` characters each (at least one text a part)."""
    lo, size = 0, 0
    for i, text in enumerate(texts):
        size += len(text)
        if size >= max_chars:
            yield texts[lo : i + 1]
            lo, size = i + 1, 0
    if lo < len(texts):
        yield texts[lo:]


def _winner_names(chunks: list[_ChunkGrams], at: np.ndarray) -> list[str]:
    """The n-grams at ``at`` (indices into the chunks' distinct n-grams, concatenated) as strings, in that order."""
    bounds = np.cumsum([0] + [len(c.keys) for c in chunks])
    where = np.searchsorted(bounds, at, side="right") - 1
    out: list[str] = [""] * len(at)
    for i, chunk in enumerate(chunks):
        mine = np.flatnonzero(where == i)
        if not len(mine):
            continue
        local = at[mine] - bounds[i]
        strings = _strings(chunk.data, chunk.starts, chunk.lengths, chunk.first[local], chunk.size[local])
        for j, name in zip(mine.tolist(), strings):
            out[j] = name
    return out


def _distinct(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct ``keys`` in order of first occurrence, the index of each one's first occurrence, and every code.

    A key's code is the index of its distinct key.

    ``np.unique``'s results in another order, from Arrow's hash table instead of a sort (docs/design/hashing.md).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(pa.array(keys))
    codes = encoded.indices.to_numpy()
    distinct = encoded.dictionary.to_numpy()
    # Codes are numbered in order of first occurrence: a code's first place is where the running maximum grows.
    grown = np.maximum.accumulate(codes) if len(codes) else codes
    at = np.flatnonzero(np.r_[True, grown[1:] > grown[:-1]]) if len(codes) else np.zeros(0, np.int64)
    return distinct, at, codes


def _strings(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, first: np.ndarray, size: np.ndarray
) -> list[str]:
    """The n-grams of ``size[i]`` tokens from token ``first[i]``, as strings (tokens joined by a space).

    One gather of all their bytes and one UTF-8 decode, split at NUL (a token never holds one), instead of a
    Python join per n-gram (docs/design/hashing.md).
    """
    if not len(first):
        return []
    tokens = np.repeat(first, size) + (np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size))
    last = np.zeros(len(tokens), bool)
    last[np.cumsum(size) - 1] = True  # a token that ends its n-gram is followed by NUL, the others by a space
    width = lengths[tokens] + 1  # each token's bytes and the byte after it
    ends = np.cumsum(width)
    out = np.empty(int(ends[-1]), np.uint8)
    pos = np.arange(len(out)) - np.repeat(ends - width, width)  # byte index within its token (or its separator)
    src = np.repeat(starts[tokens], width) + pos
    out[:] = data[src]  # a last token's separator byte is inside data's padding
    out[ends - 1] = np.where(last, 0, ord(" "))
    return out[:-1].tobytes().decode("utf-8").split("\x00")


def top_features(moments: ClassMoments, selected: np.ndarray, k: int = TOP_PER_CLASS) -> list[list[tuple[int, float]]]:
    """Each class's top features: the selected columns whose TF-IDF weighs more in the class than elsewhere.

    Args:
        moments: the training rows' class statistics.
        selected: the selected bucket ids, each one of the moments' candidates.
        k: most columns per class.

    Returns:
        Per class, up to ``k`` (column, score) pairs, best first: score = the column's mean over the class's rows
        minus its mean over the other rows, positive only.

    Raises:
        ValueError: a selected bucket is not one of the moments' candidates.
    """
    pos = moments.positions(np.asarray(selected, np.int64))
    if np.any(pos < 0):
        raise ValueError("a selected bucket is not one of the moments' candidates")
    sums = moments.sums[:, pos]
    total, n = sums.sum(axis=0), int(moments.counts.sum())
    out: list[list[tuple[int, float]]] = []
    for c in range(moments.n_classes):
        mine, rest = int(moments.counts[c]), n - int(moments.counts[c])
        if not mine or not rest or not len(selected):
            out.append([])
            continue
        score = sums[c] / mine - (total - sums[c]) / rest
        cols = np.lexsort((np.arange(len(score)), -score))[:k]
        out.append([(int(j), float(score[j])) for j in cols if score[j] > 0])
    return out


def load(directory: str | Path, record: dict) -> dict | None:
    """The names document of a dataset.

    Args:
        directory: the dataset directory.
        record: the manifest's ``feature_names`` record (``{}``: none).

    Returns:
        The parsed ``feature_names.json``, or None when the dataset has none.

    Raises:
        DataError: the file differs from its record, cannot be read, or is not a names document of this format.
    """
    if not record:
        return None
    path = Path(directory) / record["path"]
    if issue := record_problem(directory, record):
        raise DataError(f"feature names {issue}", str(path))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the feature names: {exc}", str(path)) from exc
    if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise DataError(f"unsupported feature names {doc.get('format')!r} v{doc.get('format_version')}", str(path))
    return doc
