"""A signal that lands where Python drops exceptions still stops a command.

A signal's handler runs wherever the main thread is. In a weakref callback (an import lock's, while modules load
at start-up) its exception is printed as "Exception ignored" and dropped: a SIGTERM sent 0.3 s after prepare
started was once lost that way, and the run went on to its end (``tests/fs/test_staging.py``'s start case). Real
subprocesses and real signals; the command is a stand-in that takes the signal inside a weakref callback.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

SCRIPT = """
import os, signal, sys, time, weakref
import streamtrain.cli as cli

def command(name):
    class Thing:
        pass
    thing = Thing()
    def callback(_):
        os.kill(os.getpid(), SIGNUM)
        for _ in range(1_000_000):  # the handler runs in here, and its exception is dropped
            pass
    ref = weakref.ref(thing, callback)
    del thing
    print("dropped", flush=True)
    time.sleep(30)  # the signal sent again ends this
    print("slept on", flush=True)
    return 0

cli.run_command = command
sys.exit(cli.entry("prepare"))
"""


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_whose_exception_python_dropped_is_sent_again(signum, code):
    proc = subprocess.run(
        [sys.executable, "-c", f"SIGNUM = {int(signum)}\n{SCRIPT}"],
        capture_output=True,
        text=True,
        timeout=60,
        # As from a terminal: a test runner's process may ignore SIGINT, and an ignored SIGINT is inherited (and
        # kept: Python installs no KeyboardInterrupt handler then), so the stand-in would never see the signal.
        preexec_fn=_sigint_default,
    )
    assert proc.stdout == "dropped\n"  # the callback ran, the command went on past it, and the sleep was cut short
    assert proc.returncode == code, proc.stderr
    assert "Exception ignored" not in proc.stderr  # the dropped one is not shown; the stop is, in one line
    assert proc.stderr.startswith("streamtrain prepare: ") and proc.stderr.count("\n") == 1, proc.stderr


OTHER = """
import sys, weakref
import streamtrain.cli as cli

seen = []
sys.unraisablehook = lambda unraisable: seen.append(type(unraisable.exc_value).__name__)

def command(name):
    class Thing:
        pass
    thing = Thing()
    def callback(_):
        raise ValueError("not a signal")
    ref = weakref.ref(thing, callback)
    del thing
    print(seen, flush=True)
    return 0

cli.run_command = command
code = cli.entry("prepare")
print(sys.unraisablehook.__name__, flush=True)
sys.exit(code)
"""


def test_another_exception_python_dropped_goes_to_the_hook_the_command_replaced():
    proc = subprocess.run([sys.executable, "-c", OTHER], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "['ValueError']\n<lambda>\n"  # the caller's hook got it, and has its place back after
    assert proc.stderr == ""
