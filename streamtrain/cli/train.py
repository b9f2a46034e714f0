"""``streamtrain train``: prepare, then fit, as one command (``train_options``, ``run``).

The nightly job in one cron line: ``streamtrain train INPUT... --data D
--model-dir M`` (with ``--append`` for a night's new files) does what
``streamtrain prepare INPUT... --data D && streamtrain fit --data D
--model-dir M`` does, with the options of both. One ``--data``, ``--seed``
and ``--wait`` serve both; ``--overwrite`` is prepare's. A config file's
``[prepare]`` and ``[fit]`` tables apply, and its ``[train]`` table over
them (``cli.config``).

The difference is time: TensorFlow loads while prepare runs. prepare runs
in a child process forked from this one (``Forked``: no new interpreter, the
modules already loaded), the command ``streamtrain prepare`` with this
command's prepare options as flags (``arguments.to_argv``), its own logs
and exit code, while this process imports TensorFlow and fit's modules. As
soon as the model's inputs are known (for n-grams, after the first pass:
the F-test keeps ``top_k`` of its candidates), before the shards are
written, the child announces the dataset's ``ModelInputs`` (one JSON line
on a pipe whose descriptor it finds in ``STREAMTRAIN_ANNOUNCE_FD``), and
this process builds fit's model and traces its steps (``fit.prebuild``)
while the child selects, names and writes; then fit runs here, on that
model if the manifest agrees.
``tools/bench_peers.py --tools st-train,vw`` (2 cores, medians of 3 rounds)
measures it against Vowpal Wabbit (docs/performance.md). A thread of this
process doing the import instead slowed prepare by 2-3 s: an import holds
the GIL.

stdout: one JSON document, ``{"prepare": ..., "fit": ...}``, the two
commands' results. A failed prepare ends the command with prepare's exit
code and fit does not run; after that, fit's exit codes (3: a version kept
but not promoted; 75: another run holds the model directory or the dataset,
and the message says that the dataset was written or appended to, since
prepare's work stands). The child dies with this process (Linux's parent-death
signal, SIGTERM, so it removes its staging directory), and SIGINT or SIGTERM
to this process stops it first. A rerun after a kill resumes like the two
commands would: prepare skips inputs already appended, fit resumes its
checkpoint. ``--workers`` above 1, or a ``TF_CONFIG`` cluster, is refused:
run prepare once, then fit on every worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import json
import os
import signal
import subprocess
import sys
import time
import typing
from typing import Any

from streamtrain.cli.arguments import Common, common_argv, to_argv
from streamtrain.cli.workers import ChildFailed, stop
from streamtrain.dataset.manifest import ModelInputs
from streamtrain.errors import EXIT_UNEXPECTED, UsageError

_PR_SET_PDEATHSIG = 1
ANNOUNCE_ENV = "STREAMTRAIN_ANNOUNCE_FD"  # in prepare's environment: the pipe to announce its ModelInputs on
# Options both commands have, with what they mean to train.
SHARED_HELP = {
    "data": "the dataset directory prepare writes and fit reads",
    "seed": "seed of prepare's row order and of fit's shuffling, initialisation and dropout",
    "wait": "seconds to wait for another run holding --data or --model-dir before exiting 75",
    "overwrite": "replace --data if it exists",
}


@functools.cache
def train_options() -> type:
    """The options of ``train``: prepare's, then fit's (one field for a name both have)."""
    from streamtrain.dataset.prepare import PrepareOptions
    from streamtrain.options import Spec
    from streamtrain.train.fit import FitOptions

    fields: dict[str, tuple[str, Any, Any]] = {}
    for cls in (PrepareOptions, FitOptions):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in fields:
                continue
            metadata = dict(f.metadata)  # a library-only field has no spec
            if f.name in SHARED_HELP:
                spec: Spec = metadata["spec"]
                metadata["spec"] = dataclasses.replace(spec, help=SHARED_HELP[f.name])
            kw: dict[str, Any] = {"metadata": metadata}
            if f.default_factory is not dataclasses.MISSING:
                kw["default_factory"] = f.default_factory
            elif f.default is not dataclasses.MISSING:
                kw["default"] = f.default
            fields[f.name] = (f.name, hints[f.name], dataclasses.field(**kw))
    return dataclasses.make_dataclass("TrainOptions", list(fields.values()), kw_only=True)


def split(opts: Any) -> tuple[Any, Any]:
    """(``PrepareOptions``, ``FitOptions``) of a ``train`` options object; fit's ``--overwrite`` stays off."""
    from streamtrain.dataset.prepare import PrepareOptions
    from streamtrain.train.fit import FitOptions

    def of(cls: type, skip: tuple[str, ...] = ()) -> Any:
        return cls(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(cls) if f.name not in skip})

    return of(PrepareOptions), of(FitOptions, skip=("overwrite",))


def run(opts: Any, common: Common) -> dict:
    """Prepare in a child process while TensorFlow loads here, then fit here; both results."""
    from streamtrain.cli import logs
    from streamtrain.errors import Busy, NotPromoted

    prepare_opts, fit_opts = split(opts)
    if fit_opts.workers > 1 or os.environ.get("TF_CONFIG"):
        raise UsageError("train fits in this one process: for several workers run prepare once, then fit on each")
    argv = [*common_argv(common), *to_argv(prepare_opts)]
    heard, told = os.pipe()
    try:
        child = Forked(argv, told)
    finally:
        os.close(told)
    try:
        from streamtrain.train.runtime import import_tensorflow

        import_tensorflow()
        from streamtrain.train.fit import prebuild

        inputs = _heard(heard)
        prebuilt = prebuild(fit_opts, inputs) if inputs is not None else None
        out, _ = child.communicate()
    except BaseException:  # Ctrl-C or SIGTERM (``Terminated``): stop prepare first (it removes its staging)
        stop([child], settle=0.0)  # type: ignore[list-item]  # Forked has the Popen methods stop uses
        raise
    finally:
        os.close(heard)
    if child.returncode:
        code = child.returncode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"failed (exit {code})"
        raise ChildFailed(f"prepare {how}; fit was not run", code)
    prepared = json.loads(out)
    logs.setup("fit", common.verbosity, common.log_format)
    from streamtrain.train.fit import fit

    try:
        result = fit(fit_opts, prebuilt)
    except NotPromoted as exc:  # a version was made and kept: both results are printed, then exit 3
        exc.result = {"prepare": prepared, "fit": exc.result}
        raise
    except Busy as exc:  # fit's lock says "nothing was changed": not true of the dataset prepare just wrote
        done = "appended to" if prepare_opts.append else "prepared"
        why = str(exc).replace("; nothing was changed", "")
        raise Busy(
            f"the dataset {prepare_opts.data} was {done}; fit did not run: {why}. "
            "To train on it once that run ends: streamtrain fit with the same --data and --model-dir"
        ) from exc
    return {"prepare": prepared, "fit": result}


class Announcer:
    """prepare's ``announce`` in the child of a ``train`` (``from_env``): the ``ModelInputs`` as one JSON line
    on the pipe ``train`` passed, then the pipe closed (also by ``close``, when prepare ends without them)."""

    def __init__(self, fd: int):
        self.fd: int | None = fd

    @classmethod
    def from_env(cls) -> Announcer | None:
        fd = os.environ.pop(ANNOUNCE_ENV, None)
        return cls(int(fd)) if fd else None

    def __call__(self, inputs: ModelInputs) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):  # train has gone: nobody to tell
                os.write(self.fd, (json.dumps(inputs.to_json()) + "\n").encode())
            self.close()

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def _heard(fd: int) -> ModelInputs | None:
    """The ``ModelInputs`` the child announced on ``fd``; None if it closed the pipe without (it failed, or
    ended early: then fit builds its model itself)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    return ModelInputs.from_json(json.loads(data))


def _die_with(parent: int) -> None:
    """In a child: SIGTERM when ``parent`` ends, however it ends (Linux's parent-death signal)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class Forked:
    """``streamtrain prepare ARGV`` in a child forked from this process, with no exec: the child starts with the
    modules that parsing the options loaded, so its work begins ~0.3 s sooner than a new interpreter's would.

    Forked before this process imports TensorFlow (so no thread of TensorFlow's is copied half-way); the
    libraries loaded by then reinitialise their own threads in a child (OpenBLAS, Arrow's jemalloc), as under
    ``multiprocessing``'s fork. The child runs the command as ``streamtrain prepare`` would (its own logs and
    exit code; stdin from /dev/null, stdout to ``stdout`` here) and leaves by ``os._exit``. The methods are the
    ``subprocess.Popen`` ones that ``run`` and ``workers.stop`` use.
    """

    def __init__(self, argv: list[str], told: int):
        readable, writable = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would write this process's buffered output again
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = EXIT_UNEXPECTED
            try:
                os.close(readable)
                os.dup2(writable, 1)
                os.close(writable)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.close(null)
                _die_with(parent)
                os.environ[ANNOUNCE_ENV] = str(told)
                from streamtrain.cli import run_command

                code = run_command("prepare", argv)
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        stream.flush()
                os._exit(code)
        os.close(writable)
        self.pid = pid
        self.returncode: int | None = None
        self.stdout = os.fdopen(readable, "rb")

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("streamtrain prepare", timeout or 0.0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self) -> tuple[bytes, None]:
        """Everything the child writes on stdout, once it has ended."""
        with self.stdout:
            out = self.stdout.read()
        self.wait()
        return out, None
