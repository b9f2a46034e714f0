"""``streamtrain.errors``: each error class carries the exit code the module docstring promises for cron, the
messages name what they are about, and ``--help``'s table lists every code once. The errno-to-code mapping of
failed writes is ``fs/test_write_errors.py``'s."""

from __future__ import annotations

import re
import signal

import pytest

from streamtrain import errors
from streamtrain.cli.exit_codes import TABLE, exit_code, help_text
from streamtrain.errors import (
    Busy,
    CannotCreate,
    ClusterError,
    DataError,
    NonFiniteError,
    NotPromoted,
    OutOfSpace,
    StreamtrainError,
    Terminated,
    UsageError,
    WriteError,
)

# The module docstring's promises, written out: 1 failed, 2 usage, 3 not promoted, 65 data, 73 can't create,
# 74 I/O error, 75 busy.
PROMISED = [
    (StreamtrainError("x"), 1),
    (NonFiniteError("loss is nan"), 1),
    (ClusterError("worker 1 lost"), 1),
    (UsageError("bad flag"), 2),
    (NotPromoted("worse than current", {"version": "v"}), 3),
    (DataError("bad row", "a.csv", 3), 65),
    (CannotCreate("/ro/data", "Read-only file system"), 73),
    (OutOfSpace("/full/data", "No space left on device"), 74),
    (Busy("another run holds it"), 75),
]


@pytest.mark.parametrize(("error", "code"), PROMISED, ids=[type(e).__name__ for e, _ in PROMISED])
def test_each_error_class_has_its_exit_code(error, code):
    assert error.exit_code == code
    assert exit_code(error) == code
    assert isinstance(error, StreamtrainError)  # every one of them is explained, never a traceback


def test_signals_and_the_unexpected():
    assert exit_code(KeyboardInterrupt()) == 130
    assert exit_code(Terminated(signal.SIGTERM)) == 143 == 128 + signal.SIGTERM
    assert exit_code(ValueError("a bug")) == 1
    assert exit_code(OSError("not a write")) == 1


def test_a_data_error_names_its_file_and_row():
    plain = DataError("dataset has no training rows")
    assert str(plain) == "dataset has no training rows" and plain.path is None and plain.row is None
    assert str(DataError("malformed", "in.csv")) == "in.csv: malformed"
    error = DataError("malformed", "in.csv", 12)
    assert str(error) == "in.csv, row 12: malformed" and (error.path, error.row) == ("in.csv", 12)
    assert str(DataError("unreadable", "doc.txt", None)) == "doc.txt: unreadable"


def test_a_write_error_says_what_failed_where_and_why():
    error = OutOfSpace("/d/x.h5", "No space left on device")
    assert str(error) == "cannot write /d/x.h5: No space left on device"
    assert (error.path, error.cause) == ("/d/x.h5", "No space left on device")
    assert str(CannotCreate(None, "Permission denied")) == "cannot write: Permission denied"
    assert str(CannotCreate("/p", "Permission denied", "")) == "/p: Permission denied"  # no action said
    assert isinstance(error, WriteError) and isinstance(CannotCreate("/p", "x"), WriteError)


def test_not_promoted_carries_what_fit_would_have_returned():
    result = {"version": "20260101T000000Z-abcd", "test_accuracy": 0.7}
    error = NotPromoted("worse than current", result)
    assert error.result is result and str(error) == "worse than current"


def test_terminated_is_not_an_exception_a_library_catches_by_accident():
    stop = Terminated(signal.SIGTERM)
    assert not isinstance(stop, Exception) and isinstance(stop, BaseException)
    assert str(stop) == "SIGTERM" and stop.signum == signal.SIGTERM


def test_the_help_table_lists_every_exit_code_once():
    codes = [code for code, _ in TABLE]
    constants = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert len(codes) == len(set(codes)) and set(codes) == constants
    assert {code for _, code in PROMISED} <= set(codes)
    lines = help_text().splitlines()
    assert lines[0] == "exit codes:"
    assert [int(re.match(r"\s+(\d+)\s", line).group(1)) for line in lines[1:]] == codes
