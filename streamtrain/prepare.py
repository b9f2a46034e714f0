"""``python -m streamtrain.prepare``: raw labelled text -> vectorized shards + manifest.

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

Everything is built in a staging directory that replaces ``--out`` only when
the manifest has been written, so a crash leaves nothing that looks complete.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamtrain import __version__
from streamtrain.atomic import staging_dir
from streamtrain.bucket_shuffle import BUCKET_ROWS, BucketShuffle
from streamtrain.corpus_stats import WordCounts
from streamtrain.errors import DataError, UsageError, run_cli
from streamtrain.labels import LabelIndex
from streamtrain.manifest import Manifest
from streamtrain.readers import ColumnSpec, RawChunk, detect_format, read_chunks
from streamtrain.rows import Rows, SparseRows, empty_rows
from streamtrain.sequence import SequenceConfig, SequenceState, TokenCounts
from streamtrain.shards import FORMATS, ShardInfo, SplitWriter
from streamtrain.spill import Spill, SpillPart
from streamtrain.split import SPLIT_NAMES, TRAIN, assign_splits
from streamtrain.tfidf import (
    ClassMoments,
    DocFreq,
    NgramConfig,
    TfidfState,
    fit_selection,
    hash_counts,
)
from streamtrain.vectorizer import Vectorizer

VECTORIZERS = ("auto", "ngram", "sequence")
SW_THRESHOLD = 1500.0  # the guide: sequence models win when samples / median words >= 1500


@dataclass
class PrepareOptions:
    inputs: list[str]
    out: Path
    test_inputs: list[str] = field(default_factory=list)
    shard_format: str = "hdf5"
    vectorizer: str = "auto"
    val_fraction: float = 0.1
    shard_rows: int = 20_000
    block_rows: int = 1024
    chunk_rows: int = 4096
    seed: int = 0  # of the shards' row order
    bucket_rows: int = BUCKET_ROWS
    columns: ColumnSpec = field(default_factory=ColumnSpec)
    ngram: NgramConfig = field(default_factory=NgramConfig)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)
    overwrite: bool = False
    argv: list[str] = field(default_factory=list)


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


def log(msg: str) -> None:
    print(f"[prepare] {msg}", file=sys.stderr, flush=True)


def choose_vectorizer(requested: str, samples: int, median_words: float) -> dict:
    """The guide's rule and the numbers behind it: sequences when S/W >= 1500."""
    ratio = samples / median_words if median_words else float("inf")
    chosen = requested if requested != "auto" else ("sequence" if ratio >= SW_THRESHOLD else "ngram")
    return {
        "requested": requested,
        "chosen": chosen,
        "samples": samples,
        "median_words_per_sample": median_words,
        "samples_per_word": ratio if ratio != float("inf") else None,
        "threshold": SW_THRESHOLD,
    }


def prepare(opts: PrepareOptions) -> Manifest:
    if opts.shard_format not in FORMATS:
        raise UsageError(f"--format must be one of {FORMATS}")
    if opts.vectorizer not in VECTORIZERS:
        raise UsageError(f"--vectorizer must be one of {VECTORIZERS}")
    for path in [*opts.inputs, *opts.test_inputs]:
        detect_format(path)  # fail on a bad path before any work
    with staging_dir(opts.out, overwrite=opts.overwrite) as stage:
        first = _first_pass(opts, stage)
        label_names, remap = first.labels.finalize()
        if len(label_names) < 2:
            raise DataError(f"need at least 2 classes in the training inputs, found {label_names}")
        choice = choose_vectorizer(opts.vectorizer, first.words.samples, first.words.median())
        log(
            f"S = {choice['samples']} samples, W = {choice['median_words_per_sample']:g} median words per sample, "
            f"S/W = {choice['samples_per_word'] or float('inf'):.1f} -> {choice['chosen']}"
            + (" (forced)" if opts.vectorizer != "auto" else f" (threshold {SW_THRESHOLD:g})")
        )
        stats: dict = {}
        if choice["chosen"] == "ngram":
            state = _select(opts, first, remap, len(label_names))
            shards, per_class = _write_ngrams(opts, first, state, remap, stage, len(label_names))
            stats["vocabulary_buckets"] = int((first.doc_freq.df >= opts.ngram.min_df).sum())
        else:
            tokens = first.tokens or _count_tokens(opts)
            state = SequenceState.fit(opts.sequence, tokens)
            log(f"vocabulary of {len(state.vocab)} tokens, sequences of {state.length} (longest text {tokens.longest})")
            shards, per_class = _write_sequences(opts, first, state, remap, stage, len(label_names))
        if first.spill is not None:
            shutil.rmtree(first.spill.directory)
        vectorizer = Vectorizer(state, label_names)
        manifest = Manifest(
            shard_format=opts.shard_format,
            encoding=vectorizer.encoding,
            n_features=state.n_features,
            sequence_length=state.length if vectorizer.encoding == "sequence" else None,
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
                "samples": first.words.samples,
                "median_words_per_sample": first.words.median(),
                **stats,
            },
            created={
                "tool": f"streamtrain {__version__}",
                "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "argv": opts.argv,
                "columns": opts.columns.to_json(),
            },
        )
        manifest.save(stage)
    return manifest


def _inputs(opts: PrepareOptions) -> list[tuple[str, str]]:
    """(role, path) of every input, training inputs first."""
    return [("train", str(p)) for p in opts.inputs] + [("test", str(p)) for p in opts.test_inputs]


def _rows(opts: PrepareOptions) -> Iterator[tuple[int, str, RawChunk, np.ndarray, np.ndarray]]:
    """Every input row in order as (input index, role, chunk, split codes, row ids): identical on every pass."""
    next_row = 0
    for index, (role, path) in enumerate(_inputs(opts)):
        for chunk in read_chunks([path], opts.columns, opts.chunk_rows):
            splits = assign_splits(chunk.texts, opts.val_fraction, is_test=role == "test")
            row_ids = np.arange(next_row, next_row + len(chunk), dtype=np.int64)
            next_row += len(chunk)
            yield index, role, chunk, splits, row_ids


def _first_pass(opts: PrepareOptions, stage: Path) -> _FirstPass:
    first = _FirstPass()
    if opts.vectorizer == "sequence":
        first.tokens = TokenCounts(opts.sequence.hash_buckets)
    else:
        first.spill = Spill(stage / ".spill", opts.ngram.hash_buckets)
        first.doc_freq = DocFreq(opts.ngram.hash_buckets)
    first.sources = [
        {"path": os.path.abspath(path), "role": role, "format": detect_format(path), "first_row_id": 0, "rows": 0}
        for role, path in _inputs(opts)
    ]
    train_rows = 0
    for index, role, chunk, splits, row_ids in _rows(opts):
        if role == "test":
            first.labels.freeze()
        first.sources[index]["rows"] += len(chunk)
        first.split_rows += np.bincount(splits, minlength=len(SPLIT_NAMES))
        labels = first.labels.encode(chunk)
        train = splits == TRAIN
        train_rows += int(train.sum())
        if role == "train":
            first.words.update(chunk.texts)
        if first.tokens is not None:
            first.tokens.update([t for t, keep in zip(chunk.texts, train) if keep])
        if first.spill is not None:
            counts = hash_counts(opts.ngram, chunk.texts)
            first.doc_freq.update(counts[train])
            first.spill.append(SpillPart(counts, labels, splits, row_ids))
    start = 0
    for source in first.sources:
        source["first_row_id"], start = start, start + source["rows"]
        log(f"read {source['rows']} {source['role']} rows from {source['path']}")
    if train_rows == 0:
        raise DataError("no training rows: every input row went to validation or test")
    return first


def _select(opts: PrepareOptions, first: _FirstPass, remap: np.ndarray, n_classes: int) -> TfidfState:
    idf = first.doc_freq.idf(opts.ngram.min_df)
    vocabulary = int((idf > 0).sum())
    if not vocabulary:
        raise DataError(f"no n-gram occurs in {opts.ngram.min_df} or more training rows")
    weigher = TfidfState(opts.ngram, idf, np.zeros(0, np.int64))  # weighs; selects nothing yet
    moments = ClassMoments(opts.ngram.hash_buckets, n_classes)
    for part in first.spill:
        train = part.splits == TRAIN
        counts = part.counts[train]
        values, _ = weigher.tfidf_buckets(counts)
        moments.update(
            SparseRows(counts.indptr.astype(np.int64), counts.indices, values, remap[part.labels[train]], part.row_ids[train], counts.shape[1])
        )
    state = fit_selection(opts.ngram, moments, idf)
    log(f"selected {state.n_features} of {vocabulary} n-gram buckets (df >= {opts.ngram.min_df}) by F-value")
    return state


class _SplitWriters:
    """Per split: a ``BucketShuffle`` in front of a ``SplitWriter``; plus per-class row counts."""

    def __init__(self, opts: PrepareOptions, stage: Path, first: _FirstPass, encoding: str, width: int, n_classes: int):
        self.shuffles = [
            BucketShuffle(stage / ".shuffle" / name, int(first.split_rows[code]), empty_rows(encoding, width), opts.seed, code, opts.bucket_rows)
            for code, name in enumerate(SPLIT_NAMES)
        ]
        self.writers = [
            SplitWriter(stage, opts.shard_format, name, encoding, width, opts.shard_rows, opts.block_rows)
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
            log(f"{name}: {int(self.per_class[i].sum())} rows in {sum(s.split == name for s in shards)} shard(s)")
        return shards, self.per_class


def _write_ngrams(opts: PrepareOptions, first: _FirstPass, state: TfidfState, remap: np.ndarray, stage: Path, n_classes: int):
    out = _SplitWriters(opts, stage, first, "tfidf", state.n_features, n_classes)
    for part in first.spill:
        out.write(state.featurize(part.counts, remap[part.labels], part.row_ids), part.splits)
    return out.close()


def _count_tokens(opts: PrepareOptions) -> TokenCounts:
    counts = TokenCounts(opts.sequence.hash_buckets)
    for _, _, chunk, splits, _ in _rows(opts):
        counts.update([t for t, s in zip(chunk.texts, splits) if s == TRAIN])
    return counts


def _write_sequences(opts: PrepareOptions, first: _FirstPass, state: SequenceState, remap: np.ndarray, stage: Path, n_classes: int):
    out = _SplitWriters(opts, stage, first, "sequence", state.length, n_classes)
    for _, _, chunk, splits, row_ids in _rows(opts):
        out.write(state.encode(chunk.texts, remap[first.labels.encode(chunk)], row_ids), splits)
    return out.close()


def _column(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m streamtrain.prepare", description=__doc__.split("\n")[0])
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="training inputs: CSV/TSV/JSONL/Parquet files (optionally .gz) or directories with one sub-directory per class")
    p.add_argument("--out", required=True, type=Path, help="output dataset directory")
    p.add_argument("--test", nargs="+", default=[], metavar="INPUT", help="held-out test inputs (same formats)")
    p.add_argument("--format", dest="shard_format", choices=FORMATS, default="hdf5", help="shard file format (default hdf5)")
    p.add_argument("--vectorizer", choices=VECTORIZERS, default="auto", help="ngram (TF-IDF), sequence (token ids), or auto: the guide's rule, sequence when samples / median words per sample >= 1500 (default auto)")
    p.add_argument("--max-length", type=int, default=500, help="sequence: longest token sequence kept (default 500)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of training rows held out for validation, by a hash of the text (default 0.1)")
    p.add_argument("--shard-rows", type=int, default=20_000, help="rows per shard file (default 20000)")
    p.add_argument("--block-rows", type=int, default=1024, help="rows per block, the unit of shuffled reads (default 1024)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random row order of the shards (default 0)")
    p.add_argument("--text-column", action="append", type=_column, metavar="NAME|INDEX", help="text column; repeat to join several (default: text)")
    p.add_argument("--label-column", type=_column, default="label", metavar="NAME|INDEX", help="label column (default: label)")
    header = p.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None, help="CSV/TSV files have a header row (default: yes unless columns are given by index)")
    header.add_argument("--no-header", dest="header", action="store_false", help="CSV/TSV files have no header row")
    p.add_argument("--top-k", type=int, default=20_000, help="number of n-gram features kept (default 20000)")
    p.add_argument("--min-df", type=int, default=2, help="minimum document frequency of an n-gram (default 2)")
    p.add_argument("--hash-buckets", type=int, default=1 << 21, help="hash space for n-gram statistics; fixes prepare's memory (default 2**21)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0.0 <= args.val_fraction < 1.0:
        raise UsageError("--val-fraction must be in [0, 1)")
    if min(args.shard_rows, args.block_rows, args.top_k, args.min_df, args.hash_buckets, args.max_length) < 1:
        raise UsageError("--shard-rows, --block-rows, --top-k, --min-df, --hash-buckets and --max-length must be positive")
    opts = PrepareOptions(
        inputs=args.inputs,
        out=args.out,
        test_inputs=args.test,
        shard_format=args.shard_format,
        vectorizer=args.vectorizer,
        val_fraction=args.val_fraction,
        shard_rows=args.shard_rows,
        block_rows=args.block_rows,
        seed=args.seed,
        columns=ColumnSpec(tuple(args.text_column or ["text"]), args.label_column, args.header),
        ngram=NgramConfig(top_k=args.top_k, min_df=args.min_df, hash_buckets=args.hash_buckets),
        sequence=SequenceConfig(top_k=args.top_k, max_length=args.max_length, hash_buckets=args.hash_buckets),
        overwrite=args.overwrite,
        argv=list(sys.argv if argv is None else argv),
    )
    m = prepare(opts)
    print(
        f"prepared {opts.out}: "
        + ", ".join(f"{k} {v}" for k, v in m.stats["rows"].items())
        + f" rows; {m.encoding} ({m.choice['chosen']}: S/W = {m.choice['samples_per_word'] or float('inf'):.1f}); "
        + f"{m.n_features} features; {len(m.labels)} classes; {len(m.shards)} {m.shard_format} shards"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
