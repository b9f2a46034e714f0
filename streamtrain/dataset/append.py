"""``prepare --append``: new inputs added to an existing dataset as new shards, with its frozen vectorizer.

``append`` (the caller holds the dataset's writer lock) never re-fits the
vectorizer or the label map (``prepare --refit`` does) and never modifies a
file the manifest lists: it removes what a killed append left
(``sweep_appends``), plans what to read of each input (``sources``: never a
row twice; with nothing new the dataset stays as it is), checks the new rows
(rejects, ``--max-bad-fraction``, the splits, through the dataset's band-key
index under an indexed rule), writes them as shards under ``append-NNNN/``
with the frozen vectorizer, measures drift, and then replaces
``manifest.json``: the commit point. A reader that loaded the old manifest
keeps reading exactly its own files. A label the frozen map lacks is an
``unknown_label`` reject; an ingested part that changed is a ``DataError``
(exit 65).

Design (the steps, the commit point): docs/design/nightly.md
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtrain import faults
from streamtrain.dataset import passes, sources
from streamtrain.dataset.counts import Append, RejectStats, Source
from streamtrain.dataset.drift import Coverage, coverage_for, drift_line
from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.options import Announce, PrepareOptions, existing, recorded_options
from streamtrain.dataset.records import SplitRecord, ValSampleRecord
from streamtrain.dataset.reject_log import REJECTS_NAME, RejectLog
from streamtrain.dataset.shards import ShardInfo
from streamtrain.dataset.shuffled import ShuffledSplits
from streamtrain.dataset.val_sample import ValSample, load_sample
from streamtrain.errors import DataError
from streamtrain.fs.atomic import staging_dir
from streamtrain.vectorize.labels import LabelIndex
from streamtrain.vectorize.rows import Rows
from streamtrain.vectorize.sequence import SequenceState
from streamtrain.vectorize.split import INDEXED_RULES, SPLIT_NAMES, TRAIN
from streamtrain.vectorize.tfidf import TfidfState
from streamtrain.vectorize.vectorizer import Vectorizer

log = logging.getLogger(__name__)
PREFIX = "append-"


def append_dir(night: int) -> str:
    """The directory of night ``night``'s files: ``append-NNNN``."""
    return f"{PREFIX}{night:04d}"


def append_seed(seed: int, night: int) -> int:
    """The shuffle seed of night ``night``'s shards.

    Args:
        seed: the dataset's ``--seed``.
        night: the append's night number.

    Returns:
        A 63-bit hash of both (blake2b).
    """
    digest = hashlib.blake2b(f"{seed}/{night}".encode(), digest_size=8, person=b"st-append").digest()
    return int.from_bytes(digest, "little") >> 1


def next_row_id(manifest: Manifest) -> int:
    """The first unused row id: the manifest's ``stats.next_row_id``.

    Args:
        manifest: the dataset's manifest (for an older one, ``formats`` counts one past its sources' rows).

    Returns:
        The row id the append's first row gets.
    """
    return manifest.stats.next_row_id


def referenced(manifest: Manifest) -> set[str]:
    """The top-level ``append-*`` names the manifest uses.

    Args:
        manifest: the dataset's manifest.

    Returns:
        The directory names of its shards, validation sample, split index files and ``appends`` entries.
    """
    records = [r for r in [manifest.val_sample, *manifest.split_index()] if r is not None]
    paths = [s.path for s in manifest.shards] + [r.path for r in records]
    names = {Path(p).parts[0] for p in paths if p and len(Path(p).parts) > 1}
    names |= {a.directory for a in manifest.appends}
    return {n for n in names if n.startswith(PREFIX)}


def sweep_appends(root: Path, manifest: Manifest) -> list[Path]:
    """Remove ``append-*`` entries of ``root`` the manifest does not reference, with a warning each.

    Call only under the writer lock: an entry not referenced is then what a killed append left.

    Args:
        root: the dataset directory.
        manifest: its manifest.

    Returns:
        The entries removed.
    """
    keep = referenced(manifest)
    removed = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(PREFIX) and entry.name not in keep:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
            log.warning(f"removed {entry}: left by an append that did not finish (the manifest does not list it)")
    return removed


def _check_state(root: Path, manifest: Manifest) -> Vectorizer:
    """The dataset's vectorizer, checked with its files against the manifest (``DataError`` if not)."""
    problems = manifest.state_problems(root)
    if problems:
        raise DataError(f"dataset does not match its manifest: {problems[0]}; nothing was appended", str(root))
    vectorizer = Vectorizer.load(root)
    if (
        vectorizer.labels != manifest.labels
        or vectorizer.encoding != manifest.encoding
        or vectorizer.n_features != manifest.n_features
    ):
        raise DataError(
            "vectorizer.json does not match the manifest's labels or features; nothing was appended", str(root)
        )
    return vectorizer


@dataclass
class Night:
    """One append's plan (``_plan``): what it reads, with which options, and where it writes."""

    number: int
    at: str  # when it ingests (``sources.now``)
    plans: list[sources.Plan]  # what it reads of each input it does not skip
    records: list[Source]  # the manifest's new ``sources`` (rows and rejects counted by pass 1)
    opts: PrepareOptions  # the dataset's recorded options, reading the plans' inputs and portions
    labels: LabelIndex  # the dataset's frozen label map
    splits: passes.RowSplits  # row ids from the dataset's next one; the dataset's band-key index under an indexed rule
    sample: ValSample  # the dataset's validation sample, which new validation rows may join

    @property
    def directory(self) -> str:
        """Where the night's files go: ``append-NNNN``."""
        return append_dir(self.number)

    @property
    def seed(self) -> int:
        """The night's shuffle seed (``append_seed``)."""
        return append_seed(self.opts.seed, self.number)

    @property
    def total_bytes(self) -> int:
        """Bytes the passes read (for progress)."""
        return sum(p.reading for p in self.plans)


@dataclass
class Written:
    """What an append's staging directory holds once its passes are done, as the manifest records it."""

    shards: list[ShardInfo]  # relative to the dataset
    per_class: np.ndarray  # new rows per split and class
    coverage: Coverage
    rejects: RejectLog
    split: SplitRecord  # the manifest's ``split`` record, with the band keys this night added
    val_sample: ValSampleRecord | None  # the manifest's ``val_sample`` record


def append(opts: PrepareOptions, executor: Executor | None = None, announce: Announce | None = None) -> Manifest:
    """Add ``opts.inputs`` and ``opts.test`` to the dataset ``opts.data``; the caller holds its writer lock.

    Args:
        opts: the run's options; the dataset's recorded options replace those that shape rows
            (``options.recorded_options``).
        executor: where the per-chunk work runs; None: in this process.
        announce: ``prepare``'s, called with the frozen vectorizer's ``ModelInputs`` before any reading.

    Returns:
        The manifest as committed; as it was when every input was already ingested.

    Raises:
        UsageError: ``opts.data`` is not a dataset.
        DataError: the dataset does not match its manifest, a recorded input's ingested part changed, or too
            many rows were rejected; nothing was appended.
    """
    root = Path(opts.data)
    manifest = existing(root, "--append")
    vectorizer = _check_state(root, manifest)
    if announce is not None:
        announce(manifest.model_inputs)
    sweep_appends(root, manifest)
    night = _plan(opts, root, manifest)
    if night is None:
        log.info(f"nothing to append to {opts.data}: every input was already ingested; the dataset is unchanged")
        return manifest
    with staging_dir(root / night.directory) as stage:
        written = _passes(night, manifest, vectorizer.state, stage, executor, opts.max_bad_fraction)
    _record(manifest, night, written, skipped=len(opts.inputs) + len(opts.test) - len(night.records))
    _commit(opts.data, manifest, night, written.rejects.rows)
    return manifest


def _plan(opts: PrepareOptions, root: Path, manifest: Manifest) -> Night | None:
    """The next night's plan (``sources.new_sources``); None when every input was already ingested."""
    number, at = sources.next_night(manifest), sources.now()
    plans = sources.new_sources(opts.every_input(), manifest.sources, number)
    if not plans:
        return None
    records = [p.record(number, at) for p in plans]
    recorded = recorded_options(
        manifest,
        opts,
        inputs=[p.path for p in plans if p.role == "train"],
        test=[p.path for p in plans if p.role == "test"],
        portions={p.path: p.portion for p in plans},
    )
    index = [root / r.path for r in manifest.split_index()] if recorded.split_rule in INDEXED_RULES else None
    splits = passes.RowSplits(recorded.split_rule, next_row_id(manifest), index)  # loaded as pass 1 starts
    labels = LabelIndex.frozen_map(manifest.labels)
    return Night(number, at, plans, records, recorded, labels, splits, load_sample(root, manifest.val_sample))


def _passes(
    night: Night,
    manifest: Manifest,
    state: TfidfState | SequenceState,
    stage: Path,
    executor: Executor | None,
    bad: float,
) -> Written:
    """Both passes over the night's inputs, into ``stage``; what it then holds.

    Pass 1 checks the new rows (rejects within ``bad``, the ``--max-bad-fraction``); the split keys they added
    are written then; pass 2 writes the rows into ``stage`` as shards; then the validation sample.
    """
    rejects, split_rows = _check_pass(night, len(manifest.labels), stage, executor, bad)
    split = _split_after_check(night, manifest, stage)
    out = ShuffledSplits(
        night.opts.layout(),
        stage,
        split_rows,
        manifest.encoding,
        manifest.row_width,
        len(manifest.labels),
        night.seed,
    )
    coverage = _write_pass(night, state, out, executor)
    night.splits.close()
    shards, per_class = out.close()
    shutil.rmtree(stage / ".shuffle", ignore_errors=True)
    sample_record = night.sample.write(stage) if night.sample.changed else manifest.val_sample
    if night.sample.changed and sample_record is not None:
        sample_record = dataclasses.replace(sample_record, path=f"{night.directory}/{sample_record.path}")
    shards = [_under(night.directory, s) for s in shards]
    return Written(shards, per_class, coverage, rejects, split, sample_record)


def _split_after_check(night: Night, manifest: Manifest, stage: Path) -> SplitRecord:
    """The dataset's split record once pass 1 has decided the night's rows: the keys they added written.

    The index (the dataset's, loaded, and the night's keys) then leaves memory: the write pass replays the
    decided splits only.
    """
    split = manifest.split
    index = night.splits.index
    if index is not None and index.added_count():
        added = passes.split_record(night.splits, night.opts.val_fraction, stage, night.directory).files()
        split = dataclasses.replace(split, index=manifest.split_index() + added)
    night.splits.drop_index()
    return split


def _check_pass(
    night: Night, n_classes: int, stage: Path, executor: Executor | None, bad: float
) -> tuple[RejectLog, np.ndarray]:
    """Pass 1: the new rows counted per input and split, their splits decided, validation rows sampled.

    Returns the rejects (``unknown_label`` for a label the dataset lacks) and the rows per split.
    """
    rejects = RejectLog(stage, len(night.records))
    night.splits.spill_to(stage / passes.SPLIT_SCRATCH)
    split_rows = np.zeros(len(SPLIT_NAMES), np.int64)
    reading = "pass 1/2: reading and checking"
    spec = night.opts.read_spec()
    for batch in passes.read_rows(
        spec, night.splits, night.labels, executor, rejects=rejects, progress=reading, total_bytes=night.total_bytes
    ):
        night.records[batch.source].rows += len(batch.chunk)
        split_rows += np.bincount(batch.splits, minlength=len(SPLIT_NAMES))
        passes.sample_val_rows(night.sample, batch)
    night.splits.replay()
    rejects.close()
    sources.count_sources(night.records, rejects, night.splits.first_row_id)
    if rejects.unknown_labels:
        named = ", ".join(f"{label!r} ({n})" for label, n in rejects.unknown_labels.most_common())
        log.warning(
            f"rejected {rejects.by_reason['unknown_label']} row(s) whose label the dataset's "
            f"{n_classes} classes lack: {named}; "
            "prepare --refit learns new classes (it rebuilds the dataset from every input it recorded)"
        )
    rejects.check(sum(s.read for s in night.records), bad)
    return rejects, split_rows


def _write_pass(
    night: Night, state: TfidfState | SequenceState, out: ShuffledSplits, executor: Executor | None
) -> Coverage:
    """Pass 2: vectorize the new rows with the frozen ``state`` into ``out``; the training rows' coverage."""
    coverage = coverage_for(state)
    writing = "pass 2/2: vectorizing and writing shards"
    ngram = state.config if isinstance(state, TfidfState) else None
    spec = night.opts.read_spec()
    for batch in passes.read_rows(
        spec, night.splits, night.labels, executor, progress=writing, total_bytes=night.total_bytes, ngram=ngram
    ):
        rows, outside, total = _vectorize(state, batch)
        out.write(rows, batch.splits)
        coverage.add_train(outside, total, batch.splits == TRAIN)
    return coverage


def _vectorize(state: TfidfState | SequenceState, batch: passes.RowBatch) -> tuple[Rows, np.ndarray, np.ndarray]:
    """A batch's rows vectorized by the frozen ``state``, with their features' (or tokens') counts outside it."""
    if isinstance(state, TfidfState):
        counts = batch.work.counts
        assert counts is not None, "read_rows hashes n-grams when given a config"
        return state.featurize_counting(counts, batch.labels, batch.row_ids)
    assert isinstance(state, SequenceState)
    return state.encode_counting(batch.chunk.texts, batch.labels, batch.row_ids)


def _record(manifest: Manifest, night: Night, written: Written, skipped: int) -> None:
    """Add the night to the manifest (in memory): its shards, rows, rejects, sources, drift and ``appends`` entry."""
    coverage, baseline = written.coverage, manifest.stats.coverage
    log.info(drift_line(coverage, baseline))
    rejected = dataclasses.replace(written.rejects.summary(), file=f"{night.directory}/{REJECTS_NAME}")
    rows = {split: int(written.per_class[i].sum()) for i, split in enumerate(SPLIT_NAMES)}
    _update(manifest, written.shards, written.per_class, rejected, night.records)
    manifest.val_sample = written.val_sample
    manifest.split = written.split
    manifest.stats.next_row_id = night.splits.first_row_id + sum(s.rows for s in night.records)
    manifest.appends.append(
        Append(
            night=night.number,
            at=night.at,
            directory=night.directory,
            inputs=[s.path for s in night.records],
            skipped=skipped,
            rows=rows,
            first_row_id=night.splits.first_row_id,
            rejected=rejected,
            drift=coverage.drift(baseline),
            seed=night.seed,
            shards=len(written.shards),
        )
    )


def _commit(data: str, manifest: Manifest, night: Night, rejected: int) -> None:
    """Replace ``manifest.json`` of the dataset ``data``: the commit point.

    A failure to write it removes the night's directory.
    """
    root = Path(data)
    faults.point("append-staged")
    try:
        manifest.save(root)  # the commit point
    except BaseException:
        shutil.rmtree(root / night.directory, ignore_errors=True)
        raise
    faults.point("append-committed")
    entry = manifest.appends[-1]
    log.info(
        f"appended night {night.number} to {data}: "
        + ", ".join(f"{split} {n}" for split, n in entry.rows.items())
        + f" rows in {entry.shards} shard(s) under {night.directory}/; rejected {rejected}; "
        + "now "
        + ", ".join(f"{split} {n}" for split, n in manifest.stats.rows.items())
    )


def _under(directory: str, shard: ShardInfo) -> ShardInfo:
    """``shard`` with its path under ``directory``."""
    return dataclasses.replace(shard, path=f"{directory}/{shard.path}")


def _update(
    manifest: Manifest, shards: list[ShardInfo], per_class: np.ndarray, rejected: RejectStats, records: list[Source]
) -> None:
    """Add an append's shards, rows, rejects and sources to the manifest's totals (in memory)."""
    stats = manifest.stats
    manifest.shards = manifest.shards + shards
    manifest.sources = manifest.sources + records
    for i, split in enumerate(SPLIT_NAMES):
        stats.rows[split] = stats.rows.get(split, 0) + int(per_class[i].sum())
        old = stats.rows_per_class.get(split) or [0] * len(manifest.labels)
        stats.rows_per_class[split] = [int(a) + int(b) for a, b in zip(old, per_class[i])]
    stats.rejected = _merged(stats.rejected, rejected)


def _merged(before: RejectStats, new: RejectStats) -> RejectStats:
    """The dataset's rejects with an append's ``new`` ones: counts added, each run's file listed (``files``)."""
    reasons = dict(before.by_reason)
    for reason, n in new.by_reason.items():
        reasons[reason] = reasons.get(reason, 0) + n
    files = before.files if before.files is not None else [before.file or REJECTS_NAME]
    return RejectStats(
        rows=before.rows + new.rows,
        by_reason=dict(sorted(reasons.items())),
        lost_bytes=before.lost_bytes + new.lost_bytes,
        estimated_lost_rows=before.estimated_lost_rows + new.estimated_lost_rows,
        file=before.file,
        files=[*files, new.file or REJECTS_NAME],
    )
