"""``streamtrain.child``: work in a forked child, its answer and logs relayed, its memory gone with it."""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import BIN, sigint_as_a_terminal_sends_it

from streamtrain.child import ChildError, started


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelno, record.getMessage()))


def _talk(n: int) -> dict:
    for i in range(n):
        logging.getLogger("streamtrain.test_child").info(f"line {i} of {n}")
    logging.getLogger("streamtrain.test_child.deeper").warning("careful")
    return {"pid": os.getpid(), "squares": [i * i for i in range(n)]}


def test_the_childs_answer_and_its_log_records_reach_this_process_in_order():
    lines = _Lines()
    logger = logging.getLogger("streamtrain")
    logger.addHandler(lines)
    level, logger.level = logger.level, logging.INFO
    try:
        with started(_talk, 3, "talking") as answer:
            got = answer.result()
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    assert got["squares"] == [0, 1, 4] and got["pid"] != os.getpid()
    assert lines.lines == [
        ("streamtrain.test_child", logging.INFO, "line 0 of 3"),
        ("streamtrain.test_child", logging.INFO, "line 1 of 3"),
        ("streamtrain.test_child", logging.INFO, "line 2 of 3"),
        ("streamtrain.test_child.deeper", logging.WARNING, "careful"),
    ]


def _fail(what: str) -> None:
    raise ValueError(f"no {what} here")


def _die(_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_failure_or_a_death_in_the_child_is_a_child_error_naming_it():
    failed = r"the thing failed in its child process: ValueError: no spoon here"
    with pytest.raises(ChildError, match=failed), started(_fail, "spoon", "the thing") as answer:
        answer.result()
    died = r"the thing's child process ended \(signal 9\) without an answer"
    with pytest.raises(ChildError, match=died), started(_die, None, "the thing") as answer:
        answer.result()


def _allocate(mib: int) -> int:
    block = np.ones(mib << 17)  # float64: mib MiB, touched
    return int(block.sum())


def test_what_the_child_allocates_never_counts_in_this_process():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with started(_allocate, 400, "allocating") as answer:
        assert answer.result() == 400 << 17
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 100 * 1024, f"this process's peak grew by {grown} KiB"
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >= 400 * 1024  # it was the child's


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


@pytest.fixture
def forked(monkeypatch) -> list[int]:
    """The pid of every child ``os.fork`` makes in the test, in order."""
    pids, fork = [], os.fork

    def recording_fork() -> int:
        pid = fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recording_fork)
    return pids


def _reaped_and_gone(pid: int) -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # and gone


def test_an_interrupted_wait_ends_the_child_and_reaps_it(forked):
    """SIGINT here while the child works: KeyboardInterrupt here, and the child neither running nor unreaped."""
    # Python's own SIGINT handler, as a command has it (a pytest-xdist worker ignores SIGINT).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    began = time.monotonic()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt), started(_sleep, 60.0, "sleeping") as answer:
            answer.result()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - began < 10 and len(forked) == 1
    _reaped_and_gone(forked[0])


def _nap_and_square(n: int) -> int:
    time.sleep(0.5)
    return n * n


def test_a_started_child_answers_while_this_process_goes_on_and_leaving_early_ends_it(forked):
    with started(_nap_and_square, 7, "napping") as answer:
        assert not answer.done()  # this process goes on while the child works
        assert answer.result(timeout=60) == 49
    with started(_sleep, 60.0, "sleeping") as answer:
        pass  # left before the answer
    assert isinstance(answer.exception(timeout=10), ChildError) and len(forked) == 2
    for pid in forked:
        _reaped_and_gone(pid)


SEQUENCE_CORPUS = """
import csv, random, sys
rng = random.Random(0)
words = [f"w{i}" for i in range(300)]
with open(sys.argv[1], "w", newline="") as fh:
    out = csv.writer(fh)
    out.writerow(["label", "text"])
    for _ in range(int(sys.argv[2])):
        label = rng.randrange(3)
        out.writerow([f"c{label}", f"m{label} {rng.choice(words)}"])
"""

PREPARE_AND_REPORT = """
import json, sys
from streamtrain.dataset.prepare import PrepareOptions
from streamtrain.prepare import prepare
manifest = prepare(PrepareOptions(inputs=[sys.argv[1]], test=[sys.argv[2]], data=sys.argv[3]))
print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "bakeoff": "bakeoff" in manifest.choice.to_json()}))
"""


@pytest.mark.slow
def test_prepare_runs_its_bakeoff_in_a_child_and_never_imports_tensorflow(tmp_path: Path):
    """Two words a row, 3,200 rows: S/W 1,600, so the rule says sequences and a bake-off runs; prepare's own
    process ends without TensorFlow in it (the bake-off's models went with its child)."""
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, rows in ((train, 3200), (test, 200)):
        subprocess.run([sys.executable, "-c", SEQUENCE_CORPUS, str(path), str(rows)], check=True)
    done = subprocess.run(
        [sys.executable, "-c", PREPARE_AND_REPORT, str(train), str(test), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"tensorflow": False, "bakeoff": True}


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
        return [int(c) for c in fh.read().split()]


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_the_bakeoff_ends_its_child_and_prepare_cleanly(tmp_path: Path, signum: int, code: int):
    """``streamtrain prepare`` signalled while its bake-off's child trains: prepare exits 130/143 as always, its
    staging directory removed, and the child does not outlive it."""
    train = tmp_path / "train.csv"
    subprocess.run([sys.executable, "-c", SEQUENCE_CORPUS, str(train), "3200"], check=True)
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [str(BIN), "prepare", str(train), "--data", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_a_terminal_sends_it,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the bake-off announces itself before its child trains
            if "the guide's rule says sequences: measuring" in line:
                break
        else:
            pytest.fail(f"no bake-off started (exit {proc.wait()})")
        children = _children(proc.pid)
        assert len(children) == 1, "the bake-off runs in one child"
        time.sleep(1.0)  # the child is importing TensorFlow or training
        proc.send_signal(signum)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == code, rest
        assert rest.rstrip().splitlines()[-1].endswith(f"by {signal.Signals(signum).name}"), rest
        assert not os.path.exists(f"/proc/{children[0]}"), "the bake-off's child outlived prepare"
        assert not data.exists() and not list(tmp_path.glob("data.partial-*"))
    finally:
        proc.kill()
        proc.wait()
