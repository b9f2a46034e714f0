"""A new dataset, built in named stages (``build``): a new prepare, ``--overwrite``, and the rebuild of ``--refit``.

Everything is built in a staging directory that replaces ``--data`` only
when the manifest has been written (``fs.atomic.staging_dir``, waiting for
the dataset's readers at the swap), so a crash leaves nothing that looks
complete. The stages, in order:

1. provenance: each input's size and sha256 as night 0 (a refit passes its
   own), and each file read up to the size it was digested at
   (``_as_digested``);
2. ``first_pass.first_pass``: splits, labels, S and W, rejects, samples,
   and the n-gram spill or the forced sequences' token counts;
3. ``choosing.choosing``: the guide's rule, sequences when S/W >= 1500;
   when it says sequences under ``auto``, the ``bakeoff`` the caller passed
   measures both families on a bounded sample and decides (without one,
   the rule's pick stands, recorded as a bake-off skipped);
4. ``families.ngram_stage`` or ``families.sequence_stage``: the fitted
   vectorizer and the shards. While a bake-off runs, the n-gram stage runs
   ahead of its answer (``_ngrams_ahead``) and is discarded if sequences
   win;
5. ``_manifest``: the vectorizer, the split record, the validation sample
   and the manifest, written into the staging directory.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import shutil
from concurrent.futures import Executor
from pathlib import Path

from streamtrain import __version__
from streamtrain.dataset import sources
from streamtrain.dataset.choosing import choosing, discard
from streamtrain.dataset.counts import Stats
from streamtrain.dataset.families import Classes, Vectorized, ngram_stage, sequence_stage
from streamtrain.dataset.first_pass import FirstPass, first_pass
from streamtrain.dataset.manifest import Manifest, is_dataset
from streamtrain.dataset.options import Announce, Bakeoff, PrepareOptions
from streamtrain.dataset.records import Choice, Created, RefitOf, RowOrder, VectorizerRecord
from streamtrain.dataset.spill import BUCKET_BYTES
from streamtrain.errors import DataError
from streamtrain.fs.atomic import staging_dir
from streamtrain.fs.locks import no_readers
from streamtrain.io.readers import Portion
from streamtrain.options import effective
from streamtrain.vectorize.sequence import SequenceState
from streamtrain.vectorize.split import SPLIT_NAMES
from streamtrain.vectorize.vectorizer import Vectorizer

log = logging.getLogger(__name__)
ROW_ORDER_RULE = "bucket splitmix64(row_id, seed) % n_buckets, then a seeded permutation of each bucket"
# n-grams (0.17): the spill's buckets, sized before the first pass by the input bytes (``first_pass.split_bytes``).
NGRAM_ROW_ORDER_RULE = (
    "bucket splitmix64(row_id, seed) % n_buckets, n_buckets = ceil(the split's input bytes / bucket_bytes), "
    "then a seeded permutation of each bucket"
)


def build(
    opts: PrepareOptions,
    executor: Executor,
    provenance: list[sources.Provenance] | None = None,
    refit_of: RefitOf | None = None,
    announce: Announce | None = None,
    bakeoff: Bakeoff | None = None,
) -> Manifest:
    """Build a new dataset at ``opts.data``, replacing it when ``opts.overwrite``.

    Args:
        opts: the run's options.
        executor: where the per-chunk work runs.
        provenance: per input, in order, what the manifest records of it besides what this run counts (bytes,
            sha256, documents, ingested_at, night); None: digested here, as night 0.
        refit_of: a refit's record of what it replaces (``created.refit_of``).
        announce: ``prepare``'s.
        bakeoff: ``prepare``'s.

    Returns:
        The new dataset's manifest, as written.

    Raises:
        DataError: too many rejects, no training rows, fewer than 2 classes, or no n-gram in ``min_df`` rows.
        Busy: the dataset's readers did not let go within ``opts.wait`` at the swap.
    """
    if provenance is None:
        at = sources.now()
        provenance = [dataclasses.replace(sources.record(path), ingested_at=at) for _, path in opts.every_input()]
    opts = _as_digested(opts, provenance)
    replacing = lambda: no_readers(opts.data, opts.wait)  # noqa: E731 - staging_dir takes a factory
    with staging_dir(opts.data, overwrite=opts.overwrite, replacing=replacing, ours=is_dataset) as stage:
        first = first_pass(opts, stage, provenance, executor)
        classes = _classes(first)
        with choosing(opts, first, classes, bakeoff) as pending:
            ahead = _ngrams_ahead(opts, first, classes, stage, announce) if pending.ahead else None
            choice = pending.choice()
        made = _vectorized(opts, first, classes, stage, executor, announce, choice, ahead)
        first.row_splits.close()
        if first.spill is not None:
            shutil.rmtree(first.spill.directory)
        shutil.rmtree(stage / ".shuffle", ignore_errors=True)
        manifest = _manifest(opts, stage, first, classes, choice, made, refit_of)
        manifest.save(stage)
    rows = ", ".join(f"{split} {n}" for split, n in manifest.stats.rows.items())
    log.info(
        f"prepared {opts.data}: {rows} rows; {manifest.encoding} features: {manifest.n_features}; "
        f"{len(manifest.labels)} classes; {len(manifest.shards)} {manifest.shard_format} shards; "
        f"validation sample of {manifest.val_sample.rows if manifest.val_sample else 0} rows"
    )
    return manifest


def _as_digested(opts: PrepareOptions, provenance: list[sources.Provenance]) -> PrepareOptions:
    """``opts`` reading each input file up to the size it was digested at (``provenance``), as its record says.

    A row a writer adds meanwhile is left to the next append.
    """
    if opts.portions:
        return opts
    inputs = [path for _, path in opts.every_input()]
    stops = {path: Portion(stop=p.bytes) for path, p in zip(inputs, provenance) if p.bytes is not None}
    return dataclasses.replace(opts, portions={k: v for k, v in stops.items() if not os.path.isdir(k)})


def _classes(first: FirstPass) -> Classes:
    """The final label map; ``DataError`` when the training inputs hold fewer than 2 classes."""
    classes = Classes(*first.labels.finalize())
    if len(classes.names) < 2:
        raise DataError(f"need at least 2 classes in the training inputs, found {classes.names}")
    return classes


def _ngrams_ahead(
    opts: PrepareOptions, first: FirstPass, classes: Classes, stage: Path, announce: Announce | None
) -> Vectorized | DataError:
    """The n-gram stage, run while the bake-off decides; its ``DataError`` is returned: it counts only for n-grams."""
    log.info("writing the n-gram dataset while the bake-off measures: discarded if sequences win")
    try:
        return ngram_stage(opts, first, classes, stage, announce)
    except DataError as exc:  # raised before the stage writes anything (no n-gram in min_df rows)
        return exc


def _vectorized(
    opts: PrepareOptions,
    first: FirstPass,
    classes: Classes,
    stage: Path,
    executor: Executor,
    announce: Announce | None,
    choice: Choice,
    ahead: Vectorized | DataError | None,
) -> Vectorized:
    """The chosen family's stage, or what ``_ngrams_ahead`` made when n-grams were chosen (discarded if not)."""
    if choice.chosen == "ngram":
        if isinstance(ahead, DataError):
            raise ahead
        return ahead or ngram_stage(opts, first, classes, stage, announce)
    if isinstance(ahead, Vectorized):
        discard(stage, ahead)
    return sequence_stage(opts, first, classes, stage, executor, announce)


def _manifest(
    opts: PrepareOptions,
    stage: Path,
    first: FirstPass,
    classes: Classes,
    choice: Choice,
    made: Vectorized,
    refit_of: RefitOf | None,
) -> Manifest:
    """The new dataset's manifest; writes the vectorizer and the validation sample (the first pass wrote the split)."""
    state = made.state
    vectorizer = Vectorizer(state, classes.names)
    assert first.split is not None, "the first pass records the split"
    return Manifest(
        shard_format=opts.format,
        encoding=vectorizer.encoding,
        n_features=state.n_features,
        sequence_length=state.length if isinstance(state, SequenceState) else None,
        labels=classes.names,
        vectorizer=VectorizerRecord.from_json(vectorizer.save(stage)),
        choice=choice,
        shards=made.shards,
        split=first.split,
        row_order=_row_order(opts, isinstance(state, SequenceState)),
        sources=first.sources,
        stats=_stats(first, made),
        created=Created(
            tool=f"streamtrain {__version__}",
            at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            options=effective(opts),
            refit_of=refit_of,
        ),
        val_sample=first.val_sample.write(stage),
        feature_names=made.feature_names,
    )


def _row_order(opts: PrepareOptions, sequences: bool) -> RowOrder:
    """The manifest's ``row_order``: sequences through ``ShuffledSplits``' buckets, n-grams the spill's."""
    if sequences:
        return RowOrder("shuffled", opts.seed, opts.bucket_rows, ROW_ORDER_RULE)
    return RowOrder("shuffled", opts.seed, None, NGRAM_ROW_ORDER_RULE, BUCKET_BYTES)


def _stats(first: FirstPass, made: Vectorized) -> Stats:
    """The manifest's ``stats``: rows per split and class, rejects, S and W, the next row id, coverage."""
    per_class = made.per_class
    return Stats(
        rows={name: int(per_class[i].sum()) for i, name in enumerate(SPLIT_NAMES)},
        rows_per_class={name: per_class[i].tolist() for i, name in enumerate(SPLIT_NAMES)},
        rejected=first.rejects.summary(),
        samples=first.words.samples,
        median_words_per_sample=first.words.median(),
        next_row_id=sum(s.rows for s in first.sources),
        coverage=made.coverage.record(),
        vocabulary_buckets=made.vocabulary_buckets,
    )
