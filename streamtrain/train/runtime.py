"""TensorFlow's start-up without its noise (``import_tensorflow``), and one thread per op (``one_thread_per_op``).

Importing TensorFlow 2.21 writes start-up lines (oneDNN, CUDA stubs, CPU features and, without a GPU, an
error-level ``failed call to cuInit``) straight to file descriptor 2 from native code, before its logging is
initialised: no environment variable silences them. fit, evaluate and predict call ``import_tensorflow``
where they first need TensorFlow (after their cheap checks, so a bad input fails in a second). Unless
verbose, it imports TensorFlow and initialises its devices with descriptor 2 pointed at a temporary file,
then writes back every captured line that is not a known start-up line (``STARTUP_NOISE``), so nothing
unexpected is hidden; verbose, it imports it plainly, with TensorFlow's C++ logging on. Keras is kept from
importing scikit-learn and matplotlib's pyplot meanwhile (``UNUSED_BY_KERAS``). ``one_thread_per_op`` runs
each TensorFlow op on one thread, for a model whose ops are too small to split (the MLP on sparse rows);
``TF_NUM_INTRAOP_THREADS``, when set, wins.

Measurements: docs/design/training-speed.md
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

    Args:
        verbose: show TensorFlow's start-up lines; None: when the ``streamtrain`` logger shows debug lines
            (``--verbose``).
    """
    if "tensorflow" in sys.modules:
        return
    with _not_importable(UNUSED_BY_KERAS):
        _import(verbose)


# What Keras imports, when installed, for features streamtrain never uses: scikit-learn for its scikit-learn
# wrappers, matplotlib.pyplot for its image-gallery plots (the report's plots use matplotlib's ``Figure`` without
# pyplot). Their import times: docs/design/training-speed.md.
UNUSED_BY_KERAS = ("sklearn", "matplotlib.pyplot")


@contextlib.contextmanager
def _not_importable(modules: tuple[str, ...]) -> Iterator[None]:
    """While Keras loads, importing ``modules`` fails; afterwards they import normally.

    Keras then leaves those features off, as on a machine without them.
    """
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
    """Import TensorFlow, capturing its start-up lines unless ``verbose`` (``import_tensorflow``)."""
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
    """Run each TensorFlow op on one thread, unless ``TF_NUM_INTRAOP_THREADS`` says otherwise.

    A no-op once TensorFlow's runtime has started (a library caller ran TensorFlow before).
    """
    import tensorflow as tf

    if os.environ.get("TF_NUM_INTRAOP_THREADS"):
        return
    with contextlib.suppress(RuntimeError):  # "cannot be modified after initialization"
        tf.config.threading.set_intra_op_parallelism_threads(1)


def _noise(line: str) -> bool:
    """Whether a captured line is blank or one of TensorFlow's healthy start-up lines."""
    return not line.strip() or bool(STARTUP_NOISE.search(line))
