"""``fs.checksums``: sha256 in bounded memory (against ``hashlib`` on the whole bytes), what is wrong with a file
against its record, and ``check_once``'s memory of a file that matched and has not changed since."""

from __future__ import annotations

import hashlib
import os

import pytest

from streamtrain.fs.checksums import check_once, file_problem, file_record, record_problem, sha256_file, size_problem


def written(path, data: bytes):
    path.write_bytes(data)
    return path, len(data), hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 17])
def test_the_streamed_sha256_is_the_sha256_of_the_bytes(tmp_path, size):
    data = os.urandom(size)
    path, _, digest = written(tmp_path / "f", data)
    assert sha256_file(path) == digest


def test_a_file_that_matches_its_record_has_no_problem(tmp_path):
    path, size, digest = written(tmp_path / "f", b"hello")
    assert file_problem(path, size, digest) is None
    assert file_problem(path, None, digest) is None  # an unrecorded size is not compared
    assert file_problem(str(path), size, digest) is None


def test_each_difference_is_said_in_a_few_words(tmp_path):
    path, size, digest = written(tmp_path / "f", b"hello")
    assert file_problem(tmp_path / "absent", size, digest) == "missing"
    assert file_problem(path, 9, digest) == "truncated: 5 bytes on disk, 9 recorded"
    assert file_problem(path, 2, digest) == "grown: 5 bytes on disk, 2 recorded"
    path.write_bytes(b"HELLO")
    assert file_problem(path, size, digest) == "damaged: its sha256 checksum differs from the one recorded"
    assert file_problem(path, None, digest) == "damaged: its sha256 checksum differs from the one recorded"
    (tmp_path / "dir").mkdir()
    assert file_problem(tmp_path / "dir", None, digest).startswith("unreadable: ")


def test_the_size_alone_says_missing_truncated_or_grown_and_not_changed_bytes(tmp_path):
    path, size, _ = written(tmp_path / "f", b"hello")
    assert size_problem(path, size) is None
    assert size_problem(tmp_path / "absent", size) == "missing"
    assert size_problem(path, 9) == "truncated: 5 bytes on disk, 9 recorded"
    assert size_problem(path, 2) == "grown: 5 bytes on disk, 2 recorded"
    path.write_bytes(b"HELLO")
    assert size_problem(path, size) is None  # same size, other bytes: only the checksum can tell


def test_a_manifest_record_names_the_file_relative_to_its_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    _, size, digest = written(tmp_path / "sub" / "names.json", b"[1, 2, 3]")
    record = file_record(tmp_path, "sub/names.json")
    assert record == {"path": "sub/names.json", "bytes": size, "sha256": digest}
    assert record_problem(tmp_path, record) is None
    assert record_problem(tmp_path, {}) is None  # no record: nothing to check
    (tmp_path / "sub" / "names.json").write_bytes(b"[1, 2]")
    assert record_problem(tmp_path, record) == "truncated: 6 bytes on disk, 9 recorded"
    (tmp_path / "sub" / "names.json").unlink()
    assert record_problem(tmp_path, record) == "missing"


def test_a_file_that_matched_once_is_not_read_again_while_unchanged(tmp_path):
    path, size, digest = written(tmp_path / "shard.h5", b"0123456789")
    assert check_once(path, size, digest) is None
    before = os.stat(path)
    with open(path, "r+b") as fh:  # the same inode and size, other bytes, the modification time put back
        fh.write(b"X")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert file_problem(path, size, digest) is not None  # a full check sees it
    assert check_once(path, size, digest) is None  # remembered: not read again
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))  # touched: checked again
    assert check_once(path, size, digest) == "damaged: its sha256 checksum differs from the one recorded"


def test_a_file_that_did_not_match_is_checked_again_every_time(tmp_path):
    path, size, digest = written(tmp_path / "shard.h5", b"abc")
    assert check_once(path, size, "0" * 64) is not None
    assert check_once(path, size, "0" * 64) is not None  # a problem is never remembered as fine
    assert check_once(path, size, digest) is None  # another record: its own check
    assert check_once(tmp_path / "absent", size, digest) == "missing"
