"""Test hooks: kill this process at a named point, or make a named artifact wrong on purpose (``STREAMTRAIN_FAULT``).

``STREAMTRAIN_FAULT=kill:POINT`` makes ``point(POINT)`` stop the process with
SIGKILL, as the OOM killer or a power cut would, without timing: the chaos
test (``tests/train/test_chaos.py``) kills a nightly append at its commit and
a fit at each phase boundary of its last steps. ``POINTS`` lists them in the
order a nightly ``train --append`` passes them. ``STREAMTRAIN_FAULT=break:NAME``
makes ``broken(NAME)`` true, for an artifact of ``BROKEN``. Unset (always,
outside tests), ``point`` costs one environment lookup.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

ENV = "STREAMTRAIN_FAULT"
POINTS = (
    "append-staged",  # prepare --append: its append-NNNN directory in place; the manifest not committed yet
    "append-committed",  # prepare --append: the manifest committed; fit not started
    "after-train",  # training ended; nothing scored or written
    "after-write",  # the version's files and checksums.json written in <id>.training
    "after-journal",  # the model directory's promotion journal written
    "after-finish",  # <id>.training renamed into place, checkpoint gone; current not switched yet
    "after-switch",  # current switched and the promotions log written; not published, the journal not cleared
    "after-prune",  # all done, old versions pruned; the process has not exited
)
# Points only a model selection passes (a nightly fit that reuses its selection does not): tested on their own.
SEARCH_POINTS = ("after-trial",)  # a trial finished and recorded in checkpoint/trials.json; more to train
BROKEN = ("export",)  # the SavedModel's probabilities are shifted: the serving check must refuse the version


def point(name: str) -> None:
    """Kill this process with SIGKILL (stdout and stderr flushed) when ``STREAMTRAIN_FAULT`` is ``kill:name``.

    Args:
        name: one of ``POINTS`` or ``SEARCH_POINTS``.
    """
    assert name in POINTS or name in SEARCH_POINTS, name
    if os.environ.get(ENV) == f"kill:{name}":
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def broken(name: str) -> bool:
    """Whether the caller should write a wrong ``name`` on purpose: ``STREAMTRAIN_FAULT`` is ``break:name``.

    Args:
        name: one of ``BROKEN``.
    """
    assert name in BROKEN, name
    return os.environ.get(ENV) == f"break:{name}"
