"""prepare: raw labelled text -> vectorized shards + manifest (``PrepareOptions``, ``prepare``).

This module is the entry: ``prepare`` refuses options that cannot run
together, a bad input path, a target that is not ours to replace and a file
system that clearly lacks the space, all before any work; then it takes the
dataset's writer lock (``fs.locks.writer_lock``, for the whole run: a second
prepare on the same ``--data`` gets ``Busy``, exit 75) and the executor, and
hands the run to its mode. Who owns what:

- ``build``: a new dataset or ``--overwrite``, in named stages;
  ``refit``: ``--refit``'s rebuild from every recorded input;
  ``append``: ``--append``'s new shards with the frozen vectorizer;
- ``options``: ``PrepareOptions`` and the caller's hooks (``Announce``,
  ``Bakeoff``); ``passes``: one streaming pass over the raw inputs, the
  same bytes for any executor (``parallel``) and number of workers.

Design and measurements: docs/design/prepare.md
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

from streamtrain.dataset import space
from streamtrain.dataset.append import append
from streamtrain.dataset.build import build
from streamtrain.dataset.manifest import Manifest, is_dataset
from streamtrain.dataset.options import RECORDED, Announce, Bakeoff, PrepareOptions, column
from streamtrain.dataset.parallel import running
from streamtrain.dataset.refit import refit
from streamtrain.errors import UsageError
from streamtrain.fs.atomic import check_target, sweep_stale
from streamtrain.fs.locks import no_readers, writer_lock
from streamtrain.io.readers import detect_format
from streamtrain.options import check_options

__all__ = ["RECORDED", "Announce", "Bakeoff", "PrepareOptions", "column", "prepare"]


def prepare(
    opts: PrepareOptions,
    executor: Executor | None = None,
    announce: Announce | None = None,
    bakeoff: Bakeoff | None = None,
) -> Manifest:
    """Prepare, append to (``opts.append``) or refit (``opts.refit``) the dataset ``opts.data``.

    Args:
        opts: the run's options.
        executor: where the per-chunk work (tokenizing, hashing, splitting) runs; None: on ``opts.jobs``
            local worker threads or the Dask cluster of ``opts.scheduler`` (``parallel.running``), shut down
            (and disconnected) on return.
        announce: called once with the dataset's ``ModelInputs`` as soon as they are known (n-grams: after
            the first pass, the F-test keeping ``top_k`` of its candidates; sequences: after the vocabulary;
            an append: at its start), before the shards are written: ``train`` builds the model meanwhile.
        bakeoff: settles ``--vectorizer auto`` when the guide's rule says sequences
            (``train.bakeoff.bakeoff``, passed by ``streamtrain.prepare.prepare``); None: the rule's pick
            stands.

    Returns:
        The manifest of the dataset as written (an append with nothing new: as it was).

    Raises:
        UsageError: options that cannot run together, a bad input path, a ``--data`` that is not ours to
            replace (exit 2).
        CannotCreate: ``--data``'s file system clearly lacks the space (exit 73).
        Busy: another run holds the dataset's lock, or its readers keep it at a replacement (exit 75).
        DataError: bad inputs (too many rejects, no training rows, fewer than 2 classes) or an append's
            edited history (exit 65).
    """
    _check(opts, executor)
    with writer_lock(opts.data, "dataset", opts.wait), _executor(opts, executor) as work:
        sweep_stale(opts.data)  # a killed --overwrite or --refit's staging directory, whatever this run's mode
        if (opts.overwrite or opts.refit) and Path(opts.data).exists() and opts.wait == 0:
            with no_readers(opts.data, 0):  # fail before the work, not after it, when a fit or evaluate reads it
                pass
        if opts.append:
            return append(opts, work, announce)
        if opts.refit:
            return refit(opts, work, announce, bakeoff)
        return build(opts, work, announce=announce, bakeoff=bakeoff)


def _check(opts: PrepareOptions, executor: Executor | None) -> None:
    """Refuse, before any work, what cannot run.

    That is: options that cannot run together, a bad input path, a target that is not ours to replace, and a
    file system of ``--data`` that clearly lacks the space.
    """
    check_options(opts)
    if opts.scheduler is not None and opts.jobs is not None:
        raise UsageError(
            "--jobs sets this machine's threads and --scheduler hands the work to a Dask cluster: give one "
            "(the workers' threads are `dask worker --nthreads N`)"
        )
    if opts.scheduler is not None and executor is not None:
        raise UsageError("--scheduler makes prepare's executor; a library call that hands in one cannot also set it")
    if opts.append and (opts.overwrite or opts.refit):
        raise UsageError("--append adds to a dataset; it cannot be combined with --overwrite or --refit")
    if opts.refit and opts.overwrite:
        raise UsageError("--refit replaces the dataset it rebuilds; --overwrite is not needed with it")
    if not opts.inputs and not opts.refit and not (opts.append and opts.test):
        raise UsageError("no training inputs given")
    for path in [*opts.inputs, *opts.test]:
        detect_format(path)  # fail on a bad path before any work
    if not opts.append:
        check_target(opts.data, opts.overwrite or opts.refit, is_dataset)  # and again where it is replaced
        space.check(opts.data, [*opts.inputs, *opts.test])  # refuse at once (73) when --data clearly lacks space


@contextlib.contextmanager
def _executor(opts: PrepareOptions, given: Executor | None) -> Iterator[Executor]:
    """``given``, or the executor of ``--jobs`` / ``--scheduler``, shut down on the way out."""
    if given is not None:
        yield given
        return
    with running(opts.jobs, opts.scheduler) as executor:
        yield executor
