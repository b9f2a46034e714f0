"""The servable artifact: a TensorFlow SavedModel that takes raw text (``servable``, ``write_saved_model``).

A version's ``saved_model/`` holds its vectorizer as a graph
(``serve.graph.VectorizerGraph``: core TensorFlow ops only) in front of its
Keras model, written with Keras' ``ExportArchive``. Signatures:

- ``serving_default``: ``text: string [None]`` -> ``probabilities: float32
  [None, C]`` (columns in ``classes`` order), ``label: string [None]`` (the
  most probable class) and ``classes: string [None, C]`` (repeated per row:
  TensorFlow Serving's row format needs every output batched).
- ``features``: ``text`` -> the model's input as prepare computes it
  (n-grams: ``indices``, ``values``, ``dense_shape``; sequences: ``tokens``).

``assets.extra/streamtrain.json`` (``ArtifactInfo``) names the version, its
classes, its vectorizer kind and the streamtrain release. Loading it needs
nothing of streamtrain: ``tf.saved_model.load``. Rationale: docs/design/serving.md
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from streamtrain import faults
from streamtrain.errors import CannotCreate, OutOfSpace, WriteError, write_error
from streamtrain.fs.atomic import staging_dir
from streamtrain.serve.support import config_exportable, exportable
from streamtrain.vectorize.vectorizer import Vectorizer

__all__ = ["config_exportable", "exportable"]  # re-exported: where callers have always found them

SAVED_MODEL_DIR = "saved_model"
SERVING_SIGNATURE = "serving_default"
FEATURES_SIGNATURE = "features"
INFO_PATH = "assets.extra/streamtrain.json"
TEXT_INPUT = "text"


@dataclass(frozen=True)
class ArtifactInfo:
    """What ``assets.extra/streamtrain.json`` says of a SavedModel.

    Attributes:
        version: the model directory's version id.
        classes: the class names, in the order of the probabilities' columns.
        kind: the vectorizer's kind, "ngram" or "sequence".
        streamtrain: the release that wrote it.
    """

    version: str
    classes: list[str]
    kind: str
    streamtrain: str

    @classmethod
    def read(cls, saved_model: str | os.PathLike[str]) -> ArtifactInfo | None:
        """The record of the SavedModel directory ``saved_model``.

        Returns:
            The record; None when it has none (not written by streamtrain) or it is unreadable.
        """
        try:
            doc = json.loads((Path(saved_model) / INFO_PATH).read_text(encoding="utf-8"))
            return cls(**doc)
        except (OSError, ValueError, TypeError):
            return None


def servable(vectorizer: Vectorizer, model: Any) -> Any:
    """``model`` behind ``vectorizer``'s graph, as a ``tf.Module`` with ``serve(text)`` and ``features(text)``.

    Both are ``tf.function``s of a ``[None]`` string signature: ``serve`` returns the ``serving_default``
    outputs, ``features`` the model's input.

    Args:
        vectorizer: the version's vectorizer.
        model: its Keras model (a sigmoid head of one column for two classes, else softmax).

    Returns:
        The module; ``graph``, ``model`` and ``classes`` are attributes of it.

    Raises:
        ValueError: the vectorizer cannot run as a graph (``support.exportable`` says why).
    """
    import tensorflow as tf

    from streamtrain.serve.graph import VectorizerGraph

    graph = VectorizerGraph(vectorizer)
    classes = tf.constant(list(vectorizer.labels), tf.string)
    n_classes = len(vectorizer.labels)
    shift = 0.01 if faults.broken("export") else 0.0  # a wrong artifact the serving check must catch
    spec = tf.TensorSpec([None], tf.string, name=TEXT_INPUT)

    @tf.function(input_signature=[spec], autograph=False)
    def serve(text: Any) -> dict[str, Any]:
        out = model(graph(text), training=False)
        if n_classes == 2:  # the sigmoid head: one column, P(second class)
            positive = tf.reshape(out, [-1])
            probabilities = tf.stack([1.0 - positive, positive], axis=1)
        else:
            probabilities = tf.reshape(out, [-1, n_classes])
        probabilities = tf.cast(probabilities, tf.float32) + shift
        rows = tf.shape(text)[0]
        return {
            "probabilities": probabilities,
            "label": tf.gather(classes, tf.argmax(probabilities, axis=1)),
            "classes": tf.tile(classes[None, :], tf.stack([rows, 1])),
        }

    @tf.function(input_signature=[spec], autograph=False)
    def features(text: Any) -> Any:
        x = graph(text)
        if isinstance(x, tf.SparseTensor):
            return {"indices": x.indices, "values": x.values, "dense_shape": x.dense_shape}
        return {"tokens": x}

    module = tf.Module()
    module.graph, module.model, module.classes = graph, model, classes
    module.serve, module.features = serve, features
    return module


def traced_export(vectorizer: Vectorizer, model: Any) -> Any:
    """The ``servable`` of ``model`` + ``vectorizer`` in a Keras ``ExportArchive``, its endpoints traced.

    The endpoints hold the model's variables, not their values: ``write_saved_model`` writes the weights the
    model has then, so an archive traced while the model trains (``train.serving``) writes the trained model.

    Args:
        vectorizer: the version's vectorizer.
        model: its Keras model.

    Returns:
        The archive, for ``write_saved_model``.

    Raises:
        ValueError: the vectorizer cannot run as a graph.
    """
    import keras

    module = servable(vectorizer, model)
    archive = keras.export.ExportArchive()
    archive.track(module.graph)
    archive.add_endpoint(SERVING_SIGNATURE, module.serve)
    archive.add_endpoint(FEATURES_SIGNATURE, module.features)
    _trace_as_saved(module.serve, module.features)
    return archive


def _trace_as_saved(*functions: Any) -> None:
    """Trace ``functions`` as ``tf.saved_model.save`` will, so that writing the archive traces nothing again.

    TensorFlow keys its traces by the save context too (``make_function_context``: the save options' variable
    policy), so the trace ``add_endpoint`` made outside one is traced anew inside ``save``. The context is
    TensorFlow's private module, thread-local; without it the traces are simply made at write time, as before.
    """
    try:
        from tensorflow.python.saved_model import save_context
    except ImportError:  # pragma: no cover - a TensorFlow without it: write_out traces as it always did
        return
    import tensorflow as tf

    if save_context.in_save_context():
        return
    with save_context.save_context(tf.saved_model.SaveOptions()):
        for function in functions:
            function.get_concrete_function()


def write_saved_model(directory: Path, vectorizer: Vectorizer, model: Any, version: str, archive: Any = None) -> None:
    """Write the SavedModel of ``model`` + ``vectorizer`` to ``directory``, staged beside it and renamed.

    An interrupted export never leaves a SavedModel that looks complete (``fs.atomic.staging_dir``).

    Args:
        directory: the SavedModel's directory, absent or empty.
        vectorizer: the version's vectorizer.
        model: its Keras model.
        version: the version id recorded in ``assets.extra/streamtrain.json``.
        archive: ``traced_export(vectorizer, model)`` when the caller traced it ahead; None: traced here.

    Raises:
        ValueError: the vectorizer cannot run as a graph.
        WriteError: the disk refused a write (exit 73 or 74), TensorFlow's own writes included.
    """
    from streamtrain import __version__

    if archive is None:
        archive = traced_export(vectorizer, model)
    try:
        with staging_dir(directory) as partial:
            archive.write_out(str(partial), verbose=False)
            info = ArtifactInfo(version, list(vectorizer.labels), vectorizer.kind, __version__)
            (partial / "assets.extra").mkdir(exist_ok=True)
            (partial / INFO_PATH).write_text(json.dumps(asdict(info), indent=1) + "\n", encoding="utf-8")
            with contextlib.suppress(OSError):
                (partial / "assets").rmdir()  # empty (no asset files): nothing a checksum could record
    except BaseException as exc:
        typed = _write_error(exc, directory)
        if typed is not None:
            raise typed from exc
        raise


def copy_saved_model(source: Path, target: Path) -> None:
    """Copy the SavedModel ``source`` to ``target`` (absent or empty), staged beside it and renamed.

    Args:
        source: a SavedModel directory.
        target: where the copy goes.
    """
    with staging_dir(target) as stage:
        shutil.copytree(source, stage, dirs_exist_ok=True)


# What TensorFlow's own file writes say (as an ``OpError``, not an ``OSError``) when the disk refuses them.
_OUT_OF_SPACE = ("No space left on device", "Disk quota exceeded", "File too large")
_CANNOT_CREATE = ("Read-only file system", "Permission denied", "Operation not permitted")


def _write_error(exc: BaseException, where: Path) -> WriteError | None:
    """The typed error (exit 74 or 73) for a failed write of the SavedModel; None for any other failure.

    That is an ``OSError`` of Python's writes, or TensorFlow's ``OpError`` whose message carries the system's words.
    """
    typed = write_error(exc, where)
    if typed is not None:
        return typed
    message = str(exc)
    for words, kind in ((_OUT_OF_SPACE, OutOfSpace), (_CANNOT_CREATE, CannotCreate)):
        said = next((w for w in words if w in message), None)
        if said is not None:
            return kind(where, said, "cannot write")
    return None
