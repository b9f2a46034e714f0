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

import logging
import os
from concurrent.futures import Executor

from streamtrain.dataset import sources
from streamtrain.dataset.build import build
from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.options import Announce, Bakeoff, PrepareOptions, existing, recorded_options
from streamtrain.errors import DataError
from streamtrain.io.readers import detect_format

log = logging.getLogger(__name__)
PROVENANCE = ("bytes", "sha256", "documents", "ingested_at", "night")  # what a refit keeps of an input's record


def refit(
    opts: PrepareOptions, executor: Executor, announce: Announce | None = None, bakeoff: Bakeoff | None = None
) -> Manifest:
    """Rebuild the dataset ``opts.data`` (see the module docstring); ``announce`` and ``bakeoff``: ``prepare``'s."""
    old = existing(opts.data, "--refit")
    recorded = _recorded_inputs(old, opts.data)
    night, at = sources.next_night(old), sources.now()
    new = _refit_new(opts, old.sources, night, at)
    every = [s for s in recorded + new if s["role"] == "train"] + [s for s in recorded + new if s["role"] == "test"]
    rebuilt = recorded_options(
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
    provenance = [{k: s[k] for k in PROVENANCE if k in s} for s in every]
    return build(rebuilt, executor, provenance, {"refit_of": refit_of}, announce, bakeoff)


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
    for role, path in opts.every_input():
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
