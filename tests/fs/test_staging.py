"""A killed prepare never leaves a half-written dataset, and its leftovers do not outlive the next run.

Real subprocesses, real signals: SIGTERM and SIGINT are caught (staging directory removed, one line, exit
143/130); ``kill -9`` cannot be, so the next run on the same target removes what the dead writer left.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, sigint_as_a_terminal_sends_it, streamtrain

from streamtrain.errors import UsageError
from streamtrain.fs.atomic import _host, staging_dir, sweep_stale


def digest(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir()) if p.is_file()}


def leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f"{target.name}."))


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    """The demo training corpus 12 times over (48k rows): prepare takes several seconds, time enough to kill it."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    header, *rows = DEMO_TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(header + "".join(rows) * 12, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("prepared") / "data"
    proc = subprocess.run(
        [str(BIN), "prepare", DEMO_TRAIN, "--test", DEMO_TEST, "--data", target, "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return target


@pytest.fixture
def previous(prepared, tmp_path) -> tuple[Path, dict[str, str]]:
    """A finished dataset at the target that the killed runs try to replace."""
    target = tmp_path / "data"
    shutil.copytree(prepared, target)
    return target, digest(target)


def start(big_csv: Path, target: Path, moment: str, delay: float) -> subprocess.Popen:
    """``prepare --overwrite`` onto ``target``; ``delay`` s after it starts, or after its staging directory appears."""
    proc = subprocess.Popen(
        [str(BIN), "prepare", str(big_csv), "--data", str(target), "--overwrite"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_a_terminal_sends_it,
    )
    if moment == "staging":
        deadline = time.monotonic() + 60
        while not leftovers(target) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert leftovers(target), "no staging directory appeared"
    time.sleep(delay)
    assert proc.poll() is None, "prepare finished before the signal: make the input bigger"
    return proc


MOMENTS = [("start", 0.3), ("staging", 0.0), ("staging", 1.5)]  # while importing, as staging begins, mid-pass


@pytest.mark.parametrize(("moment", "delay"), MOMENTS)
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_removes_the_staging_directory_and_keeps_the_previous_dataset(
    big_csv, previous, moment, delay, signum, code
):
    target, before = previous
    proc = start(big_csv, target, moment, delay)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    if moment == "start" and (proc.returncode == -signum or "KeyboardInterrupt" in err):
        # On a loaded machine the signal can beat the interpreter to streamtrain's handler (Python's own start-up
        # took over 0.3 s): the process dies of the signal before writing anything, which is also safe.
        assert "streamtrain prepare: " not in err, err
        assert leftovers(target) == [] and digest(target) == before
        return
    assert proc.returncode == code, err
    word = "terminated" if code == 143 else "interrupted"
    assert err.rstrip().splitlines()[-1] == f"streamtrain prepare: {word} by {signal.Signals(signum).name}", err
    assert out == ""
    assert leftovers(target) == []
    assert digest(target) == before


@pytest.mark.parametrize(("moment", "delay"), MOMENTS)
def test_kill_9_leftovers_are_removed_by_the_next_run(big_csv, previous, moment, delay):
    target, before = previous
    proc = start(big_csv, target, moment, delay)
    proc.kill()
    proc.wait(timeout=60)
    assert digest(target) == before  # the previous dataset is intact
    left = leftovers(target)
    assert all(name.startswith(f"data.partial-{_host()}-{proc.pid}-") for name in left)
    if moment == "staging":
        assert left  # the dead writer's staging directory, which nothing could remove
    again = subprocess.run(
        [str(BIN), "prepare", DEMO_TRAIN, "--data", target, "--overwrite", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert leftovers(target) == []


def test_an_append_removes_what_a_killed_replacement_left(prepared, tmp_path):
    """The nightly job appends: it must not leave a killed --overwrite's staging directory on disk for ever."""
    target = tmp_path / "data"
    shutil.copytree(prepared, target)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid names a writer that is gone
    stale = tmp_path / f"data.partial-{_host()}-{gone.pid}-xyz"
    stale.mkdir()
    (stale / "train-00000.h5").write_bytes(b"half written")
    appended = streamtrain("prepare", "--append", DEMO_TEST, "--data", target)
    assert appended.returncode == 0, appended.stderr
    assert leftovers(target) == [] and f"removed {stale}, left by process {gone.pid}" in appended.stderr


def test_a_live_writer_and_other_hosts_are_left_alone(tmp_path):
    target = tmp_path / "data"
    live = tmp_path / f"data.partial-{_host()}-{os.getpid()}-abc"  # this very process: alive
    other = tmp_path / "data.partial-otherhost-1-abc"  # another host's: its pid means nothing here
    dead = tmp_path / f"data.partial-{_host()}-{_dead_pid()}-abc"
    for d in (live, other, dead):
        d.mkdir()
    assert sweep_stale(target) == [dead]
    assert live.exists() and other.exists() and not dead.exists()


def test_a_writer_killed_between_the_two_renames_gets_its_previous_target_back(tmp_path):
    target = tmp_path / "data"
    old = tmp_path / f"data.old-{_host()}-{_dead_pid()}-xyz"
    (old / "data").mkdir(parents=True)
    (old / "data" / "manifest.json").write_text("{}")
    with pytest.raises(UsageError, match="already exists"), staging_dir(target, overwrite=False):
        pass  # the restored dataset is there again, so without --overwrite nothing replaces it
    assert (target / "manifest.json").read_text() == "{}"
    assert leftovers(target) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
