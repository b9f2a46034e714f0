"""``prepare --refit``: rebuild a dataset from every input it recorded, each once and as it is now, plus new ones.

``refit`` gathers the inputs (``_recorded_inputs``: each recorded input
once, digested again, a missing one stopping the refit and a changed one
warned about; ``_refit_new``: the run's INPUTs and --test inputs not
recorded before, as the next night), takes the dataset's recorded options
(``options.recorded_options``) and hands them to ``build.build``, which
fits a new vectorizer and label map and replaces the dataset. The manifest
records what it replaced under ``created.refit_of``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from concurrent.futures import Executor

from streamtrain.dataset import sources
from streamtrain.dataset.build import build
from streamtrain.dataset.counts import Source
from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.options import Announce, Bakeoff, PrepareOptions, existing, recorded_options
from streamtrain.dataset.records import RefitOf
from streamtrain.errors import DataError
from streamtrain.io.readers import detect_format

log = logging.getLogger(__name__)


def refit(
    opts: PrepareOptions, executor: Executor, announce: Announce | None = None, bakeoff: Bakeoff | None = None
) -> Manifest:
    """Rebuild the dataset ``opts.data`` (the module docstring).

    Args:
        opts: the run's options: its inputs are added to the recorded ones; the recorded options that shape
            rows replace its own.
        executor: where the per-chunk work runs.
        announce: ``prepare``'s.
        bakeoff: ``prepare``'s.

    Returns:
        The rebuilt dataset's manifest.

    Raises:
        UsageError: ``opts.data`` is not a dataset.
        DataError: a recorded input is gone (nothing replaced), or the rebuild fails as ``build.build`` does.
    """
    old = existing(opts.data, "--refit")
    recorded = _recorded_inputs(old, opts.data)
    night, at = sources.next_night(old), sources.now()
    new = _refit_new(opts, old.sources, night, at)
    every = [s for s in recorded + new if s.role == "train"] + [s for s in recorded + new if s.role == "test"]
    rebuilt = recorded_options(
        old,
        opts,
        inputs=[s.path for s in every if s.role == "train"],
        test=[s.path for s in every if s.role == "test"],
        overwrite=True,
        refit=False,
    )
    log.info(
        f"refitting {opts.data} from {len(recorded)} recorded input(s)"
        + (f" and {len(new)} new one(s)" if new else "")
        + f" (its {len(old.appends)} append(s) included)"
    )
    refit_of = RefitOf(old.created.at, len(old.appends), old.stats.rows, old.n_features, [s.path for s in new])
    provenance = [sources.Provenance.of(s) for s in every]
    return build(rebuilt, executor, provenance, refit_of, announce, bakeoff)


def _recorded_inputs(old: Manifest, data: str) -> list[Source]:
    """Each input the dataset recorded, once, as it is now: a refit reads it whole.

    An input that grew or gained documents has a record per night; the first is kept, with today's digest.
    A missing one stops the refit (``DataError``); one that changed is warned about.
    """
    latest: dict[tuple[str, str], Source] = {}
    first: dict[tuple[str, str], Source] = {}
    for s in old.sources:
        key = (s.role, s.path)
        first.setdefault(key, s)
        if key not in latest or (s.bytes or 0) >= (latest[key].bytes or 0):
            latest[key] = s
    missing = [f"  {s.describe()}: missing" for s in first.values() if not os.path.exists(s.path)]
    if missing:
        raise DataError(
            f"cannot refit: {len(missing)} recorded input(s) are gone; nothing was replaced:\n" + "\n".join(missing),
            data,
        )
    out = []
    for key, s in first.items():
        now = sources.record(s.path)
        last = latest[key]
        if last.sha256 is None:
            log.warning(f"{last.describe()}: its size and sha256 were not recorded; the refit reads it as it is")
        elif (now.bytes, now.sha256) != (last.bytes, last.sha256):
            log.warning(
                f"{last.describe()}: changed since it was last ingested ({last.bytes} bytes then, "
                f"{now.bytes} now); the refit reads it as it is now"
            )
        documents = s.documents if now.documents is None else now.documents
        out.append(dataclasses.replace(s, bytes=now.bytes, sha256=now.sha256, documents=documents))
    return out


def _refit_new(opts: PrepareOptions, recorded: list[Source], night: int, at: str) -> list[Source]:
    """The refit's INPUTs and --test inputs that it did not record (by path or content), as night ``night``."""
    out: list[Source] = []
    paths = {s.path for s in recorded}
    for role, path in opts.every_input():
        full = os.path.abspath(path)
        if full in paths:
            log.info(f"{path}: a recorded input; the refit reads it once")
            continue
        now = sources.record(path)
        assert now.bytes is not None and now.sha256 is not None, "a digest of an input now has both"
        if (seen := sources.ingested(recorded + out, now.bytes, now.sha256)) is not None:
            log.warning(f"{path}: already ingested as {seen.describe()}; skipped")
            continue
        at_night = dataclasses.replace(now, ingested_at=at, night=night)
        out.append(at_night.source(role, full, detect_format(path)))
    return out
