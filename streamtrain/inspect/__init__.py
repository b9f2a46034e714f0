r"""inspect: what a dataset or a model directory holds, from its JSON records alone (``InspectOptions``, ``inspect``).

Who owns what: this module's ``inspect`` tells which kind of directory it
is and returns its record, one JSON-ready dict (labels exactly as
recorded); ``render_text`` turns it into aligned plain-text tables, with
control characters in labels and other free text shown as escapes
(``visible``: ``\x1b``, ``\r``, ``\n``), so data cannot drive the terminal
or break a table's rows. ``dataset`` and ``model`` make each kind's record
and text; ``tables`` the cells and aligned columns for both. Only JSON
files are read (never a shard or a model, never TensorFlow), so it is fast
on any size. It checks only that the manifest's shards exist
(``Manifest.load``) and that the feature names file it shows matches its
record (``streamtrain verify`` checks everything).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamtrain.dataset.manifest import MANIFEST_NAME
from streamtrain.errors import UsageError
from streamtrain.fs.versions import Versions
from streamtrain.inspect.dataset import dataset_record, dataset_text
from streamtrain.inspect.model import CHECKPOINT_STATE, id_date, model_record, model_text
from streamtrain.inspect.tables import table
from streamtrain.options import option
from streamtrain.train import modeldir
from streamtrain.visible import visible

__all__ = ["CHECKPOINT_STATE", "InspectOptions", "id_date", "inspect", "render_text", "table"]


@dataclass
class InspectOptions:
    """The options of ``streamtrain inspect`` (each field's ``help`` is its ``--help`` line)."""

    path: str = option(positional=True, path=True, metavar="DIR", help="a dataset directory or a model directory")
    json: bool = option(False, help="print one JSON document instead of text tables")


def inspect(opts: InspectOptions) -> dict:
    """What the dataset or model directory ``opts.path`` holds, from its JSON records alone.

    Args:
        opts: the command's options (``opts.json`` is the caller's: the record is the same).

    Returns:
        The record, JSON-ready: ``dataset.dataset_record``'s or ``model.model_record``'s (``kind`` says which).

    Raises:
        UsageError: ``opts.path`` is not a directory, or neither a dataset nor a model directory.
        DataError: a dataset's manifest cannot be read.
    """
    root = Path(opts.path)
    if not root.is_dir():
        raise UsageError(f"not a directory: {root}")
    if (root / MANIFEST_NAME).exists():
        return dataset_record(root)
    if Versions(root).exists() or (root / modeldir.CHECKSUMS_NAME).exists() or (root / modeldir.MODEL_NAME).exists():
        return model_record(root)
    raise UsageError(f"{root} is neither a dataset directory ({MANIFEST_NAME}) nor a model directory")


def render_text(result: dict) -> str:
    """``inspect``'s result as plain text: a few headed sections of aligned columns.

    Args:
        result: what ``inspect`` returned.

    Returns:
        The text, every line escaped (``visible``), ending with a newline.
    """
    lines = dataset_text(result) if result["kind"] == "dataset" else model_text(result)
    return "\n".join(visible(line) for line in lines) + "\n"  # table cells were escaped before their widths
