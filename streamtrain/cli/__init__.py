"""The ``streamtrain`` command: ``streamtrain prepare|fit|train|evaluate|predict|verify|promote|export|inspect``.

Who owns what: ``commands``, the table of commands (options class, library
call, how the result is printed); ``arguments``, argparse generated from an
options class and the merge of defaults, ``--config`` and flags; ``config``,
reading ``--config FILE.toml``; ``exit_codes``, the exit-code table;
``logs``, logging to stderr as text or JSON lines; ``workers``, ``fit
--workers N`` on loopback; ``train``, ``streamtrain train``.

``main`` dispatches; ``run_command`` runs one command and turns whatever ends
it into an exit code and at most one error line; ``entry`` is what the
``streamtrain`` script and ``python -m`` run. The CLI holds no logic of its
own: everything it runs is a library call with an options object.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from streamtrain import __version__, progress
from streamtrain.cli import logs
from streamtrain.cli.arguments import parse
from streamtrain.cli.commands import COMMANDS
from streamtrain.cli.exit_codes import exit_code, help_text
from streamtrain.errors import EXIT_OK, EXIT_PIPE, EXIT_USAGE, StreamtrainError, Terminated, write_error
from streamtrain.options import effective, options_of


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {c.summary}" for name, c in COMMANDS.items()]
    return (
        "usage: streamtrain COMMAND [options]   (streamtrain COMMAND --help for its options)\n\n"
        "Out-of-core training of text classifiers: raw labelled text -> shards -> Keras model.\n\n"
        "commands:\n" + "\n".join(lines) + "\n\n" + help_text()
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``streamtrain ARGV``: usage, ``--version``, or one command.

    Args:
        argv: the arguments after the program's name; None: ``sys.argv[1:]``.

    Returns:
        The exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if args else sys.stderr)
        return EXIT_OK if args else EXIT_USAGE
    if args[0] == "--version":
        print(f"streamtrain {__version__}")
        return EXIT_OK
    if args[0] not in COMMANDS:
        message = f"unknown command {args[0]!r}; commands: {', '.join(COMMANDS)}"
        logs.line("streamtrain", "error", message, logs.format_in(args), exit_code=EXIT_USAGE)
        return EXIT_USAGE
    return run_command(args[0], args[1:])


def run_command(name: str, argv: Sequence[str] | None = None) -> int:
    """Run one command; never raises, never calls ``sys.exit``.

    Whatever ends it becomes an exit code and at most one ``streamtrain CMD: error: ...`` line (with
    ``--log-format json``, one JSON line of level ``error`` with its ``exit_code``, and ``traceback`` for a bug).
    An ``OSError`` of a full or read-only file system (``errors.write_error``) is not a bug: one line naming its
    file (or, when it names none, the directory the command writes), exit 73 or 74.

    Args:
        name: a command of ``COMMANDS``.
        argv: its arguments; None: ``sys.argv[1:]``.

    Returns:
        The exit code.
    """
    command = COMMANDS[name]
    prog = f"streamtrain {name}"
    argv = list(sys.argv[1:] if argv is None else argv)
    log_format = logs.format_in(argv)  # for errors before the parse is done
    target: str | None = None  # the directory the command writes: named by a full disk's line when no file is
    try:
        try:
            opts, common = parse(name, prog, command.description, command.options(), argv, _all_options, command.borrow)
        except SystemExit as exc:  # argparse printed its help (0) or its error (2)
            return EXIT_OK if not exc.code else EXIT_USAGE
        log_format = common.log_format
        target = getattr(opts, "model_dir", None) or getattr(opts, "data", None)
        if common.print_config:
            print(json.dumps(effective(opts), indent=2))
            return EXIT_OK
        logs.setup(name, common.verbosity, log_format)
        if name == "fit" and opts.workers > 1 and not os.environ.get("TF_CONFIG"):  # --workers N: a local cluster
            from streamtrain.cli.workers import launch

            return launch(name, argv, opts.workers)
        if command.with_common:
            command.run(opts, common)
        else:
            command.run(opts)
        sys.stdout.flush()
        return EXIT_OK
    except (Exception, KeyboardInterrupt, Terminated) as exc:
        return _report(prog, write_error(exc, target, known_write=False) or exc, log_format)


def _all_options() -> dict[str, list]:
    """Every command's options, which a config file is checked against (imports each options class)."""
    return {n: options_of(c.options()) for n, c in COMMANDS.items()}


def _report(prog: str, exc: BaseException, log_format: str = "text") -> int:
    """One line on stderr for what ended a command (a traceback for a bug); its exit code."""
    progress.close_all()  # a pass it interrupted: remove its bar before saying why
    code = exit_code(exc)
    if code == EXIT_PIPE:  # the reader has what it wanted (``| head``): nothing to say, nothing more to write
        _silence_stdout()
    elif isinstance(exc, KeyboardInterrupt):
        logs.line(prog, "error", "interrupted by SIGINT", log_format, tag=False, exit_code=code)
    elif isinstance(exc, Terminated):
        logs.line(prog, "error", f"terminated by {exc}", log_format, tag=False, exit_code=code)
    elif isinstance(exc, StreamtrainError):
        logs.line(prog, "error", str(exc), log_format, exit_code=code)
    elif log_format == "json":
        message = f"internal error: {type(exc).__name__}: {exc}"
        logs.line(prog, "error", message, log_format, exit_code=code, traceback=traceback.format_exc())
    else:
        traceback.print_exc()
    return code


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush does not fail on the closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


REDELIVER_S = 0.05  # how soon a signal whose exception Python dropped is sent again


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def _redeliver(previous: Callable[[Any], object], unraisable: Any) -> None:
    """``sys.unraisablehook`` while a command runs: a signal whose exception Python dropped is sent again.

    A signal's handler runs wherever the main thread is. Inside a weakref callback or a ``__del__`` (an import
    lock's callback, while modules load at start-up) the exception it raises is printed and dropped ("Exception
    ignored in ..."), and the signal would be lost: the run would go on to its end. The signal is sent again from
    another thread after ``REDELIVER_S``, to land in ordinary code; nothing is printed for it. Other unraisable
    exceptions go to ``previous``, the hook it replaced (``entry`` binds it).
    """
    exc = unraisable.exc_value
    if isinstance(exc, Terminated | KeyboardInterrupt):
        signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
        resend = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signum))
        resend.daemon = True
        resend.start()
        return
    previous(unraisable)


def entry(command: str | None = None) -> int:
    """The process's entry point: ``streamtrain ...``, or ``python -m streamtrain.COMMAND ...`` when ``command``.

    SIGTERM becomes an exception (``Terminated``), so staging directories are removed as on Ctrl-C; a signal
    whose exception Python dropped is sent again (``_redeliver``). Once
    TensorFlow is loaded, the process ends with ``os._exit`` after flushing: TensorFlow's threads can deadlock the
    interpreter's shutdown after a failed input pipeline, and a cron job must get its exit code.

    Args:
        command: the command's name; None: it is the first argument.

    Returns:
        The exit code (when TensorFlow was not loaded; else the process exits with it).
    """
    hook = sys.unraisablehook
    sys.unraisablehook = functools.partial(_redeliver, hook)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = main() if command is None else run_command(command)
    except (KeyboardInterrupt, Terminated) as exc:  # a signal between two commands' own handlers
        code = _report(f"streamtrain {command}" if command else "streamtrain", exc, logs.format_in(sys.argv[1:]))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # done: a late SIGTERM (a stopping local cluster) changes nothing
    sys.unraisablehook = hook
    if "tensorflow" in sys.modules:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    return code
