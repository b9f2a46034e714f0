"""fit on a full disk (one line, exit 74) or into a read-only model directory (one line, exit 73); ``current``
and every complete version stay byte-identical.

The disk is a tmpfs of the test's own, filled by a file of the test's; where
mounting is not permitted, ``RLIMIT_FSIZE`` with ``SIGXFSZ`` ignored. The
read-only directory is a read-only bind mount (``tests/fulldisk.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import DEMO_TRAIN
from fulldisk import one_error_line, read_only, siblings_left, small_disk
from helpers import files_of, streamtrain

FULL = ("No space left on device", "File too large", "written)")  # ENOSPC (tmpfs); EFBIG, a short write (rlimit)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "data"
    proc = streamtrain("prepare", DEMO_TRAIN, "--data", data, "--shard-rows", 1000, "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data


def _fit(data: Path, model: Path, run=streamtrain):
    return run("fit", "--data", data, "--model-dir", model, "--epochs", 1, "--quiet")


def _complete(model: Path) -> tuple[str, dict[str, bytes]]:
    """Where ``current`` points and the files of the complete versions (a ``.training`` one may stay to resume)."""
    files = {k: v for k, v in files_of(model).items() if ".training" not in k}
    return os.readlink(model / "current"), files


def test_fit_on_a_full_disk_says_so_in_one_line_and_keeps_current(tmp_path, demo_data):
    # 0.9: exit 1 and a Python traceback (OSError: [Errno 28] ...).
    with small_disk(tmp_path) as disk:
        model = disk.root / "model"
        assert _fit(demo_data, model).returncode == 0
        before = _complete(model)
        disk.fill(leave=100 << 10)
        proc = _fit(demo_data, model, run=disk.run)
        assert proc.returncode == 74, proc.stderr[-3000:]
        line = one_error_line(proc, "fit")
        assert f"cannot write {model}" in line and line.endswith(FULL), line
        assert _complete(model) == before
        assert siblings_left(model) == []


def test_fit_into_a_read_only_model_directory_exits_73_in_one_line(tmp_path, demo_data):
    # 0.9: exit 1 and a Python traceback (OSError: [Errno 30] Read-only file system).
    model = tmp_path / "model"
    assert _fit(demo_data, model).returncode == 0
    before = _complete(model)
    with read_only(model) as view:
        proc = _fit(demo_data, view)
        assert proc.returncode == 73, proc.stderr[-3000:]
        line = one_error_line(proc, "fit")
        assert f"cannot write {view}" in line and line.endswith("Read-only file system"), line
    assert _complete(model) == before


def test_a_checkpoint_commit_on_a_full_disk_names_its_file(tmp_path):
    # 0.9: fit's traceback ended in checkpoint._write_commit with a bare OSError [Errno 28].
    import numpy as np

    from streamtrain.errors import OutOfSpace
    from streamtrain.train.checkpoint import _write_commit

    with small_disk(tmp_path, size="1m") as disk:
        if not disk.mounted:
            pytest.skip("needs a file system to fill (no tmpfs here)")
        disk.fill(leave=64 << 10)
        arrays = {"weight_0": np.zeros(1 << 18, np.float32)}  # 1 MiB
        path = disk.root / "epoch-0001.state.npz"
        with pytest.raises(OutOfSpace, match=rf"cannot write {path}: No space left on device"):
            _write_commit(disk.root, path, arrays, None, "{}")
