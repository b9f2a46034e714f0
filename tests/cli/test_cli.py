"""The four commands end to end through their CLIs, with cron exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import write_csv

from streamtrain.io.readers import ColumnSpec, read_chunks
from streamtrain.vectorize.split import DEFAULT_RULE, VAL, assign_splits


def run(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamtrain", *map(str, args)], capture_output=True, text=True, input=stdin, timeout=600
    )


def ok(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = run(*args, stdin=stdin)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


AG_COLUMNS = ["--label-column", "0", "--text-column", "1", "--text-column", "2"]


@pytest.fixture(scope="module", params=["auto", "sequence"])
def ag_model(request, ag_news_csv, tmp_path_factory):
    """AG News test.csv (positional columns: label, title, description) prepared and trained via the CLI:
    by the automatic choice (n-grams, MLP) and forced to sequences (sepCNN)."""
    root = tmp_path_factory.mktemp(f"ag-{request.param}")
    data, model = root / "data", root / "model"
    extra = ["--max-length", "64"] if request.param == "sequence" else []  # AG News: median 37 words
    prep = ok(
        "prepare",
        ag_news_csv,
        "--data",
        data,
        "--format",
        "parquet",
        "--vectorizer",
        request.param,
        *AG_COLUMNS,
        *extra,
    )
    if request.param == "auto":  # the guide's rule, with the numbers printed
        assert "S = 7600 samples, W = 37 median words per sample, S/W = 205.4 -> ngram" in prep.stderr
    fit = ok("fit", "--no-export", "--data", data, "--model-dir", model, "--epochs", "6", "--quiet")
    return data, model, json.loads(fit.stdout)


def test_ag_news_trains_through_the_cli(ag_model):
    data, model, metrics = ag_model
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["labels"] == ["1", "2", "3", "4"]
    assert manifest["shard_format"] == "parquet"
    assert metrics["model"] in (("sepcnn",) if manifest["encoding"] == "sequence" else ("mlp", "linear"))
    assert manifest["choice"]["samples"] == 7600 and manifest["choice"]["median_words_per_sample"] == 37
    assert metrics["train_rows"] + metrics["val_rows"] == 7600
    assert metrics["val_accuracy"] > 0.8  # 4 balanced classes: chance is 0.25
    saved = json.loads((model / "current" / "metrics.json").read_text())
    for key in ("test_accuracy", "val_accuracy", "epochs", "train_rows", "classes"):
        assert key in saved
    assert saved["classes"] == ["1", "2", "3", "4"] and saved["epochs"] >= 1
    history = json.loads((model / "current" / "history.json").read_text())
    assert len(history["loss"]) == saved["validations"] == saved["epochs"] * saved["validations_per_epoch"]


def test_predict_on_raw_text_agrees_with_evaluate(ag_model, ag_news_csv, tmp_path):
    data, model, _ = ag_model
    every, every_label = [], []
    for chunk in read_chunks([ag_news_csv], ColumnSpec(text=(1, 2), label=0)):
        every += chunk.texts
        every_label += chunk.labels
    val = assign_splits(every, 0.1, is_test=False, rule=DEFAULT_RULE) == VAL  # all rows in order: one stream
    texts = [t for t, v in zip(every, val) if v]
    labels = [l for l, v in zip(every_label, val) if v]
    lines = tmp_path / "val.jsonl.gz"
    with gzip.open(lines, "wt", encoding="utf-8") as fh:
        for t in texts:
            fh.write(json.dumps({"text": t}) + "\n")

    evaluated = json.loads(ok("evaluate", "--data", data, "--model-dir", model, "--split", "val").stdout)
    predicted = [json.loads(l) for l in ok("predict", "--model-dir", model, lines).stdout.splitlines()]
    assert evaluated["val_rows"] == len(predicted) == len(texts)
    accuracy = np.mean([p["label"] == l for p, l in zip(predicted, labels)])
    assert accuracy == pytest.approx(evaluated["val_accuracy"], abs=1e-12)
    confusion = np.zeros((4, 4), int)
    for p, l in zip(predicted, labels):
        confusion[int(l) - 1, int(p["label"]) - 1] += 1
    assert confusion.tolist() == evaluated["val_confusion"]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in predicted)


def test_predict_reads_plain_lines_from_stdin(ag_model):
    _, model, _ = ag_model
    text = (
        "Stocks fell sharply on Wall Street as oil prices rose and investors sold shares\n"
        "The striker scored twice as the team won the championship final\n"
    )
    out = [json.loads(l) for l in ok("predict", "--model-dir", model, stdin=text).stdout.splitlines()]
    assert [o["label"] for o in out] == ["3", "2"]  # Business, Sports


def test_demo_corpus_end_to_end(tmp_path):
    data, model = tmp_path / "data", tmp_path / "model"
    ok("prepare", DEMO_TRAIN, "--test", DEMO_TEST, "--data", data)
    ok("fit", "--no-export", "--data", data, "--model-dir", model, "--quiet")
    metrics = json.loads(ok("evaluate", "--data", data, "--model-dir", model).stdout)
    assert metrics["test_rows"] == 1000
    assert metrics["test_accuracy"] > 0.8
    saved = json.loads((model / "current" / "metrics.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_bad_row_exits_65_naming_file_and_row_and_writes_nothing(tmp_path):
    good = write_csv(tmp_path / "good.csv", [(f"good text number {i}", "a" if i % 2 else "b") for i in range(50)])
    bad = write_csv(tmp_path / "bad.csv", [("fine", "a"), ("fine too", "b"), ("no label here", "")])
    out = tmp_path / "out"
    proc = run("prepare", good, "--test", bad, "--data", out)
    assert proc.returncode == 65
    assert f"{bad}, row 4" in proc.stderr and "empty label" in proc.stderr
    assert not out.exists()
    left = sorted(p for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert left == sorted([good, bad])  # no partial output left behind


def test_unknown_test_label_exits_65(tmp_path):
    good = write_csv(tmp_path / "good.csv", [(f"good text number {i}", "a" if i % 2 else "b") for i in range(50)])
    test = write_csv(tmp_path / "test.csv", [("fine", "a"), ("new class", "zebra")])
    proc = run("prepare", good, "--test", test, "--data", tmp_path / "out")
    assert proc.returncode == 65 and f"{test}, row 3" in proc.stderr and "zebra" in proc.stderr


def test_usage_errors_exit_2(tmp_path):
    assert run("prepare", tmp_path / "missing.csv", "--data", tmp_path / "o").returncode == 2
    assert run("prepare").returncode == 2
    assert run("fit", "--data", tmp_path).returncode == 2  # --model-dir missing
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "x").write_text("keep me")
    proc = run("prepare", DEMO_TRAIN, "--data", existing)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert (existing / "x").read_text() == "keep me"


def test_fit_on_missing_dataset_exits_65(tmp_path):
    proc = run("fit", "--data", tmp_path, "--model-dir", tmp_path / "m")
    assert proc.returncode == 65 and "manifest" in proc.stderr
    assert not (tmp_path / "m").exists()
