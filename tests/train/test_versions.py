"""Versioned model directories with real ``streamtrain fit`` processes: the promotion guard, --keep, locks, readers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, prepare_csv, streamtrain

from streamtrain.fs.locks import lock_path
from streamtrain.fs.versions import Versions


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return prepare_csv(DEMO_TRAIN, tmp_path_factory.mktemp("versions") / "data", DEMO_TEST)


def fit(data: Path, model: Path, *args) -> tuple[subprocess.CompletedProcess, dict]:
    proc = streamtrain("fit", "--data", data, "--model-dir", model, "--seed", "0", *args)
    return proc, json.loads(proc.stdout) if proc.stdout.strip() else {}


READER = """
import json, sys, time
from pathlib import Path
from streamtrain.train.modeldir import check, resolve
root, stop = Path(sys.argv[1]), Path(sys.argv[2])
seen, reads = set(), 0
while not stop.exists():
    path = resolve(root)  # what evaluate and predict do: current, once
    check(path)  # every file's size and sha256 against checksums.json
    json.loads((path / "metrics.json").read_text())
    seen.add(path.name)
    reads += 1
print(json.dumps({"reads": reads, "versions": sorted(seen)}))
"""


def test_the_guard_keeps_a_worse_version_promotes_better_ones_and_readers_never_fail(data, tmp_path):
    model = tmp_path / "model"
    versions = Versions(model)
    first, metrics = fit(data, model, "--epochs", "2")
    assert first.returncode == 0, first.stderr
    v1 = metrics["version"]
    assert metrics["promoted"] and versions.current() == v1 and "first model" in metrics["promotion"]["reason"]

    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(model), str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        # A deliberately worse candidate: one epoch at a tiny learning rate.
        worse, metrics = fit(data, model, "--epochs", "1", "--learning-rate", "1e-6")
        assert worse.returncode == 3, worse.stderr
        v2 = metrics["version"]
        assert not metrics["promoted"] and versions.current() == v1
        decision = json.loads((model / "versions" / v2 / "promotion.json").read_text())
        assert decision["promoted"] is False and decision["reason"].startswith("worse than current")
        assert decision["current_version"] == v1 and decision["rows"] == metrics["val_rows"] > 0
        assert decision["candidate_accuracy"] < decision["current_accuracy"] - 0.005
        assert f"version {v2} kept but NOT promoted" in worse.stderr
        scored = json.loads(streamtrain("evaluate", "--data", data, "--model-dir", model, "--version", v2).stdout)
        assert scored["version"] == v2
        assert scored["val_accuracy"] == pytest.approx(decision["candidate_accuracy"], abs=1e-6)  # it keeps 6 digits

        forced, metrics = fit(data, model, "--epochs", "1", "--learning-rate", "1e-6", "--force")
        assert forced.returncode == 0, forced.stderr
        v3 = metrics["version"]
        assert versions.current() == v3 and metrics["promotion"]["reason"].startswith("forced (--force) despite")

        better, metrics = fit(data, model, "--epochs", "2", "--keep", "2")
        assert better.returncode == 0, better.stderr
        v4 = metrics["version"]
        assert metrics["promoted"] and versions.current() == v4
        assert metrics["promotion"]["current_accuracy"] < metrics["promotion"]["candidate_accuracy"]
        assert versions.complete() == [v3, v4]  # --keep 2: v1 and v2 pruned; the replaced current (v3) is kept
        assert not versions.training() and not list(model.rglob("checkpoint"))  # checkpoints left with the training
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0, "a reader of current failed while versions were promoted"
    seen = json.loads(out)
    assert seen["reads"] > 10 and {v1, v3, v4} <= set(seen["versions"]) and v2 not in seen["versions"]
    assert streamtrain("verify", model).returncode == 0


def test_a_second_fit_of_a_model_directory_exits_75_at_once_naming_the_holder(data, tmp_path):
    model = tmp_path / "model"
    holder = subprocess.Popen(
        [str(BIN), "fit", "--data", str(data), "--model-dir", str(model), "--epochs", "200", "--patience", "200"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        record = lock_path(model, "write")
        deadline = time.monotonic() + 60
        while not (record.exists() and record.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        while not Versions(model).training() and time.monotonic() < deadline:  # the holder has begun its version
            time.sleep(0.1)
        assert json.loads(record.read_text())["pid"] == holder.pid
        second = streamtrain("fit", "--data", data, "--model-dir", model, "--epochs", "1")
        assert second.returncode == 75, second.stderr
        assert "training version" not in second.stderr  # at once: it began no version and trained nothing
        assert len(Versions(model).training()) == 1  # the holder's only
        assert f"model directory {model} is locked by PID {holder.pid} on " in second.stderr
        assert "running since" in second.stderr and "--wait" in second.stderr
        waited = streamtrain("fit", "--data", data, "--model-dir", model, "--epochs", "1", "--wait", "1")
        assert waited.returncode == 75 and "after waiting 1 s" in waited.stderr
        assert holder.poll() is None  # the holder was not disturbed
    finally:
        holder.kill()
        holder.wait()
    assert Versions(model).complete() == []


def test_warm_start_needs_a_current_model_with_the_datasets_vectorizer(data, tmp_path):
    model = tmp_path / "model"
    proc, _ = fit(data, model, "--warm-start", "--epochs", "1")
    assert proc.returncode == 2 and "has no current model to start from" in proc.stderr
    assert fit(data, model, "--epochs", "1")[0].returncode == 0
    other = prepare_csv(DEMO_TRAIN, tmp_path / "other", DEMO_TEST, top_k=500)
    proc, _ = fit(other, model, "--warm-start", "--epochs", "1")
    assert proc.returncode == 2 and "was trained with another vectorizer or label map" in proc.stderr
    proc, _ = fit(data, model, "--warm-start", "--epochs", "1", "--units", "32")
    assert proc.returncode == 2 and "--units 16 -> 32" in proc.stderr
    proc, metrics = fit(data, model, "--warm-start", "--epochs", "1", "--force")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((model / "versions" / metrics["version"] / "fit_config.json").read_text())
    assert config["warm_start_from"] == metrics["promotion"]["current_version"]


def test_a_model_directory_written_by_0_2_is_read_as_it_is_and_adopted_by_the_next_fit(data, tmp_path):
    trained = tmp_path / "trained"
    assert fit(data, trained, "--epochs", "1")[0].returncode == 0
    flat = tmp_path / "flat"  # the 0.2 layout: one model's files directly in the directory
    shutil.copytree(trained / "current", flat)
    (flat / "notes.txt").write_text("a user's notes beside the model\n")  # not streamtrain's: never moved
    before = json.loads(streamtrain("evaluate", "--data", data, "--model-dir", flat).stdout)
    assert before["version"] is None and before["val_accuracy"] > 0.5
    proc, metrics = fit(data, flat, "--epochs", "1", "--force")
    assert proc.returncode == 0, proc.stderr
    versions = Versions(flat)
    adopted = metrics["promotion"]["current_version"]
    assert "adopted the unversioned model written by streamtrain 0.2 as version" in proc.stderr
    assert versions.complete() == sorted([adopted, metrics["version"]]) and versions.current() == metrics["version"]
    assert not (flat / "model.keras").exists()  # the adopted files moved into their version
    assert (flat / "notes.txt").read_text() == "a user's notes beside the model\n"
    assert not (flat / "versions" / adopted / "notes.txt").exists()
    old = json.loads(streamtrain("evaluate", "--data", data, "--model-dir", flat, "--version", adopted).stdout)
    assert old["val_accuracy"] == before["val_accuracy"]
    assert streamtrain("verify", flat).returncode == 0


def test_fit_refuses_a_directory_with_a_users_own_model_keras_and_leaves_it_untouched(data, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.keras").write_bytes(b"PK\x03\x04 a model the user trained elsewhere")
    (mine / "notes.txt").write_text("how I trained it\n")
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    for command in (["fit", "--data", data], ["train", DEMO_TEST, "--data", tmp_path / "data"]):
        proc = streamtrain(*command, "--model-dir", mine, "--epochs", "1", "--quiet")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "not a model directory streamtrain wrote" in lines[0]
        assert str(mine) in lines[0] and proc.stdout == "", proc.stderr
        assert {p.name: p.read_bytes() for p in mine.iterdir()} == before  # nothing adopted, moved or added
    proc = streamtrain("evaluate", "--data", data, "--model-dir", mine)
    assert proc.returncode == 65 and "not a model directory" in proc.stderr
