"""``prepare --append``: new inputs added to an existing dataset as new shards, with its frozen vectorizer.

Nightly retraining appends the day's inputs; it never re-fits the
vectorizer or the label map (``prepare --refit`` does that) and never
modifies an existing file, so a fit that loaded the old manifest keeps
reading exactly the shards it planned with. Steps, under the dataset's
writer lock (``prepare`` holds it):

1. Load the manifest and the vectorizer, checking the vectorizer arrays and
   the validation sample against the manifest.
2. Remove ``append-*`` entries the manifest does not reference: leftovers of
   an append that was killed (its writer is dead: we hold the lock).
3. Digest every input and plan what to read of it (``sources.plan``): skip
   those already ingested (same size and sha256, whatever the path); of a
   directory recorded before, only its new documents; of a file that grew,
   only what follows its ingested prefix; an input whose ingested part
   changed stops the append (``DataError``). Nothing new: change nothing.
4. Pass 1 over the new inputs, read with the dataset's recorded column,
   split and size options: rejects (a label the frozen map lacks is an
   ``unknown_label`` reject; ``--refit`` learns new classes), rows per split,
   the validation sample; then ``--max-bad-fraction``. Under an indexed
   split rule (``lsh-bigrams``) the new rows go through the dataset's
   band-key index (its ``split.index`` files), so a near-copy of an old
   validation row lands in validation; the keys they add are written as
   ``append-NNNN/split_index.npz``, one more record of ``split.index``.
5. Pass 2: vectorize with the frozen state (row ids continue from
   ``stats.next_row_id``), measure drift on the training rows, shuffle each
   split with a seed derived from the dataset's seed and the night, and
   write shards into a staging directory ``append-NNNN.partial-...`` that is
   renamed to ``append-NNNN``.
6. Replace ``manifest.json`` (atomically): the commit point. Before it, a
   crash leaves only an unreferenced ``append-NNNN`` that step 2 removes.

Passes 1 and 2 report their progress (``pass 1/2: ...``) against the bytes
they read of the new inputs (a grown file's new part, a directory's new files).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from streamtrain import faults
from streamtrain.dataset import sources
from streamtrain.dataset.drift import coverage_for, drift_line
from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.prepare import (
    Announce,
    PrepareOptions,
    RowSplits,
    ShuffledSplits,
    count_sources,
    existing,
    new_sources,
    next_night,
    read_rows,
    recorded_options,
    sample_val_rows,
    split_record,
)
from streamtrain.dataset.reject_log import REJECTS_NAME, RejectLog
from streamtrain.dataset.shards import ShardInfo
from streamtrain.dataset.val_sample import load_sample
from streamtrain.errors import DataError
from streamtrain.fs.atomic import staging_dir
from streamtrain.vectorize.labels import LabelIndex
from streamtrain.vectorize.near_dups import BandIndex
from streamtrain.vectorize.sequence import SequenceState
from streamtrain.vectorize.split import INDEXED_RULES, SPLIT_NAMES, TRAIN
from streamtrain.vectorize.tfidf import TfidfState
from streamtrain.vectorize.vectorizer import Vectorizer

log = logging.getLogger(__name__)
PREFIX = "append-"


def append_dir(night: int) -> str:
    return f"{PREFIX}{night:04d}"


def append_seed(seed: int, night: int) -> int:
    """The shuffle seed of night ``night``'s shards: a hash of the dataset's seed and the night (63 bits)."""
    digest = hashlib.blake2b(f"{seed}/{night}".encode(), digest_size=8, person=b"st-append").digest()
    return int.from_bytes(digest, "little") >> 1


def next_row_id(manifest: Manifest) -> int:
    """The first unused row id (recorded; for an older manifest, one past its sources' row ids)."""
    if "next_row_id" in manifest.stats:
        return int(manifest.stats["next_row_id"])
    return max((int(s.get("first_row_id", 0)) + int(s.get("rows", 0)) for s in manifest.sources), default=0)


def referenced(manifest: Manifest) -> set[str]:
    """The top-level ``append-*`` names the manifest uses (shards, the validation sample, appends' logs)."""
    paths = [s.path for s in manifest.shards] + [manifest.val_sample.get("path", "")]
    paths += [r["path"] for r in manifest.split_index()]
    names = {Path(p).parts[0] for p in paths if p and len(Path(p).parts) > 1}
    names |= {a["directory"] for a in manifest.appends if "directory" in a}
    return {n for n in names if n.startswith(PREFIX)}


def sweep_appends(root: Path, manifest: Manifest) -> list[Path]:
    """Remove ``append-*`` entries of ``root`` the manifest does not reference; call only under the writer lock."""
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


def append(opts: PrepareOptions, executor: Executor | None = None, announce: Announce | None = None) -> Manifest:
    """Add ``opts.inputs`` and ``opts.test`` to the dataset ``opts.data``; the caller holds its writer lock.

    ``announce``: ``prepare``'s, called with the frozen vectorizer's ``ModelInputs`` before any reading.
    """
    root = Path(opts.data)
    manifest = existing(root, "--append")
    vectorizer = _check_state(root, manifest)
    if announce is not None:
        announce(manifest.model_inputs)
    sweep_appends(root, manifest)
    night, at = next_night(manifest), sources.now()
    plans = new_sources(opts, manifest.sources, night)
    if not plans:
        log.info(f"nothing to append to {opts.data}: every input was already ingested; the dataset is unchanged")
        return manifest
    new = [p.record(night, at) for p in plans]
    ropts = recorded_options(
        manifest,
        opts,
        inputs=[p.path for p in plans if p.role == "train"],
        test=[p.path for p in plans if p.role == "test"],
        portions={p.path: p.portion for p in plans},
    )
    name = append_dir(night)
    first_id = next_row_id(manifest)
    sample = load_sample(root, manifest.val_sample)
    index = None
    if ropts.split_rule in INDEXED_RULES:
        index = BandIndex.load([root / r["path"] for r in manifest.split_index()])
    decided = RowSplits(ropts.split_rule, first_id, index)
    with staging_dir(root / name) as stage:
        labels = LabelIndex.frozen_map(manifest.labels)
        rejects = RejectLog(stage, len(new))
        records = [{**s, "first_row_id": 0, "rows": 0} for s in new]
        split_rows = np.zeros(len(SPLIT_NAMES), np.int64)
        total_bytes = sum(p.reading for p in plans)
        reading = "pass 1/2: reading and checking"
        for source, _, chunk, _, splits, _, _ in read_rows(
            ropts, labels, rejects, first_id, reading, total_bytes, executor, splits=decided
        ):
            records[source]["rows"] += len(chunk)
            split_rows += np.bincount(splits, minlength=len(SPLIT_NAMES))
            sample_val_rows(sample, chunk, splits)
        decided.replay()
        rejects.close()
        count_sources(records, rejects, first_id)
        if rejects.unknown_labels:
            named = ", ".join(f"{label!r} ({n})" for label, n in rejects.unknown_labels.most_common())
            log.warning(
                f"rejected {rejects.by_reason['unknown_label']} row(s) whose label the dataset's "
                f"{len(manifest.labels)} classes lack: {named}; "
                "prepare --refit learns new classes (it rebuilds the dataset from every input it recorded)"
            )
        rejects.check(sum(s["read"] for s in records), opts.max_bad_fraction)

        state = vectorizer.state
        out = ShuffledSplits(
            ropts,
            stage,
            split_rows,
            manifest.encoding,
            manifest.row_width,
            len(manifest.labels),
            append_seed(ropts.seed, night),
        )
        coverage = coverage_for(state)
        writing = "pass 2/2: vectorizing and writing shards"
        ngram = state.config if isinstance(state, TfidfState) else None
        chunks = read_rows(ropts, labels, None, first_id, writing, total_bytes, executor, ngram, decided)
        for _, _, chunk, ids, splits, row_ids, work in chunks:
            if isinstance(state, TfidfState):
                counts = work.counts
                assert counts is not None, "read_rows hashes n-grams when given a config"
                featurized, outside, total = state.featurize_counting(counts, ids, row_ids)
                out.write(featurized, splits)
                coverage.add_train(outside, total, splits == TRAIN)
            else:
                assert isinstance(state, SequenceState)
                tokens, outside, total = state.encode_counting(chunk.texts, ids, row_ids)
                out.write(tokens, splits)
                coverage.add_train(outside, total, splits == TRAIN)
        shards, per_class = out.close()
        shutil.rmtree(stage / ".shuffle", ignore_errors=True)
        split = dict(manifest.split)
        if index is not None and index.added_count():
            added = split_record(ropts, stage, decided, name)["index"]
            split["index"] = manifest.split_index() + added
        sample_record = sample.write(stage) if sample.changed else manifest.val_sample
        if sample.changed and sample_record:
            sample_record = {**sample_record, "path": f"{name}/{sample_record['path']}"}

    drift = {**coverage.to_json(), "baseline": manifest.stats.get("coverage", {}).get("outside_share")}
    log.info(drift_line(coverage, manifest.stats.get("coverage")))
    rejected = {**rejects.summary(), "file": f"{name}/{REJECTS_NAME}"}
    rows = {split: int(per_class[i].sum()) for i, split in enumerate(SPLIT_NAMES)}
    _update(manifest, [_under(name, s) for s in shards], per_class, rejected, records)
    manifest.val_sample = sample_record
    manifest.split = split
    manifest.stats["next_row_id"] = first_id + sum(s["rows"] for s in records)
    manifest.appends.append(
        {
            "night": night,
            "at": at,
            "directory": name,
            "inputs": [s["path"] for s in records],
            "skipped": len(opts.inputs) + len(opts.test) - len(records),
            "rows": rows,
            "first_row_id": first_id,
            "rejected": rejected,
            "drift": drift,
            "seed": append_seed(ropts.seed, night),
            "shards": len(shards),
        }
    )
    faults.point("append-staged")
    try:
        manifest.save(root)  # the commit point
    except BaseException:
        shutil.rmtree(root / name, ignore_errors=True)
        raise
    faults.point("append-committed")
    log.info(
        f"appended night {night} to {opts.data}: "
        + ", ".join(f"{split} {n}" for split, n in rows.items())
        + f" rows in {len(shards)} shard(s) under {name}/; rejected {rejects.rows}; "
        + "now "
        + ", ".join(f"{split} {n}" for split, n in manifest.stats["rows"].items())
    )
    return manifest


def _under(directory: str, shard: ShardInfo) -> ShardInfo:
    return dataclasses.replace(shard, path=f"{directory}/{shard.path}")


def _update(
    manifest: Manifest, shards: list[ShardInfo], per_class: np.ndarray, rejected: dict, records: list[dict]
) -> None:
    """Add an append's shards, rows, rejects and sources to the manifest's totals (in memory)."""
    stats = manifest.stats
    manifest.shards = manifest.shards + shards
    manifest.sources = manifest.sources + records
    totals = stats.setdefault("rows", {})
    per = stats.setdefault("rows_per_class", {})
    for i, split in enumerate(SPLIT_NAMES):
        totals[split] = int(totals.get(split, 0)) + int(per_class[i].sum())
        old = per.get(split) or [0] * len(manifest.labels)
        per[split] = [int(a) + int(b) for a, b in zip(old, per_class[i])]
    before = stats.setdefault("rejected", {})
    merged = dict(before)
    merged["rows"] = int(before.get("rows", 0)) + rejected["rows"]
    reasons = dict(before.get("by_reason", {}))
    for reason, n in rejected["by_reason"].items():
        reasons[reason] = reasons.get(reason, 0) + n
    merged["by_reason"] = dict(sorted(reasons.items()))
    merged["lost_bytes"] = int(before.get("lost_bytes", 0)) + rejected["lost_bytes"]
    merged["estimated_lost_rows"] = int(before.get("estimated_lost_rows", 0)) + rejected["estimated_lost_rows"]
    merged["files"] = [*before.get("files", [before.get("file", REJECTS_NAME)]), rejected["file"]]
    stats["rejected"] = merged
