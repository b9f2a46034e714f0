"""``streamtrain fit --workers N``: a local cluster of N worker processes on loopback (``launch``).

It does what a cluster operator does by hand on N machines (docs/reference.md,
"Training on several machines"): the same ``streamtrain fit`` command once
per worker, each with ``TF_CONFIG`` naming every worker's ``127.0.0.1:PORT``
(free ports) and its own index (``train.cluster``). Each worker's stderr lines
are passed on, prefixed ``[worker I]`` (a JSON line gets a ``"worker": I``
field instead); the chief's stdout (fit's result) becomes this command's. The
first worker to fail (a non-zero exit, or a signal) ends the run: the others
get ``SETTLE_SECONDS`` to stop by themselves, then SIGTERM, then SIGKILL after
``GRACE_SECONDS``; the error names the worker, and the exit code is its code
(1 for a signal). A rerun of the same command resumes from the chief's last
checkpoint. SIGINT or SIGTERM to this process stops the workers the same way.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from streamtrain.errors import EXIT_UNEXPECTED, StreamtrainError

SETTLE_SECONDS = 5.0  # after a failure, for the others to stop by themselves (with their own message)
GRACE_SECONDS = 10.0  # after SIGTERM, before SIGKILL
POLL_SECONDS = 0.1


class ChildFailed(StreamtrainError):
    """A child process of this command failed (a worker of the local cluster, ``train``'s prepare).

    Args:
        message: what failed and how.
        returncode: the child's; the exit code is it, or 1 when a signal killed the child (negative).
    """

    def __init__(self, message: str, returncode: int):
        self.exit_code = returncode if returncode > 0 else EXIT_UNEXPECTED
        super().__init__(message)


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on loopback now (the OS's choice; closed again for the workers to bind)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch(command: str, argv: Sequence[str], n: int) -> int:
    """Run ``streamtrain COMMAND ARGV`` as worker 0 .. n-1 of a loopback cluster, until all finished.

    Args:
        command: the command ("fit").
        argv: its arguments, as given to this process.
        n: the number of workers.

    Returns:
        The chief's exit code: 0, or 3 for a version kept but not promoted.

    Raises:
        ChildFailed: at the first worker that failed, the others stopped.
    """
    from streamtrain.train.cluster import Cluster

    hosts = tuple(f"127.0.0.1:{p}" for p in free_ports(n))
    procs: list[subprocess.Popen] = []
    pumps: list[threading.Thread] = []
    try:
        for i in range(n):
            env = {**os.environ, "TF_CONFIG": Cluster(hosts, i).tf_config()}
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamtrain", command, *argv],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            procs.append(proc)
            pumps.append(_pump(proc.stderr, functools.partial(_write_tagged, index=i)))
            pumps.append(_pump(proc.stdout, _write_out if i == 0 else None))  # a worker's stdout is empty
        failed = _wait(procs)
    except BaseException:  # Ctrl-C, SIGTERM (``Terminated``), or a worker that could not be started
        stop(procs, settle=0.0)
        raise
    finally:
        for t in pumps:
            t.join(timeout=GRACE_SECONDS)
    if failed is None:
        return procs[0].returncode
    index, code = failed
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    raise ChildFailed(
        f"worker {index} of {n} {how}; the other workers were stopped. "
        "Rerun the same command to resume from the last checkpoint",
        code,
    )


def _wait(procs: list[subprocess.Popen]) -> tuple[int, int] | None:
    """Wait for every worker; at the first failure stop the rest and return (the failed worker, its return code).

    The chief's exit 3 (a version kept but not promoted) is not a failure. The failure named is the first one
    seen (when several are seen at once, one killed by a signal): the others' (a lost peer, or this function
    stopping them) follow from it.
    """
    while True:
        codes = [p.poll() for p in procs]
        failed = [(i, c) for i, c in enumerate(codes) if c is not None and _failed(i, c)]
        if failed:
            stop(procs)
            return min(failed, key=lambda f: (f[1] >= 0, f[0]))
        if all(c is not None for c in codes):
            return None
        time.sleep(POLL_SECONDS)


def _failed(index: int, code: int) -> bool:
    return bool(code) and not (index == 0 and code == 3)  # non-zero: failed, or killed by a signal (negative)


def stop(procs: list[subprocess.Popen], settle: float = SETTLE_SECONDS) -> None:
    """Stop every process of ``procs`` still running.

    Each first gets ``settle`` seconds to end on its own (a worker notices a lost peer at its next collective),
    then SIGTERM, then SIGKILL after ``GRACE_SECONDS``.

    Args:
        procs: the processes.
        settle: seconds to wait before SIGTERM.
    """
    deadline = time.monotonic() + settle
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(OSError):
                p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _pump(source: IO[bytes] | None, write: Callable[[bytes], object] | None) -> threading.Thread:
    """Hand each line of ``source`` to ``write`` (None: read and drop), in a thread of its own."""
    assert source is not None, "the worker's pipe"

    def run() -> None:
        with source:
            for raw in source:
                if write is not None:
                    write(raw)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


_lock = threading.Lock()


def _write_err(line: str) -> None:
    with _lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _write_tagged(raw: bytes, index: int) -> None:
    _write_err(_tagged(raw, index))


def _write_out(raw: bytes) -> None:
    sys.stdout.buffer.write(raw)
    sys.stdout.flush()


def _tagged(raw: bytes, index: int) -> str:
    """A worker's log line, marked with its index: a ``"worker"`` field of a JSON line, else a prefix."""
    line = raw.decode("utf-8", "replace").rstrip("\n")
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                return json.dumps({"worker": index, **doc})
    return f"[worker {index}] {line}"
