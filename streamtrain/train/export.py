"""``streamtrain export``: a version's SavedModel to a directory of the user's choice (``ExportOptions``, ``export``).

For versions made before versions held a SavedModel (0.11 and earlier), and
for copying one out: the version is checked against its checksums, and its
``saved_model/`` copied, or exported from its model and vectorizer files
(``serve.export.write_saved_model``). ``--out`` must not exist; it is
written beside and renamed into place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from streamtrain.errors import UsageError
from streamtrain.options import option
from streamtrain.serve.export import SAVED_MODEL_DIR


@dataclass
class ExportOptions:
    """The options of ``streamtrain export`` (each field's ``help`` says what it means)."""

    model_dir: str = option(positional=True, path=True, metavar="MODEL_DIR", help="the model directory")
    out: str = option(path=True, metavar="DIR", help="where to write the SavedModel (must not exist)")
    version: str | None = option(None, metavar="ID", help="the version to export; unset: current")


def export(opts: ExportOptions) -> dict:
    """Write the SavedModel of ``opts.version`` (else of current) to ``opts.out``.

    Args:
        opts: the options.

    Returns:
        ``version``, ``saved_model`` (the directory written) and ``how``: copied, or exported from its model
        and vectorizer (a version made before versions held a SavedModel).

    Raises:
        UsageError: ``--out`` exists or its parent does not, or the version's vectorizer cannot run as a graph.
        DataError: no such version, or a damaged one.
    """
    from streamtrain.serve.export import copy_saved_model, exportable, write_saved_model
    from streamtrain.train.modeldir import check, load_model, load_vectorizer, resolve
    from streamtrain.train.runtime import import_tensorflow

    out = Path(opts.out)
    if os.path.lexists(out):
        raise UsageError(f"--out {out} exists: name a new directory")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: its parent directory does not exist")
    path = resolve(opts.model_dir, opts.version)
    check(path)
    source = path / SAVED_MODEL_DIR
    if source.is_dir():
        copy_saved_model(source, out)
        how = "copied"
    else:
        vectorizer = load_vectorizer(path)
        why = exportable(vectorizer)
        if why is not None:
            raise UsageError(f"version {path.name} cannot be exported: {why}")
        import_tensorflow()
        write_saved_model(out, vectorizer, load_model(path), path.name)
        how = "exported from its model and vectorizer"
    return {"version": path.name, "saved_model": str(out), "how": how}
