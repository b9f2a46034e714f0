"""TensorFlow's start-up, without its noise.

Importing TensorFlow 2.21 writes its start-up lines (oneDNN, CUDA stubs, CPU
features, twice over) and, on a machine without a GPU, an error-level
``failed call to cuInit`` line straight to file descriptor 2 from native
code, before its logging is initialised: no environment variable silences
them. fit, evaluate and predict call ``import_tensorflow`` where they first
need TensorFlow (after their cheap checks, so a bad input fails in a
second). Unless verbose, it imports TensorFlow and
initialises its devices with descriptor 2 pointed at a temporary file, then
writes back every captured line that is not one of those known start-up
lines, so nothing unexpected is ever hidden. ``verbose=True`` imports it
plainly, with TensorFlow's C++ logging fully on. Keras is kept from importing
scikit-learn and matplotlib's pyplot meanwhile (``UNUSED_BY_KERAS``): ~1.4 s
saved per start.

``one_thread_per_op`` runs each TensorFlow op on one thread (its ops still run
side by side) for a model whose ops are too small to split: the MLP on sparse
rows. Measured on IMDB (2 cores): fit 8.3 -> 7.6 s (training 4.9 -> 4.3 s, medians
of 3 interleaved runs), a training step 4.45 -> 4.05 ms on the real
input pipeline (3.65 -> 3.0 ms on batches in memory), scoring the test split
0.28 -> 0.24 s, the same numbers to the last digit; the cores an op no longer
takes go to the input pipeline. ``TF_NUM_INTRAOP_THREADS``, when set, wins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# Lines TensorFlow prints on every healthy start: informational, or the cuInit error of a CPU-only machine.
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|\] oneDNN custom operations are on"
    r"|\] Could not find cuda drivers on your machine"
    r"|\] This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions: .* rebuild TensorFlow"
    r"|\] failed call to cuInit: "
)


def import_tensorflow(verbose: bool | None = None) -> None:
    """Import TensorFlow and initialise its devices, quietly unless ``verbose``; a no-op once imported.

    ``verbose=None``: verbose when the ``streamtrain`` logger shows debug lines (``--verbose``).
    """
    if "tensorflow" in sys.modules:
        return
    with _not_importable(UNUSED_BY_KERAS):
        _import(verbose)


# What Keras imports, when installed, for features streamtrain never uses (``python -X importtime``):
# scikit-learn for its scikit-learn wrappers (~1 s), matplotlib.pyplot for its image-gallery plots (~0.4 s;
# the report's plots use matplotlib's ``Figure`` without pyplot, ~0.2 s of it).
UNUSED_BY_KERAS = ("sklearn", "matplotlib.pyplot")


@contextlib.contextmanager
def _not_importable(modules: tuple[str, ...]) -> Iterator[None]:
    """While Keras loads, importing ``modules`` fails (Keras then leaves those features off, as on a machine
    without them); afterwards they import normally."""
    blocked = [m for m in modules if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # type: ignore[assignment]  # the import system's "not importable" marker
    try:
        yield
    finally:
        for m in blocked:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]


def _import(verbose: bool | None) -> None:
    if verbose is None:
        verbose = logging.getLogger("streamtrain").isEnabledFor(logging.DEBUG)
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import tensorflow as tf

        tf.config.list_physical_devices()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # warnings and info after start-up
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery is where cuInit complains
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines() if not _noise(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def one_thread_per_op() -> None:
    """Each TensorFlow op on one thread, unless ``TF_NUM_INTRAOP_THREADS`` says otherwise; a no-op once
    TensorFlow's runtime has started (a library caller ran TensorFlow before)."""
    import tensorflow as tf

    if os.environ.get("TF_NUM_INTRAOP_THREADS"):
        return
    with contextlib.suppress(RuntimeError):  # "cannot be modified after initialization"
        tf.config.threading.set_intra_op_parallelism_threads(1)


def _noise(line: str) -> bool:
    return not line.strip() or bool(STARTUP_NOISE.search(line))
