"""prepare at the application layer (``prepare``: the dataset's prepare with the family bake-off wired in).

Also ``python -m streamtrain.prepare``, kept so existing crontabs and scripts work: the same as ``streamtrain
prepare``. Who owns what: ``streamtrain.dataset.prepare`` prepares the dataset and never imports ``train/``;
the bake-off that settles ``--vectorizer auto`` when the guide's rule says sequences trains models, so this
layer passes it in (``bakeoff``: ``train.bakeoff.bakeoff``, run in a forked child that alone imports
TensorFlow, so the models leave prepare's memory when it ends). The command ``streamtrain prepare`` calls
``prepare`` here.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from streamtrain.arenas import one_arena
from streamtrain.child import in_child

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.dataset.options import Announce, BakeoffRequest, PrepareOptions


def bakeoff(request: BakeoffRequest) -> dict:
    """``train.bakeoff.bakeoff`` in a forked child (the ``dataset.options.Bakeoff`` that prepare takes).

    The child imports TensorFlow and trains the sample models; prepare's process never does, so neither they
    nor TensorFlow's arenas stay in its memory for the passes after (``streamtrain.child``). A process that
    has imported TensorFlow already (a test, a notebook calling ``prepare``) runs it here instead: a fork
    would copy TensorFlow's threads half-way.

    Args:
        request: the rule's choice and the first pass's samples, labels and vectorizer configurations.

    Returns:
        The choice decided, with the evidence under ``bakeoff``.

    Raises:
        ChildError: the bake-off failed or its child was killed.
    """
    if "tensorflow" in sys.modules:
        return _measured(request)
    return in_child(_measured, request, "the family bake-off")


def _measured(request: BakeoffRequest) -> dict:
    """``train.bakeoff.bakeoff``, imported when called (in the child)."""
    from streamtrain.train.bakeoff import bakeoff as measured

    return measured(request)


def prepare(opts: PrepareOptions, executor: Executor | None = None, announce: Announce | None = None) -> Manifest:
    """``dataset.prepare.prepare`` with the family bake-off: what ``streamtrain prepare`` runs.

    Args:
        opts: prepare's options.
        executor: runs the per-chunk work; None: ``--jobs`` local threads or the Dask cluster of ``--scheduler``.
        announce: told the dataset's ``ModelInputs`` once they are known (``streamtrain train``).

    A process that has not imported TensorFlow (the command's, ``train``'s prepare child) uses one malloc arena
    from here on (``arenas.one_arena``); one that has is left as it is.

    Returns:
        The dataset's manifest.
    """
    from streamtrain.dataset.prepare import prepare as prepare_dataset

    if "tensorflow" not in sys.modules:
        one_arena()

    return prepare_dataset(opts, executor, announce, bakeoff=bakeoff)


if __name__ == "__main__":
    from streamtrain.cli import entry

    raise SystemExit(entry("prepare"))
