"""prepare: raw labelled text -> vectorized shards + manifest (``PrepareOptions``, ``prepare``).

This module is the entry: it checks a run's options, takes the dataset's
writer lock and the executor, and hands the run to its mode. Who owns what:

- ``options``: ``PrepareOptions``, the records the stages take from them,
  and the caller's hooks (``Announce``, ``Bakeoff``);
- ``passes``: one streaming pass over the raw inputs (``read_rows``: chunks
  read in this process, their per-chunk work, ``analyze_chunk``, on the
  executor, ``RowBatch``es back in input order; ``RowSplits``);
- ``build``: a new dataset in named stages (``first_pass``, the choice,
  ``families``' n-gram or sequence stage, the manifest); ``refit``:
  ``--refit``'s rebuild; ``append``: ``--append``'s new shards with the
  frozen vectorizer; ``sources``: the inputs' provenance.

Streaming passes, each holding a bounded window of chunks at a time. The
per-chunk work of reading passes (split by ``split_rule``, words per text,
hashed n-gram counts) runs on an executor (``dataset.parallel``: ``--jobs``
local threads, the workers of a Dask cluster with ``--scheduler``, or any
``concurrent.futures.Executor`` handed to ``prepare``), results in input
order, so the output is the same bytes for any executor and number of
workers. Under the indexed split rule (``lsh-bigrams``) the workers also
compute each row's band keys, and this process resolves them through the
dataset's band-key index in input order (``RowSplits``), saved as
``split_index.npz``; later raw passes replay the first pass's splits. This
process reads every input and writes every file; when a chunk's work fails
(on a cluster: after the engine's own retries), the run fails naming the
input and rows of the chunk.

The vectorizer family: the guide's rule, sequences when S/W >= 1500; when
it says sequences under ``auto``, a bake-off of both families on a bounded
sample decides. The bake-off trains models, so it lives in ``train/``, which
``dataset/`` never imports: the caller passes it (``bakeoff``, of type
``Bakeoff``; ``streamtrain.prepare.prepare`` and the ``streamtrain
prepare`` command pass ``train.bakeoff.bakeoff``). A library call that
passes none keeps the rule's pick, and the manifest's choice says so.

Each pass over the raw inputs or the spill reports its progress by name
(``pass 1/3: reading and counting``) through ``streamtrain.progress``: rows,
bytes of the total, MB/s, ETA.

Modes, all under the dataset's writer lock (``fs.locks.writer_lock``, held
for the whole run, so a second prepare on the same ``--data`` gets ``Busy``,
exit 75, naming the holder): a new dataset; ``--overwrite``; ``--refit``
(rebuild from every recorded input, each once and as it is now, plus new ones);
``--append`` (``dataset.append``: new shards with the frozen vectorizer).
Replacing a dataset waits for its readers (``fs.locks.no_readers``) at the
swap, or fails at once before any work when ``--wait`` is 0. ``--overwrite``
replaces only a dataset (``manifest.is_dataset``) or an empty directory, and
never a symlink, ``.`` or a directory above the working directory
(``fs.atomic.check_target``, exit 2 before any work).
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

    The per-chunk work (tokenizing, hashing, splitting) runs on ``executor``: when None, on ``opts.jobs``
    local worker threads or the Dask cluster of ``opts.scheduler`` (``parallel.running``), shut down (and
    disconnected) on return. ``announce`` is called once with the dataset's ``ModelInputs`` as soon as they
    are known (n-grams: after the first pass, the F-test keeping ``top_k`` of its candidates; sequences:
    after the vocabulary; an append: at its start), before the shards are written: ``train`` builds the
    model meanwhile. ``bakeoff`` settles ``--vectorizer auto`` when the guide's rule says sequences
    (``train.bakeoff.bakeoff``, passed by ``streamtrain.prepare.prepare``); when None the rule's pick stands.
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
    """Refuse, before any work, options that cannot run together, a bad input path, a target that is not
    ours to replace, and a file system of ``--data`` that clearly lacks the space."""
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
    if given is not None:
        yield given
        return
    with running(opts.jobs, opts.scheduler) as executor:
        yield executor
