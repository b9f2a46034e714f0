"""streamtrain: out-of-core training of text classifiers.

The commands (``streamtrain COMMAND``): prepare, fit, train, evaluate,
predict, verify, promote, export, inspect. Who owns what:

- ``io/``: reading raw labelled inputs, the rows they reject, predict's input lines.
- ``vectorize/``: text -> features: the split, labels, corpus statistics, the
  vectorizer choice, TF-IDF n-grams, token sequences, the saved vectorizer.
- ``dataset/``: the prepared dataset: shards, manifest, ``prepare``, ``--append``.
- ``train/``: models, the training loop and cluster, the model directory's
  versions and promotion, ``fit``, ``evaluate``, ``predict``, ``export``, ``promote``.
- ``serve/``: the SavedModel that takes raw text, its check, TensorFlow Serving's layout.
- ``fs/``: crash-safe outputs, checksums, strict JSON, locks, versions.
- ``cli/``: the command line; the only place that parses arguments or exits.
- ``verify``, ``inspect``: checking and showing a dataset or model directory.
- ``options``, ``errors``, ``progress``, ``visible``, ``faults``: option
  declarations, errors and exit codes, progress display, printable labels, test hooks.
- ``api``: ``streamtrain.load(MODEL_DIR)``, in-process serving that follows promotions.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__version__ = "0.29.0"

if TYPE_CHECKING:
    from streamtrain.api import Model


def load(model_dir: str | os.PathLike[str], version: str | None = None) -> Model:
    """``model_dir``'s current version, ready to score raw text; it follows later promotions.

    Imports TensorFlow; ``import streamtrain`` alone does not.

    Args:
        model_dir: a model directory.
        version: a version id to load instead, never replaced.

    Returns:
        An ``api.Model`` (``predict``, ``probabilities``).
    """
    from streamtrain.api import load as _load

    return _load(model_dir, version)
