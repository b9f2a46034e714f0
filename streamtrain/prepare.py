"""prepare at the application layer (``prepare``: the dataset's prepare with the family bake-off wired in).

Also ``python -m streamtrain.prepare``, kept so existing crontabs and scripts work: the same as ``streamtrain
prepare``. Who owns what: ``streamtrain.dataset.prepare`` prepares the dataset and never imports ``train/``;
the bake-off that settles ``--vectorizer auto`` when the guide's rule says sequences trains models, so this
layer passes it in (``bakeoff``: ``train.bakeoff.bakeoff``, imported only when a bake-off runs, as
TensorFlow is). The command ``streamtrain prepare`` calls ``prepare`` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Executor

    import numpy as np

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.dataset.options import Announce, PrepareOptions
    from streamtrain.dataset.val_sample import ValSample
    from streamtrain.vectorize.choice import ChoiceSample
    from streamtrain.vectorize.sequence import SequenceConfig
    from streamtrain.vectorize.tfidf import NgramConfig


def bakeoff(
    choice: dict,
    sample: ChoiceSample,
    val_sample: ValSample,
    label_names: list[str],
    remap: np.ndarray,
    ngram: NgramConfig,
    sequence: SequenceConfig,
    seed: int,
) -> dict:
    """``train.bakeoff.bakeoff``, imported when called (the ``dataset.options.Bakeoff`` that prepare takes).

    Args:
        choice: the rule's choice.
        sample: the first pass's labelled training sample.
        val_sample: the validation sample.
        label_names: the final class names.
        remap: the first pass's provisional label id -> final id.
        ngram: the n-gram vectorizer's config.
        sequence: the sequence vectorizer's config.
        seed: the models' seed.

    Returns:
        The settled choice, with the evidence.
    """
    from streamtrain.train.bakeoff import bakeoff as measured

    return measured(choice, sample, val_sample, label_names, remap, ngram, sequence, seed)


def prepare(opts: PrepareOptions, executor: Executor | None = None, announce: Announce | None = None) -> Manifest:
    """``dataset.prepare.prepare`` with the family bake-off: what ``streamtrain prepare`` runs.

    Args:
        opts: prepare's options.
        executor: runs the per-chunk work; None: ``--jobs`` local threads or the Dask cluster of ``--scheduler``.
        announce: told the dataset's ``ModelInputs`` once they are known (``streamtrain train``).

    Returns:
        The dataset's manifest.
    """
    from streamtrain.dataset.prepare import prepare as prepare_dataset

    return prepare_dataset(opts, executor, announce, bakeoff=bakeoff)


if __name__ == "__main__":
    from streamtrain.cli import entry

    raise SystemExit(entry("prepare"))
