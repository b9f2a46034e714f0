"""``streamtrain train``: prepare, then fit, as one command (``train_options``, ``run``).

The nightly job in one cron line: ``streamtrain train INPUT... --data D --model-dir M`` (with ``--append``
for a night's new files) does what ``streamtrain prepare INPUT... --data D && streamtrain fit --data D
--model-dir M`` does, with the options of both; one ``--data``, ``--seed`` and ``--wait`` serve both,
``--overwrite`` is prepare's, and a config file's ``[train]`` table applies over its ``[prepare]`` and
``[fit]`` (``cli.config``). It is faster: prepare runs in a child forked from this process (``Forked``),
the command ``streamtrain prepare`` with this command's prepare options as flags, its own logs and exit
code, while this process imports TensorFlow. As soon as the model's inputs are known, before the shards are
written, the child announces them (``Announcer``: one JSON line on the pipe of ``STREAMTRAIN_ANNOUNCE_FD``)
and this process builds fit's model ahead (``fit.prebuild``; again when a second announcement replaces the
first); then fit runs here, on the last model built if the manifest agrees. stdout: one JSON document,
``{"prepare": ..., "fit": ...}``. A failed prepare ends the command with its exit code and fit does not run;
then fit's exit codes apply (75 says that the dataset was written). The child dies with this process, and
SIGINT or SIGTERM stops it first. A rerun after a kill resumes as the two commands would. ``--workers``
above 1, or a ``TF_CONFIG`` cluster, is refused.

Rationale and measurements: docs/design/training-speed.md
"""

from __future__ import annotations

import contextlib
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

from streamtrain.child import die_with, fork_piped
from streamtrain.cli.arguments import Common, common_argv, to_argv
from streamtrain.cli.workers import ChildFailed, stop
from streamtrain.dataset.manifest import ModelInputs
from streamtrain.errors import EXIT_UNEXPECTED, UsageError

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
    """The options class of ``train``: prepare's fields, then fit's (one field for a name both have).

    Returns:
        The dataclass ``TrainOptions`` (made once); the shared fields' help says what they mean to both.
    """
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
    """The two commands' options in a ``train`` options object.

    Args:
        opts: a ``train_options()`` instance.

    Returns:
        (``PrepareOptions``, ``FitOptions``); fit's ``--overwrite`` stays off.
    """
    from streamtrain.dataset.prepare import PrepareOptions
    from streamtrain.train.fit import FitOptions

    def of(cls: type, skip: tuple[str, ...] = ()) -> Any:
        return cls(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(cls) if f.name not in skip})

    return of(PrepareOptions), of(FitOptions, skip=("overwrite",))


def run(opts: Any, common: Common) -> dict:
    """Prepare in a child process while TensorFlow loads here, then fit here: ``{"prepare": ..., "fit": ...}``.

    Args:
        opts: a ``train_options()`` instance.
        common: the common flags (verbosity, log format), passed to the child too.

    Raises:
        UsageError: more than one worker, or ``TF_CONFIG`` set.
        ChildFailed: prepare failed or was killed (its exit code); fit did not run.
        NotPromoted: fit kept a version but did not promote it (exit 3), carrying both results.
        Busy: another run holds the model directory or the dataset (exit 75), saying the dataset was written.
    """
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
        prebuilt = _prebuilt(fit_opts, heard)
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


def _prebuilt(fit_opts: Any, heard: int) -> Any:
    """The model fit builds ahead for each ``ModelInputs`` announced on ``heard``, in turn: the last (None: none).

    A second announcement comes when the bake-off chose sequences after the n-gram stage ran ahead.
    """
    from streamtrain.train.fit import prebuild

    prebuilt = None
    while (inputs := _heard(heard)) is not None:
        prebuilt = None  # the model built for the n-grams goes before the next is built
        prebuilt = prebuild(fit_opts, inputs)
    return prebuilt


class Announcer:
    """prepare's ``announce`` in the child of a ``train`` (``from_env``).

    It writes each ``ModelInputs`` as one JSON line on the pipe ``train`` passed (a second when the bake-off
    chose sequences after the n-gram stage ran ahead: ``dataset.choosing``); ``close`` ends the pipe when
    prepare ends.

    Args:
        fd: the pipe's write end.
    """

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    @classmethod
    def from_env(cls) -> Announcer | None:
        """The announcer of ``ANNOUNCE_ENV``, removed from the environment; None when not run by ``train``."""
        fd = os.environ.pop(ANNOUNCE_ENV, None)
        return cls(int(fd)) if fd else None

    def __call__(self, inputs: ModelInputs) -> None:
        """Announce ``inputs`` (nothing when ``train`` has gone)."""
        if self.fd is not None:
            try:
                os.write(self.fd, (json.dumps(inputs.to_json()) + "\n").encode())
            except OSError:  # train has gone: nobody to tell
                self.close()

    def close(self) -> None:
        """Close the pipe, if still open: ``train`` then knows that no more inputs come."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def _heard(fd: int) -> ModelInputs | None:
    """The next ``ModelInputs`` the child announces on ``fd``, read up to its newline and no further.

    None at the end of the pipe (prepare ended; when it announced nothing, it failed or ended early, and fit
    builds its model itself).
    """
    data = b""
    while not data.endswith(b"\n"):
        byte = os.read(fd, 1)  # one at a time: the next announcement stays in the pipe
        if not byte:
            return None
        data += byte
    return ModelInputs.from_json(json.loads(data))


class Forked:
    """``streamtrain prepare ARGV`` in a child forked from this process, with no exec.

    The child starts with the modules that parsing the options loaded, so its work begins sooner than a new
    interpreter's would (docs/design/training-speed.md). Forked before this process imports TensorFlow (so no
    thread of TensorFlow's is copied half-way); the libraries loaded by then reinitialise their own threads in
    a child (OpenBLAS, Arrow's jemalloc), as under ``multiprocessing``'s fork. The child runs the command as
    ``streamtrain prepare`` would (its own logs and exit code; stdin from /dev/null, stdout to ``stdout``
    here), dies with this process (Linux's parent-death signal, SIGTERM) and leaves by ``os._exit``. The
    methods are the ``subprocess.Popen`` ones that ``run`` and ``workers.stop`` use.

    Args:
        argv: ``streamtrain prepare``'s arguments.
        told: the announcement pipe's write end, handed to the child (``ANNOUNCE_ENV``).
    """

    def __init__(self, argv: list[str], told: int) -> None:
        pid, end, parent = fork_piped()
        if pid == 0:  # the child: never returns
            code = EXIT_UNEXPECTED
            try:
                os.dup2(end, 1)
                os.close(end)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.close(null)
                die_with(parent)
                os.environ[ANNOUNCE_ENV] = str(told)
                from streamtrain.cli import run_command

                code = run_command("prepare", argv)
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        stream.flush()
                os._exit(code)
        self.pid = pid
        self.returncode: int | None = None
        self.stdout = os.fdopen(end, "rb")

    def poll(self) -> int | None:
        """The child's exit code (negative: the signal that killed it), or None while it runs."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to end.

        Args:
            timeout: seconds; None: for ever.

        Returns:
            Its exit code.

        Raises:
            subprocess.TimeoutExpired: it still runs after ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("streamtrain prepare", timeout or 0.0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the child, unless it has ended."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL the child, unless it has ended."""
        self.send_signal(signal.SIGKILL)

    def communicate(self) -> tuple[bytes, None]:
        """Everything the child writes on stdout, and None (no stderr), once it has ended."""
        with self.stdout:
            out = self.stdout.read()
        self.wait()
        return out, None
