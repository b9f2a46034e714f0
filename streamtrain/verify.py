"""verify: check a dataset or a model directory completely against its own records (``VerifyOptions``, ``verify``).

A dataset directory is checked against its ``manifest.json`` (every path it
names inside the directory; every shard's size and sha256, the vectorizer
arrays, the validation sample, the feature names, the split index files); a
model directory against the ``checksums.json`` of each complete version
(which must record the model and vectorizer files), and its ``current`` link
against ``versions/``, or of itself when written by 0.2.
``verify`` returns a summary when everything matches and raises
``DataError`` listing every problem, one line each, otherwise. It
reads every file once, in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest
from streamtrain.errors import DataError, UsageError
from streamtrain.fs.versions import Versions
from streamtrain.options import option
from streamtrain.train import modeldir


@dataclass
class VerifyOptions:
    """The options of ``streamtrain verify`` (each field's ``help`` says what it means)."""

    path: str = option(positional=True, path=True, metavar="DIR", help="a dataset directory or a model directory")


def verify(opts: VerifyOptions) -> dict:
    """Check every file of a dataset directory or a model directory against its records.

    Args:
        opts: the options.

    Returns:
        ``path``, ``kind`` (``dataset`` or ``model``), ``files_checked`` and ``problems`` (none).

    Raises:
        UsageError: ``opts.path`` is not a directory, or neither a dataset nor a model directory.
        DataError: listing every problem, one line each.
    """
    root = Path(opts.path)
    if not root.is_dir():
        raise UsageError(f"not a directory: {root}")
    if (root / MANIFEST_NAME).exists():
        kind, manifest = "dataset", Manifest.load(root, checked=False)
        problems = manifest.problems(root)
        # shards, vectorizer arrays, validation sample, feature names, split index
        files = len(manifest.shards) + 1 + (manifest.val_sample is not None) + (manifest.feature_names is not None)
        files += len(manifest.split_index())
    elif Versions(root).exists() or (root / modeldir.CHECKSUMS_NAME).exists() or (root / modeldir.MODEL_NAME).exists():
        kind = "model"
        problems, files = modeldir.tree_problems(root)
    else:
        raise UsageError(f"{root} is neither a dataset directory ({MANIFEST_NAME}) nor a model directory")
    if problems:
        lines = "\n".join(f"  {root / p}" for p in problems)
        raise DataError(f"{len(problems)} problem(s) in {kind} directory {root}:\n{lines}")
    return {"path": str(root), "kind": kind, "files_checked": files, "problems": []}
