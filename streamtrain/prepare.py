"""``python -m streamtrain.prepare``: raw labelled text -> vectorized shards + manifest.

Three streaming passes, each holding one chunk of rows at a time:

1. ``_tokenize``: read raw inputs, assign splits, hash n-grams once, count
   document frequencies on training rows, spill the counts to scratch files.
2. ``_select``: stream the spill, accumulate per-class TF-IDF moments of the
   candidate n-grams, keep the top-k by ANOVA F-value.
3. ``_write``: stream the spill again, turn counts into final TF-IDF rows
   and write them to bounded shards per split.

Everything is built in a staging directory that replaces ``--out`` only when
the manifest has been written, so a crash leaves nothing that looks complete.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamtrain import __version__
from streamtrain.atomic import staging_dir
from streamtrain.corpus_stats import WordCounts
from streamtrain.errors import DataError, UsageError, run_cli
from streamtrain.labels import LabelIndex
from streamtrain.manifest import Manifest
from streamtrain.readers import ColumnSpec, detect_format, read_chunks
from streamtrain.rows import SparseRows
from streamtrain.shards import FORMATS, SplitWriter
from streamtrain.spill import Spill, SpillPart
from streamtrain.split import SPLIT_NAMES, TRAIN, assign_splits
from streamtrain.tfidf import ClassMoments, DocFreq, NgramConfig, TfidfState, fit_selection, hash_counts
from streamtrain.vectorizer import Vectorizer


@dataclass
class PrepareOptions:
    inputs: list[str]
    out: Path
    test_inputs: list[str] = field(default_factory=list)
    shard_format: str = "hdf5"
    val_fraction: float = 0.1
    shard_rows: int = 20_000
    block_rows: int = 1024
    chunk_rows: int = 4096
    columns: ColumnSpec = field(default_factory=ColumnSpec)
    ngram: NgramConfig = field(default_factory=NgramConfig)
    overwrite: bool = False
    argv: list[str] = field(default_factory=list)


@dataclass
class _Pass1:
    """What the tokenizing pass learns."""

    spill: Spill
    doc_freq: DocFreq
    labels: LabelIndex
    words: WordCounts
    sources: list[dict]


def log(msg: str) -> None:
    print(f"[prepare] {msg}", file=sys.stderr, flush=True)


def prepare(opts: PrepareOptions) -> Manifest:
    if opts.shard_format not in FORMATS:
        raise UsageError(f"--format must be one of {FORMATS}")
    for path in [*opts.inputs, *opts.test_inputs]:
        detect_format(path)  # fail on a bad path before any work
    with staging_dir(opts.out, overwrite=opts.overwrite) as stage:
        p1 = _tokenize(opts, stage)
        label_names, remap = p1.labels.finalize()
        if len(label_names) < 2:
            raise DataError(f"need at least 2 classes in the training inputs, found {label_names}")
        state = _select(opts, p1, remap, len(label_names))
        shards, per_class = _write(opts, p1.spill, state, remap, stage, len(label_names))
        shutil.rmtree(p1.spill.directory)
        vec_doc = Vectorizer(state, label_names).save(stage)
        manifest = Manifest(
            shard_format=opts.shard_format,
            encoding="tfidf",
            n_features=state.n_features,
            labels=label_names,
            vectorizer=vec_doc,
            shards=shards,
            split={"val_fraction": opts.val_fraction, "rule": "blake2b-64(utf8(text)) / 2**64 < val_fraction"},
            sources=p1.sources,
            stats={
                "rows": {name: int(sum(per_class[i])) for i, name in enumerate(SPLIT_NAMES)},
                "rows_per_class": {name: per_class[i].tolist() for i, name in enumerate(SPLIT_NAMES)},
                "samples": p1.words.samples,
                "median_words_per_sample": p1.words.median(),
                "vocabulary_buckets": int((p1.doc_freq.df >= opts.ngram.min_df).sum()),
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


def _tokenize(opts: PrepareOptions, stage: Path) -> _Pass1:
    p1 = _Pass1(Spill(stage / ".spill", opts.ngram.hash_buckets), DocFreq(opts.ngram.hash_buckets), LabelIndex(), WordCounts(), [])
    next_row = 0
    for role, inputs in (("train", opts.inputs), ("test", opts.test_inputs)):
        if role == "test":
            p1.labels.freeze()
        for path in inputs:
            first, fmt = next_row, detect_format(path)
            for chunk in read_chunks([path], opts.columns, opts.chunk_rows):
                splits = assign_splits(chunk.texts, opts.val_fraction, is_test=role == "test")
                labels = p1.labels.encode(chunk)
                counts = hash_counts(opts.ngram, chunk.texts)
                p1.doc_freq.update(counts[splits == TRAIN])
                if role == "train":
                    p1.words.update(chunk.texts)
                row_ids = np.arange(next_row, next_row + len(chunk), dtype=np.int64)
                p1.spill.append(SpillPart(counts, labels, splits, row_ids))
                next_row += len(chunk)
            p1.sources.append(
                {"path": os.path.abspath(path), "role": role, "format": fmt, "first_row_id": first, "rows": next_row - first}
            )
            log(f"read {next_row - first} rows from {path}")
    if p1.doc_freq.n_docs == 0:
        raise DataError("no training rows: every input row went to validation or test")
    return p1


def _select(opts: PrepareOptions, p1: _Pass1, remap: np.ndarray, n_classes: int) -> TfidfState:
    idf = p1.doc_freq.idf(opts.ngram.min_df)
    candidates = np.flatnonzero(p1.doc_freq.df >= opts.ngram.min_df)
    if not len(candidates):
        raise DataError(f"no n-gram occurs in {opts.ngram.min_df} or more training rows")
    weigher = TfidfState(opts.ngram, idf, candidates)
    moments = ClassMoments(candidates, n_classes)
    for part in p1.spill:
        train = part.splits == TRAIN
        counts = part.counts[train]
        values, _ = weigher.tfidf_buckets(counts)
        moments.update(
            SparseRows(counts.indptr.astype(np.int64), counts.indices, values, remap[part.labels[train]], part.row_ids[train], counts.shape[1])
        )
    state = fit_selection(opts.ngram, moments, idf)
    log(f"selected {state.n_features} of {len(candidates)} n-gram buckets (df >= {opts.ngram.min_df}) by F-value")
    return state


def _write(opts: PrepareOptions, spill: Spill, state: TfidfState, remap: np.ndarray, stage: Path, n_classes: int):
    writers = [
        SplitWriter(stage, opts.shard_format, name, state.n_features, opts.shard_rows, opts.block_rows) for name in SPLIT_NAMES
    ]
    per_class = np.zeros((len(SPLIT_NAMES), n_classes), np.int64)
    for part in spill:
        rows = state.featurize(part.counts, remap[part.labels], part.row_ids)
        for code, writer in enumerate(writers):
            picked = np.flatnonzero(part.splits == code)
            if len(picked):
                sub = rows.take(picked)
                writer.write(sub)
                per_class[code] += np.bincount(sub.labels, minlength=n_classes)
    shards = [info for w in writers for info in w.close()]
    for i, name in enumerate(SPLIT_NAMES):
        log(f"{name}: {int(per_class[i].sum())} rows in {len([s for s in shards if s.split == name])} shard(s)")
    return shards, per_class


def _column(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m streamtrain.prepare", description=__doc__.split("\n")[0])
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="training inputs: CSV/TSV/JSONL/Parquet files (optionally .gz) or directories with one sub-directory per class")
    p.add_argument("--out", required=True, type=Path, help="output dataset directory")
    p.add_argument("--test", nargs="+", default=[], metavar="INPUT", help="held-out test inputs (same formats)")
    p.add_argument("--format", dest="shard_format", choices=FORMATS, default="hdf5", help="shard file format (default hdf5)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of training rows held out for validation, by a hash of the text (default 0.1)")
    p.add_argument("--shard-rows", type=int, default=20_000, help="rows per shard file (default 20000)")
    p.add_argument("--block-rows", type=int, default=1024, help="rows per block, the unit of shuffled reads (default 1024)")
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
    if min(args.shard_rows, args.block_rows, args.top_k, args.min_df, args.hash_buckets) < 1:
        raise UsageError("--shard-rows, --block-rows, --top-k, --min-df and --hash-buckets must be positive")
    opts = PrepareOptions(
        inputs=args.inputs,
        out=args.out,
        test_inputs=args.test,
        shard_format=args.shard_format,
        val_fraction=args.val_fraction,
        shard_rows=args.shard_rows,
        block_rows=args.block_rows,
        columns=ColumnSpec(tuple(args.text_column or ["text"]), args.label_column, args.header),
        ngram=NgramConfig(top_k=args.top_k, min_df=args.min_df, hash_buckets=args.hash_buckets),
        overwrite=args.overwrite,
        argv=list(sys.argv if argv is None else argv),
    )
    m = prepare(opts)
    print(
        f"prepared {opts.out}: "
        + ", ".join(f"{k} {v}" for k, v in m.stats["rows"].items())
        + f" rows; {m.n_features} features; {len(m.labels)} classes; {len(m.shards)} {m.shard_format} shards"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
