"""The pass machinery: one streaming pass over a run's raw inputs (``read_rows``), shared by every pass.

Every pass of prepare (``build``, ``first_pass``, ``families``) and of an
append (``append``) reads through it. Who owns what:

- ``ReadSpec``: what a pass reads and how (each input with its role, the
  columns, chunk and field sizes, the part of each input to read, the
  validation fraction): the same for every pass of a run.
- ``read_rows``: this process reads the inputs in order, in chunks (labels
  encoded, rejects recorded, row ids numbered), hands each chunk's texts to
  the executor (``analyze_chunk``, a pure function of them) at most
  ``WORKERS_AHEAD`` chunks per worker and ``MAX_IN_FLIGHT`` in all ahead of
  the caller, and yields each chunk's ``RowBatch`` in input order, so a pass
  is the same bytes for any executor and number of workers. A chunk whose
  work fails stops the pass, naming the input and its rows.
- ``RowSplits``: the split of every row, decided by the first pass in input
  order (under an indexed rule through the dataset's ``BandIndex``) and
  replayed by the later ones; with a scratch directory (``spill_to``: a
  stage's ``.split``) the decided splits and the index's keys past its
  memory bound are kept there, not in memory. ``split_record`` is its record
  in the manifest.

Why the window is what it is (measurements): docs/design/prepare.md
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp

from streamtrain import arenas
from streamtrain.dataset.parallel import InlineExecutor, engine_failure, ordered_map, read_ahead, workers
from streamtrain.dataset.records import FileRecord, SplitRecord
from streamtrain.dataset.reject_log import RejectLog
from streamtrain.dataset.val_sample import ValSample
from streamtrain.errors import StreamtrainError, writing
from streamtrain.io.readers import WHOLE, ColumnSpec, Portion, RawChunk, input_bytes, read_chunks
from streamtrain.io.rejects import Reject
from streamtrain.progress import Progress
from streamtrain.vectorize.labels import LabelIndex
from streamtrain.vectorize.near_dups import BandIndex, band_keys
from streamtrain.vectorize.ngrams import HASHER
from streamtrain.vectorize.split import INDEXED_RULES, SPLIT_RULES, VAL, assign_splits, own_rule, rule_params
from streamtrain.vectorize.stats import words_per_text
from streamtrain.vectorize.tfidf import NgramConfig, hash_counts
from streamtrain.vectorize.words import word_hashes

log = logging.getLogger(__name__)
WORKERS_AHEAD = 1  # chunks in flight per worker: with more, the in-flight chunks grew peak RSS
# Chunks in flight whatever the number of workers (a large cluster's, many cores'): this process holds each one's
# texts and result, and its own share of the work (reading, counting, writing) bounds what more workers can add.
MAX_IN_FLIGHT = 16
SPLIT_INDEX_NAME = "split_index.npz"
SPLIT_SCRATCH = ".split"  # in a staging directory: ``RowSplits.spill_to``
DECIDED_NAME = "decided-splits"  # in it: one byte per row, in row id order


@dataclass(frozen=True)
class ReadSpec:
    """What every pass of a run reads, and how (``PrepareOptions.read_spec``)."""

    inputs: tuple[tuple[str, str], ...]  # (role, path) of every input, training inputs first
    columns: ColumnSpec
    chunk_rows: int  # raw rows read at a time
    max_field_bytes: int  # a longer record, line or document is rejected
    val_fraction: float
    portions: Mapping[str, Portion]  # by input path: the part read (an append's, or up to the digested size)

    def total_bytes(self) -> int:
        """The inputs' size on disk (``io.readers.input_bytes``), for progress."""
        return sum(input_bytes(path) for _, path in self.inputs)


@dataclass
class ChunkWork:
    """What a worker computes from one chunk's texts (``analyze_chunk``): a pure function of them."""

    splits: np.ndarray | None  # split code per row by the per-text rule (None: not asked for)
    words: np.ndarray | None  # whitespace-separated words per row (the guide's W), when asked for
    counts: sp.csr_matrix | None  # n-gram counts per row over the hash buckets, when asked for
    band_keys: np.ndarray | None = None  # (rows, bands) LSH band keys of an indexed split rule's training rows


@dataclass(frozen=True)
class RowBatch:
    """One chunk's kept rows as a pass sees them (``read_rows``), in input order."""

    source: int  # the input's index in ``ReadSpec.inputs``
    role: str  # "train" or "test"
    chunk: RawChunk  # the raw texts and label names (rows whose label a frozen map lacks dropped)
    labels: np.ndarray  # label id per row
    splits: np.ndarray  # split code per row (``RowSplits``)
    row_ids: np.ndarray  # row id per row, counting up across the passes' inputs
    work: ChunkWork  # ``analyze_chunk``'s result


def analyze_chunk(
    texts: list[str],
    is_test: bool,
    val_fraction: float,
    split_rule: str | None,
    ngram: NgramConfig | None,
    count_words: bool = False,
) -> ChunkWork:
    """The per-chunk work of a pass: a pure function of its arguments, run by ``read_rows``' executor.

    That is a worker thread with ``--jobs`` > 1, a Dask worker with ``--scheduler``. The texts' word hashes are
    computed once for the split, its band keys and the n-grams when they use them.

    Args:
        texts: the chunk's texts.
        is_test: the chunk is of a ``--test`` input (split ``test``, no band keys).
        val_fraction: the validation share.
        split_rule: a name of ``SPLIT_RULES``; an indexed rule (``lsh-bigrams``) gives the per-text rule's
            splits and the band keys, which ``RowSplits`` resolves in input order. None: no split (a later pass
            replays the first one's).
        ngram: the n-gram configuration to hash counts by; None: no counts.
        count_words: count each text's whitespace-separated words (``words_per_text``): the first pass's
            training rows only.

    Returns:
        The chunk's ``ChunkWork``.
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

    Under an indexed rule the first pass resolves each chunk's band keys through ``index``, which it extends.
    ``replay()`` ends the first pass: later passes give each row (by row id) the split it got then, whatever
    the index holds now. One byte per row: in memory, or with ``spill_to`` in a scratch file, read back a
    chunk's rows at a time, the index's keys past its memory bound there too; ``close`` deletes what it wrote.

    Args:
        rule: the split rule, a name of ``SPLIT_RULES``.
        first_row_id: the row id of the first row read; row ids count up from it.
        index_files: the dataset's ``BandIndex`` files (an append's), loaded by ``spill_to`` into its scratch,
            else on the first ``decide``; None: a new index under an indexed rule.
    """

    def __init__(self, rule: str, first_row_id: int = 0, index_files: list[Path] | None = None) -> None:
        self.rule, self.first_row_id = rule, first_row_id
        self._index_files = index_files if rule in INDEXED_RULES else None
        self.index = BandIndex() if rule in INDEXED_RULES and index_files is None else None
        self._parts: list[np.ndarray] = []
        self._next_row = first_row_id  # the row id the next chunk must start at (the first pass)
        self._decided: np.ndarray | None = None
        self._scratch: Path | None = None
        self._file: BinaryIO | None = None  # the decided splits' scratch file: appended to, then read
        self._replaying = False

    def spill_to(self, scratch: Path) -> None:
        """Before the first pass: keep the decided splits and the index's overflow in ``scratch`` (created)."""
        with writing(scratch):
            scratch.mkdir(parents=True, exist_ok=True)
            self._file = open(scratch / DECIDED_NAME, "w+b")  # noqa: SIM115 - held until ``close``
        self._scratch = scratch
        if self._index_files is not None:
            self.index, self._index_files = BandIndex.load(self._index_files, scratch=scratch), None
        elif self.index is not None:
            self.index.scratch = scratch

    @property
    def replaying(self) -> bool:
        """Whether the first pass has ended (``replay``)."""
        return self._replaying

    def decide(self, row_ids: np.ndarray, work: ChunkWork) -> np.ndarray:
        """The splits of a chunk's rows: decided now on the first pass, the recorded ones after it.

        Args:
            row_ids: the chunk's row ids (on the first pass: the next ones, in input order).
            work: the chunk's ``analyze_chunk`` result (its per-text splits and band keys).

        Returns:
            Each row's split code (uint8).
        """
        if self._replaying:
            return self._recorded(row_ids - self.first_row_id)
        assert work.splits is not None, "the first pass computes the per-text splits"
        splits = work.splits
        if work.band_keys is not None:
            if self._index_files is not None:
                self.index, self._index_files = BandIndex.load(self._index_files), None
            assert self.index is not None
            splits = self.index.resolve(work.band_keys, splits)
        assert not len(row_ids) or int(row_ids[0]) == self._next_row, "rows are decided in input order"
        self._next_row += len(splits)
        if self._file is not None:
            with writing(self._file.name):
                self._file.write(np.ascontiguousarray(splits, np.uint8).tobytes())
        else:
            self._parts.append(splits)
        return splits

    def _recorded(self, rows: np.ndarray) -> np.ndarray:
        """The splits the first pass decided for ``rows`` (counted from the first row)."""
        if self._file is None:
            assert self._decided is not None
            return self._decided[rows]
        if not len(rows):
            return np.zeros(0, np.uint8)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        got = np.frombuffer(os.pread(self._file.fileno(), hi - lo, lo), np.uint8)
        assert len(got) == hi - lo, "the decided splits cover every row read"
        return got[rows - lo]

    def replay(self) -> None:
        """End the first pass: from now on ``decide`` gives each row the split it got on it."""
        self._replaying = True
        if self._file is not None:
            with writing(self._file.name):
                self._file.flush()
        else:
            self._decided = np.concatenate(self._parts) if self._parts else np.zeros(0, np.uint8)
            self._parts = []

    def drop_index(self) -> None:
        """Let the index leave memory (its added keys written): the later passes replay the decided splits only.

        Its pages go back to the system (``arenas.trim``); the heap would otherwise keep them through those passes.
        """
        if self.index is not None:
            self.index.close()
        self.index = None
        arenas.trim()

    def close(self) -> None:
        """After the last pass: the index dropped, and what ``spill_to`` wrote deleted."""
        self.drop_index()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._scratch is not None:
            (self._scratch / DECIDED_NAME).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: a file someone else put there stays
                self._scratch.rmdir()


def split_record(splits: RowSplits, val_fraction: float, stage: Path, directory: str = "") -> SplitRecord:
    """The manifest's ``split`` record; under an indexed rule, also writes the band keys this run added.

    Args:
        splits: the run's splits, after its first pass.
        val_fraction: the validation share.
        stage: the directory ``split_index.npz`` is written to.
        directory: the path of ``stage`` inside the dataset (an append's ``append-NNNN``; ``""``: the top).

    Returns:
        The record; under an indexed rule its ``index`` lists the file just written (a new dataset: the whole
        index).
    """
    index = None
    if splits.index is not None:
        splits.index.save_added(stage / SPLIT_INDEX_NAME)
        written = FileRecord.of(stage, SPLIT_INDEX_NAME)
        index = [dataclasses.replace(written, path=f"{directory}/{SPLIT_INDEX_NAME}") if directory else written]
    params = rule_params(splits.rule) or None
    return SplitRecord(val_fraction, splits.rule, SPLIT_RULES[splits.rule], params, index)


def read_rows(
    spec: ReadSpec,
    splits: RowSplits,
    labels: LabelIndex,
    executor: Executor | None = None,
    *,
    rejects: RejectLog | None = None,
    progress: str | None = None,
    total_bytes: int | None = None,
    ngram: NgramConfig | None = None,
    count_words: bool = False,
) -> Iterator[RowBatch]:
    """Every kept input row of ``spec``, in order, one ``RowBatch`` per chunk; identical on every pass.

    Rows whose label a frozen ``labels`` lacks (test rows of a new dataset, any row of an append) are dropped
    here.

    Args:
        spec: what to read.
        splits: decides the rows' splits on the first pass and replays them on later ones (after its
            ``replay()``); row ids count up from its ``first_row_id``.
        labels: the label map; test inputs freeze it.
        executor: where ``analyze_chunk`` runs, a few chunks ahead of the caller; None: in this process.
        rejects: (the first pass only) records every row the readers rejected and the dropped rows.
        progress: the pass's name, reported per chunk (records read, bytes of ``total_bytes``); None: silent.
        total_bytes: the bytes progress counts to; None: the inputs' size on disk.
        ngram: the configuration to hash each chunk's n-gram counts by (in ``work.counts``).
        count_words: count the words of each training row (in ``work.words``).

    Yields:
        One ``RowBatch`` per chunk, in input order.

    Raises:
        StreamtrainError: the executor lost a chunk's work (a cluster, after its own retries).
        DataError: an input cannot be read as its format.
    """
    executor = executor or InlineExecutor()
    window = max(1, min(workers(executor) * WORKERS_AHEAD, MAX_IN_FLIGHT))

    def failed(read: _Read, exc: Exception) -> BaseException:
        """What the pass raises for a chunk whose work raised ``exc``."""
        return _failure(executor, read.chunk, exc)

    with _reporter(spec, progress, total_bytes) as reporter:
        chunks = _chunks(spec, splits, labels, rejects, reporter, ngram, count_words)
        if workers(executor) > 1:  # parsing the input beside the main thread's work on the chunks before
            chunks = read_ahead(chunks, window, "streamtrain-read")
        for read, work in ordered_map(executor, analyze_chunk, chunks, window, failed):
            decided = splits.decide(read.row_ids, work)
            yield RowBatch(read.source, read.role, read.chunk, read.labels, decided, read.row_ids, work)


@dataclass(frozen=True)
class _Read:
    """A chunk as this process read it, before its work comes back."""

    source: int
    role: str
    chunk: RawChunk
    labels: np.ndarray
    row_ids: np.ndarray


def _reporter(spec: ReadSpec, progress: str | None, total_bytes: int | None) -> contextlib.AbstractContextManager:
    """The pass's ``Progress`` (or a null context when ``progress`` is None)."""
    if progress is None:
        return contextlib.nullcontext(None)
    return Progress(progress, spec.total_bytes() if total_bytes is None else total_bytes, log)


def _chunks(
    spec: ReadSpec,
    splits: RowSplits,
    labels: LabelIndex,
    rejects: RejectLog | None,
    reporter: Progress | None,
    ngram: NgramConfig | None,
    count_words: bool,
) -> Iterator[tuple[_Read, tuple]]:
    """Each chunk read, labelled and numbered in this process, in order, with ``analyze_chunk``'s arguments."""
    rule = None if splits.replaying else splits.rule
    next_row = splits.first_row_id
    for index, (role, path) in enumerate(spec.inputs):
        portion = spec.portions.get(path, WHOLE)
        done = portion.start  # bytes of this input read (or not to be read)
        for chunk in read_chunks([path], spec.columns, spec.chunk_rows, spec.max_field_bytes, portion):
            if reporter is not None:
                reporter.advance(len(chunk) + len(chunk.rejected), max(0, chunk.offset - done))
                done = max(done, chunk.offset)
            if role == "test":
                labels.freeze()
            chunk, ids = _labelled(chunk, labels, rejects, index)
            row_ids = np.arange(next_row, next_row + len(chunk), dtype=np.int64)
            next_row += len(chunk)
            args = (chunk.texts, role == "test", spec.val_fraction, rule, ngram, count_words and role == "train")
            yield _Read(index, role, chunk, ids, row_ids), args


def _labelled(
    chunk: RawChunk, labels: LabelIndex, rejects: RejectLog | None, source: int
) -> tuple[RawChunk, np.ndarray]:
    """The chunk's rows with a known label, and their label ids.

    ``rejects``, when given, records the others and the readers' rejects.
    """
    ids = labels.encode(chunk)
    if rejects is not None:
        for reject in chunk.rejected:
            rejects.add(source, reject)
        for i in np.flatnonzero(ids < 0):
            where, row = chunk.where(int(i))
            rejects.add(source, Reject(where, row, "unknown_label", chunk.labels[i][:80]))
            rejects.unknown_label(chunk.labels[i])
    if (ids < 0).any():
        return _keep(chunk, ids >= 0), ids[ids >= 0]
    return chunk, ids


def _failure(executor: Executor, chunk: RawChunk, exc: Exception) -> BaseException:
    """What a pass raises when a chunk's work failed with ``exc``."""
    place = _place(chunk)
    if engine_failure(exc):  # the cluster lost the work, after its own retries
        return StreamtrainError(
            f"the work on {place} failed on {getattr(executor, 'address', 'the executor')}, so the run "
            f"stopped and wrote nothing: {type(exc).__name__}: {exc}"
        )
    exc.add_note(f"streamtrain: raised by the work on {place}")  # a bug: its traceback is printed
    return exc


def _place(chunk: RawChunk) -> str:
    """Which rows a chunk holds, for messages: ``data.csv, rows 4097-8192``."""
    if not chunk.rows:
        return f"{chunk.path} (a chunk of rejected rows only)"
    first, last = chunk.rows[0], chunk.rows[-1]
    if isinstance(first, str):  # directory per class: the document files
        return f"{chunk.path}, {len(chunk.rows)} documents from {first} to {last}"
    return f"{chunk.path}, rows {first}-{last}"


def _keep(chunk: RawChunk, keep: np.ndarray) -> RawChunk:
    """The rows of ``chunk`` where ``keep`` is True."""
    rows = np.flatnonzero(keep)
    return RawChunk(
        chunk.path,
        [chunk.texts[i] for i in rows],
        [chunk.labels[i] for i in rows],
        [chunk.rows[i] for i in rows],
        offset=chunk.offset,
    )


def sample_val_rows(sample: ValSample, batch: RowBatch) -> None:
    """Offer a batch's validation rows to the validation sample.

    Args:
        sample: the run's validation sample.
        batch: a batch of ``read_rows``.
    """
    for i in np.flatnonzero(batch.splits == VAL):
        sample.add(batch.chunk.texts[i], batch.chunk.labels[i])
