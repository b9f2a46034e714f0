"""The manifest: round trip, damage detection, the inputs it records, its typed records and older formats."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import prepare_csv, streamtrain

from streamtrain.dataset.counts import Append, CoverageRecord, Document, Drift, RejectStats, Source, Stats
from streamtrain.dataset.manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest
from streamtrain.dataset.records import (
    Choice,
    Created,
    FeatureNamesRecord,
    FileRecord,
    NameSampleRecord,
    RefitOf,
    RowOrder,
    SplitRecord,
    ValSampleRecord,
    VectorizerRecord,
)
from streamtrain.dataset.shards import ShardInfo
from streamtrain.errors import DataError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "streamtrain-0.9.tar.gz"


def test_manifest_round_trip(demo):
    m = Manifest.load(demo)
    doc = json.loads((demo / MANIFEST_NAME).read_text())
    assert m.to_json() == doc
    assert doc["format_version"] == FORMAT_VERSION == 2 and doc["labels"] == sorted(doc["labels"])
    assert m.read_from_version == 2
    assert m.rows("train") + m.rows("val") == 4000 and m.rows("test") == 1000
    assert doc["stats"]["rows"] == {"train": m.rows("train"), "val": m.rows("val"), "test": 1000}
    assert all(s.rows <= 1000 for s in m.shards)
    assert 300 < m.rows("val") < 500  # ~10% by hash of text
    assert m.choice is not None and m.encoding == ("sequence" if m.choice.chosen == "sequence" else "ngram")
    assert (m.sequence_length is not None) == (m.encoding == "sequence")
    m.verify(demo)


def test_manifest_detects_damage(demo, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)
    m = Manifest.load(copy)
    shard = copy / m.shards[0].path
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum"):
        m.verify(copy)
    shard.unlink()
    with pytest.raises(DataError, match="missing"):
        Manifest.load(copy)
    (copy / MANIFEST_NAME).unlink()
    with pytest.raises(DataError, match="no manifest"):
        Manifest.load(copy)


def test_sources_record_every_input_and_its_row_ids(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    out = prepare_csv(DEMO_TRAIN, tmp_path / "d", DEMO_TEST)
    m = Manifest.load(out)
    assert [(s.role, s.rows, s.first_row_id) for s in m.sources] == [("train", 4000, 0), ("test", 1000, 4000)]
    from streamtrain.dataset.prepare import PrepareOptions, prepare

    m2 = prepare(PrepareOptions(inputs=[str(DEMO_TRAIN), str(empty), str(DEMO_TRAIN)], data=str(tmp_path / "d2")))
    assert [(s.rows, s.first_row_id) for s in m2.sources] == [(4000, 0), (0, 4000), (4000, 4000)]


# --- the typed records ------------------------------------------------------------------------------------------


def _round_trips(record) -> None:
    doc = json.loads(json.dumps(record.to_json()))  # through JSON text, as the file holds it
    assert type(record).from_json(doc) == record
    assert type(record).from_json(doc).to_json() == doc


def test_every_record_of_a_prepared_manifest_round_trips(demo):
    m = Manifest.load(demo)
    parts = [m.vectorizer, m.split, *m.split.files(), m.row_order, m.choice, m.created, m.stats, m.stats.rejected]
    parts += [m.stats.coverage, *m.sources, m.val_sample, *m.shards]
    if m.encoding == "ngram":
        assert m.feature_names is not None and m.stats.vocabulary_buckets is not None
        parts += [m.feature_names, m.feature_names.sample]
    else:
        assert m.feature_names is None and "vocabulary_buckets" not in m.stats.to_json()
    for record in parts:
        assert record is not None
        _round_trips(record)
    assert Manifest.from_json(json.loads(json.dumps(m.to_json()))) == m


def test_every_record_round_trips_with_its_optional_keys():
    """The keys a record leaves out when None (a bake-off, a refit, a grown file, a directory, an append's rejects)
    come back as they were written, and so do the records only appends and old releases make."""
    index = [FileRecord("split_index.npz", 10, "a" * 64), FileRecord("append-0001/split_index.npz", 5, "b" * 64)]
    rejected = RejectStats(3, {"empty_text": 1, "unknown_label": 2}, 7, 1, file="rejected.jsonl")
    merged = dataclasses.replace(rejected, files=["rejected.jsonl", "append-0001/rejected.jsonl"])
    coverage = CoverageRecord("share of tokens", None, 0, 0, 0)
    drift = Drift("share of tokens", 0.25, 5, 20, 3, baseline=0.1)
    docs = [Document("a/1.txt", 3, "c" * 64), Document("b/2.txt", 4, "d" * 64)]
    records = [
        index[0],
        ValSampleRecord("val_sample.parquet", 9, "e" * 64, 2, 30, 12345, 5000, 1 << 25, "the rule"),
        FeatureNamesRecord("feature_names.json", 9, "f" * 64, 10, 9, 1, NameSampleRecord(5, 50, 5, 1, 20, 99, 64)),
        SplitRecord(0.1, "lsh-bigrams", "a rule", {"bands": 16, "rows": 3}, index),
        SplitRecord.per_text(0.2),
        RowOrder("shuffled", 0, 8192, "a rule"),
        Choice("auto", "ngram", 30, 2.0, 15.0, 1500.0, "sequence", "why", {"decision": "ngram", "margin": 0.01}),
        Choice("ngram", "ngram", 30, 0.0, None, 1500.0),  # S/W infinite; before the rule and why were recorded
        VectorizerRecord(1, "ngram_tfidf", {"top_k": 10}, None, 10, ["a", "b"], "vectorizer.npz", "0" * 64),
        Created("streamtrain 0.12.0", "2026-01-01T00:00:00+00:00", {"seed": 0}),
        Created("t", "at", {}, RefitOf("2025-01-01T00:00:00+00:00", 2, {"train": 9}, 10, ["/in/new.csv"])),
        Created("streamtrain 0.1.0", "at", {}, legacy={"argv": ["prepare"], "columns": {"text": "text"}}),
        Source("/in/a.csv", "train", "csv", 100, "1" * 64, "at", 0, first_row_id=0, rows=9, rejected=1, read=10),
        Source("/in/a.csv", "train", "csv", 150, "2" * 64, "at", 1, start=100, first_row_id=9, rows=4, read=4),
        Source("/in/docs", "train", "dir", 7, "3" * 64, "at", 2, documents=docs, rows=2, read=2),
        Source("/in/old.csv", "test", "csv", rows=5, read=5),  # 0.1: no digest, no time
        rejected,
        merged,
        RejectStats(),
        coverage,
        drift,
        Append(1, "at", "append-0001", ["/in/a.csv"], 1, {"train": 3, "val": 1, "test": 0}, 9, merged, drift, 7, 1),
        Stats({"train": 3}, {"train": [1, 2]}, rejected, 4, 2.5, 10, coverage, 123),
        Stats(),
        ShardInfo("append-0001/train-00000.h5", "train", 3, 9, 100, "4" * 64, 64),
    ]
    for record in records:
        _round_trips(record)
    assert Source.from_json(records[15].to_json()).to_json().keys() == {
        "path", "role", "format", "night", "first_row_id", "rows", "rejected", "read"
    }  # fmt: skip


# --- older formats --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def old(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("old")
    with tarfile.open(FIXTURE, "r:gz") as tar:
        tar.extractall(out, filter="data")
    return out / "streamtrain-0.9"


@pytest.mark.parametrize("kind", ["ngram", "sequence"])
def test_a_0_9_manifest_is_read_from_version_1_as_it_was_written(old, kind, tmp_path):
    data = old / kind
    doc = json.loads((data / MANIFEST_NAME).read_text())
    assert doc["format_version"] == 1
    m = Manifest.load(data)
    assert m.read_from_version == 1
    assert m.to_json() == {**doc, "format_version": 2}  # every key and value as 0.9 wrote it
    assert m.stats.next_row_id == 1000 and m.split.name == "lsh-bigrams" and m.problems(data) == []
    assert (m.feature_names is None) == (kind == "sequence") and m.val_sample is not None
    copy = tmp_path / kind
    shutil.copytree(data, copy)
    m.save(copy)  # what the next append writes: version 2
    again = Manifest.load(copy)
    assert again == m and again.read_from_version == 2


def _as_0_1(doc: dict) -> dict:
    """``doc`` as the oldest 1.x releases wrote it: without the keys they did not record yet."""
    old = copy.deepcopy(doc)
    old["encoding"], old["vectorizer"]["kind"] = "tfidf", "ngram_tfidf"
    del old["vectorizer"]["encoding"]
    for key in ("choice", "row_order", "val_sample", "appends", "feature_names", "sequence_length"):
        del old[key]
    for key in ("rejected", "next_row_id", "coverage"):
        del old["stats"][key]
    old["split"] = {"val_fraction": 0.1, "rule": "blake2b-64(utf8(text)) / 2**64 < val_fraction"}
    old["sources"] = [{k: s[k] for k in ("path", "role", "format", "first_row_id", "rows")} for s in old["sources"]]
    old["created"] = {"tool": "streamtrain 0.1.0", "at": doc["created"]["at"], "argv": ["prepare"], "columns": {}}
    return old


def test_an_older_1_x_manifest_gets_what_its_readers_assumed(old, tmp_path):
    data = tmp_path / "ngram"
    shutil.copytree(old / "ngram", data)
    doc = json.loads((data / MANIFEST_NAME).read_text())
    (data / MANIFEST_NAME).write_text(json.dumps(_as_0_1(doc)))
    m = Manifest.load(data)
    assert m.read_from_version == 1 and m.encoding == "ngram" and m.vectorizer.kind == "ngram_tfidf"
    assert m.split.name == "blake2b" and m.split.index is None and m.split_index() == []
    assert m.stats.next_row_id == 1000 and m.stats.rejected == RejectStats() and m.stats.coverage is None
    assert [(s.night, s.rejected, s.read, s.sha256) for s in m.sources] == [(0, 0, 800, None), (0, 0, 200, None)]
    assert m.choice is m.row_order is m.val_sample is m.feature_names is None and m.appends == []
    assert m.created.options == {} and m.created.legacy == {"argv": ["prepare"], "columns": {}}
    assert m.problems(data) == []  # split_index.npz and val_sample.parquet are not named by it
    m.save(data)
    written = json.loads((data / MANIFEST_NAME).read_text())
    assert written["format_version"] == 2 and written["created"]["argv"] == ["prepare"]
    assert "sha256" not in written["sources"][0] and written["val_sample"] == {} and written["choice"] == {}
    assert Manifest.load(data) == m


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format_version": 3}, "version 3: newer than this streamtrain reads"),
        ({"format_version": None}, "unsupported manifest"),
        ({"format": "something-else"}, "unsupported manifest 'something-else'"),
    ],
)
def test_an_unknown_format_or_a_newer_version_is_refused_naming_the_file(demo, tmp_path, change, message):
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    doc = json.loads((data / MANIFEST_NAME).read_text())
    (data / MANIFEST_NAME).write_text(json.dumps({**doc, **change}))
    with pytest.raises(DataError, match=message) as caught:
        Manifest.load(data)
    assert str(data / MANIFEST_NAME) in str(caught.value)
    proc = streamtrain("inspect", data)
    assert proc.returncode == 65 and message in proc.stderr and str(data / MANIFEST_NAME) in proc.stderr


def test_a_version_2_manifest_missing_a_key_is_corrupt(demo, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    doc = json.loads((data / MANIFEST_NAME).read_text())
    del doc["stats"]["next_row_id"]  # only a version 1 manifest may lack it
    (data / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"corrupt manifest.*next_row_id"):
        Manifest.load(data)
