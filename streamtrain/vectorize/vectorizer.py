"""The fitted vectorizer as files: ``vectorizer.json`` (config, labels) and ``vectorizer.npz`` (arrays).

The same two files sit in a prepared dataset directory and in a model
directory, so ``predict`` turns raw text into exactly the features ``fit``
saw. No pickle: JSON plus an ``.npz`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtrain.errors import DataError
from streamtrain.fs.jsondoc import write_json
from streamtrain.vectorize.choice import LEGACY_NAMES
from streamtrain.vectorize.rows import Rows
from streamtrain.vectorize.sequence import SequenceConfig, SequenceState
from streamtrain.vectorize.tfidf import NgramConfig, TfidfState

JSON_NAME = "vectorizer.json"
ARRAYS_NAME = "vectorizer.npz"
FORMAT_VERSION = 1

KINDS = ("ngram", "sequence")  # a vectorizer's kind is also the name of the rows it makes (the encoding)


@dataclass
class Vectorizer:
    """A fitted vectorizer plus the label map its rows are encoded with."""

    state: TfidfState | SequenceState
    labels: list[str]

    @property
    def kind(self) -> str:
        """The kind: "ngram" or "sequence" (``KINDS``)."""
        return "ngram" if isinstance(self.state, TfidfState) else "sequence"

    @property
    def encoding(self) -> str:
        """The kind of rows it makes: its ``kind``."""
        return self.kind

    @property
    def n_features(self) -> int:
        """Row width (n-grams) or embedding input size (sequences)."""
        return self.state.n_features

    def transform(self, texts: Sequence[str]) -> Rows:
        """Raw texts -> rows (``SparseRows`` or ``TokenRows``), labelled -1, with row ids 0..n-1."""
        return self.state.transform(texts)

    def save(self, directory: str | Path) -> dict:
        """Write ``vectorizer.npz``, then ``vectorizer.json`` (atomically), into ``directory``.

        Args:
            directory: an existing directory.

        Returns:
            The JSON document, with the arrays' sha256.
        """
        import hashlib

        directory = Path(directory)
        data = _npz(self.state.arrays())
        (directory / ARRAYS_NAME).write_bytes(data)
        doc = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "config": self.state.config.to_json(),
            "encoding": self.encoding,
            "n_features": self.n_features,
            "labels": self.labels,
            "arrays": ARRAYS_NAME,
            "arrays_sha256": hashlib.sha256(data).hexdigest(),
        }
        write_json(directory / JSON_NAME, doc)
        return doc

    @classmethod
    def load(cls, directory: str | Path) -> Vectorizer:
        """The vectorizer saved in ``directory``.

        Raises:
            DataError: ``vectorizer.json`` is missing or not a vectorizer this release reads.
        """
        directory = Path(directory)
        config, doc = load_config(directory)
        with np.load(directory / ARRAYS_NAME, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        state: TfidfState | SequenceState
        if isinstance(config, NgramConfig):
            state = TfidfState.from_arrays(config, arrays)
        else:
            state = SequenceState.from_arrays(config, arrays)
        return cls(state, list(doc["labels"]))


def load_config(directory: str | Path) -> tuple[NgramConfig | SequenceConfig, dict]:
    """The configuration in ``directory``'s ``vectorizer.json``, without the arrays.

    Names written by 0.1.0 (``LEGACY_NAMES``) read as today's.

    Args:
        directory: a dataset or model directory.

    Returns:
        (the configuration, the JSON document).

    Raises:
        DataError: the file is missing, or not a vectorizer this release reads, or names arrays other than
            ``vectorizer.npz`` beside it.
    """
    path = Path(directory) / JSON_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError("missing vectorizer state", str(path)) from exc
    kind = LEGACY_NAMES.get(doc.get("kind"), doc.get("kind"))
    if doc.get("format_version") != FORMAT_VERSION or kind not in KINDS:
        raise DataError(f"unsupported vectorizer {doc.get('kind')!r} v{doc.get('format_version')}", str(path))
    if doc.get("arrays") != ARRAYS_NAME:  # the file beside it, never a path that leaves the directory
        raise DataError(f"the arrays must be {ARRAYS_NAME} beside it, not {doc.get('arrays')!r}", str(path))
    config = NgramConfig.from_json(doc["config"]) if kind == "ngram" else SequenceConfig.from_json(doc["config"])
    return config, doc


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as an ``.npz`` (what ``np.load`` reads), deflated at level 1.

    Faster than ``np.savez_compressed``'s level 6, for a slightly larger file (measurement: docs/design/tfidf.md).
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)
    return buf.getvalue()
