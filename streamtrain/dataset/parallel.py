"""Per-chunk work spread over a ``concurrent.futures.Executor``, results in input order (``ordered_map``).

prepare's heavy per-chunk step (tokenize, hash, assign splits) is a pure
function of a chunk's texts (a module-level function of picklable
arguments), so it can run anywhere: in this process (``InlineExecutor``,
``--jobs 1``), on local threads (``LocalThreads``, ``--jobs N``), on a Dask
cluster (``ClusterExecutor``, ``--scheduler ADDRESS``), or on any executor a
caller hands in (a ``ProcessPoolExecutor``). ``ordered_map`` keeps at most
``window`` chunks in flight, so memory stays bounded however large the
input, and yields results in submission order, so what prepare writes is
the same bytes for any executor and number of workers.

``running(jobs, scheduler)`` opens the executor for the command line's
``--jobs`` and ``--scheduler`` and shuts it down (and disconnects from the
cluster) on the way out, also on errors and Ctrl-C. ``workers(executor)``
is how many calls an executor runs at once, which sizes prepare's window:
the executors made here say it (``workers``: 1 inline, N threads, the
cluster's total worker threads when connecting); any other counts as one per
core.

Local workers are threads, not processes: the step's heavy kernels (Arrow,
numpy's sorts, scipy's CSR building) release the GIL, and IMDB's whole
prepare took 7.6 s on 2 threads against 7.3 s on 2 processes and 8.3 s
inline (``--jobs 1``); worker processes also brought a start-up race with
signals (a worker still starting when Ctrl-C arrived printed a traceback
after prepare's own message), re-imported a library caller's ``__main__``,
and would inherit a crashed parent's lock files.

The cluster is Dask's ``distributed`` (the ``cluster`` extra), imported only
when ``--scheduler`` is given. This process stays the one that reads the
inputs and writes every file; the workers receive a chunk's texts and send
back its ``ChunkWork``, so they need streamtrain (the same version, checked
when connecting) but no access to the inputs or the dataset. Dask retries the
task of a worker that dies (``distributed.scheduler.allowed-failures``, 3 by
default); a task that still fails reaches ``ordered_map``'s caller, and
``engine_failure`` tells the engine's failures (Dask's ``KilledWorker``, a
lost scheduler) from an exception that the work itself raised. Connecting
waits at most Dask's ``distributed.comm.timeouts.connect`` (30 s unless
configured) for the scheduler, and as long again for a first worker.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

from streamtrain import __version__
from streamtrain.errors import UsageError

M = TypeVar("M")
CLUSTER_EXTRA = "pip install 'streamtrain[cluster]'"
DEFAULT_CONNECT_TIMEOUT = 30.0  # seconds, when Dask's config sets none


class InlineExecutor(Executor):
    """Runs each call at once in the calling process (no pickling, no processes): ``--jobs 1``."""

    workers = 1

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class LocalThreads(ThreadPoolExecutor):
    """``--jobs N``: N threads of this process."""

    def __init__(self, workers: int):
        super().__init__(workers, thread_name_prefix="streamtrain-prepare")
        self.workers = workers


class ClusterExecutor(Executor):
    """``--scheduler``: the Dask client's executor, and the cluster's worker threads when it connected."""

    def __init__(self, client: Any, address: str):
        self.address = address
        self.workers = max(1, sum(client.nthreads().values()))
        # pure=False: a random key per call, instead of hashing every chunk's texts into one
        self._executor = client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait and not cancel_futures)  # not waiting cancels what is left


def cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def workers(executor: Executor) -> int:
    """How many calls ``executor`` runs at once: its ``workers`` when it says (the executors made here do),
    else ``cores()``."""
    count = getattr(executor, "workers", None)
    return count if isinstance(count, int) and count >= 1 else cores()


def executor_for(jobs: int | None) -> Executor:
    """``InlineExecutor`` for one job; else ``LocalThreads`` of ``jobs`` threads (``None``: ``cores()``)."""
    jobs = cores() if jobs is None else jobs
    if jobs <= 1:
        return InlineExecutor()
    return LocalThreads(jobs)


@contextlib.contextmanager
def running(jobs: int | None, scheduler: str | None = None) -> Iterator[Executor]:
    """The executor for ``--jobs`` or, when given, the Dask cluster of ``--scheduler``; shut down on the way out."""
    opened = contextlib.ExitStack()
    with opened:
        executor = opened.enter_context(cluster(scheduler)) if scheduler is not None else executor_for(jobs)
        try:
            yield executor
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def cluster(address: str) -> Iterator[ClusterExecutor]:
    """A ``ClusterExecutor`` on the Dask scheduler at ``address``; the client is closed on the way out.

    ``UsageError`` (nothing was done) when Dask is not installed, ``address`` is not one, the scheduler does
    not answer within the connect timeout, it has no worker within as long again, or its workers lack this
    streamtrain version.
    """
    try:
        import dask
        import distributed
        from dask.utils import parse_timedelta
    except ImportError as exc:
        raise UsageError(f"--scheduler needs Dask's distributed, which is not installed: {CLUSTER_EXTRA}") from exc
    try:
        scheme, location = distributed.comm.parse_address(address)
        distributed.comm.registry.get_backend(scheme)
        if not location:
            raise ValueError("no host")
    except ValueError as exc:
        raise UsageError(f"--scheduler {address!r} is not a Dask scheduler's address, tcp://HOST:PORT ({exc})") from exc
    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect", None)) or 0
    timeout = timeout or DEFAULT_CONNECT_TIMEOUT
    # A chunk's texts travel in its task; Dask's advice on large graphs (load the data with Dask) does not apply.
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GiB"}):
        try:
            client = distributed.Client(address, timeout=timeout, set_as_default=False)
        except OSError as exc:
            raise UsageError(
                f"--scheduler {address}: no Dask scheduler answered within {timeout:g} s ({exc}); "
                "is `dask scheduler` running there?"
            ) from exc
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except TimeoutError as exc:
                raise UsageError(
                    f"--scheduler {address}: the scheduler has no workers (waited {timeout:g} s); "
                    f"start `dask worker {address}` on each machine"
                ) from exc
            _check_versions(client, address)
            yield ClusterExecutor(client, address)
        finally:
            client.close(timeout=timeout)


def _version() -> str:  # run on each worker by ``_check_versions``
    from streamtrain import __version__ as version

    return version


def _check_versions(client: Any, address: str) -> None:
    try:
        found: dict[str, str] = client.run(_version)
    except Exception as exc:
        raise UsageError(
            f"--scheduler {address}: the workers cannot run streamtrain ({type(exc).__name__}: {exc}); "
            f"install streamtrain {__version__} where they run"
        ) from exc
    other = {worker: v for worker, v in found.items() if v != __version__}
    if other:
        named = ", ".join(f"{worker} has {v}" for worker, v in sorted(other.items()))
        raise UsageError(
            f"--scheduler {address}: workers run another streamtrain than this {__version__} ({named}); "
            "the dataset would depend on which worker analysed which chunk"
        )


def engine_failure(exc: BaseException) -> bool:
    """Whether the executor lost a call (Dask's ``KilledWorker``, a lost scheduler, a cancelled call), as
    opposed to the call raising ``exc`` itself."""
    return isinstance(exc, CancelledError) or type(exc).__module__.partition(".")[0] in ("distributed", "dask")


def ordered_map(
    executor: Executor,
    fn: Callable[..., Any],
    items: Iterable[tuple[M, tuple]],
    window: int,
    failed: Callable[[M, Exception], BaseException] | None = None,
) -> Iterator[tuple[M, Any]]:
    """``(meta, fn(*args))`` for each ``(meta, args)`` of ``items``, in order, at most ``window`` in flight.

    ``items`` is consumed lazily; if the consumer stops early (or a call fails), calls not yet started are
    cancelled. A call's exception is raised here, or what ``failed(meta, exception)`` returns for it (raised
    from it unless it is the same exception).
    """
    pending: deque[tuple[M, Future]] = deque()

    def result(meta: M, future: Future) -> Any:
        try:
            return future.result()
        except Exception as exc:
            if failed is None:
                raise
            error = failed(meta, exc)
            if error is exc:
                raise
            raise error from exc

    try:
        for meta, args in items:
            pending.append((meta, executor.submit(fn, *args)))
            while len(pending) >= window:
                first, future = pending.popleft()
                yield first, result(first, future)
        while pending:
            first, future = pending.popleft()
            yield first, result(first, future)
    finally:
        for _, future in pending:
            future.cancel()
