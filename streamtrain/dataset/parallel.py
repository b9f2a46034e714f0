"""Per-chunk work spread over a ``concurrent.futures.Executor``, results in input order (``ordered_map``).

prepare's per-chunk step is a pure function of a chunk's texts (a
module-level function of picklable arguments), so it runs in this process
(``InlineExecutor``, ``--jobs 1``), on local threads (``LocalThreads``,
``--jobs N``), on a Dask cluster (``ClusterExecutor``, ``--scheduler``), or
on any executor a caller hands in. ``ordered_map`` keeps at most ``window``
calls in flight (bounded memory) and yields results in submission order, so
what prepare writes is the same bytes for any executor and number of
workers. ``running`` opens the executor for ``--jobs`` / ``--scheduler`` and
shuts it down (and disconnects from the cluster) on the way out, also on
errors and Ctrl-C; ``cluster`` refuses (``UsageError``) before any work
when Dask is missing, the scheduler or its workers do not answer, or the
workers run another streamtrain. ``workers`` is how many calls an executor
runs at once, which sizes prepare's window; ``engine_failure`` tells a lost
call from one that raised. ``read_ahead`` runs a generator (prepare's reading
of the raw input) on a thread of its own, a few items ahead of its consumer.

Design (threads, not processes; the cluster) and measurements: docs/design/prepare.md
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

from streamtrain import __version__
from streamtrain.errors import Terminated, UsageError

M = TypeVar("M")
T = TypeVar("T")
CLUSTER_EXTRA = "pip install 'streamtrain[cluster]'"
DEFAULT_CONNECT_TIMEOUT = 30.0  # seconds, when Dask's config sets none


class InlineExecutor(Executor):
    """Runs each call at once in the calling process (no pickling, no processes): ``--jobs 1``."""

    workers = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` now.

        Args:
            fn: the call.
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Returns:
            A future already done: its result, or the exception it raised.
        """
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class LocalThreads(ThreadPoolExecutor):
    """``--jobs N``: N threads of this process."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers, thread_name_prefix="streamtrain-prepare")
        self.workers = workers


class ClusterExecutor(Executor):
    """``--scheduler``: the Dask client's executor, and the cluster's worker threads when it connected."""

    def __init__(self, client: Any, address: str) -> None:
        self.address = address
        self.workers = max(1, sum(client.nthreads().values()))
        # pure=False: a random key per call, instead of hashing every chunk's texts into one
        self._executor = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Hand ``fn(*args, **kwargs)`` to the cluster.

        Args:
            fn: the call (pickled for a worker).
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Returns:
            Its future.
        """
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the executor (the client stays open: ``cluster`` closes it).

        Args:
            wait: wait for the calls in flight, unless ``cancel_futures``.
            cancel_futures: cancel what is left instead of waiting for it.
        """
        self._executor.shutdown(wait=wait and not cancel_futures)  # not waiting cancels what is left


def cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def workers(executor: Executor) -> int:
    """How many calls ``executor`` runs at once.

    Args:
        executor: any executor.

    Returns:
        Its ``workers`` attribute when it has one of at least 1 (the executors made here do), else ``cores()``.
    """
    count = getattr(executor, "workers", None)
    return count if isinstance(count, int) and count >= 1 else cores()


def executor_for(jobs: int | None) -> Executor:
    """The local executor for ``--jobs``.

    Args:
        jobs: worker threads; None: ``cores()``.

    Returns:
        ``InlineExecutor`` for one job (or fewer), else ``LocalThreads`` of ``jobs`` threads.
    """
    jobs = cores() if jobs is None else jobs
    if jobs <= 1:
        return InlineExecutor()
    return LocalThreads(jobs)


@contextlib.contextmanager
def running(jobs: int | None, scheduler: str | None = None) -> Iterator[Executor]:
    """The executor for ``--jobs`` or, when given, the Dask cluster of ``--scheduler``.

    Args:
        jobs: ``--jobs`` (``executor_for``); not used with a scheduler.
        scheduler: ``--scheduler``, a Dask scheduler's address, or None.

    Yields:
        The executor, shut down (calls not started cancelled) on the way out, also on errors.

    Raises:
        UsageError: as ``cluster``.
    """
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

    Args:
        address: the scheduler's address, ``tcp://HOST:PORT``.

    Yields:
        The executor, connected, with at least one worker running this streamtrain version.

    Raises:
        UsageError: nothing was done: Dask is not installed, ``address`` is not a scheduler's address, the
            scheduler does not answer within Dask's connect timeout, it has no worker within as long again, or
            its workers cannot run this streamtrain version.
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
            if isinstance(sys.exc_info()[1], KeyboardInterrupt | Terminated):
                _quiet_shutdown()
            client.close(timeout=timeout)


def _quiet_shutdown() -> None:
    """Silence Dask's and tornado's loggers for the rest of an interrupted run.

    Closing the client while calls are in flight fails their connections, which tornado can log from the client's
    event loop with a traceback ("Exception in callback ... CommClosedError"), beside the one line a SIGINT or
    SIGTERM is due.
    """
    roots = ("tornado", "distributed", "asyncio")
    named = [name for name in logging.root.manager.loggerDict if name.partition(".")[0] in roots]
    for name in {*roots, *named}:  # Dask's logging config sets some children's levels of their own
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _version() -> str:
    """This process's streamtrain version: run on each worker by ``_check_versions``."""
    from streamtrain import __version__ as version

    return version


def _check_versions(client: Any, address: str) -> None:
    """``UsageError`` unless every worker of ``client`` runs this streamtrain version."""
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
    """Whether the executor lost a call, as opposed to the call raising ``exc`` itself.

    Args:
        exc: what a call's future raised.

    Returns:
        True for a cancelled call and for Dask's own exceptions (``KilledWorker``, a lost scheduler).
    """
    return isinstance(exc, CancelledError) or type(exc).__module__.partition(".")[0] in ("distributed", "dask")


def ordered_map(
    executor: Executor,
    fn: Callable[..., Any],
    items: Iterable[tuple[M, tuple]],
    window: int,
    failed: Callable[[M, Exception], BaseException] | None = None,
) -> Iterator[tuple[M, Any]]:
    """Map ``fn`` over ``items`` on ``executor``, in order, at most ``window`` calls in flight.

    ``items`` is consumed lazily; if the consumer stops early (or a call fails), calls not yet started are
    cancelled.

    Args:
        executor: where the calls run.
        fn: the function (picklable for a cluster or a process pool).
        items: ``(meta, args)`` pairs; ``meta`` stays here, ``fn(*args)`` is submitted.
        window: the most calls submitted and not yet yielded.
        failed: what to raise for a call that raised: ``failed(meta, exception)`` (raised from the exception
            unless it is that exception); None: the exception itself.

    Yields:
        ``(meta, fn(*args))`` for each item, in the order of ``items``.

    Raises:
        Exception: a call's exception, or what ``failed`` returns for it.
    """
    pending: deque[tuple[M, Future]] = deque()

    def result(meta: M, future: Future) -> Any:
        """The call's result, or its failure as ``failed`` says."""
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


def read_ahead(items: Iterable[T], depth: int, name: str) -> Iterator[T]:
    """``items`` in order, produced on a daemon thread named ``name`` at most ``depth`` items ahead.

    What producing an item raises is raised here, where that item would have come, and ends the producer. Once
    ``items`` is exhausted or has raised, the producer thread has ended before this generator does (prepare
    forks children after a pass). When the consumer stops early (an exception, a signal's, ``close``), the
    producer stops before its next item and closes ``items``; a daemon thread never holds up the process's exit.
    """
    ahead: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[bool, Any]) -> bool:
        """Queue ``entry`` unless the consumer has stopped (checked every 0.1 s while the queue is full)."""
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        end: tuple[bool, Any] = (False, None)
        try:
            for item in items:
                if not put((True, item)):
                    break
        except BaseException as exc:  # handed to the consumer, which raises it
            end = (False, exc)
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close is not None:
                close()
        put(end)

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            more, value = ahead.get()
            if more:
                yield value
                continue
            producer.join()  # it has ended: gone before the caller goes on (prepare forks children later)
            if value is not None:
                raise value
            return
    finally:
        stop.set()
