"""A new dataset's vectorizer stages, one per family: fit the vectorizer, then write the shards (``Vectorized``).

- n-grams (``ngram_stage``): ``_select`` streams the first pass's spill
  (its training buckets) for the ANOVA F-test over the candidate buckets
  (``_candidates``) and keeps the top-k, then names the selected features
  and each class's top features from the first pass's sample of training
  texts (``vectorize.ngram_names``: ``feature_names.json``);
  ``_write_ngrams`` streams every spilled bucket again, each permuted, into
  TF-IDF shards (``pass 3/3``).
- sequences (``sequence_stage``): ``_count_tokens`` (only when the first
  pass did not: ``auto`` chose sequences) and ``_write_sequences`` re-read
  the raw inputs (``passes.read_rows``) into token-id shards.

Either way each split reaches its shards in a seeded random order: random
buckets, each permuted (n-grams: the spill's buckets into ``SplitWriters``;
sequences: through ``ShuffledSplits``). The shard-writing pass measures how much of the
training text the fitted vectorizer represents (``drift``: the baseline for
appends), and ``announce`` learns the model's inputs before the shards are
written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtrain import arenas
from streamtrain.dataset.drift import Coverage, coverage_for
from streamtrain.dataset.first_pass import FirstPass, pass_name
from streamtrain.dataset.manifest import ModelInputs
from streamtrain.dataset.options import Announce, PrepareOptions
from streamtrain.dataset.parallel import executor_for
from streamtrain.dataset.passes import read_rows
from streamtrain.dataset.records import FeatureNamesRecord
from streamtrain.dataset.shards import ShardInfo
from streamtrain.dataset.shuffled import ShuffledSplits, SplitWriters
from streamtrain.dataset.spill import Bucket, SpillPart
from streamtrain.errors import DataError
from streamtrain.vectorize.defaults import MAX_CANDIDATES
from streamtrain.vectorize.ngram_names import top_features
from streamtrain.vectorize.rows import SparseRows
from streamtrain.vectorize.sequence import SequenceState, TokenCounts
from streamtrain.vectorize.split import SPLIT_NAMES, TRAIN
from streamtrain.vectorize.tfidf import ClassMoments, NgramConfig, TfidfState, candidate_buckets, fit_selection

log = logging.getLogger(__name__)
BLOCK_ENTRIES = 1 << 18  # n-gram entries weighed at a time (passes 2 and 3): bounds the temporaries


@dataclass(frozen=True)
class Classes:
    """The final label map: ``LabelIndex.finalize`` of the first pass's."""

    names: list[str]
    remap: np.ndarray  # the first pass's provisional label id -> final id


@dataclass
class Vectorized:
    """What a family's stage made: the fitted vectorizer and the shards written with it."""

    state: TfidfState | SequenceState
    shards: list[ShardInfo]
    per_class: np.ndarray  # rows per split and class
    coverage: Coverage  # of the training text, by the fitted vectorizer
    vocabulary_buckets: int | None = None  # n-grams: the manifest's ``stats.vocabulary_buckets``
    feature_names: FeatureNamesRecord | None = None  # n-grams: the manifest's record of ``feature_names.json``


def ngram_stage(
    opts: PrepareOptions, first: FirstPass, classes: Classes, stage: Path, announce: Announce | None
) -> Vectorized:
    """Select the n-gram features, name them, write the TF-IDF shards.

    Args:
        opts: the run's options.
        first: the first pass (its spill and document frequencies).
        classes: the final label map.
        stage: the staging directory.
        announce: ``prepare``'s, called once the width is known, before the F-test runs.

    Returns:
        The fitted ``TfidfState``, the shards, the rows per split and class, the coverage, the vocabulary size
        and the feature names file's record.

    Raises:
        DataError: no n-gram occurs in ``min_df`` or more training rows.
    """
    assert first.doc_freq is not None, "the first pass counts n-grams unless sequences were forced"
    config, n_classes = opts.ngram(first.doc_freq), len(classes.names)
    candidates = _candidates(config, first)
    if announce is not None:  # the F-test keeps top_k of the candidates: the width is known before it runs
        width = min(config.top_k, len(candidates))
        announce(ModelInputs("ngram", width, width, n_classes))
    state, top = _select(opts, config, first, classes.remap, n_classes, candidates)
    arenas.trim()  # pass 2's blocks: their pages back before the naming (``arenas``)
    # Not on a thread beside the shard writing, nor its tokenizing beside pass 2: both saved time, but the
    # naming's temporaries then added to the other pass's, and prepare's peak grew with the corpus
    # (docs/design/prepare.md).
    feature_names = FeatureNamesRecord.from_json(first.names.write(stage, state, top, classes.names))
    arenas.trim()  # the naming's temporaries: their pages back before pass 3
    shards, per_class, coverage = _write_ngrams(opts, first, state, classes.remap, stage, n_classes)
    vocabulary_buckets = int((first.doc_freq.df >= config.min_df).sum())
    return Vectorized(state, shards, per_class, coverage, vocabulary_buckets, feature_names)


def sequence_stage(
    opts: PrepareOptions,
    first: FirstPass,
    classes: Classes,
    stage: Path,
    executor: Executor,
    announce: Announce | None,
) -> Vectorized:
    """Fit the token vocabulary (counting the tokens first unless the first pass did), write the token-id shards.

    Args:
        opts: the run's options.
        first: the first pass (its token counts when sequences were forced).
        classes: the final label map.
        stage: the staging directory.
        executor: where the per-chunk work of the passes over the raw inputs runs.
        announce: ``prepare``'s, called once the vocabulary is fitted.

    Returns:
        The fitted ``SequenceState``, the shards, the rows per split and class and the coverage.
    """
    first.names.clear()
    tokens = first.tokens or _count_tokens(opts, first, executor)
    state = SequenceState.fit(opts.sequence(), tokens)
    if announce is not None:
        announce(ModelInputs("sequence", state.n_features, state.length, len(classes.names)))
    log.info(f"vocabulary of {len(state.vocab)} tokens, sequences of {state.length} (longest text {tokens.longest})")
    shards, per_class, coverage = _write_sequences(
        opts, first, state, classes.remap, stage, len(classes.names), executor
    )
    return Vectorized(state, shards, per_class, coverage)


def _entry_blocks(indptr: np.ndarray) -> Iterator[tuple[int, int]]:
    """Row ranges ``[lo, hi)`` of a CSR part, each of at most ``BLOCK_ENTRIES`` entries (or one longer row)."""
    lo = 0
    while lo < len(indptr) - 1:
        hi = max(lo + 1, int(np.searchsorted(indptr, indptr[lo] + BLOCK_ENTRIES, side="right")) - 1)
        yield lo, hi
        lo = hi


def _candidates(config: NgramConfig, first: FirstPass) -> np.ndarray:
    """The buckets the F-test scores (``tfidf.candidate_buckets``).

    They are the vocabulary (df >= min_df), at most its MAX_CANDIDATES most frequent; the F-test keeps the
    ``top_k`` best of them (all of them when fewer). ``DataError`` when there are none.
    """
    assert first.doc_freq is not None, "the first pass counted n-grams"
    candidates = candidate_buckets(first.doc_freq, config.min_df, MAX_CANDIDATES)
    if not len(candidates):
        raise DataError(f"no n-gram occurs in {config.min_df} or more training rows")
    return candidates


def _select(
    opts: PrepareOptions,
    config: NgramConfig,
    first: FirstPass,
    remap: np.ndarray,
    n_classes: int,
    candidates: np.ndarray,
) -> tuple[TfidfState, list[list[tuple[int, float]]]]:
    """Pass 2: the fitted n-gram vectorizer over ``candidates`` (``_candidates``), and per class its top features.

    The training buckets are read and weighed on threads of this process, a bucket ahead per thread, while this
    thread adds them up (``ClassMoments``, in bucket order). The top features are ``ngram_names.top_features``'.
    """
    assert first.spill is not None and first.doc_freq is not None, "the first pass counted n-grams"
    idf = first.doc_freq.idf(config.min_df)
    vocabulary = int(np.count_nonzero(idf > 0))
    weigher = TfidfState(config, idf, np.zeros(0, np.int64))  # weighs; selects nothing yet
    moments = ClassMoments(candidates, n_classes)

    def weighed(bucket: Bucket, part: SpillPart) -> list[SparseRows]:
        labels = remap[part.labels]
        out = []
        for lo, hi in _entry_blocks(part.counts.indptr):  # blocks of BLOCK_ENTRIES bound the temporaries
            counts = part.counts[lo:hi]
            values, _ = weigher.tfidf_buckets(counts)
            indptr = counts.indptr.astype(np.int64)
            out.append(SparseRows(indptr, counts.indices, values, labels[lo:hi], part.row_ids[lo:hi], counts.shape[1]))
        return out

    with executor_for(opts.jobs) as pool:
        for _, blocks in first.spill.read([TRAIN], weighed, pool):
            for rows in blocks:
                moments.update(rows)
    state = fit_selection(config, moments, idf)
    scored = f", the {len(candidates)} most frequent scored" if len(candidates) < vocabulary else ""
    log.info(f"selected {state.n_features} of {vocabulary} n-gram buckets (df >= {config.min_df}{scored}) by F-value")
    return state, top_features(moments, state.selected)


def _write_ngrams(
    opts: PrepareOptions, first: FirstPass, state: TfidfState, remap: np.ndarray, stage: Path, n_classes: int
) -> tuple[list[ShardInfo], np.ndarray, Coverage]:
    """Pass 3: each spilled bucket's rows, permuted, as TF-IDF into the shards; the shards, rows per class, coverage.

    The spill holds each split's rows in its shuffle buckets: a bucket's rows in their seeded order
    (``Spill.load``), bucket after bucket, are the split's shuffled order.
    """
    assert first.spill is not None, "the first pass spilled the n-gram counts"
    out = SplitWriters(opts.layout(), stage, "ngram", state.n_features, n_classes)
    coverage = coverage_for(state)

    def featurized(bucket: Bucket, part: SpillPart) -> list[tuple[SparseRows, np.ndarray, np.ndarray]]:
        labels = remap[part.labels]
        return [  # in blocks of BLOCK_ENTRIES: the temporaries of a whole bucket at once raised prepare's peak
            state.featurize_counting(part.counts[lo:hi], labels[lo:hi], part.row_ids[lo:hi])
            for lo, hi in _entry_blocks(part.counts.indptr)
        ]

    # Buckets read and weighed on threads of this process, a bucket ahead per thread, while this thread writes.
    with executor_for(opts.jobs) as pool:
        for bucket, blocks in first.spill.read(range(len(SPLIT_NAMES)), featurized, pool, shuffled=True):
            for rows, outside, total in blocks:
                out.write(rows, bucket.split)
                coverage.add_train(outside, total, np.full(len(rows), bucket.split == TRAIN))
    return (*out.close(), coverage)


def _count_tokens(opts: PrepareOptions, first: FirstPass, executor: Executor) -> TokenCounts:
    """A pass over the raw inputs counting the training rows' tokens (``auto`` chose sequences)."""
    counts = TokenCounts(opts.hash_buckets, lowercase=opts.sequence().lowercase)
    counting = pass_name(opts, 2, "counting tokens")
    for batch in read_rows(opts.read_spec(), first.row_splits, first.labels, executor, progress=counting):
        counts.update([t for t, s in zip(batch.chunk.texts, batch.splits) if s == TRAIN])
    return counts


def _write_sequences(
    opts: PrepareOptions,
    first: FirstPass,
    state: SequenceState,
    remap: np.ndarray,
    stage: Path,
    n_classes: int,
    executor: Executor,
) -> tuple[list[ShardInfo], np.ndarray, Coverage]:
    """The last pass: the raw inputs as token ids into shuffled shards; the shards, rows per class, coverage."""
    out = ShuffledSplits(opts.layout(), stage, first.split_rows, "sequence", state.length, n_classes, opts.seed)
    coverage = coverage_for(state)
    writing = pass_name(opts, 2 if opts.vectorizer == "sequence" else 3, "writing shards")
    batches = read_rows(
        opts.read_spec(), first.row_splits, first.labels, executor, progress=writing, total_bytes=first.total_bytes()
    )
    for batch in batches:
        rows, outside, total = state.encode_counting(batch.chunk.texts, remap[batch.labels], batch.row_ids)
        out.write(rows, batch.splits)
        coverage.add_train(outside, total, batch.splits == TRAIN)
    return (*out.close(), coverage)
