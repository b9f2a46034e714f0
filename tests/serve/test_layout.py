"""``serve.layout``: TensorFlow Serving's model base path. Each promoted version is copied to the next integer
``N``; names that are not integers are ignored (a staging directory included); a version that is already the
highest ``N`` is not written again; nothing is removed. SavedModels are stand-in directories here: only their
``assets.extra/streamtrain.json`` is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamtrain.errors import UsageError
from streamtrain.serve.export import INFO_PATH, SAVED_MODEL_DIR
from streamtrain.serve.layout import numbers, publish


def version_dir(root: Path, version: str, with_saved_model: bool = True) -> Path:
    """A complete version of a model directory, with a SavedModel that records its version (or without one)."""
    directory = root / "versions" / version
    directory.mkdir(parents=True)
    if with_saved_model:
        write_saved_model(directory / SAVED_MODEL_DIR, version)
    return directory


def write_saved_model(directory: Path, version: str) -> None:
    (directory / "variables").mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(b"graph of " + version.encode())
    (directory / "variables" / "variables.index").write_bytes(b"index")
    info = directory / INFO_PATH
    info.parent.mkdir(parents=True)
    info.write_text(json.dumps({"version": version, "classes": ["a", "b"], "kind": "ngram", "streamtrain": "1"}))


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def never(out: Path) -> None:
    raise AssertionError("a version with a SavedModel is copied, not exported")


def test_numbers_are_the_integer_named_directories_in_numeric_order(tmp_path):
    assert numbers(tmp_path / "absent") == []
    for name in ("2", "10", "9", "1.partial-host-1-x", "latest", "007"):
        (tmp_path / name).mkdir()
    (tmp_path / "11").write_text("a file, not a version")
    assert numbers(tmp_path) == [2, 7, 9, 10]


def test_each_promoted_version_goes_to_the_next_number_as_a_whole_copy(tmp_path):
    serving = tmp_path / "serving"
    first = version_dir(tmp_path / "m", "20260101T000000Z-aaaa")
    second = version_dir(tmp_path / "m", "20260102T000000Z-bbbb")
    assert publish(serving, first, never) == 1  # the directory is created
    assert tree(serving / "1") == tree(first / SAVED_MODEL_DIR)
    assert publish(str(serving), second, never) == 2
    assert tree(serving / "2") == tree(second / SAVED_MODEL_DIR)
    assert tree(serving / "1") == tree(first / SAVED_MODEL_DIR)  # nothing removed or changed
    assert sorted(p.name for p in serving.iterdir()) == ["1", "2"]  # no staging leftovers


def test_the_version_already_highest_is_not_written_again_an_older_one_is(tmp_path):
    serving = tmp_path / "serving"
    first = version_dir(tmp_path / "m", "20260101T000000Z-aaaa")
    second = version_dir(tmp_path / "m", "20260102T000000Z-bbbb")
    assert publish(serving, first, never) == 1
    assert publish(serving, first, never) is None  # promoted twice: served once
    assert publish(serving, second, never) == 2
    assert publish(serving, first, never) == 3  # a rollback is a new number, so TensorFlow Serving loads it
    assert numbers(serving) == [1, 2, 3]


def test_numbers_continue_after_the_highest_whatever_else_is_there(tmp_path):
    serving = tmp_path / "serving"
    (serving / "41").mkdir(parents=True)  # someone else's model, no streamtrain record
    (serving / "notes").mkdir()
    first = version_dir(tmp_path / "m", "20260101T000000Z-aaaa")
    assert publish(serving, first, never) == 42


def test_a_version_without_a_saved_model_is_exported_to_its_number(tmp_path):
    serving = tmp_path / "serving"
    old = version_dir(tmp_path / "m", "20250101T000000Z-0000", with_saved_model=False)
    exported: list[Path] = []

    def export(out: Path) -> None:
        exported.append(out)
        write_saved_model(out, old.name)

    assert publish(serving, old, export) == 1
    assert exported == [serving / "1"]
    assert publish(serving, old, export) is None and len(exported) == 1  # recognised by its record


def test_a_serving_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "serving").write_text("not a directory")
    with pytest.raises(UsageError, match="is not a directory"):
        publish(tmp_path / "serving", version_dir(tmp_path / "m", "20260101T000000Z-aaaa"), never)
