"""``dataset.space``: the disk a prepare needs, from its inputs' sizes, against the free space of ``--data``'s file
system. Inputs far larger than the free space are sparse files (their size costs no disk), so the refusal is
tested against the real file system, with nothing faked."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from streamtrain.cli.exit_codes import exit_code
from streamtrain.dataset.space import FLOOR, TYPICAL, SpaceNeed, check, existing_parent, need
from streamtrain.errors import CannotCreate


def free_bytes(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def sparse_file(tmp_path):
    """Makes a file of a given size that holds no data (a hole), or skips where the file system cannot; removed
    after the test, so that no tool that walks the temporary directory meets a file of hundreds of GB."""
    made: list[Path] = []

    def make(name: str, size: int) -> Path:
        path = tmp_path / name
        made.append(path)
        try:
            with open(path, "wb") as fh:
                fh.truncate(size)
        except OSError as exc:
            pytest.skip(f"no sparse file of {size} bytes here: {exc}")
        return path

    yield make
    for path in made:
        path.unlink(missing_ok=True)


def test_the_nearest_existing_directory_is_where_the_data_will_land(tmp_path):
    assert existing_parent(tmp_path) == tmp_path
    assert existing_parent(tmp_path / "a" / "b" / "data") == tmp_path
    (tmp_path / "a").mkdir()
    assert existing_parent(tmp_path / "a" / "b" / "data") == tmp_path / "a"
    assert existing_parent("/") == existing_parent("/no-such-dir-here") == Path("/")


def test_the_need_is_the_inputs_bytes_and_the_free_space_of_the_data_s_file_system(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"x" * 1000)
    docs = tmp_path / "docs" / "pos"
    docs.mkdir(parents=True)
    (docs / "1.txt").write_bytes(b"y" * 300)
    (docs / "2.txt").write_bytes(b"z" * 200)
    space = need(str(tmp_path / "out" / "data"), [str(tmp_path / "a.csv"), str(tmp_path / "docs")])
    assert space.where == tmp_path and space.input_bytes == 1500  # a directory per class: its documents
    assert abs(space.free_bytes - free_bytes(tmp_path)) < 1 << 26  # the same file system, give or take others
    assert space.typical == int(1500 * TYPICAL) and space.least == int(1500 * FLOOR)


def test_a_need_rounds_to_whole_bytes():
    space = SpaceNeed(Path("/"), input_bytes=7, free_bytes=0)
    assert space.typical == int(7 * TYPICAL) and space.least == int(7 * FLOOR) == 0


def test_enough_space_passes_quietly(tmp_path, caplog):
    (tmp_path / "a.csv").write_bytes(b"x" * 10_000)
    with caplog.at_level(logging.INFO, logger="streamtrain"):
        check(str(tmp_path / "data"), [str(tmp_path / "a.csv")])
    assert caplog.text == ""


def test_less_than_the_typical_need_is_said_and_allowed(tmp_path, caplog, sparse_file):
    free = free_bytes(tmp_path)
    big = sparse_file("big.csv", free // 2)  # needs 1.5x the free space typically, 1/16 at least
    with caplog.at_level(logging.INFO, logger="streamtrain"):
        check(str(tmp_path / "data"), [str(big)])
    assert "free; prepare usually needs about" in caplog.text and "may run out" in caplog.text


def test_clearly_too_little_space_is_refused_before_any_work(tmp_path, sparse_file):
    free = free_bytes(tmp_path)
    huge = sparse_file("huge.csv", int(free / FLOOR) * 2)  # the least it could need: twice the free space
    data = tmp_path / "out" / "data"
    with pytest.raises(CannotCreate) as caught:
        check(str(data), [str(huge)])
    message = str(caught.value)
    assert message.startswith(f"cannot write {data}: too little free space: prepare needs about ")
    assert re.search(rf"; {re.escape(str(tmp_path))} has [\d,.]+ (KiB|MiB|GiB) free$", message)
    assert exit_code(caught.value) == 73
    assert not data.exists() and not data.parent.exists()  # nothing was made
