"""The manifest: round trip, damage detection, and the inputs it records."""

from __future__ import annotations

import json

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import prepare_csv

from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest
from streamtrain.errors import DataError


def test_manifest_round_trip(demo):
    m = Manifest.load(demo)
    doc = json.loads((demo / MANIFEST_NAME).read_text())
    assert m.to_json() == doc
    assert doc["format_version"] == 1 and doc["labels"] == sorted(doc["labels"])
    assert m.rows("train") + m.rows("val") == 4000 and m.rows("test") == 1000
    assert doc["stats"]["rows"] == {"train": m.rows("train"), "val": m.rows("val"), "test": 1000}
    assert all(s.rows <= 1000 for s in m.shards)
    assert 300 < m.rows("val") < 500  # ~10% by hash of text
    assert m.encoding == ("sequence" if m.choice["chosen"] == "sequence" else "ngram")
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
    assert [(s["role"], s["rows"], s["first_row_id"]) for s in m.sources] == [("train", 4000, 0), ("test", 1000, 4000)]
    from streamtrain.dataset.prepare import PrepareOptions, prepare

    m2 = prepare(PrepareOptions(inputs=[str(DEMO_TRAIN), str(empty), str(DEMO_TRAIN)], data=str(tmp_path / "d2")))
    assert [(s["rows"], s["first_row_id"]) for s in m2.sources] == [(4000, 0), (0, 4000), (4000, 4000)]
