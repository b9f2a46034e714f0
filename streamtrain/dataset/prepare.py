"""prepare: raw labelled text -> vectorized shards + manifest (``PrepareOptions``, ``prepare``).

Streaming passes, each holding one chunk of rows at a time:

1. ``_first_pass``: read the raw inputs, assign splits and labels, measure
   samples S and median words per sample W; for n-grams also hash them once,
   count document frequencies and spill the counts to scratch files; for
   forced sequences count token frequencies instead.
2. ``choose_vectorizer``: the guide's rule, sequences when S/W >= 1500.
3. n-grams: ``_select`` streams the spill for the ANOVA F-test and keeps the
   top-k; ``_write_ngrams`` streams it again into TF-IDF shards.
   Sequences: ``_count_tokens`` (only when not done in pass 1) and
   ``_write_sequences`` re-read the raw inputs into token-id shards.
   Either way the rows reach the shards through one ``BucketShuffle`` per
   split, so shards hold each split in a seeded random order, not the
   input's.

Everything is built in a staging directory that replaces ``--data`` only when
the manifest has been written, so a crash leaves nothing that looks complete.
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamtrain import __version__
from streamtrain.dataset.bucket_shuffle import BUCKET_ROWS, BucketShuffle
from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.reject_log import RejectLog
from streamtrain.dataset.rows import Rows, SparseRows, empty_rows
from streamtrain.dataset.shards import FORMATS, ShardInfo, SplitWriter
from streamtrain.dataset.spill import Spill, SpillPart
from streamtrain.errors import DataError, UsageError
from streamtrain.fs.atomic import staging_dir
from streamtrain.io.readers import Column, ColumnSpec, RawChunk, detect_format, read_chunks
from streamtrain.io.rejects import MAX_FIELD_BYTES, Reject
from streamtrain.options import FRACTION, POSITIVE, check_options, effective, option
from streamtrain.vectorize.choice import VECTORIZERS, choose_vectorizer
from streamtrain.vectorize.defaults import HASH_BUCKETS, MAX_LENGTH, MIN_DF, SW_THRESHOLD, TOP_K
from streamtrain.vectorize.labels import LabelIndex
from streamtrain.vectorize.sequence import SequenceConfig, SequenceState, TokenCounts
from streamtrain.vectorize.split import SPLIT_NAMES, TRAIN, assign_splits
from streamtrain.vectorize.stats import WordCounts
from streamtrain.vectorize.tfidf import ClassMoments, DocFreq, NgramConfig, TfidfState, fit_selection, hash_counts
from streamtrain.vectorize.vectorizer import Vectorizer

log = logging.getLogger(__name__)


def column(value: str) -> Column:
    """A column given on the command line: a 0-based index if all digits, else a header name."""
    return int(value) if value.isdigit() else value


@dataclass
class PrepareOptions:
    inputs: list[str] = option(
        positional=True,
        metavar="INPUT",
        path=True,
        help="training inputs: CSV/TSV/JSONL/Parquet files (.gz allowed), or directories of a sub-directory per class",
    )
    data: str = option(path=True, metavar="DIR", deprecated="--out", help="the dataset directory to write")
    test: list[str] = option(
        factory=list, nargs="+", metavar="INPUT", path=True, help="held-out test inputs (same formats)"
    )
    format: str = option("hdf5", choices=FORMATS, help="shard file format")
    vectorizer: str = option(
        "auto",
        choices=VECTORIZERS,
        help="ngram (TF-IDF of word 1-2-grams), sequence (token ids), or auto: the guide's rule, "
        f"sequence when samples / median words per sample >= {SW_THRESHOLD:g}",
    )
    max_length: int = option(MAX_LENGTH, **POSITIVE, help="sequence: longest token sequence kept")
    val_fraction: float = option(
        0.1, **FRACTION, help="share of the training inputs held out for validation, by a hash of the text"
    )
    shard_rows: int = option(20_000, **POSITIVE, help="rows per shard file")
    block_rows: int = option(1024, **POSITIVE, help="rows per block, the unit of shuffled reads")
    seed: int = option(0, help="seed of the shards' random row order")
    text_column: list[Column] = option(
        factory=lambda: ["text"],
        parse=column,
        metavar="NAME|INDEX",
        help="text column, by header name or 0-based index; repeat to join several",
    )
    label_column: Column = option("label", parse=column, metavar="NAME|INDEX", help="label column")
    header: bool | None = option(
        None, help="CSV/TSV files have a header row (when unset: yes, unless every column is given by index)"
    )
    top_k: int = option(TOP_K, **POSITIVE, help="n-gram features kept (by F-value), or tokens kept (by frequency)")
    min_df: int = option(MIN_DF, **POSITIVE, help="n-grams: minimum document frequency")
    hash_buckets: int = option(
        HASH_BUCKETS, **POSITIVE, help="hash space of n-gram and token statistics; fixes prepare's memory"
    )
    max_field_bytes: int = option(
        MAX_FIELD_BYTES, **POSITIVE, help="a longer record, line or document is rejected (bounds prepare's memory)"
    )
    max_bad_fraction: float = option(
        0.01,
        check=lambda v: 0.0 <= v <= 1.0,
        rule="a number in [0, 1]",
        help="fail (exit 65, the previous dataset untouched) when a larger share of the rows read is rejected",
    )
    overwrite: bool = option(False, help="replace --data if it exists")
    # Library-only knobs: not on the command line.
    chunk_rows: int = 4096  # raw rows read at a time
    bucket_rows: int = BUCKET_ROWS  # rows per shuffle bucket

    def columns(self) -> ColumnSpec:
        return ColumnSpec(tuple(self.text_column), self.label_column, self.header)

    def ngram(self) -> NgramConfig:
        return NgramConfig(top_k=self.top_k, min_df=self.min_df, hash_buckets=self.hash_buckets)

    def sequence(self) -> SequenceConfig:
        return SequenceConfig(top_k=self.top_k, max_length=self.max_length, hash_buckets=self.hash_buckets)


@dataclass
class _FirstPass:
    """What the first pass over the raw inputs learns."""

    labels: LabelIndex = field(default_factory=LabelIndex)
    words: WordCounts = field(default_factory=WordCounts)
    sources: list[dict] = field(default_factory=list)
    split_rows: np.ndarray = field(default_factory=lambda: np.zeros(len(SPLIT_NAMES), np.int64))
    spill: Spill | None = None  # hashed n-gram counts (n-gram path)
    doc_freq: DocFreq | None = None
    tokens: TokenCounts | None = None  # token frequencies (sequence path)
    rejects: RejectLog | None = None  # what the readers and the label map did not keep


def prepare(opts: PrepareOptions) -> Manifest:
    check_options(opts)
    if not opts.inputs:
        raise UsageError("no training inputs given")
    for path in [*opts.inputs, *opts.test]:
        detect_format(path)  # fail on a bad path before any work
    with staging_dir(opts.data, overwrite=opts.overwrite) as stage:
        first = _first_pass(opts, stage)
        label_names, remap = first.labels.finalize()
        if len(label_names) < 2:
            raise DataError(f"need at least 2 classes in the training inputs, found {label_names}")
        choice = choose_vectorizer(opts.vectorizer, first.words.samples, first.words.median())
        log.info(
            f"S = {choice['samples']} samples, W = {choice['median_words_per_sample']:g} median words per sample, "
            f"S/W = {choice['samples_per_word'] or float('inf'):.1f} -> {choice['chosen']}"
            + (" (forced)" if opts.vectorizer != "auto" else f" (threshold {SW_THRESHOLD:g})")
        )
        stats: dict = {}
        state: TfidfState | SequenceState
        if choice["chosen"] == "ngram":
            assert first.doc_freq is not None, "the first pass counts n-grams unless sequences were forced"
            state = _select(opts, first, remap, len(label_names))
            shards, per_class = _write_ngrams(opts, first, state, remap, stage, len(label_names))
            stats["vocabulary_buckets"] = int((first.doc_freq.df >= opts.min_df).sum())
        else:
            tokens = first.tokens or _count_tokens(opts, first.labels)
            sequences = SequenceState.fit(opts.sequence(), tokens)
            log.info(
                f"vocabulary of {len(sequences.vocab)} tokens, sequences of {sequences.length} "
                f"(longest text {tokens.longest})"
            )
            shards, per_class = _write_sequences(opts, first, sequences, remap, stage, len(label_names))
            state = sequences
        if first.spill is not None:
            shutil.rmtree(first.spill.directory)
        vectorizer = Vectorizer(state, label_names)
        manifest = Manifest(
            shard_format=opts.format,
            encoding=vectorizer.encoding,
            n_features=state.n_features,
            sequence_length=state.length if isinstance(state, SequenceState) else None,
            labels=label_names,
            vectorizer=vectorizer.save(stage),
            choice=choice,
            shards=shards,
            split={"val_fraction": opts.val_fraction, "rule": "blake2b-64(utf8(text)) / 2**64 < val_fraction"},
            row_order={
                "order": "shuffled",
                "seed": opts.seed,
                "bucket_rows": opts.bucket_rows,
                "rule": "bucket splitmix64(row_id, seed) % n_buckets, then a seeded permutation of each bucket",
            },
            sources=first.sources,
            stats={
                "rows": {name: int(per_class[i].sum()) for i, name in enumerate(SPLIT_NAMES)},
                "rows_per_class": {name: per_class[i].tolist() for i, name in enumerate(SPLIT_NAMES)},
                "rejected": first.rejects.summary() if first.rejects else {},
                "samples": first.words.samples,
                "median_words_per_sample": first.words.median(),
                **stats,
            },
            created={
                "tool": f"streamtrain {__version__}",
                "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "options": effective(opts),
            },
        )
        manifest.save(stage)
    rows = ", ".join(f"{split} {n}" for split, n in manifest.stats["rows"].items())
    log.info(
        f"prepared {opts.data}: {rows} rows; {manifest.encoding} features: {manifest.n_features}; "
        f"{len(manifest.labels)} classes; {len(manifest.shards)} {manifest.shard_format} shards"
    )
    return manifest


def _inputs(opts: PrepareOptions) -> list[tuple[str, str]]:
    """(role, path) of every input, training inputs first."""
    return [("train", str(p)) for p in opts.inputs] + [("test", str(p)) for p in opts.test]


def _rows(
    opts: PrepareOptions, labels: LabelIndex, rejects: RejectLog | None = None
) -> Iterator[tuple[int, str, RawChunk, np.ndarray, np.ndarray, np.ndarray]]:
    """Every kept input row in order as (input index, role, chunk, label ids, split codes, row ids).

    Identical on every pass. Test rows whose label training never saw are dropped here; ``rejects``
    (the first pass only) records them and every row the readers rejected.
    """
    next_row = 0
    for index, (role, path) in enumerate(_inputs(opts)):
        for chunk in read_chunks([path], opts.columns(), opts.chunk_rows, opts.max_field_bytes):
            if role == "test":
                labels.freeze()
            ids = labels.encode(chunk)
            if rejects is not None:
                for reject in chunk.rejected:
                    rejects.add(index, reject)
                for i in np.flatnonzero(ids < 0):
                    where, row = chunk.where(int(i))
                    rejects.add(index, Reject(where, row, "unknown_label", chunk.labels[i][:80]))
            if (ids < 0).any():
                chunk, ids = _keep(chunk, ids >= 0), ids[ids >= 0]
            splits = assign_splits(chunk.texts, opts.val_fraction, is_test=role == "test")
            row_ids = np.arange(next_row, next_row + len(chunk), dtype=np.int64)
            next_row += len(chunk)
            yield index, role, chunk, ids, splits, row_ids


def _keep(chunk: RawChunk, keep: np.ndarray) -> RawChunk:
    rows = np.flatnonzero(keep)
    return RawChunk(
        chunk.path,
        [chunk.texts[i] for i in rows],
        [chunk.labels[i] for i in rows],
        [chunk.rows[i] for i in rows],
    )


def _first_pass(opts: PrepareOptions, stage: Path) -> _FirstPass:
    first = _FirstPass()
    if opts.vectorizer == "sequence":
        first.tokens = TokenCounts(opts.hash_buckets)
    else:
        first.spill = Spill(stage / ".spill", opts.hash_buckets)
        first.doc_freq = DocFreq(opts.hash_buckets)
    inputs = _inputs(opts)
    first.sources = [
        {"path": os.path.abspath(path), "role": role, "format": detect_format(path), "first_row_id": 0, "rows": 0}
        for role, path in inputs
    ]
    rejects = first.rejects = RejectLog(stage, len(inputs))
    train_rows = 0
    config = opts.ngram()
    for index, role, chunk, labels, splits, row_ids in _rows(opts, first.labels, rejects):
        first.sources[index]["rows"] += len(chunk)
        first.split_rows += np.bincount(splits, minlength=len(SPLIT_NAMES))
        train = splits == TRAIN
        train_rows += int(train.sum())
        if role == "train":
            first.words.update(chunk.texts)
        if first.tokens is not None:
            first.tokens.update([t for t, keep in zip(chunk.texts, train) if keep])
        if first.spill is not None and first.doc_freq is not None:
            counts = hash_counts(config, chunk.texts)
            first.doc_freq.update(counts[train])
            first.spill.append(SpillPart(counts, labels, splits, row_ids))
    rejects.close()
    start = 0
    for i, source in enumerate(first.sources):
        source["first_row_id"], start = start, start + source["rows"]
        source["rejected"] = rejects.per_source[i]
        source["read"] = source["rows"] + source["rejected"]
        if not source["read"]:
            log.warning(f"{source['path']}: no rows (a header and nothing else?)")
        log.info(f"read {source['rows']} {source['role']} rows from {source['path']}, rejected {source['rejected']}")
    rejects.estimate_lost([s["read"] for s in first.sources])
    rejects.check(sum(s["read"] for s in first.sources), opts.max_bad_fraction)
    if train_rows == 0:
        empty = [s["path"] for s in first.sources if s["role"] == "train" and not s["rows"]]
        if len(empty) == len(opts.inputs):
            raise DataError(f"the training inputs hold no rows: {', '.join(empty)} (a header and nothing else?)")
        raise DataError("no training rows: every input row went to validation or test")
    return first


def _select(opts: PrepareOptions, first: _FirstPass, remap: np.ndarray, n_classes: int) -> TfidfState:
    assert first.spill is not None and first.doc_freq is not None, "the first pass counted n-grams"
    idf = first.doc_freq.idf(opts.min_df)
    vocabulary = int((idf > 0).sum())
    if not vocabulary:
        raise DataError(f"no n-gram occurs in {opts.min_df} or more training rows")
    weigher = TfidfState(opts.ngram(), idf, np.zeros(0, np.int64))  # weighs; selects nothing yet
    moments = ClassMoments(opts.hash_buckets, n_classes)
    for part in first.spill:
        train = part.splits == TRAIN
        counts = part.counts[train]
        values, _ = weigher.tfidf_buckets(counts)
        moments.update(
            SparseRows(
                counts.indptr.astype(np.int64),
                counts.indices,
                values,
                remap[part.labels[train]],
                part.row_ids[train],
                counts.shape[1],
            )
        )
    state = fit_selection(opts.ngram(), moments, idf)
    log.info(f"selected {state.n_features} of {vocabulary} n-gram buckets (df >= {opts.min_df}) by F-value")
    return state


class _SplitWriters:
    """Per split: a ``BucketShuffle`` in front of a ``SplitWriter``; plus per-class row counts."""

    def __init__(self, opts: PrepareOptions, stage: Path, first: _FirstPass, encoding: str, width: int, n_classes: int):
        self.shuffles = [
            BucketShuffle(
                stage / ".shuffle" / name,
                int(first.split_rows[code]),
                empty_rows(encoding, width),
                opts.seed,
                code,
                opts.bucket_rows,
            )
            for code, name in enumerate(SPLIT_NAMES)
        ]
        self.writers = [
            SplitWriter(stage, opts.format, name, encoding, width, opts.shard_rows, opts.block_rows)
            for name in SPLIT_NAMES
        ]
        self.per_class = np.zeros((len(SPLIT_NAMES), n_classes), np.int64)

    def write(self, rows: Rows, splits: np.ndarray) -> None:
        for code, shuffle in enumerate(self.shuffles):
            picked = np.flatnonzero(splits == code)
            if len(picked):
                sub = rows.take(picked)
                shuffle.add(sub)
                self.per_class[code] += np.bincount(sub.labels, minlength=self.per_class.shape[1])

    def close(self) -> tuple[list[ShardInfo], np.ndarray]:
        for shuffle, writer in zip(self.shuffles, self.writers):
            for rows in shuffle.drain():
                writer.write(rows)
        shards = [info for w in self.writers for info in w.close()]
        for i, name in enumerate(SPLIT_NAMES):
            log.info(f"{name}: {int(self.per_class[i].sum())} rows in {sum(s.split == name for s in shards)} shard(s)")
        return shards, self.per_class


def _write_ngrams(
    opts: PrepareOptions, first: _FirstPass, state: TfidfState, remap: np.ndarray, stage: Path, n_classes: int
):
    assert first.spill is not None, "the first pass spilled the n-gram counts"
    out = _SplitWriters(opts, stage, first, "ngram", state.n_features, n_classes)
    for part in first.spill:
        out.write(state.featurize(part.counts, remap[part.labels], part.row_ids), part.splits)
    return out.close()


def _count_tokens(opts: PrepareOptions, labels: LabelIndex) -> TokenCounts:
    counts = TokenCounts(opts.hash_buckets)
    for _, _, chunk, _, splits, _ in _rows(opts, labels):
        counts.update([t for t, s in zip(chunk.texts, splits) if s == TRAIN])
    return counts


def _write_sequences(
    opts: PrepareOptions, first: _FirstPass, state: SequenceState, remap: np.ndarray, stage: Path, n_classes: int
):
    out = _SplitWriters(opts, stage, first, "sequence", state.length, n_classes)
    for _, _, chunk, labels, splits, row_ids in _rows(opts, first.labels):
        out.write(state.encode(chunk.texts, remap[labels], row_ids), splits)
    return out.close()
