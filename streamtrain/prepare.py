"""prepare at the application layer (``prepare``: the dataset's prepare with the family bake-off wired in).

Also ``python -m streamtrain.prepare``, kept so existing crontabs and scripts work: the same as ``streamtrain
prepare``. Who owns what: ``streamtrain.dataset.prepare`` prepares the dataset and never imports ``train/``;
the bake-off that settles ``--vectorizer auto`` when the guide's rule says sequences trains models, so this
layer passes it in (``bakeoff``: ``train.bakeoff.bakeoff``, run in a forked child that alone imports
TensorFlow, so the models leave prepare's memory when it ends). The command ``streamtrain prepare`` calls
``prepare`` here.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING

from streamtrain.arenas import one_arena
from streamtrain.child import started

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.dataset.options import Announce, BakeoffRequest, PrepareOptions


@contextlib.contextmanager
def bakeoff(request: BakeoffRequest) -> Iterator[Future]:
    """``train.bakeoff.bakeoff`` started in a forked child (the ``dataset.options.Bakeoff`` that prepare takes).

    The child imports TensorFlow and trains the sample models while prepare goes on; prepare's process never
    imports it, so neither the models nor TensorFlow's arenas stay in its memory for the passes after
    (``streamtrain.child``). A process that has imported TensorFlow already (a test, a notebook calling
    ``prepare``) measures here, before it yields: a fork would copy TensorFlow's threads half-way.

    Args:
        request: the rule's choice and the first pass's samples, labels and vectorizer configurations.

    Yields:
        The future of the choice decided, with the evidence under ``bakeoff`` (a ``ChildError``: the bake-off
        failed or its child was killed). Leaving the block ends a child that still runs.
    """
    if "tensorflow" in sys.modules:
        answer: Future = Future()
        answer.set_result(_measured(request))
        yield answer
        return
    with started(_measured, request, "the family bake-off") as answer:
        yield answer


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
