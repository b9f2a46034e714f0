"""In-process serving: ``streamtrain.load(MODEL_DIR)`` -> ``Model``, raw text in, labels and probabilities out.

``Model`` scores through a version's SavedModel (``serve.export``: the
vectorizer runs inside the graph, so nothing here vectorizes). Loaded
without ``version``, it follows ``current``: each call reads where
``current`` points (one ``readlink``) and, when a promotion moved it, loads
the new version before scoring; the old one serves until the new one is
loaded and checked, and stays when the new one cannot be loaded (logged).
A version made before versions held a SavedModel is exported in memory
from its model and vectorizer files. Safe to call from several threads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtrain.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Loaded:
    version: str
    classes: list[str]
    serve: Callable[..., dict]  # the ``serving_default`` function: text -> {"probabilities", "label", "classes"}
    owner: object  # what ``serve`` belongs to, kept alive with it


class Model:
    """A model directory's ``current`` version (or a fixed one), ready to score raw text.

    Args:
        model_dir: the model directory.
        version: a version id to load instead of ``current``, never replaced.

    Raises:
        DataError: the version cannot be resolved or fails its checksums.
    """

    def __init__(self, model_dir: str | Path, version: str | None = None):
        from streamtrain.train.runtime import import_tensorflow

        import_tensorflow()
        self.model_dir = Path(model_dir)
        self.pinned = version
        self._lock = threading.Lock()
        self._loaded = _load(self.model_dir, version)

    @property
    def version(self) -> str:
        """The version scoring now."""
        return self._loaded.version

    @property
    def classes(self) -> list[str]:
        """The class names, in the order of ``probabilities``' columns."""
        return self._loaded.classes

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's class probabilities, by the version serving now.

        Args:
            texts: raw texts.

        Returns:
            float32 array (len(texts), classes), columns in ``classes`` order.
        """
        return _scores(self._current(), texts)

    def predict(self, texts: Sequence[str]) -> list[dict]:
        """Each text's most probable class and its probabilities, by one version whatever a promotion does.

        Args:
            texts: raw texts.

        Returns:
            One ``{"label": class, "probabilities": {class: p}}`` per text, in order (``streamtrain predict``'s
            result lines without their rounding).
        """
        loaded = self._current()  # once: classes and scores of the same version, whatever a promotion does
        p = _scores(loaded, texts)
        classes = loaded.classes
        return [{"label": classes[int(row.argmax())], "probabilities": dict(zip(classes, row.tolist()))} for row in p]

    def reload(self) -> bool:
        """Load ``current`` now if it moved since the last load; a version that cannot be loaded is logged and kept out.

        Returns:
            True when a new version now serves; always False for a fixed version.
        """
        if self.pinned is not None:
            return False
        from streamtrain.fs.versions import Versions

        now = Versions(self.model_dir).current()
        if now is None or now == self._loaded.version:
            return False
        with self._lock:
            if now == self._loaded.version:  # another thread loaded it meanwhile
                return False
            try:
                self._loaded = _load(self.model_dir, now)
            except (DataError, OSError) as exc:
                log.error(f"keeping version {self._loaded.version}: version {now} cannot be loaded ({exc})")
                return False
        log.info(f"now serving version {now}")
        return True

    def _current(self) -> _Loaded:
        self.reload()
        return self._loaded


def _scores(loaded: _Loaded, texts: Sequence[str]) -> np.ndarray:
    import tensorflow as tf

    if not len(texts):
        return np.zeros((0, len(loaded.classes)), np.float32)
    return loaded.serve(text=tf.constant(list(texts), tf.string))["probabilities"].numpy()


def load(model_dir: str | os.PathLike[str], version: str | None = None) -> Model:
    """``model_dir``'s current version as a ``Model``.

    Args:
        model_dir: the model directory.
        version: a version id to load instead, never replaced.

    Returns:
        The model.
    """
    return Model(Path(model_dir), version)


def _load(model_dir: Path, version: str | None) -> _Loaded:
    """Check a version against its checksums and load its SavedModel (exported in memory if it has none)."""
    import tensorflow as tf

    from streamtrain.serve.export import SAVED_MODEL_DIR, SERVING_SIGNATURE, servable
    from streamtrain.train.modeldir import check, load_model, load_vectorizer, read_vectorizer_doc, resolve

    path = resolve(model_dir, version)
    check(path)
    classes = list(read_vectorizer_doc(path)["labels"])
    if (path / SAVED_MODEL_DIR).is_dir():
        owner = tf.saved_model.load(str(path / SAVED_MODEL_DIR))
        return _Loaded(path.name, classes, owner.signatures[SERVING_SIGNATURE], owner)
    log.warning(f"version {path.name} has no {SAVED_MODEL_DIR}/ (made before 0.12): exporting it in memory")
    owner = servable(load_vectorizer(path), load_model(path))
    return _Loaded(path.name, classes, owner.serve, owner)
