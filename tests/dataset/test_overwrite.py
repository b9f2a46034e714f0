"""``prepare --overwrite`` (and ``train --overwrite``) replace only a dataset streamtrain wrote.

Real ``streamtrain`` processes: a user's directory, a symlink to one, ``.`` and a directory above the working
directory, and a file are each refused with exit 2 and one line, and every byte of them stays.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DEMO_TEST
from helpers import files_of, streamtrain


def users_directory(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "thesis.txt").write_text("chapter one\n")
    (path / "sub" / "notes.md").write_text("# notes\n")
    return path


def refused(proc) -> str:
    """The one line of a refusal (exit 2, no traceback, nothing on stdout; ``train`` adds that fit did not run)."""
    lines = proc.stderr.strip().splitlines()
    if len(lines) == 2 and lines[1].startswith("streamtrain train: error: prepare failed (exit 2)"):
        lines = lines[:1]
    assert proc.returncode == 2 and len(lines) == 1 and proc.stdout == "", proc.stderr
    return lines[0]


def leftovers(*dirs: Path) -> list[str]:
    return sorted(p.name for d in dirs for p in d.iterdir() if ".partial-" in p.name or ".old-" in p.name)


@pytest.mark.parametrize("command", ["prepare", "train"])
def test_overwrite_refuses_a_directory_streamtrain_did_not_write(tmp_path, command):
    target = users_directory(tmp_path / "mine")
    before = files_of(target)
    args = ["--model-dir", tmp_path / "model"] if command == "train" else []
    line = refused(streamtrain(command, DEMO_TEST, "--data", target, "--overwrite", *args))
    assert str(target) in line and "did not write" in line
    assert files_of(target) == before and leftovers(tmp_path) == [] and not (tmp_path / "model").exists()


@pytest.mark.parametrize("command", ["prepare", "train"])
def test_overwrite_never_follows_a_symlink_to_delete_its_target(tmp_path, command):
    target = users_directory(tmp_path / "mine")
    before = files_of(target)
    link = tmp_path / "link"
    link.symlink_to(target)
    args = ["--model-dir", tmp_path / "model"] if command == "train" else []
    line = refused(streamtrain(command, DEMO_TEST, "--data", link, "--overwrite", *args))
    assert str(link) in line and "symbolic link" in line
    assert files_of(target) == before and link.is_symlink() and link.resolve() == target.resolve()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("data", [".", "..", "../.."])
def test_overwrite_refuses_the_working_directory_and_those_above_it(tmp_path, data):
    work = users_directory(tmp_path / "a" / "b")
    before = files_of(tmp_path)
    line = refused(streamtrain("prepare", DEMO_TEST, "--data", data, "--overwrite", cwd=work))
    assert "working directory" in line and "Traceback" not in line
    assert files_of(tmp_path) == before and leftovers(tmp_path, tmp_path / "a", work) == []


def test_overwrite_refuses_a_file_and_a_foreign_manifest_but_replaces_a_dataset(tmp_path):
    path = tmp_path / "thesis.txt"
    path.write_text("chapter one\n")
    assert "a file" in refused(streamtrain("prepare", DEMO_TEST, "--data", path, "--overwrite"))
    assert path.read_text() == "chapter one\n"
    web = tmp_path / "web"
    web.mkdir()
    (web / "manifest.json").write_text(json.dumps({"name": "my web app"}))  # not a streamtrain manifest
    refused(streamtrain("prepare", DEMO_TEST, "--data", web, "--overwrite"))
    assert json.loads((web / "manifest.json").read_text()) == {"name": "my web app"}

    data = tmp_path / "data"
    assert streamtrain("prepare", DEMO_TEST, "--data", data).returncode == 0
    proc = streamtrain("prepare", DEMO_TEST, "--data", data, "--overwrite", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((data / "manifest.json").read_text())["format"] == "streamtrain-dataset"
    assert leftovers(tmp_path) == []


def test_a_mount_point_is_refused_in_one_line_and_left_as_it_is(tmp_path):
    """A rename cannot replace a mount point (EBUSY): 0.9 printed a traceback and left an empty ``.old-*``."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here (the test needs a mount point)")
    try:
        assert streamtrain("prepare", DEMO_TEST, "--data", mount / "data").returncode == 0  # inside it: fine
        shutil.move(str(mount / "data" / "manifest.json"), str(mount / "manifest.json"))  # as if data were there
        before = files_of(mount)
        for args in ((), ("--overwrite",)):
            line = refused(streamtrain("prepare", DEMO_TEST, "--data", mount, *args))
            assert "is a mount point" in line and f"{mount / 'data'}" in line
        assert files_of(mount) == before and leftovers(tmp_path, mount) == []
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
