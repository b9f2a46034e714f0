"""``train.modeldir``: which version a reader uses, what ``verify`` finds wrong with a version (its
``checksums.json`` against the files), and the adoption of a directory written by streamtrain 0.2.

Versions are written by hand here, with checksums computed by ``hashlib``, so the checks are tested against an
independent record; no model is trained."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from streamtrain.errors import DataError, UsageError
from streamtrain.fs.versions import Versions
from streamtrain.train.modeldir import (
    CHECKSUMS_NAME,
    FLAT_MARKERS,
    MODEL_NAME,
    REQUIRED,
    adopt_flat,
    check,
    is_flat,
    metric_numbers,
    problems,
    read_vectorizer_doc,
    resolve,
    tree_problems,
)

FILES = {
    "model.keras": b"weights",
    "vectorizer.json": b'{"kind": "ngram"}',
    "vectorizer.npz": b"arrays",
    "metrics.json": b'{"test_accuracy": 0.9}',
    "tensorboard/events.out": b"scalars",
}


def record_of(files: dict[str, bytes]) -> dict:
    """What fit records of ``files``: each one's size and sha256."""
    return {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()}


def write_files(directory: Path, files: dict[str, bytes], record: dict | None = None) -> Path:
    """``files`` under ``directory`` and a ``checksums.json`` recording them (or ``record`` instead)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    if record is None:
        record = record_of(files)
    (directory / CHECKSUMS_NAME).write_text(json.dumps(record))
    return directory


def versioned(root: Path, *ids: str, current: str | None = None) -> Versions:
    versions = Versions(root)
    for version in ids:
        write_files(versions.dir / version, FILES)
    if current is not None:
        versions.promote(current)
    return versions


A, B = "20260101T000000Z-aaaa", "20260102T000000Z-bbbb"


def test_a_version_as_fit_wrote_it_has_no_problems(tmp_path):
    version = write_files(tmp_path / "v", FILES)
    assert problems(version) == []
    check(version)  # no error


def test_every_difference_from_the_record_is_listed(tmp_path):
    version = write_files(tmp_path / "v", FILES)
    (version / "vectorizer.npz").write_bytes(b"arrayz")  # same size, other bytes
    (version / "metrics.json").write_bytes(b"{}")  # shorter
    (version / "tensorboard" / "events.out").unlink()
    found = problems(version)
    assert sorted(found) == [
        "metrics.json: truncated: 2 bytes on disk, 22 recorded",
        "tensorboard/events.out: missing",
        "vectorizer.npz: damaged: its sha256 checksum differs from the one recorded",
    ]
    with pytest.raises(DataError, match="damaged or incomplete model directory: ") as caught:
        check(version)
    assert str(version) in str(caught.value) and any(p in str(caught.value) for p in found)


def test_a_record_must_name_what_readers_load_and_only_files_inside(tmp_path):
    files = {k: v for k, v in FILES.items() if k != MODEL_NAME}
    record = record_of(files)
    (tmp_path / "secret").write_bytes(b"outside")
    record["../secret"] = {"bytes": 7, "sha256": hashlib.sha256(b"outside").hexdigest()}
    record["/etc/hostname"] = {"bytes": 1, "sha256": "0" * 64}
    version = write_files(tmp_path / "v", files, record)
    assert problems(version) == [
        f"{CHECKSUMS_NAME}: does not record {MODEL_NAME}",
        f"{CHECKSUMS_NAME}: records '../secret', which is not a file inside the version",
        f"{CHECKSUMS_NAME}: records '/etc/hostname', which is not a file inside the version",
    ]
    assert MODEL_NAME in REQUIRED


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, f"{CHECKSUMS_NAME}: missing (not a model version, or fit did not finish)"),
        ("not json", f"{CHECKSUMS_NAME}: unreadable: "),
        ('["a list"]', f"{CHECKSUMS_NAME}: unreadable: not a record of files with their bytes and sha256"),
        ('{"model.keras": {"bytes": "7", "sha256": "x"}}', f"{CHECKSUMS_NAME}: unreadable: not a record"),
    ],
)
def test_a_missing_or_malformed_record_is_one_problem(tmp_path, content, expected):
    version = write_files(tmp_path / "v", FILES)
    if content is None:
        (version / CHECKSUMS_NAME).unlink()
    else:
        (version / CHECKSUMS_NAME).write_text(content)
    found = problems(version)
    assert len(found) == 1 and found[0].startswith(expected)
    with pytest.raises(DataError):
        check(version)


def test_a_reader_uses_current_or_the_version_it_names(tmp_path):
    versioned(tmp_path, A, B, current=A)
    assert resolve(tmp_path) == tmp_path / "versions" / A
    assert resolve(tmp_path, B) == tmp_path / "versions" / B
    with pytest.raises(DataError, match="no complete version 20260103T000000Z-cccc"):
        resolve(tmp_path, "20260103T000000Z-cccc")
    with pytest.raises(DataError, match="no such model directory"):
        resolve(tmp_path / "absent")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not a model directory"):
        resolve(tmp_path / "plain")


def flat_dir(root: Path) -> Path:
    """A model directory as streamtrain 0.2 wrote it: the files directly in it, and a user's own file beside."""
    files = {name: FILES.get(name, name.encode()) for name in FLAT_MARKERS if name != CHECKSUMS_NAME}
    write_files(root, files)
    (root / "notes.txt").write_text("mine")
    return root


def test_a_0_2_directory_is_read_as_it_is_and_only_without_a_version(tmp_path):
    root = flat_dir(tmp_path / "m")
    assert is_flat(root)
    assert resolve(root) == root
    with pytest.raises(UsageError, match="drop --version"):
        resolve(root, A)
    assert problems(root) == []
    assert tree_problems(root) == ([], len(FLAT_MARKERS))  # the recorded files and checksums.json itself


def test_a_directory_is_not_0_2_with_a_marker_missing_or_a_symlink_or_a_current_link(tmp_path):
    root = flat_dir(tmp_path / "m")
    (root / "metrics.json").unlink()
    assert not is_flat(root)

    root = flat_dir(tmp_path / "s")
    (tmp_path / "elsewhere.json").write_bytes((root / "metrics.json").read_bytes())
    (root / "metrics.json").unlink()
    (root / "metrics.json").symlink_to(tmp_path / "elsewhere.json")
    assert not is_flat(root)

    root = flat_dir(tmp_path / "c")
    os.symlink("versions/nothing", root / "current")  # an adoption went as far as its promotion
    assert not is_flat(root)


def test_adopting_a_0_2_directory_makes_its_model_the_current_version_and_leaves_the_rest(tmp_path):
    root = flat_dir(tmp_path / "m")
    recorded = json.loads((root / CHECKSUMS_NAME).read_text())
    version = adopt_flat(root)
    assert version is not None and Versions(root).current() == version
    current = resolve(root)
    assert current == root / "versions" / version
    assert problems(current) == []  # the same bytes, still matching their record
    assert json.loads((current / CHECKSUMS_NAME).read_text()) == recorded
    assert sorted(p.name for p in root.iterdir()) == ["current", "notes.txt", "versions"]  # the user's file stays
    assert adopt_flat(root) is None  # versioned now: nothing to adopt


def test_a_damaged_0_2_directory_is_not_adopted(tmp_path):
    root = flat_dir(tmp_path / "m")
    (root / MODEL_NAME).write_bytes(b"weightz")
    with pytest.raises(DataError, match=f"{MODEL_NAME}: damaged"):
        adopt_flat(root)
    assert is_flat(root) and not (root / "versions").exists()


def test_the_tree_check_covers_every_complete_version_and_the_current_link(tmp_path):
    versions = versioned(tmp_path, A, B, current=B)
    assert tree_problems(tmp_path) == ([], 2 * (len(FILES) + 1))
    (versions.dir / A / "model.keras").write_bytes(b"weightz")
    (versions.dir / (B[:-4] + "cccc.training")).mkdir()  # a version being built is not checked
    found, files = tree_problems(tmp_path)
    assert found == [f"versions/{A}/model.keras: damaged: its sha256 checksum differs from the one recorded"]
    assert files == 2 * (len(FILES) + 1)

    (tmp_path / "current").unlink()
    os.symlink("/tmp", tmp_path / "current")
    found, _ = tree_problems(tmp_path)
    assert found[0].startswith("current: points at /tmp, which is not a version inside")

    assert tree_problems(tmp_path / "nothing")[0][0].startswith("versions: missing")


def test_only_float_metrics_are_numbers_to_check():
    metrics = {"test_accuracy": 0.5, "test_loss": float("nan"), "epochs": 3, "classes": ["a"], "note": None}
    names = [name for name, _ in metric_numbers(metrics)]
    assert names == ["test_accuracy", "test_loss"]


def test_a_directory_without_a_vectorizer_says_so(tmp_path):
    with pytest.raises(DataError, match="no vectorizer state here"):
        read_vectorizer_doc(tmp_path)
    (tmp_path / "vectorizer.json").write_text('{"kind": "ngram"}')
    assert read_vectorizer_doc(tmp_path) == {"kind": "ngram"}
