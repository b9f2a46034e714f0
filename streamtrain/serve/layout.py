"""TensorFlow Serving's model base path: each promoted version as ``SERVING_DIR/N/``, N increasing (``publish``).

TensorFlow Serving watches ``--model_base_path=SERVING_DIR``, loads the
subdirectory with the highest integer name and unloads the others. On each
promotion (fit, ``streamtrain promote``, the completion of an interrupted
one: ``train.promote``) the promoted version's ``saved_model/`` is copied to
the next ``N``, staged beside it as ``N.partial-*`` and renamed
(``fs.atomic.staging_dir``), so TensorFlow Serving never sees a half-written
one (it ignores names that are not integers). Nothing is ever removed from
the directory; a version that is already the highest ``N`` (by its
``assets.extra/streamtrain.json``) is not written again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from streamtrain.errors import UsageError
from streamtrain.fs.atomic import fsync_dir
from streamtrain.serve.export import SAVED_MODEL_DIR, ArtifactInfo, copy_saved_model

log = logging.getLogger(__name__)


def numbers(serving_dir: Path) -> list[int]:
    """The integer-named subdirectories of ``serving_dir``, ascending (what TensorFlow Serving would load)."""
    if not serving_dir.is_dir():
        return []
    return sorted(int(p.name) for p in serving_dir.iterdir() if p.name.isdigit() and p.is_dir())


def publish(serving_dir: str | os.PathLike[str], version_dir: Path, export: Callable[[Path], None]) -> int | None:
    """Copy ``version_dir``'s SavedModel to the next ``N`` of ``serving_dir`` (created when missing).

    Args:
        serving_dir: TensorFlow Serving's model base path.
        version_dir: a complete version of a model directory.
        export: ``export(out)`` writes to ``out`` the SavedModel of a version made before versions held one
            (it has no ``saved_model/``).

    Returns:
        The N written; None when the highest N already holds this version.

    Raises:
        UsageError: ``serving_dir`` exists and is not a directory.
    """
    root = Path(serving_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"--serving-dir {root} is not a directory")
    root.mkdir(parents=True, exist_ok=True)
    present = numbers(root)
    version = version_dir.name
    if present:
        info = ArtifactInfo.read(root / str(present[-1]))
        if info is not None and info.version == version:
            return None
    n = present[-1] + 1 if present else 1
    source = version_dir / SAVED_MODEL_DIR
    if source.is_dir():
        copy_saved_model(source, root / str(n))
    else:
        export(root / str(n))
    fsync_dir(root)
    log.info(f"serving: version {version} written to {root / str(n)}")
    return n
