"""The nightly job end to end: append while a fit reads, the guard across vectorizers, and IMDB as two nights."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, load_tool, prepare_csv, streamtrain

from streamtrain.dataset.manifest import Manifest
from streamtrain.fs.versions import Versions


def _night_two(path: Path, rows: int = 600) -> Path:
    """New tickets for the demo corpus: training rows reworded, so their texts (and the file) are new."""
    with open(DEMO_TRAIN, newline="", encoding="utf-8") as fh:
        taken = list(csv.DictReader(fh))[:rows]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=["text", "label"])
        out.writeheader()
        out.writerows({"text": "follow-up: " + r["text"], "label": r["label"]} for r in taken)
    return path


def test_an_append_while_a_fit_reads_the_dataset_disturbs_neither(tmp_path):
    data = prepare_csv(DEMO_TRAIN, tmp_path / "data", DEMO_TEST, shard_rows=1000)
    before = Manifest.load(data)
    model = tmp_path / "model"
    reader = subprocess.Popen(
        [
            str(BIN),
            "fit",
            "--no-export",
            "--data",
            str(data),
            "--model-dir",
            str(model),
            "--epochs",
            "4",
            "--patience",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not Versions(model).training() and time.monotonic() < deadline:  # fit has loaded the manifest
        time.sleep(0.05)
    appended = streamtrain("prepare", "--append", _night_two(tmp_path / "night2.csv"), "--data", data)
    assert appended.returncode == 0, appended.stderr
    assert reader.poll() is None, "the append should have finished while the fit was still training"
    out, err = reader.communicate(timeout=300)
    assert reader.returncode == 0, err
    after = Manifest.load(data)
    assert after.rows("train") + after.rows("val") == before.rows("train") + before.rows("val") + 600
    metrics = json.loads(out)
    assert (metrics["train_rows"], metrics["val_rows"]) == (before.rows("train"), before.rows("val"))
    again = streamtrain("fit", "--no-export", "--data", data, "--model-dir", model, "--epochs", "1", "--force")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["train_rows"] == after.rows("train")


def test_the_guard_compares_models_with_different_vectorizers_on_the_same_raw_rows(tmp_path):
    small = prepare_csv(DEMO_TRAIN, tmp_path / "small", DEMO_TEST, top_k=300)
    large = prepare_csv(DEMO_TRAIN, tmp_path / "large", DEMO_TEST)
    model = tmp_path / "model"
    first = streamtrain("fit", "--no-export", "--data", small, "--model-dir", model, "--epochs", "3")
    assert first.returncode == 0, first.stderr
    second = streamtrain("fit", "--no-export", "--data", large, "--model-dir", model, "--epochs", "3")
    assert second.returncode in (0, 3), second.stderr
    decision = json.loads(second.stdout)["promotion"]
    sample = Manifest.load(large).val_sample
    assert sample is not None
    assert "validation sample" in decision["compared_on"] and decision["rows"] == sample.rows > 300
    assert decision["promoted"] == (decision["candidate_accuracy"] >= decision["current_accuracy"] - 0.005)
    assert (second.returncode == 0) == decision["promoted"]
    # The current model's figure is what predict says on those texts through its own vectorizer.
    from streamtrain.dataset.val_sample import read_val_sample

    texts, truth = read_val_sample(large, Manifest.load(large))
    predicted = streamtrain(
        "predict", "--model-dir", model, "--version", decision["current_version"], stdin="\n".join(texts) + "\n"
    )
    labels = [json.loads(line)["label"] for line in predicted.stdout.splitlines()]
    accuracy = sum(a == b for a, b in zip(labels, truth, strict=True)) / len(truth)
    assert accuracy == pytest.approx(decision["current_accuracy"], abs=1e-6)


def test_imdb_as_two_nights_append_and_warm_start_reach_the_reference(imdb_root, tmp_path):
    """Night 1: half of aclImdb/train; night 2: ``--append`` of the other half, then ``fit --warm-start``."""
    night1, night2 = load_tool("bench_nightly").split_nights(imdb_root / "train", tmp_path / "text")
    data, model = tmp_path / "data", tmp_path / "model"
    proc = streamtrain("prepare", night1, "--test", imdb_root / "test", "--data", data)
    assert proc.returncode == 0, proc.stderr
    proc = streamtrain(
        "fit", "--no-export", "--data", data, "--model-dir", model, "--tune-seconds", "0"
    )  # the nights, not a search
    assert proc.returncode == 0, proc.stderr
    night1_metrics = json.loads(proc.stdout)
    assert 12_000 < night1_metrics["train_rows"] + night1_metrics["val_rows"] < 13_000

    proc = streamtrain("prepare", "--append", night2, night1, "--data", data)  # the job re-lists yesterday's folder
    assert proc.returncode == 0, proc.stderr
    assert "already ingested" in proc.stderr and "drift:" in proc.stderr
    manifest = Manifest.load(data)
    assert manifest.rows("train") + manifest.rows("val") == 25_000 and manifest.rows("test") == 25_000
    proc = streamtrain("fit", "--no-export", "--data", data, "--model-dir", model, "--warm-start")
    assert proc.returncode == 0, proc.stderr
    night2_metrics = json.loads(proc.stdout)
    assert night2_metrics["promoted"] and Versions(model).current() == night2_metrics["version"]
    assert night2_metrics["promotion"]["current_version"] == night1_metrics["version"]
    assert night2_metrics["test_accuracy"] >= 0.895, night2_metrics
    assert night2_metrics["train_rows"] + night2_metrics["val_rows"] == 25_000
