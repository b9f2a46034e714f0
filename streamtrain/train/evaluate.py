"""evaluate: score a model directory on a prepared dataset's splits (``EvaluateOptions``, ``evaluate``).

The result holds ``{split}_accuracy``, ``{split}_loss``, ``{split}_rows`` and
``{split}_confusion`` (rows: true class, columns: predicted) for each split
scored, plus the class names and the version scored (``current`` unless
``--version``). A dataset vectorized differently from the model is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamtrain.dataset.manifest import Manifest
from streamtrain.errors import DataError
from streamtrain.fs.locks import reader_lock
from streamtrain.options import POSITIVE, check_options, option
from streamtrain.train.runtime import import_tensorflow
from streamtrain.vectorize.split import SPLIT_NAMES


@dataclass
class EvaluateOptions:
    """The options of ``streamtrain evaluate`` (each field's ``help`` says what it means)."""

    data: str = option(path=True, metavar="DIR", help="the prepared dataset directory")
    model_dir: str = option(path=True, metavar="DIR", help="the model directory written by fit")
    version: str | None = option(None, metavar="ID", help="the version of --model-dir to score; unset: current")
    split: list[str] = option(
        factory=lambda: ["val", "test"], choices=SPLIT_NAMES, help="split to score; repeat for several"
    )
    score_batch_size: int | None = option(
        None,
        **POSITIVE,
        deprecated="--batch-size",
        help="rows scored at a time; unset: 1024 for n-grams, 256 for sequences",
    )


def evaluate(opts: EvaluateOptions) -> dict:
    """Score a version of ``opts.model_dir`` on splits of the dataset ``opts.data``, under its reader lock.

    Args:
        opts: the options.

    Returns:
        ``version``, ``classes`` and per split ``{split}_accuracy``, ``{split}_loss``, ``{split}_rows`` and
        ``{split}_confusion``.

    Raises:
        DataError: no such dataset or version, a damaged version or shard, or a dataset vectorized differently
            from the model.
        UsageError: an option out of range.
        Busy: a prepare is replacing the dataset (exit 75).
    """
    from streamtrain.train.modeldir import check, read_vectorizer_doc, resolve

    check_options(opts)
    path = resolve(opts.model_dir, opts.version)  # the version, read once: a promotion meanwhile changes nothing
    check(path)
    if not Path(opts.data).is_dir():
        raise DataError("no such dataset directory", opts.data)
    with reader_lock(opts.data):  # the dataset cannot be replaced while it is scored
        manifest = Manifest.load(opts.data)
        if read_vectorizer_doc(path).get("arrays_sha256") != manifest.vectorizer.arrays_sha256:
            raise DataError(
                "the dataset was vectorized with a different vectorizer than the model was trained on", opts.data
            )
        manifest.check_shards(opts.data, opts.split)
        return _score(opts, path, manifest)


def _score(opts: EvaluateOptions, path: Path, manifest: Manifest) -> dict:
    """The model of ``path`` scored on each split asked for (imports TensorFlow)."""
    import_tensorflow()
    from streamtrain.train.modeldir import load_model, load_vectorizer
    from streamtrain.train.scoring import score_split

    vectorizer = load_vectorizer(path)
    model = load_model(path)
    out: dict = {"version": path.name if path != Path(opts.model_dir) else None, "classes": vectorizer.labels}
    for split in opts.split:
        result = score_split(model, opts.data, manifest, split, opts.score_batch_size)
        for key, value in result.items():
            out[f"{split}_{key}"] = value
    return out
