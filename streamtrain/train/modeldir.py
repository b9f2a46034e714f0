"""The model directory: versions of trained models, each with everything ``evaluate`` and ``predict`` need.

A model directory ``M`` holds immutable versions, ``M/versions/<id>/``, and a ``current`` link to one
(``fs.versions``); ``resolve`` finds the version a reader should use (``current`` unless one is named). A
version holds, nothing pickled: ``model.keras`` (the weights in Keras' format, without the optimizer:
``save_weights_model``), ``vectorizer.json`` + ``vectorizer.npz`` (byte copies of the dataset's),
``metrics.json``, ``history.json`` (per validation round), ``fit_config.json`` (the effective options and
the dataset), ``promotion.json``, ``selection.json``, ``saved_model/`` (unless ``--no-export``),
``report.md``, ``training.png``, ``confusion.png``, ``tensorboard/``, and ``checksums.json``: the size and
sha256 of every other file, written last (``write_version``); it must record at least ``REQUIRED``.
``check`` compares them before a version is used (one without them is refused, never read unchecked);
``problems`` lists every difference for ``streamtrain verify``. A directory written by streamtrain 0.2
(the files directly in ``M``, recognised by ``FLAT_MARKERS``, never by ``model.keras`` alone) is read as it
is, and fit adopts it as the first version (``adopt_flat``).

Every file, in full: docs/reference.md (The model directory)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from streamtrain.errors import DataError, UsageError
from streamtrain.fs.checksums import check_once, file_problem, sha256_file
from streamtrain.fs.jsondoc import write_json
from streamtrain.fs.versions import CURRENT, VERSIONS, Versions, new_id
from streamtrain.vectorize.vectorizer import ARRAYS_NAME, JSON_NAME, Vectorizer

if TYPE_CHECKING:
    import keras

MODEL_NAME = "model.keras"
METRICS_NAME = "metrics.json"
HISTORY_NAME = "history.json"
CONFIG_NAME = "fit_config.json"
PROMOTION_NAME = "promotion.json"
REPORT_NAME = "report.md"
TRAINING_PNG = "training.png"
CONFUSION_PNG = "confusion.png"
TENSORBOARD_DIR = "tensorboard"
CHECKSUMS_NAME = "checksums.json"  # written last: size and sha256 of every other file
VERSION_FILES = (MODEL_NAME, JSON_NAME, ARRAYS_NAME, HISTORY_NAME, CONFIG_NAME, METRICS_NAME, PROMOTION_NAME)
# What a 0.2 model directory always held, each a regular file: a user's own model.keras and notes are not one.
FLAT_MARKERS = (MODEL_NAME, JSON_NAME, ARRAYS_NAME, METRICS_NAME, CHECKSUMS_NAME)
REQUIRED = (MODEL_NAME, JSON_NAME, ARRAYS_NAME)  # what readers load: a checksums.json must record each
# Inside the version being trained only, never part of a complete one (train.checkpoint, fit's resume key):
CHECKPOINT_DIR = "checkpoint"
RESUME_NAME = "resume.json"
log = logging.getLogger(__name__)


def write_version(
    directory: Path,
    model: keras.Model,
    data_dir: str | Path,
    metrics: dict,
    history: dict,
    config: dict,
    promotion: dict,
) -> None:
    """Write a version's files into ``directory`` (the version being built), ``checksums.json`` last.

    ``checksums.json`` records every file then in ``directory`` (the report, pictures, TensorBoard events,
    ``selection.json`` and ``saved_model/`` written before included), but the checkpoint and the resume key.

    Args:
        directory: ``versions/<id>.training``.
        model: the trained model (saved by ``save_weights_model``).
        data_dir: the dataset directory, whose vectorizer files are copied.
        metrics: ``metrics.json``.
        history: ``history.json``: each metric per validation round.
        config: ``fit_config.json``.
        promotion: ``promotion.json``.

    Raises:
        NonFiniteError: a metric is not finite (nothing is written).
    """
    from streamtrain.train.guards import require_finite

    require_finite("refusing to write a model whose metrics are not finite", metric_numbers(metrics))
    save_weights_model(model, directory / MODEL_NAME)
    for name in (JSON_NAME, ARRAYS_NAME):
        shutil.copyfile(Path(data_dir) / name, directory / name)
    write_json(directory / HISTORY_NAME, history)
    write_json(directory / CONFIG_NAME, config)
    write_json(directory / METRICS_NAME, metrics)
    write_json(directory / PROMOTION_NAME, promotion)
    files = sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.relative_to(directory).parts[0] not in (CHECKPOINT_DIR, RESUME_NAME, CHECKSUMS_NAME)
    )
    record = {n: {"bytes": (directory / n).stat().st_size, "sha256": sha256_file(directory / n)} for n in files}
    write_json(directory / CHECKSUMS_NAME, record)


def save_weights_model(model: keras.Model, path: Path) -> None:
    """Save ``model`` in Keras' format without its optimizer.

    A version is read for its weights only (evaluate, predict, the promotion guard, ``--warm-start``), and
    Adam's two moments would triple the file (docs/design/training.md). Keras' own ``load_model`` with
    ``compile=True`` warns that the optimizer's variables are missing; streamtrain loads with
    ``compile=False``.

    Args:
        model: the model; its optimizer is detached while saving and put back.
        path: the ``.keras`` file.
    """
    optimizer = getattr(model, "optimizer", None)
    model.optimizer = None
    try:
        model.save(path)
    finally:
        model.optimizer = optimizer


def is_flat(root: Path) -> bool:
    """Whether ``root`` is a model directory written by streamtrain 0.2.

    That is: every ``FLAT_MARKERS`` file (none a symlink) directly in ``root``, and no ``current`` (an
    adoption cut short before its promotion is still flat).
    """
    if os.path.lexists(Versions(root).link):
        return False
    return all((root / name).is_file() and not (root / name).is_symlink() for name in FLAT_MARKERS)


def resolve(model_dir: str | Path, version: str | None = None) -> Path:
    """The directory of the model a reader should use.

    Args:
        model_dir: the model directory.
        version: a version id; None: ``current``.

    Returns:
        The version's directory; a 0.2 directory itself.

    Raises:
        UsageError: ``version`` given for a 0.2 directory.
        DataError: no such model directory or version, or not a model directory.
    """
    root = Path(model_dir)
    if is_flat(root):
        if version is not None:
            raise UsageError(f"{root} holds one unversioned model (written by streamtrain 0.2): drop --version")
        return root
    if not root.is_dir():
        raise DataError("no such model directory", str(root))
    if not Versions(root).exists():
        raise DataError("not a model directory (no versions/, and not the layout streamtrain 0.2 wrote)", str(root))
    return Versions(root).path(version)


def adopt_flat(root: Path) -> str | None:
    """Turn a 0.2 model directory into a versioned one whose first, current version is that model.

    The files are copied into a version, which is renamed into place and made
    current before the originals are removed, so a crash at any point leaves
    a readable model directory. Only what its ``checksums.json`` records (and that file) is adopted, after
    ``check``: anything else in ``root`` is not streamtrain's and stays where it is.

    Args:
        root: the model directory.

    Returns:
        The new version's id; None if ``root`` is not flat.

    Raises:
        DataError: the 0.2 model is damaged (nothing is changed).
    """
    if not is_flat(root):
        return None
    check(root)
    names = {Path(name).parts[0] for name in _recorded(root)} | {CHECKSUMS_NAME}
    versions = Versions(root)
    version = new_id()
    building = versions.begin(version)
    adopted = [root / name for name in sorted(names - {VERSIONS, CURRENT})]
    for path in adopted:
        if path.is_dir():
            shutil.copytree(path, building / path.name)
        else:
            shutil.copy2(path, building / path.name)
    versions.finish(building)
    versions.promote(version)
    for path in adopted:  # a crash before this point leaves them beside current, which readers then use
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    log.warning(f"{root}: adopted the unversioned model written by streamtrain 0.2 as version {version} (current)")
    return version


def metric_numbers(metrics: dict) -> list[tuple[str, float | None]]:
    """The float values of ``metrics``, as (name, number) pairs for ``guards.require_finite``."""
    return [(k, v) for k, v in metrics.items() if isinstance(v, float)]


def problems(model_dir: str | Path, compare: Callable[[Path, int, str], str | None] = file_problem) -> list[str]:
    """Every way one version (or a 0.2 model directory) differs from what fit wrote (``checksums.json``).

    ``checksums.json`` must record at least ``REQUIRED`` (what a reader loads), each name inside the
    directory.

    Args:
        model_dir: the version's directory.
        compare: ``file_problem`` (read every file: ``verify``) or ``check_once`` (``check``: a file that
            matched once in this process and has not changed is not read again, as when fit checks the
            current version for ``--warm-start`` and again for the promotion guard).

    Returns:
        One line per problem; none when it matches.
    """
    root = Path(model_dir)
    try:
        files = _recorded(root)
    except FileNotFoundError:
        return [f"{CHECKSUMS_NAME}: missing (not a model version, or fit did not finish)"]
    except (OSError, ValueError) as exc:
        return [f"{CHECKSUMS_NAME}: unreadable: {exc}"]
    out = [f"{CHECKSUMS_NAME}: does not record {name}" for name in REQUIRED if name not in files]
    for name, f in files.items():
        if not _inside(name):
            out.append(f"{CHECKSUMS_NAME}: records {name!r}, which is not a file inside the version")
        elif p := compare(root / name, f["bytes"], f["sha256"]):
            out.append(f"{name}: {p}")
    return out


def _recorded(root: Path) -> dict[str, dict]:
    """``root``'s ``checksums.json``: ``{name: {"bytes", "sha256"}}`` (``ValueError`` when it is not that)."""
    files = json.loads((root / CHECKSUMS_NAME).read_text(encoding="utf-8"))
    if not isinstance(files, dict) or not all(
        isinstance(f, dict) and isinstance(f.get("bytes"), int) and isinstance(f.get("sha256"), str)
        for f in files.values()
    ):
        raise ValueError("not a record of files with their bytes and sha256")
    return files


def _inside(name: str) -> bool:
    """A recorded name is a relative path that stays inside its directory."""
    parts = PurePosixPath(name).parts
    return bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts


def tree_problems(model_dir: str | Path) -> tuple[list[str], int]:
    """``problems`` of every complete version of a model directory, and of its ``current`` link.

    Args:
        model_dir: a versioned model directory, or one written by 0.2.

    Returns:
        The problems (each prefixed with its version's path), and the files checked.
    """
    root = Path(model_dir)
    versions = Versions(root)
    if is_flat(root):
        return problems(root), _recorded_count(root)
    if not versions.exists():
        return [f"{VERSIONS}: missing, and not a model directory written by 0.2 (it lacks one of {FLAT_MARKERS})"], 0
    out, files = [], 0
    current = versions.current()
    if (link := versions.link_problem()) is not None:
        out.append(link)
    elif current is not None and current not in versions.complete():
        out.append(f"current: points at {current}, which is not a complete version")
    for version in versions.complete():
        out += [f"versions/{version}/{p}" for p in problems(versions.dir / version)]
        files += _recorded_count(versions.dir / version)
    return out, files


def _recorded_count(directory: Path) -> int:
    """Files a version's ``checksums.json`` records, itself included (0 when unreadable)."""
    try:
        return len(json.loads((directory / CHECKSUMS_NAME).read_text(encoding="utf-8"))) + 1
    except (OSError, ValueError):
        return 0


def check(model_dir: str | Path) -> None:
    """Check a version before use (``problems``, files that matched before in this process not read again).

    Args:
        model_dir: the version's directory (or a 0.2 model directory).

    Raises:
        DataError: naming the first problem; a version without a ``checksums.json`` that records ``REQUIRED``
            included (there is no unchecked layout).
    """
    root = Path(model_dir)
    found = problems(root, check_once)
    if found:
        raise DataError(f"damaged or incomplete model directory: {found[0]}", str(root))


def load_model(model_dir: str | Path) -> keras.Model:
    """A version's model, uncompiled, loaded in Keras' safe mode.

    Args:
        model_dir: the version's directory.

    Returns:
        The model (inference only: it has no optimizer).

    Raises:
        DataError: no ``model.keras``, or it cannot be loaded.
    """
    import keras

    path = Path(model_dir) / MODEL_NAME
    if not path.is_file():
        raise DataError("no trained model here (fit did not finish?)", str(path))
    try:
        from streamtrain.train import models  # noqa: F401 - registers SparseDense, the MLP's first layer

        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise DataError(f"cannot load the model: {exc}", str(path)) from exc


def load_vectorizer(model_dir: str | Path) -> Vectorizer:
    """A version's frozen vectorizer and label map (``Vectorizer.load``)."""
    return Vectorizer.load(model_dir)


def read_vectorizer_doc(model_dir: str | Path) -> dict:
    """A version's ``vectorizer.json`` document (its arrays' sha256, config and labels).

    Args:
        model_dir: the version's directory.

    Returns:
        The document.

    Raises:
        DataError: there is no ``vectorizer.json``.
    """
    path = Path(model_dir) / JSON_NAME
    if not path.is_file():
        raise DataError("no vectorizer state here (not a model directory?)", str(path))
    return json.loads(path.read_text(encoding="utf-8"))
