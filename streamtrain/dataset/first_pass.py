"""A new dataset's first pass over the raw inputs (``first_pass``): what it learns is a ``FirstPass``.

The pass (``pass 1/3: reading and counting``; ``pass_name``) reads every
input through ``passes.read_rows``, decides each row's split (``RowSplits``,
kept in the stage's ``.split`` and replayed by the later passes; an indexed
rule's index is written to the stage as the pass ends and leaves memory),
builds the provisional label map, counts the
rejects per input (``sources.count_sources``; then ``--max-bad-fraction``),
measures samples S and median words per sample W, and keeps the samples the
later stages use: the validation sample, the bake-off's training sample
(``ChoiceSample``) and, for n-grams, the texts that name the features. For
n-grams it also hashes them once, counting document frequencies and spilling
the counts to scratch files, each split's rows in its shuffle buckets
(``spill``: sized by ``split_bytes``); for forced sequences it counts token
frequencies instead.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamtrain.dataset.counts import Source
from streamtrain.dataset.options import PrepareOptions
from streamtrain.dataset.passes import (
    SPLIT_SCRATCH,
    RowBatch,
    RowSplits,
    read_rows,
    sample_val_rows,
    split_record,
)
from streamtrain.dataset.records import SplitRecord
from streamtrain.dataset.reject_log import RejectLog
from streamtrain.dataset.sources import Provenance, count_sources
from streamtrain.dataset.spill import Spill, SpillPart, bucket_counts
from streamtrain.dataset.val_sample import ValSample
from streamtrain.errors import DataError
from streamtrain.io.readers import detect_format, input_bytes
from streamtrain.vectorize.choice import ChoiceSample
from streamtrain.vectorize.labels import LabelIndex
from streamtrain.vectorize.ngram_names import NameSample
from streamtrain.vectorize.sequence import TokenCounts
from streamtrain.vectorize.split import SPLIT_NAMES, TEST, TRAIN, VAL
from streamtrain.vectorize.stats import WordCounts
from streamtrain.vectorize.tfidf import DocFreq


@dataclass(kw_only=True)
class FirstPass:
    """What the first pass over the raw inputs learns."""

    rejects: RejectLog  # what the readers and the label map did not keep
    row_splits: RowSplits  # every row's split, decided by this pass (later passes replay it)
    split: SplitRecord | None = None  # the manifest's record of the split, its index written when the pass ends
    labels: LabelIndex = field(default_factory=LabelIndex)
    words: WordCounts = field(default_factory=WordCounts)
    sources: list[Source] = field(default_factory=list)
    split_rows: np.ndarray = field(default_factory=lambda: np.zeros(len(SPLIT_NAMES), np.int64))
    train_rows: int = 0
    spill: Spill | None = None  # hashed n-gram counts (n-gram path)
    doc_freq: DocFreq | None = None
    tokens: TokenCounts | None = None  # token frequencies (sequence path)
    val_sample: ValSample = field(default_factory=ValSample)  # raw text of some validation rows
    names: NameSample = field(default_factory=NameSample)  # some training texts, to name n-gram features by
    choice_sample: ChoiceSample = field(default_factory=ChoiceSample)  # labelled training rows: auto's bake-off

    def total_bytes(self) -> int:
        """The inputs' recorded size: what the passes over them report progress against."""
        return sum(s.bytes or 0 for s in self.sources)


def pass_name(opts: PrepareOptions, number: int, what: str) -> str:
    """A pass's name for progress: ``pass N/M: what``.

    Args:
        opts: the run's options (M is 2 when sequences are forced, pass 1 counting the tokens; else 3).
        number: the pass's number N.
        what: what it does.

    Returns:
        The name.
    """
    return f"pass {number}/{2 if opts.vectorizer == 'sequence' else 3}: {what}"


def first_pass(opts: PrepareOptions, stage: Path, provenance: list[Provenance], executor: Executor) -> FirstPass:
    """Read the raw inputs once (the module docstring) into the staging directory ``stage``.

    Args:
        opts: the run's options.
        stage: the staging directory (the spill and ``rejected.jsonl`` go there).
        provenance: per input, in order, what the manifest records of it besides this pass's counts.
        executor: where the per-chunk work runs.

    Returns:
        What the pass learnt.

    Raises:
        DataError: too large a share rejected (``--max-bad-fraction``), or no training row.
    """
    first = _start(opts, stage, provenance)
    ngram = opts.ngram() if first.spill else None
    reading = pass_name(opts, 1, "reading and counting")
    batches = read_rows(
        opts.read_spec(),
        first.row_splits,
        first.labels,
        executor,
        rejects=first.rejects,
        progress=reading,
        total_bytes=first.total_bytes(),
        ngram=ngram,
        count_words=True,
    )
    for batch in batches:
        _take(first, batch)
    first.row_splits.replay()
    if first.spill is not None:
        first.spill.flush()
    # The split index is written now and leaves memory: the later passes replay the decided splits only.
    first.split = split_record(first.row_splits, opts.val_fraction, stage)
    first.row_splits.drop_index()
    first.rejects.close()
    count_sources(first.sources, first.rejects, 0)
    first.rejects.check(sum(s.read for s in first.sources), opts.max_bad_fraction)
    _check_rows(first, len(opts.inputs))
    return first


def _start(opts: PrepareOptions, stage: Path, provenance: list[Provenance]) -> FirstPass:
    """An empty ``FirstPass`` with a record per input.

    It holds the spill and document frequencies for n-grams, token counts for forced sequences.
    """
    inputs = opts.every_input()
    assert len(provenance) == len(inputs), "one recorded source per input"
    records = [
        record.source(role, os.path.abspath(path), detect_format(path))
        for (role, path), record in zip(inputs, provenance)
    ]  # rows: counted here; first_row_id, rejected and read: count_sources
    spill = doc_freq = tokens = None
    if opts.vectorizer == "sequence":
        tokens = TokenCounts(opts.hash_buckets, lowercase=opts.sequence().lowercase)
    else:
        passes = [pass_name(opts, 2, "selecting n-grams"), pass_name(opts, 3, "writing shards")]
        n_buckets = bucket_counts(split_bytes(records, opts.val_fraction))
        spill = Spill(stage / ".spill", opts.hash_buckets, n_buckets, opts.seed, passes)
        doc_freq = DocFreq(opts.hash_buckets)
    row_splits = RowSplits(opts.split_rule)
    row_splits.spill_to(stage / SPLIT_SCRATCH)
    return FirstPass(
        rejects=RejectLog(stage, len(inputs)),
        row_splits=row_splits,
        sources=records,
        spill=spill,
        doc_freq=doc_freq,
        tokens=tokens,
    )


def split_bytes(sources: list[Source], val_fraction: float) -> list[int]:
    """Per split code, the input bytes its rows come from: what sizes the spill's shuffle buckets.

    The training inputs' bytes shared between training and validation by ``val_fraction``; the test inputs'.
    A pure function of the inputs' recorded sizes, known before the first row is read; an input recorded
    without its size (a refit of a dataset an older release made) counts its size on disk now.
    """

    def size(source: Source) -> int:
        if source.bytes is not None:
            return source.bytes
        return input_bytes(source.path) if os.path.exists(source.path) else 0

    train = sum(size(s) for s in sources if s.role == "train")
    test = sum(size(s) for s in sources if s.role != "train")
    out = [0] * len(SPLIT_NAMES)
    out[TRAIN], out[VAL], out[TEST] = round(train * (1 - val_fraction)), round(train * val_fraction), test
    return out


def _take(first: FirstPass, batch: RowBatch) -> None:
    """Count and keep what the first pass learns of one batch."""
    chunk, labels, splits = batch.chunk, batch.labels, batch.splits
    first.sources[batch.source].rows += len(chunk)
    first.split_rows += np.bincount(splits, minlength=len(SPLIT_NAMES))
    train = splits == TRAIN
    first.train_rows += int(train.sum())
    sample_val_rows(first.val_sample, batch)
    first.choice_sample.offer(chunk.texts, labels, train)
    if batch.work.words is not None:  # training rows
        first.words.add(batch.work.words)
    if first.tokens is not None:
        first.tokens.update([t for t, keep in zip(chunk.texts, train) if keep])
    if first.spill is not None and first.doc_freq is not None and batch.work.counts is not None:
        counts = batch.work.counts
        first.doc_freq.update(counts, train)
        first.spill.append(SpillPart(counts, labels, splits, batch.row_ids))
        first.names.offer(chunk.texts, train)


def _check_rows(first: FirstPass, n_train_inputs: int) -> None:
    """``DataError`` when the pass kept no training row."""
    if first.train_rows:
        return
    empty = [s.path for s in first.sources if s.role == "train" and not s.rows]
    if len(empty) == n_train_inputs:
        raise DataError(f"the training inputs hold no rows: {', '.join(empty)} (a header and nothing else?)")
    raise DataError("no training rows: every input row went to validation or test")
