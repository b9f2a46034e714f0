"""Damaged shards and diverging training never become a model: exit codes, messages, untouched outputs, no hangs.

Every case runs the real ``streamtrain`` command in a subprocess, as cron would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, prepare_csv, streamtrain

from streamtrain.errors import DataError
from streamtrain.fs.versions import Versions
from streamtrain.vectorize.vectorizer import Vectorizer


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    return {
        fmt: prepare_csv(DEMO_TRAIN, root / f"data-{fmt}", DEMO_TEST, format=fmt, shard_rows=1000, block_rows=64)
        for fmt in ("hdf5", "parquet")
    }


@pytest.fixture(scope="module")
def model(datasets, tmp_path_factory):
    """A good model directory that every failing run below must leave byte for byte as it was."""
    path = tmp_path_factory.mktemp("model") / "model"
    proc = streamtrain(
        "fit", "--no-export", "--data", datasets["hdf5"], "--model-dir", path, "--epochs", "2", "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    return path


def damaged_copy(data: Path, tmp_path: Path, damage) -> tuple[Path, Path]:
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    shard = copy / json.loads((copy / "manifest.json").read_text())["shards"][1]["path"]  # a train shard
    damage(shard)
    return copy, shard


def flip(fraction: float):
    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[int(len(data) * fraction)] ^= 0x5A
        path.write_bytes(bytes(data))

    return damage


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size * 2 // 3)


@pytest.mark.parametrize("fmt", ["hdf5", "parquet"])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97])
def test_a_flipped_byte_stops_fit_with_65_and_leaves_the_model_alone(datasets, model, tmp_path, fmt, fraction):
    data, shard = damaged_copy(datasets[fmt], tmp_path, flip(fraction))
    before = tree_digest(model)
    proc = streamtrain("fit", "--no-export", "--data", data, "--model-dir", model, "--overwrite", "--tune-seconds", "0")
    assert proc.returncode == 65, proc.stderr
    assert f"{shard}: shard damaged" in proc.stderr and "checksum" in proc.stderr
    assert tree_digest(model) == before
    assert not [p for p in model.parent.iterdir() if p != model and not p.name.endswith(".lock")]  # no staging left
    check = streamtrain("verify", data)
    assert check.returncode == 65 and f"{shard}: damaged" in check.stderr


def test_a_truncated_shard_ends_fit_with_65_every_time(datasets, model, tmp_path):
    data, shard = damaged_copy(datasets["parquet"], tmp_path, truncate)
    before = tree_digest(model)

    def run(_):
        return streamtrain("fit", "--no-export", "--data", data, "--model-dir", model, "--wait", "60", timeout=120)

    with ThreadPoolExecutor(2) as pool:  # 20 runs, two at a time on one lock; a hang would raise TimeoutExpired
        results = list(pool.map(run, range(20)))
    assert [r.returncode for r in results] == [65] * 20, results[0].stderr
    assert all(f"{shard}: shard truncated" in r.stderr for r in results)
    assert tree_digest(model) == before
    check = streamtrain("verify", data)
    assert check.returncode == 65 and "truncated" in check.stderr


FIT_AND_REPORT = """
import json, sys
from streamtrain.errors import DataError
from streamtrain.train.fit import FitOptions, fit
try:
    fit(FitOptions(data=sys.argv[1], model_dir=sys.argv[2], export=False))
except DataError as exc:
    print(json.dumps({"error": str(exc), "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_shard_of_the_wrong_size_stops_fit_before_tensorflow_loads(datasets, model, tmp_path, damage):
    data, shard = damaged_copy(datasets["hdf5"], tmp_path, truncate if damage == "truncated" else Path.unlink)
    before = tree_digest(model)
    done = subprocess.run(
        [sys.executable, "-c", FIT_AND_REPORT, str(data), str(model)], capture_output=True, text=True, timeout=120
    )
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["tensorflow"] is False and shard.name in report["error"] and damage in report["error"]
    assert tree_digest(model) == before


def test_evaluate_refuses_a_damaged_shard(datasets, model, tmp_path):
    data, shard = damaged_copy(datasets["hdf5"], tmp_path, flip(0.5))
    proc = streamtrain("evaluate", "--data", data, "--model-dir", model, "--split", "train")
    assert proc.returncode == 65 and str(shard) in proc.stderr and proc.stdout == ""


def test_a_diverging_fit_exits_nonzero_and_writes_no_model(datasets, model, tmp_path):
    fresh = tmp_path / "never"
    proc = streamtrain(
        "fit", "--no-export", "--data", datasets["hdf5"], "--model-dir", fresh, "--learning-rate", "1e38"
    )
    assert proc.returncode == 1, proc.stderr
    assert (
        "the training loss became nan in the round ending at epoch 0.25" in proc.stderr
        and "no model was written" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert no_model_in(fresh)
    before = tree_digest(model)
    proc = streamtrain(
        "fit", "--no-export", "--data", datasets["hdf5"], "--model-dir", model, "--learning-rate", "1e38"
    )
    assert proc.returncode == 1 and tree_digest(model) == before


def test_verify_and_predict_catch_a_damaged_model(model, tmp_path):
    assert streamtrain("verify", model).returncode == 0
    copy = tmp_path / "model"
    shutil.copytree(model, copy, symlinks=True)
    version = Versions(copy).current()
    flip(0.5)(copy / "current" / "model.keras")
    check = streamtrain("verify", copy)
    assert check.returncode == 65 and f"{copy}/versions/{version}/model.keras: damaged" in check.stderr
    proc = subprocess.run(
        [str(BIN), "predict", "--model-dir", str(copy)], input="hello\n", capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 65 and "model.keras" in proc.stderr and proc.stdout == ""


def test_a_read_error_inside_the_input_pipeline_surfaces_as_a_data_error(datasets, tmp_path, monkeypatch):
    """A shard that passed its checksum and then fails to read (an I/O error mid-epoch) ends fit with its DataError."""
    from streamtrain.dataset import shards
    from streamtrain.errors import DataError
    from streamtrain.train.fit import FitOptions, fit

    original, calls = shards.Hdf5ShardReader.read_block, []

    def failing(self, block):
        calls.append(block)
        if len(calls) == 5:  # inside tf.data's generator thread, during epoch 1
            raise OSError(5, "Input/output error")
        return original(self, block)

    monkeypatch.setattr(shards.Hdf5ShardReader, "read_block", failing)
    with pytest.raises(DataError, match=r"cannot read block \d+ of this shard: \[Errno 5\] Input/output error"):
        fit(FitOptions(export=False, data=str(datasets["hdf5"]), model_dir=str(tmp_path / "m"), epochs=2))
    assert len(calls) >= 5 and no_model_in(tmp_path / "m")


def no_model_in(model_dir: Path) -> bool:
    """No complete version and no current: at most an interrupted ``.training`` version a rerun resumes."""
    return Versions(model_dir).complete() == [] and Versions(model_dir).current() is None


def predict(model_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN), "predict", "--model-dir", str(model_dir)],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=300,
    )


def without(*names: str):
    def damage(version: Path) -> None:
        files = json.loads((version / "checksums.json").read_text())
        (version / "checksums.json").write_text(json.dumps({k: v for k, v in files.items() if k not in names}))

    return damage


def no_checksums(version: Path) -> None:
    """No ``checksums.json``, and a swapped ``model.keras`` that Keras still loads (its metadata rewritten)."""
    import zipfile

    (version / "checksums.json").unlink()
    original = version / "model.keras"
    swapped = version / "swapped.keras"
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(swapped, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "metadata.json":
                data = json.dumps(json.loads(data) | {"date_saved": "1999-12-31@23:59:59"}).encode()
            dst.writestr(item, data)
    os.replace(swapped, original)


def empty_checksums(version: Path) -> None:
    (version / "checksums.json").write_text("{}")


@pytest.mark.parametrize(
    "damage, found",
    [
        (no_checksums, "checksums.json: missing"),
        (empty_checksums, "checksums.json: does not record model.keras"),
        (without("model.keras"), "checksums.json: does not record model.keras"),
        (without("vectorizer.json", "vectorizer.npz"), "checksums.json: does not record vectorizer.json"),
    ],
    ids=["missing", "empty", "no-model", "no-vectorizer"],
)
def test_a_version_whose_checksums_do_not_cover_the_model_is_refused(datasets, model, tmp_path, damage, found):
    copy = tmp_path / "model"
    shutil.copytree(model, copy, symlinks=True)
    version = copy / "versions" / Versions(copy).current()
    damage(version)
    check = streamtrain("verify", copy)
    assert check.returncode == 65 and f"{version}/{found}" in check.stderr, check.stderr
    proc = predict(copy)
    assert proc.returncode == 65 and found in proc.stderr and proc.stdout == "", proc.stderr
    proc = streamtrain("evaluate", "--data", datasets["hdf5"], "--model-dir", copy)
    assert proc.returncode == 65 and found in proc.stderr and proc.stdout == "", proc.stderr
    before = tree_digest(copy)
    proc = streamtrain(
        "fit", "--no-export", "--data", datasets["hdf5"], "--model-dir", copy, "--warm-start", "--epochs", "1"
    )
    assert proc.returncode == 65 and found in proc.stderr and tree_digest(copy) == before, proc.stderr


def test_a_current_link_out_of_versions_is_reported_by_verify_and_refused_by_readers(datasets, model, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model, copy, symlinks=True)
    version = Versions(copy).current()
    outside = tmp_path / "elsewhere" / "versions" / version  # its last component names a version
    shutil.copytree(copy / "versions" / version, outside)
    (copy / "current").unlink()
    (copy / "current").symlink_to(outside)
    check = streamtrain("verify", copy)
    assert check.returncode == 65 and f"current: points at {outside}" in check.stderr, check.stderr
    proc = predict(copy)
    assert proc.returncode == 65 and "current: points at" in proc.stderr and proc.stdout == "", proc.stderr
    proc = streamtrain("evaluate", "--data", datasets["hdf5"], "--model-dir", copy)
    assert proc.returncode == 65 and "current: points at" in proc.stderr, proc.stderr
    shown = streamtrain("inspect", copy)  # a person reading the directory sees why there is no current
    assert shown.returncode == 0 and f"  current: - (refused: current: points at {outside}" in shown.stdout
    before = tree_digest(copy)
    proc = streamtrain("fit", "--no-export", "--data", datasets["hdf5"], "--model-dir", copy, "--epochs", "1")
    assert proc.returncode == 65 and "current: points at" in proc.stderr and tree_digest(copy) == before
    assert os.readlink(copy / "current") == str(outside)


def test_manifest_paths_outside_the_dataset_are_refused_by_fit_and_each_reported_by_verify(datasets, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(datasets["hdf5"], data)
    doc = json.loads((data / "manifest.json").read_text())
    (tmp_path / "outside").mkdir()
    shard = doc["shards"][1]["path"]
    os.replace(data / shard, tmp_path / "outside" / "x.h5")  # the same bytes, now outside the dataset
    doc["shards"][1]["path"] = "../outside/x.h5"
    shard = doc["shards"][2]["path"]
    os.replace(data / shard, tmp_path / "outside" / "y.h5")
    doc["shards"][2]["path"] = str(tmp_path / "outside" / "y.h5")
    (data / "manifest.json").write_text(json.dumps(doc))
    check = streamtrain("verify", data)
    assert check.returncode == 65, check.stderr
    assert f"{data}/../outside/x.h5: outside the dataset directory" in check.stderr
    assert f"{tmp_path}/outside/y.h5: outside the dataset directory" in check.stderr
    proc = streamtrain("fit", "--no-export", "--data", data, "--model-dir", tmp_path / "model", "--epochs", "1")
    assert proc.returncode == 65 and "outside the dataset directory: ../outside/x.h5" in proc.stderr, proc.stderr
    assert no_model_in(tmp_path / "model")


def test_a_vectorizer_whose_arrays_name_another_path_is_refused(datasets, tmp_path):
    """``vectorizer.json`` names its arrays; a dataset's is not under checksums, so the name may not leave it."""
    data = tmp_path / "data"
    shutil.copytree(datasets["hdf5"], data)
    doc = json.loads((data / "vectorizer.json").read_text())
    (tmp_path / "outside.npz").write_bytes((data / "vectorizer.npz").read_bytes())
    doc["arrays"] = "../outside.npz"
    (data / "vectorizer.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"the arrays must be vectorizer.npz beside it, not '\.\./outside.npz'"):
        Vectorizer.load(data)
