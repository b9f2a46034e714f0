"""Which errno of a failed write is which exit code (73 can't create, 74 I/O error), and what the line says."""

from __future__ import annotations

import errno
import os

import pytest

from streamtrain.cli.exit_codes import exit_code
from streamtrain.errors import CannotCreate, OutOfSpace, write_error, writing


@pytest.mark.parametrize(
    ("number", "kind", "code"),
    [
        (errno.ENOSPC, OutOfSpace, 74),
        (errno.EDQUOT, OutOfSpace, 74),
        (errno.EFBIG, OutOfSpace, 74),
        (errno.EROFS, CannotCreate, 73),
        (errno.EACCES, CannotCreate, 73),
        (errno.EPERM, CannotCreate, 73),
    ],
)
def test_each_errno_of_a_write_has_its_exit_code_and_names_the_file(number, kind, code):
    bare = OSError(number, "ignored")  # a failed write() names no file: the write site does
    typed = write_error(bare, "/d/x.h5")
    assert isinstance(typed, kind) and typed.exit_code == code and exit_code(bare) == code
    assert str(typed) == f"cannot write /d/x.h5: {os.strerror(number)}"
    named = OSError(number, "ignored", "/d/y.h5")  # an open() names its file, which wins
    assert str(write_error(named, "/d")).startswith("cannot write /d/y.h5: ")


def test_other_errors_are_not_write_errors():
    assert write_error(OSError(errno.ENOENT, "No such file or directory", "/x")) is None
    assert write_error(ValueError("no")) is None
    assert exit_code(OSError(errno.ENOENT, "x")) == 1


def test_a_permission_error_of_unknown_origin_is_not_called_a_write():
    typed = write_error(PermissionError(errno.EACCES, "Permission denied", "/in.csv"), "/d", known_write=False)
    assert isinstance(typed, CannotCreate) and str(typed) == "/in.csv: Permission denied"


def test_a_short_write_without_an_errno_is_reported_as_one(tmp_path):
    short = r"cannot write .*part\.bin: short write \(184024 requested and 8382 written\)"
    # numpy's tofile on a file system with room left (a file size limit): no errno, a count in the text
    with pytest.raises(OutOfSpace, match=short), writing(tmp_path / "part.bin"):
        raise OSError("184024 requested and 8382 written")
    with pytest.raises(OSError, match="something else"), writing(tmp_path / "part.bin"):
        raise OSError("something else")


def test_a_broken_pipe_is_141_only_when_standard_outputs_reader_is_gone(monkeypatch):
    """EPIPE on some other pipe is a failure (1); on a standard output whose reader closed it, 141."""
    import sys

    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as out:
        monkeypatch.setattr(sys, "stdout", out)
        assert exit_code(BrokenPipeError(errno.EPIPE, "Broken pipe")) == 1  # the reader is still there
        os.close(read_end)
        assert exit_code(BrokenPipeError(errno.EPIPE, "Broken pipe")) == 141
        monkeypatch.undo()
