"""prepare on a full disk: one line, exit 74 (73 when refused up front), the previous dataset byte-identical.

The disk is a tmpfs of the test's own, filled by a file of the test's; where
mounting is not permitted, ``RLIMIT_FSIZE`` with ``SIGXFSZ`` ignored
(``tests/fulldisk.py``).
"""

from __future__ import annotations

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from fulldisk import one_error_line, siblings_left, small_disk
from helpers import files_of, streamtrain

FULL = ("No space left on device", "File too large", "written)")  # ENOSPC (tmpfs); EFBIG, a short write (rlimit)


def _prepare(disk, fmt: str):
    data = disk.root / "data"
    proc = streamtrain("prepare", DEMO_TRAIN, "--data", data, "--format", fmt, "--shard-rows", 1000, "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data


@pytest.mark.parametrize("fmt", ["hdf5", "parquet"])
@pytest.mark.parametrize("mode", ["--overwrite", "--append"])
def test_prepare_on_a_full_disk_says_so_in_one_line_and_keeps_the_dataset(tmp_path, fmt, mode):
    # 0.9: HDF5 died with SIGSEGV (exit 139) after a wall of "Exception ignored"; Parquet exit 1, a traceback.
    with small_disk(tmp_path) as disk:
        data = _prepare(disk, fmt)
        before = files_of(data)
        disk.fill(leave=200 << 10)  # above prepare's up-front floor for the demo corpus (98 KiB): it starts
        if mode == "--overwrite":
            args = [DEMO_TRAIN, "--test", DEMO_TEST, "--format", fmt, "--shard-rows", 1000, "--overwrite"]
        else:
            args = ["--append", DEMO_TEST]
        proc = disk.run("prepare", *args, "--data", data, "--quiet")
        assert proc.returncode == 74, proc.stderr[-3000:]
        line = one_error_line(proc, "prepare")
        assert f"cannot write {data}" in line and line.endswith(FULL), line
        assert files_of(data) == before
        assert siblings_left(data) == []


def test_prepare_refuses_up_front_when_the_disk_clearly_lacks_the_space(tmp_path):
    with small_disk(tmp_path) as disk:
        if not disk.mounted:
            pytest.skip("the up-front check needs a file system to fill (no tmpfs here)")
        data = disk.root / "data"
        disk.fill(leave=32 << 10)  # the demo train CSV (626 KiB) needs at least 78 KiB, typically 1.8 MiB
        proc = streamtrain("prepare", DEMO_TRAIN, "--data", data, "--quiet")
        assert proc.returncode == 73, proc.stderr[-3000:]
        line = one_error_line(proc, "prepare")
        assert f"cannot write {data}: too little free space: prepare needs about 1.8 MiB" in line, line
        assert "KiB free" in line, line
        assert not data.exists() and siblings_left(data) == []
