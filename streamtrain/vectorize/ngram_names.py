"""Readable names of n-gram features: a bounded sketch of the strings behind the selected hash buckets.

n-gram features are hash buckets (``tfidf.hash_counts``), so the strings
behind them are lost. Prepare keeps a bounded sketch of them and the top
features of each class in ``feature_names.json``:

1. ``NameSample.offer`` (first pass, once per chunk): a systematic sample of
   the training texts in input order: every ``stride``-th one, the stride
   doubling (and the kept texts thinned to it) whenever the sample would
   exceed ``SAMPLE_TEXTS`` texts or ``SAMPLE_BYTES`` bytes of UTF-8 text, so
   it spreads over the whole input (a corpus ordered by class is sampled in
   every class) and ends between half and all of either bound. Each text is
   cut to ``MAX_TEXT_CHARS``. Cost per chunk: a few numpy operations plus the
   texts kept; nothing is tokenized here.
2. ``build`` (after feature selection): the sample's n-grams, tokenized
   and hashed exactly as ``ngrams.count_ngrams`` hashes the rows
   (``words.word_spans``, ``ngrams.grams``), counted by 64-bit key in numpy;
   only n-grams whose bucket was selected count, and only each column's
   winner is decoded back to its string. Each selected column is named by
   the most frequent n-gram seen in its bucket (``None`` when none was; ties:
   the lower key), with that n-gram's occurrences in the sample, the number
   of other distinct n-grams seen in the same bucket (a hash collision: the
   column also stands for them) and the name's share of the bucket's sampled
   occurrences; a column whose name has less than ``CLEAR_SHARE`` of them
   counts as collided. Only datasets hashed by ``ngrams.HASHER`` are named:
   older ones (sklearn's murmurhash3) are never rebuilt, only appended to.
3. ``top_features`` (at selection, from ``tfidf.ClassMoments``): per class,
   the ``TOP_PER_CLASS`` selected columns with the largest
   ``class mean - rest mean`` of TF-IDF over the training rows (the mean of
   the column's value over the class's rows minus its mean over the rows of
   every other class; positive scores only): the n-grams that weigh more in
   the class than elsewhere.

File ``feature_names.json`` (strict JSON): ``names``, ``counts``,
``others`` and ``shares``, one entry per column; ``top_features``
(``rule`` and, per class name, a list of ``{"column", "name", "score"}``);
and the ``sample`` record.
The manifest records it under ``feature_names`` (``write``'s return: path,
bytes, sha256, columns, named, collided, sample); ``problem`` checks it for
``streamtrain verify``. A dataset without one (sequences, or prepared before
it existed) has ``{}`` there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
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
TOP_PER_CLASS = 10
CLEAR_SHARE = 0.9  # a name that accounts for less of its bucket's sampled occurrences marks the column collided
log = logging.getLogger(__name__)
TOP_RULE = (
    "per class, the selected columns with the largest mean TF-IDF over the class's training rows minus the mean "
    f"over the training rows of all other classes (top {TOP_PER_CLASS}, positive differences only)"
)


class NameSample(SystematicSample):
    """A systematic sample of training texts, bounded in texts and bytes (see the module docstring)."""

    def __init__(self, max_texts: int = SAMPLE_TEXTS, max_bytes: int = SAMPLE_BYTES):
        super().__init__(max_texts, max_bytes, MAX_TEXT_CHARS)

    @property
    def max_texts(self) -> int:
        return self.max_items

    @property
    def texts(self) -> list[str]:
        return [kept[1] for kept in self._kept]

    def offer(self, texts: Sequence[str], train: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Offer a chunk's texts; those where ``train`` is true are the training texts, in input order."""
        super().offer(texts, train)

    def record(self) -> dict:
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
        """Name ``state``'s columns from the sample, write ``feature_names.json``; return the manifest's record.

        ``top``: per class (in ``labels`` order), ``top_features``'s (column, score) pairs. The sample is
        released afterwards.
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
    """Per selected column: the most frequent sampled n-gram in its bucket, its occurrences, the number of other
    n-grams seen in the bucket, and its share of the bucket's sampled occurrences (None when none was seen)."""
    from streamtrain.vectorize.ngrams import HASHER, grams
    from streamtrain.vectorize.words import _token_hashes, word_spans

    if config.hasher != HASHER:
        raise ValueError(f"features are named for n-grams hashed by {HASHER}, not {config.hasher}")
    selected = np.asarray(selected, np.int64)
    n = len(selected)
    names: list[str | None] = [None] * n
    if not n or not texts:
        return names, [0] * n, [0] * n, [None] * n
    data, offsets, starts, lengths = word_spans(texts)
    _, keys, first, size = grams(offsets, _token_hashes(data, starts, lengths), config.ngram_range, spans=True)
    assert first is not None and size is not None, "grams gives spans when asked"
    # Each n-gram's column (-1: not selected) by a table over all buckets: a binary search of the selected
    # buckets took 0.3 s for IMDB's sample.
    pos = bucket_table(selected, config.hash_buckets)[keys % np.uint64(config.hash_buckets)]
    hit = np.flatnonzero(pos >= 0)
    distinct, at, count = _distinct(keys[hit])
    at = hit[at]  # each distinct n-gram's first occurrence
    column = pos[at].astype(np.int64)
    first, size = first[at], size[at]
    seen = np.bincount(column, minlength=n)
    total = np.bincount(column, count, minlength=n)
    order = np.lexsort((distinct, -count, column))  # per column: most frequent first, then the lower key
    winners = order[np.r_[True, column[order][1:] != column[order][:-1]]] if len(order) else order
    counts = [0] * n
    for c, name, k in zip(
        column[winners].tolist(),
        _strings(data, starts, lengths, first[winners], size[winners]),
        count[winners].tolist(),
    ):
        names[c], counts[c] = name, k
    others = np.maximum(seen - 1, 0).tolist()
    shares = [round(c / t, 4) if t else None for c, t in zip(counts, total.tolist())]
    return names, counts, others, shares


def _distinct(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct ``keys``, the index of each one's first occurrence and its count, in order of first occurrence
    (``np.unique``'s, in another order): Arrow's hash table instead of a sort, 0.13 s of IMDB's names."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(pa.array(keys))
    codes = encoded.indices.to_numpy()
    distinct = encoded.dictionary.to_numpy()
    # Codes are numbered in order of first occurrence: a code's first place is where the running maximum grows.
    grown = np.maximum.accumulate(codes) if len(codes) else codes
    at = np.flatnonzero(np.r_[True, grown[1:] > grown[:-1]]) if len(codes) else np.zeros(0, np.int64)
    return distinct, at, np.bincount(codes, minlength=len(distinct))


def _strings(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, first: np.ndarray, size: np.ndarray
) -> list[str]:
    """The n-grams of ``size[i]`` tokens from token ``first[i]``, as strings (tokens joined by a space).

    One gather of all their bytes and one UTF-8 decode, split at NUL (a token never holds one), instead of a
    Python join per n-gram: 0.5 s of the names' 1.6 s on IMDB."""
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
    """Per class: up to ``k`` (column, score) of the selected columns by ``class mean - rest mean`` (> 0).

    ``selected``: bucket ids, each one of the moments' candidates."""
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
    """The names document of a dataset (None when it has none); ``DataError`` when it is damaged or unreadable."""
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
