"""``streamtrain inspect``: datasets (splits, balance, choice, rejects, appends, named top features) and model dirs."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import prepare_csv, streamtrain

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.prepare import PrepareOptions
from streamtrain.errors import UsageError
from streamtrain.fs.jsondoc import write_json
from streamtrain.fs.versions import Versions
from streamtrain.inspect import InspectOptions, inspect, render_text
from streamtrain.prepare import prepare
from streamtrain.vectorize import ngram_names
from streamtrain.vectorize.ngram_names import NameSample, build
from streamtrain.vectorize.ngrams import HASHER, ngram_buckets
from streamtrain.vectorize.tfidf import NgramConfig, _hasher, hash_counts


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inspect") / "data"
    return prepare_csv(DEMO_TRAIN, out, DEMO_TEST, shard_rows=1000)


@pytest.fixture(scope="module")
def demo_rows() -> list[tuple[str, str]]:
    with open(DEMO_TRAIN, newline="", encoding="utf-8") as fh:
        return [(r["text"], r["label"]) for r in csv.DictReader(fh)]


def run_inspect(path: Path) -> tuple[dict, str]:
    result = inspect(InspectOptions(path=str(path)))
    return result, render_text(result)


def test_dataset_text_shows_splits_balance_choice_rejects_and_top_features(data):
    manifest = Manifest.load(data)
    result, text = run_inspect(data)
    for split in ("train", "val", "test"):
        shards = manifest.shards_for(split)
        line = next(line for line in text.splitlines() if line.split()[:1] == [split])
        assert line.split()[1:4] == [
            str(sum(s.rows for s in shards)),
            str(len(shards)),
            str(sum(s.bytes for s in shards)),
        ]
    assert len(manifest.shards_for("train")) == 4  # 3675 rows in shards of 1000
    total = next(line for line in text.splitlines() if line.split()[:1] == ["total"])
    assert total.split()[1:4] == ["5000", str(len(manifest.shards)), str(sum(s.bytes for s in manifest.shards))]
    assert "class balance" in text
    for label, train_rows in zip(manifest.labels, manifest.stats.rows_per_class["train"]):
        row = next(line for line in text.splitlines() if line.split()[:1] == [label] and "%" in line)
        assert row.split()[1] == str(train_rows)
    assert "chosen: ngram" in text and "S = 4000 samples" in text
    assert "rejected rows: 0" in text
    assert manifest.val_sample is not None and f"validation sample: {manifest.val_sample.rows} rows" in text
    assert "appends: 0" in text
    assert result["format_version"] == 2 and "format:" not in text  # today's format: no line
    assert "top features per class" in text
    for label, features in result["top_features"]["classes"].items():
        line = next(line for line in text.splitlines() if line.split()[:1] == [label] and "%" not in line)
        assert features[0]["name"] in line


def test_top_features_are_strings_of_their_class(data, demo_rows):
    """Each class's top feature is an n-gram of that class's rows, and more frequent there than elsewhere."""
    result, _ = run_inspect(data)
    top = result["top_features"]
    assert top["status"] == "ok" and top["named"] == top["columns"] == Manifest.load(data).n_features
    analyze = _hasher(NgramConfig()).build_analyzer()
    grams = [(set(analyze(text)), label) for text, label in demo_rows]
    assert set(top["classes"]) == {label for _, label in demo_rows}
    for label, features in top["classes"].items():
        assert len(features) == 10 and all(f["name"] for f in features)
        assert [f["score"] for f in features] == sorted((f["score"] for f in features), reverse=True)
        for f in features:
            assert any(f["name"] in g for g, l in grams if l == label), (label, f["name"])
        best = features[0]["name"]
        mine = np.mean([best in g for g, l in grams if l == label])
        rest = np.mean([best in g for g, l in grams if l != label])
        assert mine > 2 * rest, (label, best, mine, rest)
    billing = [f["name"] for f in top["classes"]["billing"]]
    assert any(n in ("invoice", "payment", "card", "billed", "charged") for n in billing), billing


def test_dataset_json(data):
    proc = streamtrain("inspect", data, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "dataset"
    for key in ("splits", "total", "class_balance", "choice", "rejected", "appends", "val_sample", "top_features"):
        assert key in doc
    manifest = json.loads((data / "manifest.json").read_text())
    assert doc["splits"]["train"]["rows"] == manifest["stats"]["rows"]["train"] > 3000
    assert doc["total"]["rows"] == 5000
    assert doc["choice"]["chosen"] == "ngram" and doc["rejected"]["rows"] == 0
    assert doc["class_balance"]["test"]["billing"] == {"rows": 200, "share": 0.2}
    assert {f["name"] for f in doc["top_features"]["classes"]["billing"]} <= set(
        json.loads((data / "feature_names.json").read_text())["names"]
    )
    text = streamtrain("inspect", data)
    assert (
        text.returncode == 0 and text.stdout.startswith(f"dataset {data}\n") and "top features per class" in text.stdout
    )


def test_feature_names_file_and_record(data):
    manifest = Manifest.load(data)
    record = manifest.feature_names
    assert record is not None
    doc = ngram_names.load(data, record.to_json())
    assert doc is not None and record.path == "feature_names.json"
    assert len(doc["names"]) == len(doc["counts"]) == len(doc["others"]) == len(doc["shares"]) == record.columns
    assert record.columns == manifest.n_features
    assert record.collided == sum(s < 0.9 for s in doc["shares"]) < record.columns / 10
    assert record.sample.texts == record.sample.training_texts == manifest.stats.rows["train"]
    # every named column's string hashes to that column's bucket
    selected = np.load(data / "vectorizer.npz")["selected"]
    named = [(j, n) for j, n in enumerate(doc["names"]) if n is not None]
    buckets = ngram_buckets([n for _, n in named], manifest.vectorizer.config["hash_buckets"])
    assert manifest.vectorizer.config["hasher"] == HASHER
    assert np.array_equal(buckets, selected[[j for j, _ in named]])


def test_ngram_buckets_are_the_hashers():
    config = NgramConfig(hash_buckets=1 << 18, hasher=HASHER)
    analyze = _hasher(config).build_analyzer()  # sklearn's analyzer: the same n-gram strings
    for text in ["Refund my invoice", "café naïve Über", "日本語 テキスト", "E-1191 error 404"]:
        grams = analyze(text)
        ids = ngram_buckets(grams, config.hash_buckets)
        for gram, bucket in zip(grams, ids):
            if " " not in gram:  # a unigram alone hashes to exactly its own bucket
                assert hash_counts(config, [gram]).indices.tolist() == [bucket]
        assert set(ids.tolist()) == set(hash_counts(config, [text]).indices.tolist())


def test_names_are_the_frequent_strings_of_their_buckets(demo_rows):
    """The frequent strings name their columns, rare ones too, and every name hashes to its column."""
    config = NgramConfig(hasher=HASHER)
    texts = [t for t, _ in demo_rows]
    common = ["my", "order", "the", "refund", "password"]
    rare = [f"zq{i}x" for i in range(300)]
    selected = np.unique(ngram_buckets(common + rare, config.hash_buckets))
    names, counts, _, _ = build(config, selected, texts + rare)
    for name in common + rare[:5]:
        column = int(np.searchsorted(selected, ngram_buckets([name], config.hash_buckets)[0]))
        assert names[column] == name and counts[column] >= 1
    named = [(j, n) for j, n in enumerate(names) if n is not None]
    buckets = ngram_buckets([n for _, n in named], config.hash_buckets)
    assert np.array_equal(buckets, selected[[j for j, _ in named]])
    with pytest.raises(ValueError, match="named for n-grams hashed by"):
        build(NgramConfig(), selected, texts)  # sklearn-hashed datasets are never renamed


def test_name_sample_is_bounded_spread_and_chunking_free():
    texts = [f"text number {i} " + "x" * (i % 7) for i in range(5000)]
    train = np.array([i % 10 != 0 for i in range(5000)])
    kept = []
    for chunk in (1, 333, 4096):
        sample = NameSample(max_texts=200, max_bytes=1 << 20)
        for start in range(0, 5000, chunk):
            sample.offer(texts[start : start + chunk], train[start : start + chunk])
        assert 100 <= len(sample) <= 200 and sample.seen == 4500
        kept.append(sample.texts)
    assert kept[0] == kept[1] == kept[2]
    assert kept[0][-1].startswith("text number 49")  # spread over the whole input, not its beginning
    small = NameSample(max_texts=10_000, max_bytes=2000)
    small.offer(texts, train)
    assert small.text_bytes <= 2000 and len(small) >= 1


def test_sequence_dataset_has_no_names(tmp_path):
    data = prepare_csv(DEMO_TRAIN, tmp_path / "seq", vectorizer="sequence")
    assert Manifest.load(data).feature_names is None and not (data / "feature_names.json").exists()
    result, text = run_inspect(data)
    assert result["top_features"]["status"].startswith("none") and "sequence" in text


def test_append_is_shown_and_names_survive(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    night = tmp_path / "night1.csv"
    with open(DEMO_TRAIN, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with open(night, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([rows[0], *([f"again: {t}", label] for t, label in rows[1:301])])
    prepare(PrepareOptions(inputs=[str(night)], data=str(copy), append=True))
    result, text = run_inspect(copy)
    (entry,) = result["appends"]
    assert entry["night"] == 1 and sum(entry["rows"].values()) == 300 and entry["drift"] is not None
    assert "appends: 1" in text and entry["date"] in text
    assert result["top_features"]["status"] == "ok"
    assert streamtrain("verify", copy).returncode == 0


def test_damaged_feature_names_are_reported_by_verify(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    path = copy / "feature_names.json"
    path.write_text(path.read_text().replace('"names": ["', '"names": ["x', 1))
    proc = streamtrain("verify", copy)
    assert proc.returncode == 65 and "feature_names.json" in proc.stderr
    result, text = run_inspect(copy)
    assert result["top_features"]["status"].startswith("unavailable") and "verify" in text
    path.unlink()
    proc = streamtrain("verify", copy)
    assert proc.returncode == 65 and "feature_names.json: missing" in proc.stderr


def test_dataset_without_feature_names_still_loads(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    doc = json.loads((copy / "manifest.json").read_text())
    del doc["feature_names"]  # as a release before the names were kept wrote it: format version 1
    (copy / "manifest.json").write_text(json.dumps({**doc, "format_version": 1}))
    (copy / "feature_names.json").unlink()
    assert Manifest.load(copy).problems(copy) == []
    result, text = run_inspect(copy)
    assert result["top_features"]["status"].startswith("none") and "not recorded" in text
    assert result["format_version"] == 1 and "  format: 1 (read as 2)" in text.splitlines()


# --- model directories --------------------------------------------------------------------------------------------

V1, V2, V3, V4 = "20260101T010203Z-aaaa", "20260102T010203Z-0bbb", "20260103T010203Z-cccc", "20260104T000000Z-dddd"


def _version(versions: Versions, version: str, test: float, val: float, promoted: bool, reason: str, warm=None):
    building = versions.begin(version)
    write_json(building / "metrics.json", {"test_accuracy": test, "val_accuracy": val, "epochs": 3, "train_rows": 3596})
    write_json(building / "promotion.json", {"promoted": promoted, "reason": reason})
    write_json(building / "fit_config.json", {"data": "/data/tickets", "warm_start_from": warm})
    versions.finish(building)
    if promoted:
        versions.promote(version)


@pytest.fixture
def model(tmp_path) -> Path:
    """A versioned model directory made of JSON files alone (no training): 3 versions and an interrupted one."""
    root = tmp_path / "model"
    versions = Versions(root)
    _version(versions, V1, 0.91, 0.9, True, "first model (no current version)")
    _version(versions, V2, 0.925, 0.93, True, "validation accuracy 0.9300 against the current 0.9000", warm=V1)
    _version(versions, V3, 0.7, 0.71, False, "worse than current: validation accuracy 0.7100 against 0.9300", warm=V2)
    building = versions.begin(V4)
    (building / "checkpoint").mkdir()
    (building / "checkpoint" / "state.json").write_text(json.dumps({"epochs_done": 2, "step": 17}))
    (building / "resume.json").write_text(json.dumps({"data": "/data/tickets", "options": {}}))
    return root


def test_model_directory(model):
    result, text = run_inspect(model)
    assert result["kind"] == "model" and result["current"] == V2
    assert [v["id"] for v in result["versions"]] == [V1, V2, V3]
    v1, v2, v3 = result["versions"]
    assert [v["current"] for v in result["versions"]] == [False, True, False]
    assert v2["metrics"]["test_accuracy"] == 0.925 and v2["warm_start_from"] == V1 and v1["warm_start_from"] is None
    assert v1["date"] == "2026-01-01T01:02:03Z"
    assert v3["promotion"] == {
        "promoted": False,
        "reason": "worse than current: validation accuracy 0.7100 against 0.9300",
    }
    (training,) = result["training"]
    assert (training["id"], training["epochs_done"], training["step"]) == (V4, 2, 17)
    lines = text.splitlines()
    row2 = next(line for line in lines if line.strip().startswith(V2) and "*" in line)
    assert "0.9250" in row2 and "0.9300" in row2 and V1 in row2 and "yes" in row2
    row3 = next(line for line in lines if line.strip().startswith(V3) and "0.7000" in line)
    assert "no" in row3.split()
    assert f"current: {V2}" in text
    assert any(V3 in line and "not promoted: worse than current" in line for line in lines)
    assert any(V1 in line and "promoted: first model" in line for line in lines)
    assert f"versions/{V4}.training" in text and "being trained or interrupted: 1" in text


def test_model_directory_json_and_command(model):
    proc = streamtrain("inspect", "--json", model)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["current"] == V2 and [v["promotion"]["promoted"] for v in doc["versions"]] == [True, True, False]
    assert [v["metrics"]["val_accuracy"] for v in doc["versions"]] == [0.9, 0.93, 0.71]
    text = streamtrain("inspect", model)
    assert text.returncode == 0 and V3 in text.stdout and text.stderr == ""


def test_flat_model_directory(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    (root / "model.keras").write_bytes(b"not really a model")
    for name in ("vectorizer.json", "vectorizer.npz", "checksums.json"):  # the rest of 0.2's own files
        (root / name).write_text("{}")
    write_json(root / "metrics.json", {"test_accuracy": 0.88, "val_accuracy": 0.87, "epochs": 5, "train_rows": 10})
    result, text = run_inspect(root)
    assert result["layout"].startswith("flat") and result["versions"][0]["metrics"]["test_accuracy"] == 0.88
    assert "0.8800" in text and "promotion.json missing" in text


def test_inspect_never_imports_tensorflow(data, model):
    code = (
        "import sys\n"
        "from streamtrain.cli import run_command\n"
        f"assert run_command('inspect', [{str(data)!r}]) == 0\n"
        f"assert run_command('inspect', ['--json', {str(model)!r}]) == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'inspect imported TensorFlow'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_neither_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="neither"):
        inspect(InspectOptions(path=str(tmp_path)))
    proc = streamtrain("inspect", tmp_path)
    assert proc.returncode == 2 and "neither a dataset directory" in proc.stderr
    assert streamtrain("inspect", tmp_path / "missing").returncode == 2


def test_inspect_shows_control_characters_in_labels_as_escapes(tmp_path):
    """Labels are the user's data: an ANSI escape, ``\\r`` or a newline in one must not reach the terminal raw or
    split a row of inspect's tables (before: printed raw); --json keeps the exact strings."""
    labels = ["plain", "\x1b[31mred\x1b[0m", "two\nlines", "car\rriage"]
    source = tmp_path / "labels.csv"
    with open(source, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(200):
            writer.writerow([f"ticket {i} about topic{i % 4} and more words w{i}", labels[i % 4]])
    data = prepare_csv(source, tmp_path / "data")
    proc = streamtrain("inspect", data)
    assert proc.returncode == 0, proc.stderr
    assert not [ch for ch in proc.stdout if ch != "\n" and not ch.isprintable()]
    balance = proc.stdout.split("class balance")[1].split("vectorizer choice")[0].splitlines()
    for shown in ("plain", "\\x1b[31mred\\x1b[0m", "two\\nlines", "car\\rriage"):
        assert len([line for line in balance if line.split()[:1] == [shown]]) == 1, proc.stdout
        assert any(line.split()[:1] == [shown] for line in proc.stdout.split("top features per class")[1].splitlines())
    exact = json.loads(streamtrain("inspect", data, "--json").stdout)
    assert sorted(exact["classes"]) == sorted(labels)
