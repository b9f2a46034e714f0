"""The model directory: everything ``evaluate`` and ``predict`` need, and nothing pickled.

Layout:
- ``model.keras``: the trained model in Keras' own format.
- ``vectorizer.json`` + ``vectorizer.npz``: the frozen vectorizer and label map
  (byte copies of the dataset's).
- ``metrics.json``: test/val accuracy and loss, epochs, rows, classes.
- ``history.json``: per-epoch training history.
- ``fit_config.json``: the effective fit options and the dataset it was trained on.

``write_model_dir`` builds it in a staging directory and renames it into
place, so a crash never leaves a model directory that looks complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from streamtrain.errors import DataError
from streamtrain.fs.atomic import staging_dir
from streamtrain.fs.jsondoc import write_json
from streamtrain.vectorize.vectorizer import ARRAYS_NAME, JSON_NAME, Vectorizer

MODEL_NAME = "model.keras"
METRICS_NAME = "metrics.json"
HISTORY_NAME = "history.json"
CONFIG_NAME = "fit_config.json"


def write_model_dir(
    target: str | Path,
    model,
    data_dir: str | Path,
    metrics: dict,
    history: dict,
    config: dict,
    overwrite: bool = False,
) -> Path:
    with staging_dir(target, overwrite=overwrite) as stage:
        model.save(stage / MODEL_NAME)
        for name in (JSON_NAME, ARRAYS_NAME):
            shutil.copyfile(Path(data_dir) / name, stage / name)
        write_json(stage / HISTORY_NAME, history)
        write_json(stage / CONFIG_NAME, config)
        write_json(stage / METRICS_NAME, metrics)
    return Path(target)


def load_model(model_dir: str | Path):
    import keras

    path = Path(model_dir) / MODEL_NAME
    if not path.is_file():
        raise DataError("no trained model here (fit did not finish?)", str(path))
    return keras.models.load_model(path, compile=False, safe_mode=True)


def load_vectorizer(model_dir: str | Path) -> Vectorizer:
    return Vectorizer.load(model_dir)


def read_vectorizer_doc(model_dir: str | Path) -> dict:
    path = Path(model_dir) / JSON_NAME
    if not path.is_file():
        raise DataError("no vectorizer state here (not a model directory?)", str(path))
    return json.loads(path.read_text(encoding="utf-8"))
