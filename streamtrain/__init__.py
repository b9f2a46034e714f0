"""streamtrain: out-of-core training of text classifiers.

The pipeline is four commands, ``streamtrain prepare|fit|evaluate|predict``.
Where each concern lives:

- ``io/``: reading raw labelled inputs (``readers``) and predict's input lines (``texts``).
- ``vectorize/``: text -> features: split rule, label map, corpus statistics,
  the S/W choice, TF-IDF n-grams, token sequences, the saved vectorizer.
- ``dataset/``: the prepared dataset: rows, shards, manifest, scratch spill,
  seeded shuffles, the per-chunk work on an executor (local threads or a
  Dask cluster), ``prepare`` itself and ``--append`` (recorded sources, the
  validation sample, drift).
- ``train/``: the model side: batches, tf.data input, models, the training
  loop and the multi-worker cluster, scoring, the model directory's
  versions, checkpoints (resume), the promotion guard, finishing and
  promoting a version as one recoverable step (``promote``), and ``fit``,
  ``evaluate``, ``predict``.
- ``fs/``: crash-safe outputs (atomic files and directories, strict JSON),
  locks between runs, immutable versions and the ``current`` link.
- ``cli/``: the command line: arguments generated from the options classes,
  config files, logs, exit codes, the local cluster of ``fit --workers``.
  The only place that parses arguments or exits.
- ``options``: how an option is declared (default, help, check), once.
- ``progress``: a long pass's progress (rows, bytes, MB/s, ETA), shown as a
  bar, log lines or nothing, as the logging configuration says.
- ``errors``: the errors the library raises and their exit codes.
- ``serve/``: the servable artifact: the vectorizer as a TensorFlow graph,
  the SavedModel export, the serving check in a fresh process, TensorFlow
  Serving's directory layout.
- ``api``: ``streamtrain.load(MODEL_DIR)``, in-process serving that follows promotions.
- ``faults``: the test hook that kills a run at a named point (``STREAMTRAIN_FAULT``).
"""

__version__ = "0.12.0"


def load(model_dir, version=None):
    """``model_dir``'s current version, ready to score raw text (``api.Model``: ``predict``, ``probabilities``);
    it follows later promotions. Imports TensorFlow; ``import streamtrain`` alone does not."""
    from streamtrain.api import load as _load

    return _load(model_dir, version)
