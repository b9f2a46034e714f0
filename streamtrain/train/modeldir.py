"""The model directory: everything ``evaluate`` and ``predict`` need, and nothing pickled.

Layout:
- ``model.keras``: the trained model in Keras' own format.
- ``vectorizer.json`` + ``vectorizer.npz``: the frozen vectorizer and label map
  (byte copies of the dataset's).
- ``metrics.json``: test/val accuracy and loss, epochs, rows, classes.
- ``history.json``: per-epoch training history.
- ``fit_config.json``: the effective fit options and the dataset it was trained on.
- ``checksums.json``: size and sha256 of every other file, written last;
  ``check`` compares them before evaluate and predict use the directory,
  ``problems`` lists every difference for ``streamtrain verify``.

``write_model_dir`` builds it in a staging directory and renames it into
place, so a crash never leaves a model directory that looks complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from streamtrain.errors import DataError
from streamtrain.fs.atomic import staging_dir
from streamtrain.fs.checksums import file_problem, sha256_file
from streamtrain.fs.jsondoc import write_json
from streamtrain.vectorize.vectorizer import ARRAYS_NAME, JSON_NAME, Vectorizer

MODEL_NAME = "model.keras"
METRICS_NAME = "metrics.json"
HISTORY_NAME = "history.json"
CONFIG_NAME = "fit_config.json"
CHECKSUMS_NAME = "checksums.json"  # written last: size and sha256 of every other file


def write_model_dir(
    target: str | Path,
    model,
    data_dir: str | Path,
    metrics: dict,
    history: dict,
    config: dict,
    overwrite: bool = False,
) -> Path:
    from streamtrain.train.guards import require_finite

    require_finite("refusing to write a model whose metrics are not finite", _numbers(metrics))
    with staging_dir(target, overwrite=overwrite) as stage:
        model.save(stage / MODEL_NAME)
        for name in (JSON_NAME, ARRAYS_NAME):
            shutil.copyfile(Path(data_dir) / name, stage / name)
        write_json(stage / HISTORY_NAME, history)
        write_json(stage / CONFIG_NAME, config)
        write_json(stage / METRICS_NAME, metrics)
        files = sorted(p.name for p in stage.iterdir() if p.is_file())
        record = {n: {"bytes": (stage / n).stat().st_size, "sha256": sha256_file(stage / n)} for n in files}
        write_json(stage / CHECKSUMS_NAME, record)
    return Path(target)


def _numbers(metrics: dict) -> list[tuple[str, float | None]]:
    return [(k, v) for k, v in metrics.items() if isinstance(v, float)]


def problems(model_dir: str | Path) -> list[str]:
    """Every way a model directory differs from what fit wrote (``checksums.json``), one line each."""
    root = Path(model_dir)
    try:
        files = json.loads((root / CHECKSUMS_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{CHECKSUMS_NAME}: missing (not a model directory, fit did not finish, or written before 0.2)"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{CHECKSUMS_NAME}: unreadable: {exc}"]
    return [f"{name}: {p}" for name, f in files.items() if (p := file_problem(root / name, f["bytes"], f["sha256"]))]


def check(model_dir: str | Path) -> None:
    """Before use: ``DataError`` naming the first damaged file; a model directory from before 0.2 has no record."""
    root = Path(model_dir)
    if not (root / CHECKSUMS_NAME).exists() and (root / MODEL_NAME).is_file():
        return
    found = problems(root)
    if found:
        raise DataError(f"damaged or incomplete model directory: {found[0]}", str(root))


def load_model(model_dir: str | Path):
    import keras

    path = Path(model_dir) / MODEL_NAME
    if not path.is_file():
        raise DataError("no trained model here (fit did not finish?)", str(path))
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise DataError(f"cannot load the model: {exc}", str(path)) from exc


def load_vectorizer(model_dir: str | Path) -> Vectorizer:
    return Vectorizer.load(model_dir)


def read_vectorizer_doc(model_dir: str | Path) -> dict:
    path = Path(model_dir) / JSON_NAME
    if not path.is_file():
        raise DataError("no vectorizer state here (not a model directory?)", str(path))
    return json.loads(path.read_text(encoding="utf-8"))
