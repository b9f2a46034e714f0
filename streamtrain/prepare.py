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

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.dataset.options import Announce, BakeoffRequest, PrepareOptions


def bakeoff(request: BakeoffRequest) -> dict:
    """``train.bakeoff.bakeoff``, imported when called (the ``dataset.options.Bakeoff`` that prepare takes).

    Args:
        request: the rule's choice and the first pass's samples, labels and vectorizer configurations.

    Returns:
        The choice decided, with the evidence under ``bakeoff``.
    """
    from streamtrain.train.bakeoff import bakeoff as measured

    return measured(request)


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
