"""prepare: raw labelled text -> vectorized shards + manifest (``PrepareOptions``, ``prepare``).

Streaming passes, each holding a bounded window of chunks at a time. The
per-chunk work of reading passes (split by ``split_rule``, words per text,
hashed n-gram counts: ``analyze_chunk``, a pure function of the chunk's texts)
runs on an executor (``dataset.parallel``: ``--jobs`` local threads, the
workers of a Dask cluster with ``--scheduler``, or any
``concurrent.futures.Executor`` handed to ``prepare``), at most one chunk in
flight per worker and ``MAX_IN_FLIGHT`` in all, results in input order, so
the output is the same bytes for any executor and number of workers. Under
the indexed split rule (``lsh-bigrams``) the workers also compute each row's
band keys, and this process resolves them through the dataset's band-key
index in input order (``RowSplits``), saved as ``split_index.npz``; later
raw passes replay the first pass's splits. This
process reads every input and writes every file; when a chunk's work fails
(on a cluster: after the engine's own retries), the run fails naming the
input and rows of the chunk:

1. ``_first_pass``: read the raw inputs, assign splits and labels, measure
   samples S and median words per sample W; for n-grams also hash them once,
   count document frequencies and spill the counts to scratch files; for
   forced sequences count token frequencies instead.
2. ``choose_vectorizer``: the guide's rule, sequences when S/W >= 1500;
   when it says sequences under ``auto``, a bake-off of both families on a
   bounded sample decides (``train.bakeoff``).
3. n-grams: ``_select`` streams the spill for the ANOVA F-test and keeps the
   top-k, then names the selected features and each class's top features
   from a sample of training texts that the first pass kept
   (``vectorize.ngram_names``: ``feature_names.json``); ``_write_ngrams``
   streams the spill again into TF-IDF shards.
   Sequences: ``_count_tokens`` (only when not done in pass 1) and
   ``_write_sequences`` re-read the raw inputs into token-id shards.
   Either way the rows reach the shards through one ``BucketShuffle`` per
   split, so shards hold each split in a seeded random order, not the
   input's.

Each pass over the raw inputs or the spill reports its progress by name
(``pass 1/3: reading and counting``; ``pass_name``) through
``streamtrain.progress``: rows, bytes of the total, MB/s, ETA.

Everything is built in a staging directory that replaces ``--data`` only when
the manifest has been written, so a crash leaves nothing that looks complete.

The first pass also records each input's size and sha256 (``sources``),
keeps the validation sample (``val_sample``), and the shard-writing pass
measures how much of the training text the fitted vectorizer represents
(``drift``: the baseline for appends).

Modes, all under the dataset's writer lock (``fs.locks.writer_lock``, held
for the whole run, so a second prepare on the same ``--data`` gets ``Busy``,
exit 75, naming the holder): a new dataset; ``--overwrite``; ``--refit``
(rebuild from every recorded input, each once and as it is now, plus new ones);
``--append`` (``dataset.append``: new shards with the frozen vectorizer).
Replacing a dataset waits for its readers (``fs.locks.no_readers``) at the
swap, or fails at once before any work when ``--wait`` is 0. ``--overwrite``
replaces only a dataset (``manifest.is_dataset``) or an empty directory, and
never a symlink, ``.`` or a directory above the working directory
(``fs.atomic.check_target``, exit 2 before any work).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from streamtrain import __version__
from streamtrain.dataset import sources, space
from streamtrain.dataset.bucket_shuffle import BUCKET_ROWS, BucketShuffle
from streamtrain.dataset.drift import Coverage, coverage_for
from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest, ModelInputs, is_dataset
from streamtrain.dataset.parallel import (
    CLUSTER_EXTRA,
    InlineExecutor,
    engine_failure,
    executor_for,
    ordered_map,
    running,
    workers,
)
from streamtrain.dataset.reject_log import RejectLog
from streamtrain.dataset.shards import FORMATS, ShardInfo, SplitWriter
from streamtrain.dataset.spill import Spill, SpillPart
from streamtrain.dataset.val_sample import ValSample
from streamtrain.errors import DataError, StreamtrainError, UsageError
from streamtrain.fs.atomic import check_target, staging_dir, sweep_stale
from streamtrain.fs.checksums import file_record
from streamtrain.fs.locks import no_readers, writer_lock
from streamtrain.io.readers import (
    WHOLE,
    Column,
    ColumnSpec,
    Portion,
    RawChunk,
    detect_format,
    input_bytes,
    read_chunks,
)
from streamtrain.io.rejects import MAX_FIELD_BYTES, Reject
from streamtrain.options import FRACTION, POSITIVE, SECONDS, SHARE, check_options, effective, option
from streamtrain.progress import Progress
from streamtrain.vectorize.choice import VECTORIZERS, ChoiceSample, choice_line, choose_vectorizer, needs_bakeoff
from streamtrain.vectorize.defaults import (
    HASH_BUCKETS,
    MAX_CANDIDATES,
    MAX_LENGTH,
    MIN_DF,
    NGRAM_TOP_K,
    SW_THRESHOLD,
    TOP_K,
)
from streamtrain.vectorize.labels import LabelIndex
from streamtrain.vectorize.near_dups import BandIndex, band_keys
from streamtrain.vectorize.ngram_names import NameSample, top_features
from streamtrain.vectorize.ngrams import HASHER
from streamtrain.vectorize.rows import Rows, SparseRows, empty_rows
from streamtrain.vectorize.sequence import CODEPOINT, SequenceConfig, SequenceState, TokenCounts
from streamtrain.vectorize.split import (
    DEFAULT_RULE,
    INDEXED_RULES,
    SPLIT_NAMES,
    SPLIT_RULES,
    TRAIN,
    VAL,
    assign_splits,
    own_rule,
    rule_params,
)
from streamtrain.vectorize.stats import WordCounts, words_per_text
from streamtrain.vectorize.tfidf import (
    ClassMoments,
    DocFreq,
    NgramConfig,
    TfidfState,
    candidate_buckets,
    fit_selection,
    hash_counts,
)
from streamtrain.vectorize.vectorizer import Vectorizer
from streamtrain.vectorize.words import word_hashes

log = logging.getLogger(__name__)
Announce = Callable[[ModelInputs], None]  # ``prepare``'s ``announce``
WORKERS_AHEAD = 1  # chunks in flight per worker: with more, in-flight chunks (~25 MB each) grew peak RSS
# Chunks in flight whatever the number of workers (a large cluster's, many cores'): this process holds each one's
# texts and result, and its own share of the work (reading, counting, writing) bounds what more workers can add:
# analyze_chunk was 2.9 s of IMDB's 11.1 s inline prepare, so a few workers keep up with one reading process.
MAX_IN_FLIGHT = 16


def column(value: str) -> Column:
    """A column given on the command line: a 0-based index if all digits, else a header name."""
    return int(value) if value.isdigit() else value


@dataclass(kw_only=True)
class PrepareOptions:
    inputs: list[str] = option(
        factory=list,
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
    top_k: int | None = option(
        None,
        **POSITIVE,
        help=f"n-gram features kept (by F-value), or tokens kept (by frequency); unset: {NGRAM_TOP_K:,} n-grams, "
        f"{TOP_K:,} tokens",
    )
    min_df: int = option(MIN_DF, **POSITIVE, help="n-grams: minimum document frequency")
    hash_buckets: int = option(
        HASH_BUCKETS, **POSITIVE, help="hash space of n-gram and token statistics; fixes prepare's memory"
    )
    max_field_bytes: int = option(
        MAX_FIELD_BYTES, **POSITIVE, help="a longer record, line or document is rejected (bounds prepare's memory)"
    )
    max_bad_fraction: float = option(
        0.01,
        **SHARE,
        help="fail (exit 65, the previous dataset untouched) when a larger share of the rows read is rejected",
    )
    overwrite: bool = option(False, help="replace --data if it exists")
    append: bool = option(
        False,
        help="add the INPUTs (and --test inputs) to the existing dataset --data as new shards, vectorized with its "
        "frozen vectorizer and label map and read with its recorded column, split and shard options; an input "
        "already ingested (same size and sha256) is skipped, of a directory ingested before only its new files are "
        "read, of a file that grew only what follows its ingested part; an ingested part that changed: exit 65",
    )
    refit: bool = option(
        False,
        help="rebuild --data from every input it recorded (each once, as it is now) plus any new INPUTs and --test "
        "inputs, fitting a new vectorizer and label map with its recorded options; replaces --data",
    )
    wait: float = option(
        0.0,
        **SECONDS,
        help="seconds to wait for another run holding the dataset's lock (or, when replacing it, for its readers) "
        "before exiting 75",
    )
    jobs: int | None = option(
        None,
        **POSITIVE,
        help="worker threads that tokenize and hash; unset: one per core. The dataset is the same bytes for any number",
    )
    scheduler: str | None = option(
        None,
        metavar="ADDRESS",
        help="tokenize and hash on the workers of the Dask scheduler at ADDRESS (tcp://HOST:8786) instead of local "
        "threads (not with --jobs); this process still reads the inputs and writes the dataset, the same bytes. "
        "Needs " + CLUSTER_EXTRA,
    )
    # Library-only knobs: not on the command line.
    chunk_rows: int = 4096  # raw rows read at a time
    bucket_rows: int = BUCKET_ROWS  # rows per shuffle bucket
    split_rule: str = DEFAULT_RULE  # ``vectorize.split.SPLIT_RULES``; an append or refit keeps its dataset's
    portions: dict[str, Portion] = field(default_factory=dict)  # by input path: the part read (an append's)

    def columns(self) -> ColumnSpec:
        return ColumnSpec(tuple(self.text_column), self.label_column, self.header)

    def ngram(self) -> NgramConfig:
        return NgramConfig(
            top_k=self.top_k or NGRAM_TOP_K,
            min_df=self.min_df,
            hash_buckets=self.hash_buckets,
            hasher=HASHER,
            sublinear_tf=True,
        )

    def sequence(self) -> SequenceConfig:
        return SequenceConfig(
            top_k=self.top_k or TOP_K,
            max_length=self.max_length,
            hash_buckets=self.hash_buckets,
            lowercase=CODEPOINT,  # the tokenizer a serving graph repeats (serve.graph); old datasets: their own
        )


# Options that shape the rows of a dataset: an append or a refit takes them from the manifest, never from its own
# command line (which sets only the inputs and the run's policy: --max-bad-fraction, --wait).
RECORDED = (
    "format",
    "vectorizer",
    "max_length",
    "val_fraction",
    "shard_rows",
    "block_rows",
    "seed",
    "text_column",
    "label_column",
    "header",
    "top_k",
    "min_df",
    "hash_buckets",
    "max_field_bytes",
)


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
    val_sample: ValSample = field(default_factory=ValSample)  # raw text of some validation rows
    names: NameSample = field(default_factory=NameSample)  # some training texts, to name n-gram features by
    choice_sample: ChoiceSample = field(default_factory=ChoiceSample)  # labelled training rows: auto's bake-off
    row_splits: RowSplits | None = None  # every row's split, decided by this pass (later passes replay it)


def prepare(opts: PrepareOptions, executor: Executor | None = None, announce: Announce | None = None) -> Manifest:
    """Prepare, append to (``opts.append``) or refit (``opts.refit``) the dataset ``opts.data``.

    The per-chunk work (tokenizing, hashing, splitting) runs on ``executor``: when None, on ``opts.jobs``
    local worker threads or the Dask cluster of ``opts.scheduler`` (``parallel.running``), shut down (and
    disconnected) on return. ``announce`` is called once with the dataset's ``ModelInputs`` as soon as they
    are known (n-grams: after the first pass, the F-test keeping ``top_k`` of its candidates; sequences:
    after the vocabulary; an append: at its start), before the shards are written: ``train`` builds the
    model meanwhile.
    """
    check_options(opts)
    if opts.scheduler is not None and opts.jobs is not None:
        raise UsageError(
            "--jobs sets this machine's threads and --scheduler hands the work to a Dask cluster: give one "
            "(the workers' threads are `dask worker --nthreads N`)"
        )
    if opts.scheduler is not None and executor is not None:
        raise UsageError("--scheduler makes prepare's executor; a library call that hands in one cannot also set it")
    if opts.append and (opts.overwrite or opts.refit):
        raise UsageError("--append adds to a dataset; it cannot be combined with --overwrite or --refit")
    if opts.refit and opts.overwrite:
        raise UsageError("--refit replaces the dataset it rebuilds; --overwrite is not needed with it")
    if not opts.inputs and not opts.refit and not (opts.append and opts.test):
        raise UsageError("no training inputs given")
    for path in [*opts.inputs, *opts.test]:
        detect_format(path)  # fail on a bad path before any work
    if not opts.append:
        check_target(opts.data, opts.overwrite or opts.refit, is_dataset)  # and again where it is replaced
    space.check(opts)  # refuse at once (73) when the file system of --data clearly lacks the space
    with writer_lock(opts.data, "dataset", opts.wait), _executor(opts, executor) as work:
        sweep_stale(opts.data)  # a killed --overwrite or --refit's staging directory, whatever this run's mode
        if (opts.overwrite or opts.refit) and Path(opts.data).exists() and opts.wait == 0:
            with no_readers(opts.data, 0):  # fail before the work, not after it, when a fit or evaluate reads it
                pass
        if opts.append:
            from streamtrain.dataset.append import append

            return append(opts, work, announce)
        if opts.refit:
            return _refit(opts, work, announce)
        return _build(opts, work, announce=announce)


@contextlib.contextmanager
def _executor(opts: PrepareOptions, given: Executor | None) -> Iterator[Executor]:
    if given is not None:
        yield given
        return
    with running(opts.jobs, opts.scheduler) as executor:
        yield executor


def existing(data: str | Path, mode: str) -> Manifest:
    """The manifest of the dataset that ``--append``/``--refit`` works on; ``UsageError`` when there is none."""
    if not (Path(data) / MANIFEST_NAME).is_file():
        raise UsageError(
            f"{mode} needs an existing dataset, and {data} is not one (no {MANIFEST_NAME}): prepare it first"
        )
    return Manifest.load(data)


def recorded_options(manifest: Manifest, opts: PrepareOptions, **changes) -> PrepareOptions:
    """``opts`` with the dataset's recorded ``RECORDED`` options (a differing non-default value is warned about)."""
    recorded = manifest.created.get("options", {})
    defaults = PrepareOptions(data=opts.data)
    values = {}
    for name in RECORDED:
        given = getattr(opts, name)
        value = recorded.get(name, given)
        if name == "format":
            value = manifest.shard_format
        if given != value and given != getattr(defaults, name):
            log.warning(
                f"--{name.replace('_', '-')} {given!r} is ignored: {opts.data} was prepared with {value!r}, "
                "and an append or a refit keeps the dataset's options"
            )
        values[name] = value
    # Datasets made before the rule had a name split by the exact text's hash; their appends still do.
    values["split_rule"] = manifest.split.get("name", "blake2b")
    return dataclasses.replace(opts, **values, **changes)


def next_night(manifest: Manifest) -> int:
    """The number of the next ingest: one more than any recorded (0 is the first prepare)."""
    nights = [int(s.get("night", 0)) for s in manifest.sources] + [int(a["night"]) for a in manifest.appends]
    return 1 + max(nights, default=0)


def _refit(opts: PrepareOptions, executor: Executor, announce: Announce | None = None) -> Manifest:
    old = existing(opts.data, "--refit")
    recorded = _recorded_inputs(old, opts.data)
    night, at = next_night(old), sources.now()
    new = _refit_new(opts, old.sources, night, at)
    every = [s for s in recorded + new if s["role"] == "train"] + [s for s in recorded + new if s["role"] == "test"]
    build = recorded_options(
        old,
        opts,
        inputs=[s["path"] for s in every if s["role"] == "train"],
        test=[s["path"] for s in every if s["role"] == "test"],
        overwrite=True,
        refit=False,
    )
    log.info(
        f"refitting {opts.data} from {len(recorded)} recorded input(s)"
        + (f" and {len(new)} new one(s)" if new else "")
        + f" (its {len(old.appends)} append(s) included)"
    )
    refit_of = {
        "created_at": old.created.get("at"),
        "appends": len(old.appends),
        "rows": old.stats.get("rows", {}),
        "n_features": old.n_features,
        "new_inputs": [s["path"] for s in new],
    }
    keys = ("bytes", "sha256", "documents", "ingested_at", "night")
    provenance = [{k: s[k] for k in keys if k in s} for s in every]
    return _build(build, executor, provenance, {"refit_of": refit_of}, announce)


def _recorded_inputs(old: Manifest, data: str) -> list[dict]:
    """Each input the dataset recorded, once (an input that grew or gained documents has a record per night), as
    it is now: a refit reads it whole. A missing one stops the refit; one that changed is warned about."""
    latest: dict[tuple[str, str], dict] = {}
    first: dict[tuple[str, str], dict] = {}
    for s in old.sources:
        key = (s["role"], s["path"])
        first.setdefault(key, s)
        if key not in latest or int(s.get("bytes", 0)) >= int(latest[key].get("bytes", 0)):
            latest[key] = s
    missing = [f"  {sources.describe(s)}: missing" for s in first.values() if not os.path.exists(s["path"])]
    if missing:
        raise DataError(
            f"cannot refit: {len(missing)} recorded input(s) are gone; nothing was replaced:\n" + "\n".join(missing),
            data,
        )
    out = []
    for key, s in first.items():
        now = sources.record(s["path"])
        last = latest[key]
        if "sha256" not in last:
            log.warning(f"{sources.describe(last)}: its size and sha256 were not recorded; the refit reads it as it is")
        elif (now["bytes"], now["sha256"]) != (last.get("bytes"), last["sha256"]):
            log.warning(
                f"{sources.describe(last)}: changed since it was last ingested ({last.get('bytes')} bytes then, "
                f"{now['bytes']} now); the refit reads it as it is now"
            )
        out.append({**s, **now})
    return out


def _refit_new(opts: PrepareOptions, recorded: list[dict], night: int, at: str) -> list[dict]:
    """The refit's INPUTs and --test inputs that it did not record (by path or content), as night ``night``."""
    out: list[dict] = []
    paths = {s["path"] for s in recorded}
    for role, path in _inputs(opts):
        full = os.path.abspath(path)
        if full in paths:
            log.info(f"{path}: a recorded input; the refit reads it once")
            continue
        now = sources.record(path)
        if (seen := sources.ingested(recorded + out, now["bytes"], now["sha256"])) is not None:
            log.warning(f"{path}: already ingested as {sources.describe(seen)}; skipped")
            continue
        where = {"path": full, "role": role, "format": detect_format(path)}
        out.append(where | now | {"ingested_at": at, "night": night})
    return out


def new_sources(opts: PrepareOptions, recorded: list[dict], night: int) -> list[sources.Plan]:
    """What an append reads of each of its INPUTs and --test inputs (``sources.plan``: never a row twice), training
    inputs first as ``read_rows`` reads them, without those it skips; ``DataError`` when a recorded input's
    ingested part changed."""
    out: list[sources.Plan] = []
    planned: list[dict] = []
    for role, path in _inputs(opts):
        plan = sources.plan(role, path, recorded + planned)
        if plan is not None:
            out.append(plan)
            planned.append(plan.record(night, ""))
    return out


def _build(
    opts: PrepareOptions,
    executor: Executor,
    provenance: list[dict] | None = None,
    created: dict | None = None,
    announce: Announce | None = None,
) -> Manifest:
    """A new dataset replacing ``opts.data`` (when ``opts.overwrite``).

    ``provenance``: per input, in order, what the manifest records of it besides what this run counts
    (bytes, sha256, ingested_at, night); digested here, as night 0, when not given. ``announce``: ``prepare``'s.
    """
    if provenance is None:
        at = sources.now()
        provenance = [{**sources.record(path), "ingested_at": at, "night": 0} for _, path in _inputs(opts)]
    opts = _as_digested(opts, provenance)
    replacing = lambda: no_readers(opts.data, opts.wait)  # noqa: E731 - staging_dir takes a factory
    with staging_dir(opts.data, overwrite=opts.overwrite, replacing=replacing, ours=is_dataset) as stage:
        first = _first_pass(opts, stage, provenance, executor)
        label_names, remap = first.labels.finalize()
        if len(label_names) < 2:
            raise DataError(f"need at least 2 classes in the training inputs, found {label_names}")
        choice = choose_vectorizer(opts.vectorizer, first.words.samples, first.words.median())
        if needs_bakeoff(choice):  # auto, and the rule says sequences: both families measured on a sample first
            from streamtrain.train.bakeoff import bakeoff

            samples = (first.choice_sample, first.val_sample)
            choice = bakeoff(choice, *samples, label_names, remap, opts.ngram(), opts.sequence(), opts.seed)
        first.choice_sample.clear()
        log.info(choice_line(choice))
        stats: dict = {}
        feature_names: dict = {}
        state: TfidfState | SequenceState
        if choice["chosen"] == "ngram":
            assert first.doc_freq is not None, "the first pass counts n-grams unless sequences were forced"
            candidates = _candidates(opts, first)
            if announce is not None:  # the F-test keeps top_k of the candidates: the width is known before it runs
                width = min(opts.ngram().top_k, len(candidates))
                announce(ModelInputs("ngram", width, width, len(label_names)))
            state, top = _select(opts, first, remap, len(label_names), candidates)
            # Not on a thread beside the shard writing: that saved ~1 s on IMDB, but the naming's temporaries
            # (~150 MB for its 8 MB sample) then add to the writing's, and prepare's peak on IMDB x16 rose from
            # 1.08x to 1.26x its peak on x1 (tools/bench_memory.py). Nor its tokenizing beside pass 2: 0.35 s
            # saved, x16/x1 1.10x -> 1.23x (median of 3 rounds).
            feature_names = first.names.write(stage, state, top, label_names)
            shards, per_class, coverage = _write_ngrams(opts, first, state, remap, stage, len(label_names))
            stats["vocabulary_buckets"] = int((first.doc_freq.df >= opts.min_df).sum())
        else:
            first.names.clear()
            assert first.row_splits is not None
            tokens = first.tokens or _count_tokens(opts, first.labels, executor, first.row_splits)
            sequences = SequenceState.fit(opts.sequence(), tokens)
            if announce is not None:
                announce(ModelInputs("sequence", sequences.n_features, sequences.length, len(label_names)))
            log.info(
                f"vocabulary of {len(sequences.vocab)} tokens, sequences of {sequences.length} "
                f"(longest text {tokens.longest})"
            )
            shards, per_class, coverage = _write_sequences(
                opts, first, sequences, remap, stage, len(label_names), executor
            )
            state = sequences
        if first.spill is not None:
            shutil.rmtree(first.spill.directory)
        shutil.rmtree(stage / ".shuffle", ignore_errors=True)
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
            split=split_record(opts, stage, first.row_splits),
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
                "next_row_id": sum(s["rows"] for s in first.sources),
                "coverage": coverage.to_json(),
                **stats,
            },
            created={
                "tool": f"streamtrain {__version__}",
                "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "options": effective(opts),
                **(created or {}),
            },
            val_sample=first.val_sample.write(stage),
            feature_names=feature_names,
        )
        manifest.save(stage)
    rows = ", ".join(f"{split} {n}" for split, n in manifest.stats["rows"].items())
    log.info(
        f"prepared {opts.data}: {rows} rows; {manifest.encoding} features: {manifest.n_features}; "
        f"{len(manifest.labels)} classes; {len(manifest.shards)} {manifest.shard_format} shards; "
        f"validation sample of {manifest.val_sample.get('rows', 0)} rows"
    )
    return manifest


def _as_digested(opts: PrepareOptions, provenance: list[dict]) -> PrepareOptions:
    """``opts`` reading each input file up to the size it was digested at (``provenance``), as its record says:
    a row a writer adds meanwhile is left to the next append."""
    if opts.portions:
        return opts
    inputs = [path for _, path in _inputs(opts)]
    stops = {path: Portion(stop=p["bytes"]) for path, p in zip(inputs, provenance) if "bytes" in p}
    return dataclasses.replace(opts, portions={k: v for k, v in stops.items() if not os.path.isdir(k)})


SPLIT_INDEX_NAME = "split_index.npz"


def split_record(opts: PrepareOptions, stage: Path, decided: RowSplits | None, directory: str = "") -> dict:
    """The manifest's ``split`` record; under an indexed rule, writes the band keys this run added to the index
    as ``directory/split_index.npz`` in ``stage`` and lists it under ``index`` (a new dataset: the whole index)."""
    record: dict = {"val_fraction": opts.val_fraction, "name": opts.split_rule, "rule": SPLIT_RULES[opts.split_rule]}
    if params := rule_params(opts.split_rule):
        record["params"] = params
    if decided is not None and decided.index is not None:
        decided.index.save_added(stage / SPLIT_INDEX_NAME)
        index = file_record(stage, SPLIT_INDEX_NAME)
        record["index"] = [{**index, "path": f"{directory}/{SPLIT_INDEX_NAME}" if directory else index["path"]}]
    return record


def _inputs(opts: PrepareOptions) -> list[tuple[str, str]]:
    """(role, path) of every input, training inputs first."""
    return [("train", str(p)) for p in opts.inputs] + [("test", str(p)) for p in opts.test]


def pass_name(opts: PrepareOptions, number: int, what: str) -> str:
    """``pass N/M: what`` for progress: M is 2 when sequences are forced (pass 1 counts the tokens), else 3."""
    return f"pass {number}/{2 if opts.vectorizer == 'sequence' else 3}: {what}"


@dataclass
class ChunkWork:
    """What a worker computes from one chunk's texts (``analyze_chunk``): a pure function of them."""

    splits: np.ndarray | None  # split code per row by the per-text rule (None: not asked for)
    words: np.ndarray | None  # whitespace-separated words per row (the guide's W), when asked for
    counts: sp.csr_matrix | None  # n-gram counts per row over the hash buckets, when asked for
    band_keys: np.ndarray | None = None  # (rows, bands) LSH band keys of an indexed split rule's training rows


def analyze_chunk(
    texts: list[str],
    is_test: bool,
    val_fraction: float,
    split_rule: str | None,
    ngram: NgramConfig | None,
    count_words: bool = False,
) -> ChunkWork:
    """The per-chunk work of a pass, run by ``read_rows``' executor (a worker thread with ``--jobs`` > 1, a Dask
    worker with ``--scheduler``).

    The texts' word hashes are computed once for the split, its band keys and the n-grams when they use them.
    ``split_rule`` None: no split (a later pass replays the first one's). An indexed rule (``lsh-bigrams``)
    gives the per-text rule's splits and the band keys; ``RowSplits`` resolves them in input order.
    ``count_words``: each text's words (``words_per_text``: 0.2 s a pass over IMDB's 25,000 reviews, all of it
    holding the GIL), for the first pass's training rows only.
    """
    words = None
    rule = own_rule(split_rule) if split_rule is not None else None
    if (ngram is not None and ngram.hasher == HASHER) or (not is_test and rule not in (None, "blake2b")):
        words = word_hashes(texts)
    keys = None
    if split_rule in INDEXED_RULES and not is_test:
        assert words is not None
        keys = band_keys(words)
    return ChunkWork(
        assign_splits(texts, val_fraction, is_test=is_test, rule=rule, words=words) if rule is not None else None,
        words_per_text(texts) if count_words else None,
        hash_counts(ngram, texts, words) if ngram is not None else None,
        keys,
    )


class RowSplits:
    """The split of every row ``read_rows`` reads: decided on the first pass, in input order; replayed after.

    Under an indexed rule the first pass resolves each chunk's band keys through ``index`` (the dataset's
    ``BandIndex``, loaded by an append, else new), which it extends. ``replay()`` ends the first pass: later
    passes give each row (by row id) the split it got then, whatever the index holds now. One byte per row.
    """

    def __init__(self, rule: str, first_row_id: int = 0, index: BandIndex | None = None):
        self.rule, self.first_row_id = rule, first_row_id
        self.index = index if index is not None else (BandIndex() if rule in INDEXED_RULES else None)
        self._parts: list[np.ndarray] = []
        self._next_row = first_row_id  # the row id the next chunk must start at (the first pass)
        self._decided: np.ndarray | None = None

    @property
    def replaying(self) -> bool:
        return self._decided is not None

    def decide(self, row_ids: np.ndarray, work: ChunkWork) -> np.ndarray:
        if self._decided is not None:
            return self._decided[row_ids - self.first_row_id]
        assert work.splits is not None, "the first pass computes the per-text splits"
        splits = work.splits
        if work.band_keys is not None:
            assert self.index is not None
            splits = self.index.resolve(work.band_keys, splits)
        assert not len(row_ids) or int(row_ids[0]) == self._next_row, "rows are decided in input order"
        self._next_row += len(splits)
        self._parts.append(splits)
        return splits

    def replay(self) -> None:
        self._decided = np.concatenate(self._parts) if self._parts else np.zeros(0, np.uint8)
        self._parts = []


Row = tuple[int, str, RawChunk, np.ndarray, np.ndarray, np.ndarray, ChunkWork]


def read_rows(
    opts: PrepareOptions,
    labels: LabelIndex,
    rejects: RejectLog | None = None,
    first_row_id: int = 0,
    progress: str | None = None,
    total_bytes: int | None = None,
    executor: Executor | None = None,
    ngram: NgramConfig | None = None,
    splits: RowSplits | None = None,
    count_words: bool = False,
) -> Iterator[Row]:
    """Every kept input row in order as (input index, role, chunk, label ids, split codes, row ids, work).

    Identical on every pass: ``splits`` decides the rows' splits on the first pass (a new ``RowSplits``
    when None: a pass that is the only one) and replays them on later ones (after its ``replay()``).
    Rows whose label a frozen ``labels`` lacks (test rows of a new dataset, any row of an append) are
    dropped here; ``rejects`` (the first pass only) records them and every
    row the readers rejected. Row ids count up from ``first_row_id``. ``progress``: the pass's name,
    reported per chunk (records read, bytes of ``total_bytes``: the inputs' size on disk, measured
    when not given). ``work`` is ``analyze_chunk``'s result, computed on ``executor`` (in this process
    when None) a few chunks ahead of the caller; with ``ngram`` it includes the chunk's n-gram counts, with
    ``count_words`` the words of each training row.
    """
    if progress is None:
        yield from _read_rows(opts, labels, rejects, first_row_id, None, executor, ngram, splits, count_words)
        return
    if total_bytes is None:
        total_bytes = sum(input_bytes(path) for _, path in _inputs(opts))
    with Progress(progress, total_bytes, log) as reporter:
        yield from _read_rows(opts, labels, rejects, first_row_id, reporter, executor, ngram, splits, count_words)


def _read_rows(
    opts: PrepareOptions,
    labels: LabelIndex,
    rejects: RejectLog | None,
    first_row_id: int,
    progress: Progress | None,
    executor: Executor | None,
    ngram: NgramConfig | None,
    splits: RowSplits | None,
    count_words: bool = False,
) -> Iterator[Row]:
    decider = splits if splits is not None else RowSplits(opts.split_rule, first_row_id)
    rule = None if decider.replaying else opts.split_rule

    def chunks() -> Iterator[tuple[tuple, tuple]]:  # read, label and number in this process, in order
        next_row = first_row_id
        for index, (role, path) in enumerate(_inputs(opts)):
            portion = opts.portions.get(path, WHOLE)
            done = portion.start  # bytes of this input read (or not to be read)
            for chunk in read_chunks([path], opts.columns(), opts.chunk_rows, opts.max_field_bytes, portion):
                if progress is not None:
                    progress.advance(len(chunk) + len(chunk.rejected), max(0, chunk.offset - done))
                    done = max(done, chunk.offset)
                if role == "test":
                    labels.freeze()
                ids = labels.encode(chunk)
                if rejects is not None:
                    for reject in chunk.rejected:
                        rejects.add(index, reject)
                    for i in np.flatnonzero(ids < 0):
                        where, row = chunk.where(int(i))
                        rejects.add(index, Reject(where, row, "unknown_label", chunk.labels[i][:80]))
                        rejects.unknown_label(chunk.labels[i])
                if (ids < 0).any():
                    chunk, ids = _keep(chunk, ids >= 0), ids[ids >= 0]
                row_ids = np.arange(next_row, next_row + len(chunk), dtype=np.int64)
                next_row += len(chunk)
                args = (chunk.texts, role == "test", opts.val_fraction, rule, ngram, count_words and role == "train")
                yield (index, role, chunk, ids, row_ids), args

    def failed(meta: tuple, exc: Exception) -> BaseException:
        place = _place(meta[2])
        if engine_failure(exc):  # the cluster lost the work, after its own retries
            return StreamtrainError(
                f"the work on {place} failed on {getattr(executor, 'address', 'the executor')}, so the run "
                f"stopped and wrote nothing: {type(exc).__name__}: {exc}"
            )
        exc.add_note(f"streamtrain: raised by the work on {place}")  # a bug: its traceback is printed
        return exc

    executor = executor or InlineExecutor()
    window = max(1, min(workers(executor) * WORKERS_AHEAD, MAX_IN_FLIGHT))
    for (index, role, chunk, ids, row_ids), work in ordered_map(executor, analyze_chunk, chunks(), window, failed):
        yield index, role, chunk, ids, decider.decide(row_ids, work), row_ids, work


def _place(chunk: RawChunk) -> str:
    """Which rows a chunk holds, for messages: ``data.csv, rows 4097-8192``."""
    if not chunk.rows:
        return f"{chunk.path} (a chunk of rejected rows only)"
    first, last = chunk.rows[0], chunk.rows[-1]
    if isinstance(first, str):  # directory per class: the document files
        return f"{chunk.path}, {len(chunk.rows)} documents from {first} to {last}"
    return f"{chunk.path}, rows {first}-{last}"


def _keep(chunk: RawChunk, keep: np.ndarray) -> RawChunk:
    rows = np.flatnonzero(keep)
    return RawChunk(
        chunk.path,
        [chunk.texts[i] for i in rows],
        [chunk.labels[i] for i in rows],
        [chunk.rows[i] for i in rows],
        offset=chunk.offset,
    )


def sample_val_rows(sample: ValSample, chunk: RawChunk, splits: np.ndarray) -> None:
    """Offer a chunk's validation rows (raw text, label name) to the validation sample."""
    for i in np.flatnonzero(splits == VAL):
        sample.add(chunk.texts[i], chunk.labels[i])


def _first_pass(opts: PrepareOptions, stage: Path, provenance: list[dict], executor: Executor) -> _FirstPass:
    first = _FirstPass()
    if opts.vectorizer == "sequence":
        first.tokens = TokenCounts(opts.hash_buckets, lowercase=opts.sequence().lowercase)
    else:
        passes = [pass_name(opts, 2, "selecting n-grams"), pass_name(opts, 3, "writing shards")]
        first.spill = Spill(stage / ".spill", opts.hash_buckets, passes)
        first.doc_freq = DocFreq(opts.hash_buckets)
    inputs = _inputs(opts)
    assert len(provenance) == len(inputs), "one recorded source per input"
    first.sources = [
        {**record, "path": os.path.abspath(path), "role": role, "format": detect_format(path), "rows": 0}
        for (role, path), record in zip(inputs, provenance)
    ]  # first_row_id, rejected and read: count_sources
    rejects = first.rejects = RejectLog(stage, len(inputs))
    train_rows = 0
    config = opts.ngram()
    reading = pass_name(opts, 1, "reading and counting")
    total = sum(int(s.get("bytes", 0)) for s in first.sources)
    first.row_splits = RowSplits(opts.split_rule)
    ngram = config if first.spill else None
    rows = read_rows(opts, first.labels, rejects, 0, reading, total, executor, ngram, first.row_splits, True)
    for index, _, chunk, labels, splits, row_ids, work in rows:
        first.sources[index]["rows"] += len(chunk)
        first.split_rows += np.bincount(splits, minlength=len(SPLIT_NAMES))
        train = splits == TRAIN
        train_rows += int(train.sum())
        sample_val_rows(first.val_sample, chunk, splits)
        first.choice_sample.offer(chunk.texts, labels, train)
        if work.words is not None:  # training rows
            first.words.add(work.words)
        if first.tokens is not None:
            first.tokens.update([t for t, keep in zip(chunk.texts, train) if keep])
        if first.spill is not None and first.doc_freq is not None and work.counts is not None:
            counts = work.counts
            first.doc_freq.update(counts[train])
            first.spill.append(SpillPart(counts, labels, splits, row_ids))
            first.names.offer(chunk.texts, train)
    first.row_splits.replay()
    rejects.close()
    count_sources(first.sources, rejects, 0)
    rejects.check(sum(s["read"] for s in first.sources), opts.max_bad_fraction)
    if train_rows == 0:
        empty = [s["path"] for s in first.sources if s["role"] == "train" and not s["rows"]]
        if len(empty) == len(opts.inputs):
            raise DataError(f"the training inputs hold no rows: {', '.join(empty)} (a header and nothing else?)")
        raise DataError("no training rows: every input row went to validation or test")
    return first


def count_sources(records: list[dict], rejects: RejectLog, first_row_id: int) -> None:
    """Fill in each source's first row id and rejected and read counts; log them; estimate rows lost."""
    start = first_row_id
    for i, source in enumerate(records):
        source["first_row_id"], start = start, start + source["rows"]
        source["rejected"] = rejects.per_source[i]
        source["read"] = source["rows"] + source["rejected"]
        if not source["read"]:
            log.warning(f"{source['path']}: no rows (a header and nothing else?)")
        log.info(f"read {source['rows']} {source['role']} rows from {source['path']}, rejected {source['rejected']}")
    rejects.estimate_lost([s["read"] for s in records])


BLOCK_ENTRIES = 1 << 18  # n-gram entries weighed at a time (passes 2 and 3): bounds the temporaries


def _entry_blocks(indptr: np.ndarray) -> Iterator[tuple[int, int]]:
    """Row ranges ``[lo, hi)`` of a CSR part, each of at most ``BLOCK_ENTRIES`` entries (or one longer row)."""
    lo = 0
    while lo < len(indptr) - 1:
        hi = max(lo + 1, int(np.searchsorted(indptr, indptr[lo] + BLOCK_ENTRIES, side="right")) - 1)
        yield lo, hi
        lo = hi


def _candidates(opts: PrepareOptions, first: _FirstPass) -> np.ndarray:
    """The buckets the F-test scores: the vocabulary (df >= min_df), at most its MAX_CANDIDATES most frequent
    (``tfidf.candidate_buckets``); it keeps the ``top_k`` best of them (all of them when fewer)."""
    assert first.doc_freq is not None, "the first pass counted n-grams"
    candidates = candidate_buckets(first.doc_freq, opts.min_df, MAX_CANDIDATES)
    if not len(candidates):
        raise DataError(f"no n-gram occurs in {opts.min_df} or more training rows")
    return candidates


def _select(
    opts: PrepareOptions, first: _FirstPass, remap: np.ndarray, n_classes: int, candidates: np.ndarray
) -> tuple[TfidfState, list[list[tuple[int, float]]]]:
    """The fitted n-gram vectorizer over ``candidates`` (``_candidates``), and per class its top features
    (``ngram_names.top_features``)."""
    assert first.spill is not None and first.doc_freq is not None, "the first pass counted n-grams"
    idf = first.doc_freq.idf(opts.min_df)
    vocabulary = int(np.count_nonzero(idf > 0))
    weigher = TfidfState(opts.ngram(), idf, np.zeros(0, np.int64))  # weighs; selects nothing yet
    moments = ClassMoments(candidates, n_classes)
    for part in first.spill:
        for lo, hi in _entry_blocks(part.counts.indptr):
            train = part.splits[lo:hi] == TRAIN
            counts = part.counts[lo:hi][train]
            values, _ = weigher.tfidf_buckets(counts)
            moments.update(
                SparseRows(
                    counts.indptr.astype(np.int64),
                    counts.indices,
                    values,
                    remap[part.labels[lo:hi][train]],
                    part.row_ids[lo:hi][train],
                    counts.shape[1],
                )
            )
    state = fit_selection(opts.ngram(), moments, idf)
    scored = f", the {len(candidates)} most frequent scored" if len(candidates) < vocabulary else ""
    log.info(f"selected {state.n_features} of {vocabulary} n-gram buckets (df >= {opts.min_df}{scored}) by F-value")
    return state, top_features(moments, state.selected)


class ShuffledSplits:
    """Per split: a ``BucketShuffle`` in front of a ``SplitWriter``; plus per-class row counts."""

    def __init__(
        self,
        opts: PrepareOptions,
        stage: Path,
        split_rows: np.ndarray,
        encoding: str,
        width: int,
        n_classes: int,
        seed: int,
    ):
        self.shuffles = [
            BucketShuffle(
                stage / ".shuffle" / name,
                int(split_rows[code]),
                empty_rows(encoding, width),
                seed,
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
) -> tuple[list[ShardInfo], np.ndarray, Coverage]:
    assert first.spill is not None, "the first pass spilled the n-gram counts"
    out = ShuffledSplits(opts, stage, first.split_rows, "ngram", state.n_features, n_classes, opts.seed)
    coverage = coverage_for(state)
    # TF-IDF on threads of this process (the spill is on its disk), a block ahead per thread, while this thread
    # shuffles and writes: IMDB's pass took 1.4 s with the TF-IDF (1.1 s of it) on this thread. Blocks of
    # BLOCK_ENTRIES, not whole parts: two parts' temporaries at once raised prepare's peak on IMDB x16.
    blocks = (
        (part.splits[lo:hi], (part.counts[lo:hi], remap[part.labels[lo:hi]], part.row_ids[lo:hi]))
        for part in first.spill
        for lo, hi in _entry_blocks(part.counts.indptr)
    )
    with executor_for(opts.jobs) as pool:
        for splits, (rows, outside, total) in ordered_map(pool, state.featurize_counting, blocks, workers(pool)):
            out.write(rows, splits)
            coverage.add_train(outside, total, splits == TRAIN)
    return (*out.close(), coverage)


def _count_tokens(opts: PrepareOptions, labels: LabelIndex, executor: Executor, decided: RowSplits) -> TokenCounts:
    counts = TokenCounts(opts.hash_buckets, lowercase=opts.sequence().lowercase)
    counting = pass_name(opts, 2, "counting tokens")
    for _, _, chunk, _, splits, _, _ in read_rows(opts, labels, progress=counting, executor=executor, splits=decided):
        counts.update([t for t, s in zip(chunk.texts, splits) if s == TRAIN])
    return counts


def _write_sequences(
    opts: PrepareOptions,
    first: _FirstPass,
    state: SequenceState,
    remap: np.ndarray,
    stage: Path,
    n_classes: int,
    executor: Executor,
) -> tuple[list[ShardInfo], np.ndarray, Coverage]:
    out = ShuffledSplits(opts, stage, first.split_rows, "sequence", state.length, n_classes, opts.seed)
    coverage = coverage_for(state)
    writing = pass_name(opts, 2 if opts.vectorizer == "sequence" else 3, "writing shards")
    total_bytes = sum(int(s.get("bytes", 0)) for s in first.sources)
    chunks = read_rows(opts, first.labels, None, 0, writing, total_bytes, executor, splits=first.row_splits)
    for _, _, chunk, labels, splits, row_ids, _ in chunks:
        rows, outside, total = state.encode_counting(chunk.texts, remap[labels], row_ids)
        out.write(rows, splits)
        coverage.add_train(outside, total, splits == TRAIN)
    return (*out.close(), coverage)
