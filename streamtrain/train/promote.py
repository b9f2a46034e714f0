"""Finishing a version and switching ``current`` as one recoverable step; ``streamtrain promote`` (``promote``).

fit ends a version in this order (``complete``), and the next command that takes the model directory's writer
lock (fit, promote: ``recover``) completes whatever prefix of it a kill left:

1. the version's files and ``checksums.json`` are written in ``<id>.training``;
2. the journal ``M/.promoting.json`` records the intent (``Intent``: this version, promoted or not, why);
3. what ``checksums.json`` does not list (``checkpoint/``, ``resume.json``) is removed, then
   ``<id>.training`` is renamed into place;
4. when promoted: ``current`` is switched, the switch appended to ``M/promotions.jsonl`` (``Promotion``),
   and with a serving directory the version's SavedModel published there as the next ``N`` (once);
5. the journal is removed.

So a complete version holds only what its checksums list, and a version whose ``promotion.json`` says
promoted is ``current``, in the promotions log, or named by a pending journal. ``promote`` re-points
``current`` to any complete, undamaged version through the same journal (the rollback); it never changes a
version's files.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from streamtrain import faults
from streamtrain.errors import DataError, UsageError
from streamtrain.fs.jsondoc import write_json
from streamtrain.fs.locks import writer_lock
from streamtrain.fs.versions import TRAINING, Versions
from streamtrain.options import SECONDS, option
from streamtrain.train import modeldir

JOURNAL_NAME = ".promoting.json"
LOG_NAME = "promotions.jsonl"
log = logging.getLogger(__name__)


@dataclass
class Intent:
    """What the journal records before a version is finished or ``current`` is switched."""

    version: str
    promote: bool  # switch current to it
    by: str  # "fit" or "promote"
    reason: str
    serving_dir: str | None = None  # publish the promoted version there (``--serving-dir``), absolute

    def __post_init__(self) -> None:
        if self.serving_dir is not None:  # a later run, from anywhere, may complete the step
            self.serving_dir = os.path.abspath(self.serving_dir)


@dataclass
class Promotion:
    """One line of ``promotions.jsonl``: ``version`` became current, replacing ``previous``."""

    at: str
    version: str
    previous: str | None
    by: str
    reason: str


def complete(
    versions: Versions, building: Path, promoted: bool, reason: str, serving_dir: str | None = None
) -> tuple[Path, str | None]:
    """Finish ``building`` and switch ``current`` to it when ``promoted``: steps 2 to 5 of the module docstring.

    Args:
        versions: the model directory's versions.
        building: the version being built, its files and ``checksums.json`` written.
        promoted: the promotion guard's decision.
        reason: its reason, for the journal and ``promotions.jsonl``.
        serving_dir: also publish the promoted version there (``--serving-dir``).

    Returns:
        The complete version's directory, and the version ``current`` pointed at before (None if unchanged).
    """
    intent = Intent(building.name.removesuffix(TRAINING), promoted, "fit", reason, serving_dir)
    write_json(versions.root / JOURNAL_NAME, asdict(intent))
    faults.point("after-journal")
    final = _finish(versions, building)
    faults.point("after-finish")
    before = _switch(versions, intent) if promoted else None
    faults.point("after-switch")
    if promoted:
        _publish(versions, intent)
    _clear(versions)
    return final, before


def recover(versions: Versions) -> str | None:
    """Complete what a killed run's journal says it was doing (a damaged version it names is removed instead).

    Args:
        versions: the model directory's versions; the caller holds its writer lock.

    Returns:
        The version the journal names; None when nothing was pending.

    Raises:
        DataError: the journal is unreadable.
    """
    intent = _read_intent(versions.root / JOURNAL_NAME)
    if intent is None:
        return None
    building = versions.dir / (intent.version + TRAINING)
    if building.is_dir() and not (versions.dir / intent.version).exists():
        found = modeldir.problems(building)
        if found:  # the journal is written after checksums.json: someone else changed it since
            log.warning(f"removing {building}: its promotion was interrupted and it is damaged ({found[0]})")
            versions.discard(building)
            _clear(versions)
            return intent.version
        _finish(versions, building)
    if intent.promote and intent.version in versions.complete():
        _switch(versions, intent)
        _publish(versions, intent)
    log.warning(f"completed the interrupted promotion step of version {intent.version} (a killed {intent.by})")
    _clear(versions)
    return intent.version


def log_adoption(versions: Versions, version: str) -> None:
    """Log ``version``, the 0.2 model ``modeldir.adopt_flat`` made the first current version, as promoted.

    Args:
        versions: the model directory's versions.
        version: the adopted version's id.
    """
    _switch(versions, Intent(version, True, "fit", "adopted from a 0.2 model directory"))


def promotions(root: str | os.PathLike[str]) -> list[Promotion]:
    """The promotions log of a model directory.

    Args:
        root: the model directory.

    Returns:
        Its promotions, oldest first (a line torn by a kill is skipped; none without a log).
    """
    try:
        lines = (Path(root) / LOG_NAME).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(Promotion(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


def pending(root: str | os.PathLike[str]) -> Intent | None:
    """The journal of an interrupted promotion step, which the next fit or promote completes.

    Args:
        root: the model directory.

    Returns:
        The intent it records; None when no step is pending.

    Raises:
        DataError: the journal is unreadable.
    """
    return _read_intent(Path(root) / JOURNAL_NAME)


def _finish(versions: Versions, building: Path) -> Path:
    """Remove what ``checksums.json`` does not list (the checkpoint, the resume key), then rename into place."""
    recorded = json.loads((building / modeldir.CHECKSUMS_NAME).read_text(encoding="utf-8"))
    kept = {name.split("/")[0] for name in recorded} | {modeldir.CHECKSUMS_NAME}
    for entry in building.iterdir():
        if entry.name not in kept:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return versions.finish(building)


def _switch(versions: Versions, intent: Intent) -> str | None:
    """Point ``current`` at the intent's version and log it, unless both are done; the version replaced."""
    before = versions.current()
    logged = promotions(versions.root)
    if before != intent.version:
        versions.promote(intent.version)
    if before != intent.version or not logged or logged[-1].version != intent.version:
        previous = before if before != intent.version else (logged[-1].version if logged else None)
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        line = json.dumps(asdict(Promotion(now, intent.version, previous, intent.by, intent.reason))) + "\n"
        fd = os.open(versions.root / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    return before if before != intent.version else None


def _publish(versions: Versions, intent: Intent) -> None:
    """Publish the intent's version to its serving directory, if it names one (``serve.layout.publish``)."""
    if intent.serving_dir is None:
        return
    from streamtrain.serve.layout import publish

    path = versions.path(intent.version)
    try:
        _servable(path)
    except UsageError as exc:  # checked before the switch; a journal from an older run may name one
        log.warning(f"not published: {exc}")
        return
    publish(intent.serving_dir, path, lambda out: _export_old(path, out))


def _servable(version_dir: Path) -> None:
    """Refuse (``UsageError``) a version that has no SavedModel and whose vectorizer cannot be exported."""
    from streamtrain.serve.export import SAVED_MODEL_DIR, exportable

    if (version_dir / SAVED_MODEL_DIR).is_dir():
        return
    why = exportable(modeldir.load_vectorizer(version_dir))
    if why is not None:
        raise UsageError(f"--serving-dir: version {version_dir.name} cannot be exported: {why}")


def _export_old(version_dir: Path, out: Path) -> None:
    """Write the SavedModel of a version made before versions held one, from its model and vectorizer files."""
    from streamtrain.serve.export import write_saved_model
    from streamtrain.train.runtime import import_tensorflow

    import_tensorflow()
    write_saved_model(out, modeldir.load_vectorizer(version_dir), modeldir.load_model(version_dir), version_dir.name)


def _clear(versions: Versions) -> None:
    """Remove the journal: the step is complete."""
    (versions.root / JOURNAL_NAME).unlink(missing_ok=True)


def _read_intent(path: Path) -> Intent | None:
    """The journal's intent; None when there is none, ``DataError`` when it is unreadable."""
    try:
        return Intent(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"unreadable promotion journal ({exc}); remove it to go on", str(path)) from exc


@dataclass
class PromoteOptions:
    """The options of ``streamtrain promote`` (each field's ``help`` says what it means)."""

    model_dir: str = option(positional=True, path=True, metavar="MODEL_DIR", help="the model directory")
    version: str = option(
        positional=True, metavar="VERSION", help="the complete version to make current (an id under versions/)"
    )
    wait: float = option(0.0, **SECONDS, help="seconds to wait for another run holding MODEL_DIR before exiting 75")
    serving_dir: str | None = option(
        None,
        path=True,
        metavar="DIR",
        help="also write the version's SavedModel to DIR/N, the next integer (TensorFlow Serving's model base path)",
    )


def promote(opts: PromoteOptions) -> dict:
    """Make ``opts.version`` current, after completing any interrupted step, under the writer lock.

    Args:
        opts: the options.

    Returns:
        ``model_dir``, ``current`` (the version), ``previous`` (None: there was none) and ``recovered`` (the
        version of an interrupted step completed first, or None).

    Raises:
        UsageError: not a versioned model directory, or (with ``--serving-dir``) a version that cannot be
            exported; ``current`` is left as it was.
        DataError: no such complete version, or a damaged one; ``current`` is left as it was.
        Busy: another run holds the model directory (exit 75).
    """
    versions = Versions(opts.model_dir)
    if not versions.exists():
        raise UsageError(f"{opts.model_dir} is not a versioned model directory (no versions/)")
    with writer_lock(opts.model_dir, "model directory", opts.wait):
        recovered = recover(versions)
        path = versions.path(opts.version)  # DataError (65): not a complete version
        modeldir.check(path)  # DataError (65): damaged; current is left as it was
        if opts.serving_dir is not None:
            _servable(path)  # UsageError (2): nothing to publish; current is left as it was
        before = versions.current()
        why = f"streamtrain promote (current was {before or 'none'})"
        intent = Intent(opts.version, True, "promote", why, opts.serving_dir)
        write_json(versions.root / JOURNAL_NAME, asdict(intent))
        _switch(versions, intent)
        _publish(versions, intent)
        _clear(versions)
    log.info(f"current: {before or 'none'} -> {opts.version}")
    return {"model_dir": str(opts.model_dir), "current": opts.version, "previous": before, "recovered": recovered}
