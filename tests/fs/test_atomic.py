"""``fs.atomic`` in process: a file written beside its target and renamed (old or new, never half), the targets
that may never be replaced, and a staging directory that replaces its target on success only. The signal and
``kill -9`` scenarios are ``test_staging.py``'s."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from streamtrain.errors import UsageError
from streamtrain.fs.atomic import alive, atomic_write_bytes, atomic_write_text, check_target, fsync_dir, staging_dir
from streamtrain.fs.atomic import umask as read_umask


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p != path)


@pytest.fixture
def umask_027():
    before = os.umask(0o027)
    yield 0o027
    os.umask(before)


def test_the_umask_is_read_without_being_changed(umask_027):
    assert read_umask() == umask_027
    assert read_umask() == umask_027  # still the same: reading did not reset it
    assert os.umask(umask_027) == umask_027


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path, umask_027):
    path = tmp_path / "doc.json"
    atomic_write_text(path, "first ünïcode\n")
    assert path.read_bytes() == "first ünïcode\n".encode()
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert siblings(path) == []  # the temporary file was renamed, not left
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask_027  # as an ordinary new file, not mkstemp's 0600


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    path = tmp_path / "doc.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]  # fails inside, after the temporary file
    assert path.read_bytes() == b"old" and siblings(path) == []
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "no-such-dir" / "x", b"")  # its directory must exist


def test_a_symlink_target_is_refused_and_what_it_points_at_kept(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep").write_text("x")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UsageError, match="is a symbolic link"):
        check_target(tmp_path / "link", overwrite=True, ours=lambda p: True)
    assert (real / "keep").read_text() == "x"


def test_the_working_directory_and_those_above_it_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for target in (work, tmp_path / "a", tmp_path, Path(".")):
        with pytest.raises(UsageError, match="working directory or a directory above it"):
            check_target(target, overwrite=True, ours=lambda p: True)
    check_target(work / "c", overwrite=False)  # below it: fine


def test_a_mount_point_is_refused():
    mount = next((p for p in ("/proc", "/sys", "/dev") if os.path.ismount(p)), None)
    if mount is None:
        pytest.skip("no mount point to name")
    with pytest.raises(UsageError, match="is a mount point"):
        check_target(mount, overwrite=True, ours=lambda p: True)


def test_a_non_empty_target_is_replaced_only_with_overwrite_and_when_ours(tmp_path):
    check_target(tmp_path / "new", overwrite=False)  # nothing there
    (tmp_path / "empty").mkdir()
    check_target(tmp_path / "empty", overwrite=False)  # an empty directory
    full = tmp_path / "full"
    full.mkdir()
    (full / "manifest.json").write_text("{}")
    with pytest.raises(UsageError, match="already exists and is not empty"):
        check_target(full, overwrite=False, ours=lambda p: True)
    with pytest.raises(UsageError, match="a directory that streamtrain did not write"):
        check_target(full, overwrite=True)
    with pytest.raises(UsageError, match="a directory that streamtrain did not write"):
        check_target(full, overwrite=True, ours=lambda p: False)
    check_target(full, overwrite=True, ours=lambda p: (p / "manifest.json").exists())
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="a file that streamtrain did not write"):
        check_target(tmp_path / "file", overwrite=True, ours=lambda p: True)


def test_fsync_of_a_directory(tmp_path):
    fsync_dir(tmp_path)
    with pytest.raises(FileNotFoundError):
        fsync_dir(tmp_path / "absent")


def test_a_process_is_alive_until_it_has_ended():
    assert alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not alive(proc.pid)


def test_a_staging_directory_replaces_its_target_when_the_block_succeeds(tmp_path):
    target = tmp_path / "out" / "data"
    with staging_dir(target) as stage:
        assert stage.parent == target.parent and stage.name.startswith("data.partial-")
        (stage / "a").write_text("1")
        assert not target.exists()  # nothing in place before the end
    assert (target / "a").read_text() == "1" and siblings(target) == []

    with staging_dir(target, overwrite=True, ours=lambda p: True) as stage:
        (stage / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"] and siblings(target) == []


def test_a_failed_block_leaves_the_previous_target_and_no_staging_directory(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "old").write_text("kept")
    with pytest.raises(RuntimeError), staging_dir(target, overwrite=True, ours=lambda p: True) as stage:
        (stage / "new").write_text("x")
        raise RuntimeError("the build failed")
    assert sorted(p.name for p in target.iterdir()) == ["old"] and siblings(target) == []


def test_a_second_signal_during_the_removal_of_a_failed_staging_directory_does_not_leave_it(tmp_path, monkeypatch):
    """A second SIGTERM (or Ctrl-C) while a failed run removes its staging directory raises inside rmtree."""
    import shutil
    import signal

    from streamtrain.cli import _terminate
    from streamtrain.fs import atomic

    calls, rmtree = [], shutil.rmtree

    def interrupted_once(path, *args, **kwargs):
        ours = Path(path).parent == tmp_path  # not pytest's own removals
        calls.extend([path] if ours else [])
        if ours and len(calls) == 1:  # part-way: one file gone, then the signal's exception, inside rmtree
            next(p for p in Path(path).rglob("*") if p.is_file()).unlink()
            signal.raise_signal(signal.SIGTERM)  # the CLI's handler: ``Terminated``
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(atomic.shutil, "rmtree", interrupted_once)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        target = tmp_path / "out"
        with pytest.raises(RuntimeError, match="the run's own error"), staging_dir(target) as stage:
            for name in ("a", "b", "c"):
                (stage / name).mkdir()
                (stage / name / "f").write_bytes(b"x")
            raise RuntimeError("the run's own error")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(calls) == 2  # started again after the interruption
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_the_replacing_guard_wraps_only_the_swap_of_an_existing_target(tmp_path):
    entered = []

    @contextlib.contextmanager
    def guard():
        entered.append(True)
        yield

    @contextlib.contextmanager
    def refusing():
        raise RuntimeError("readers still there")
        yield

    target = tmp_path / "data"
    with staging_dir(target, replacing=guard) as stage:
        (stage / "v1").write_text("1")
    assert entered == []  # no previous target to swap
    with staging_dir(target, overwrite=True, replacing=guard, ours=lambda p: True) as stage:
        (stage / "v2").write_text("2")
    assert entered == [True] and sorted(p.name for p in target.iterdir()) == ["v2"]
    with (
        pytest.raises(RuntimeError, match="readers"),
        staging_dir(target, overwrite=True, replacing=refusing, ours=lambda p: True) as stage,
    ):
        (stage / "v3").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["v2"] and siblings(target) == []


def test_a_refused_target_is_refused_before_anything_is_made(tmp_path):
    target = tmp_path / "sub" / "data"
    target.mkdir(parents=True)
    (target / "x").write_text("x")
    with pytest.raises(UsageError, match="already exists"), staging_dir(target):
        pytest.fail("the block must not run")
    assert siblings(target) == []
