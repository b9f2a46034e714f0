"""prepare --append and --refit: new rows once, in new files, with the frozen vectorizer; drift; refit of it all."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import prepare_csv, streamtrain

from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest
from streamtrain.dataset.prepare import PrepareOptions, prepare
from streamtrain.dataset.shards import open_reader
from streamtrain.dataset.sources import digest
from streamtrain.dataset.val_sample import read_val_sample
from streamtrain.errors import UsageError
from streamtrain.fs.checksums import sha256_file
from streamtrain.train.batches import BatchStream, SplitSource
from streamtrain.vectorize.near_dups import BandIndex
from streamtrain.vectorize.split import VAL, assign_splits


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict[str, Path]:
    """The demo training corpus cut in three (3000, 600, 400 rows), plus files of a new class and of new words."""
    lines = DEMO_TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    root = tmp_path_factory.mktemp("parts")
    texts = {"base": body[:3000], "night1": body[3000:3600], "night2": body[3600:]}
    texts["zebra"] = ["my zebra is loud,zebra\n", "the zebra ate my invoice,zebra\n", "where is my parcel,shipping\n"]
    rng = np.random.default_rng(0)
    texts["novel"] = [  # words no vectorizer fitted on the demo corpus has seen
        " ".join(f"qx{w}zv" for w in rng.integers(0, 5000, 12)) + f",{label}\n"
        for label in ("billing", "returns", "shipping") * 40
    ]
    out = {}
    for name, rows in texts.items():
        out[name] = root / f"{name}.csv"
        out[name].write_text(header + "".join(rows), encoding="utf-8")
    return out


@pytest.fixture(scope="module", params=[("hdf5", "ngram"), ("parquet", "sequence")], ids=lambda p: "-".join(p))
def base(request, parts, tmp_path_factory) -> Path:
    fmt, vectorizer = request.param
    out = tmp_path_factory.mktemp(f"base-{fmt}-{vectorizer}") / "data"
    kw = {"format": fmt, "vectorizer": vectorizer, "shard_rows": 1000, "block_rows": 64, "hash_buckets": 1 << 18}
    return prepare_csv(parts["base"], out, DEMO_TEST, **kw)  # appends and refits keep these options


@pytest.fixture
def data(base, tmp_path) -> Path:
    """A fresh copy of the base dataset for each test."""
    return Path(shutil.copytree(base, tmp_path / "data"))


@pytest.fixture
def logs():
    """Messages logged under ``streamtrain`` (the CLI may have stopped its propagation to the root logger)."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("streamtrain")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(level)


def append(data: Path, *inputs: Path, test: tuple[Path, ...] = (), **kw) -> Manifest:
    return prepare(
        PrepareOptions(inputs=[str(p) for p in inputs], test=[str(p) for p in test], data=str(data), append=True, **kw)
    )


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def row_ids(data: Path, m: Manifest, split: str) -> np.ndarray:
    ids = []
    for shard in m.shards_for(split):
        reader = open_reader(m.shard_format, data / shard.path, m.encoding, m.row_width, shard.block_rows)
        ids += [reader.read_block(b).row_ids for b in range(shard.blocks)]
        reader.close()
    return np.concatenate(ids) if ids else np.zeros(0, np.int64)


def test_append_adds_new_rows_once_in_new_files(data, parts, logs, tmp_path):
    old = Manifest.load(data)
    before = files(data)
    m = append(data, parts["night1"], test=(parts["zebra"],), max_bad_fraction=0.5)

    new = [s for s in m.shards if s.path.startswith("append-0001/")]
    assert new and m.shards[: len(old.shards)] == old.shards and len(m.shards) == len(old.shards) + len(new)
    after = files(data)
    assert {k: v for k, v in after.items() if k in before and k != MANIFEST_NAME} == {
        k: v for k, v in before.items() if k != MANIFEST_NAME
    }  # no file an older manifest lists was touched
    assert m.rows("train") + m.rows("val") == 3600 and m.rows("test") == 1001  # the zebra test rows: rejected
    assert m.stats.rows == {split: m.rows(split) for split in ("train", "val", "test")}
    assert sum(m.stats.rows_per_class["train"]) == m.rows("train")

    night1, zebra = m.sources[-2:]
    assert (night1.night, night1.role, night1.first_row_id, night1.rows) == (1, "train", 4000, 600)
    assert (night1.bytes, night1.sha256) == (parts["night1"].stat().st_size, sha256_file(parts["night1"]))
    assert (zebra.role, zebra.first_row_id, zebra.rows, zebra.rejected) == ("test", 4600, 1, 2)
    assert m.stats.next_row_id == 4601
    old_ids = np.concatenate([row_ids(data, old, s) for s in ("train", "val", "test")])
    all_ids = np.concatenate([row_ids(data, m, s) for s in ("train", "val", "test")])
    assert len(np.unique(all_ids)) == len(all_ids) == 4601
    np.testing.assert_array_equal(np.setdiff1d(all_ids, old_ids), np.arange(4000, 4601))
    entry = m.appends[-1]
    assert entry.night == 1 and entry.directory == "append-0001" and entry.first_row_id == 4000
    assert entry.rows["train"] + entry.rows["val"] == 600 and entry.rows["test"] == 1
    assert m.problems(data) == []

    # The same inputs again, one under another name: nothing new, nothing changed.
    shutil.copy(parts["night1"], tmp_path / "renamed.csv")
    manifest_bytes = (data / MANIFEST_NAME).read_bytes()
    logs.clear()
    again = append(data, parts["night1"], tmp_path / "renamed.csv", test=(parts["zebra"],))
    assert (data / MANIFEST_NAME).read_bytes() == manifest_bytes and again.rows("train") == m.rows("train")
    skipped = [line for line in logs if "already ingested as" in line]
    assert len(skipped) == 3 and all(f"{parts['night1']} (night 1); skipped" in line for line in skipped[:2])
    assert any("nothing to append" in line for line in logs)
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("append-")) == ["append-0001"]


def test_batches_read_every_row_once_across_old_and_new_shards(data, parts):
    append(data, parts["night1"])
    m = append(data, parts["night2"])
    assert [a.night for a in m.appends] == [1, 2]
    assert {s.path.split("/")[0] for s in m.shards if "/" in s.path} == {"append-0001", "append-0002"}
    for split in ("train", "val"):
        source = SplitSource(data, m, split)
        stream = BatchStream(source, 100, shuffle=True, seed=5, buffer_blocks=3)
        expected = np.sort(row_ids(data, m, split))
        assert len(expected) == m.rows(split) == source.rows
        for epoch in range(2):
            seen = np.concatenate([b.row_ids for b in stream.epoch(epoch)])
            np.testing.assert_array_equal(np.sort(seen), expected)
        source.close()
    assert m.rows("train") + m.rows("val") == 4000
    proc = streamtrain("verify", data)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["problems"] == []


def test_append_extends_the_validation_sample_in_its_own_directory(data, parts):
    old = Manifest.load(data)
    old_file = data / old.val_sample.path
    old_bytes = old_file.read_bytes()
    m = append(data, parts["night1"])
    assert m.val_sample.path == "append-0001/val_sample.parquet" and old_file.read_bytes() == old_bytes
    texts, labels = read_val_sample(data, m)
    assert len(texts) == m.rows("val") == m.val_sample.rows  # under 5000 val rows: all of them
    night1 = _texts(parts["night1"])
    index = BandIndex.load([data / r.path for r in old.split_index()])  # night 1 went through the old index
    new_val = [t for t, s in zip(night1, assign_splits(night1, 0.1, False, m.split.name, index=index)) if s == VAL]
    assert new_val and set(new_val) <= set(texts) and set(labels) <= set(m.labels)
    old_texts, _ = read_val_sample(data, old)  # a reader of the old manifest still reads its own sample
    assert len(old_texts) == old.rows("val") and sorted(old_texts + new_val) == sorted(texts)


def _texts(path: Path) -> list[str]:
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        return [row[0] for row in list(csv.reader(fh))[1:]]


def test_unknown_labels_are_rejected_counted_and_point_to_refit(data, parts):
    proc = streamtrain("prepare", "--append", parts["zebra"], "--data", data, "--max-bad-fraction", "0.9")
    assert proc.returncode == 0, proc.stderr
    assert "'zebra' (2)" in proc.stderr and "prepare --refit learns new classes" in proc.stderr
    m = Manifest.load(data)
    assert m.appends[-1].rejected.by_reason == {"unknown_label": 2}
    assert m.stats.rejected.rows == 2 and m.stats.rejected.by_reason == {"unknown_label": 2}
    assert m.stats.rejected.files == ["rejected.jsonl", "append-0001/rejected.jsonl"]
    listed = [json.loads(line) for line in (data / "append-0001" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["row"], r["reason"], r["excerpt"]) for r in listed] == [
        (2, "unknown_label", "zebra"),
        (3, "unknown_label", "zebra"),
    ]
    assert m.sources[-1].rejected == 2 and m.sources[-1].rows == 1


def test_a_failed_append_changes_nothing_and_a_killed_one_is_swept(data, parts, logs):
    before = files(data)
    proc = streamtrain("prepare", "--append", parts["zebra"], "--data", data)  # 2 of 3 rows rejected > 1%
    assert proc.returncode == 65, proc.stderr
    assert "more than --max-bad-fraction" in proc.stderr and "prepare --refit learns new classes" in proc.stderr
    assert files(data) == before and not [p for p in data.iterdir() if p.name.startswith("append-")]

    # What a kill -9 leaves: a renamed append directory the manifest never listed, and a staging directory.
    (data / "append-0001").mkdir()
    (data / "append-0001" / "train-00000.h5").write_bytes(b"half a shard")
    (data / "append-0002.partial-otherhost-1-x").mkdir()
    m = append(data, parts["night1"])
    assert sum("left by an append that did not finish" in line for line in logs) == 2
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("append-")) == ["append-0001"]
    assert m.appends[-1].directory == "append-0001" and m.problems(data) == []


def test_refit_rebuilds_from_every_recorded_input(data, parts):
    append(data, parts["night1"])
    append(data, parts["zebra"], max_bad_fraction=0.9)
    m = prepare(PrepareOptions(inputs=[str(parts["night2"])], data=str(data), refit=True))
    assert m.labels == ["account", "billing", "returns", "shipping", "technical", "zebra"]  # a new class learnt
    assert m.rows("train") + m.rows("val") == 3000 + 600 + 3 + 400 and m.rows("test") == 1000
    assert m.stats.samples == 4003 and m.appends == [] and m.stats.next_row_id == 5003
    assert not [p for p in data.iterdir() if p.name.startswith("append-")]
    assert [(Path(s.path).name, s.night) for s in m.sources] == [
        ("base.csv", 0),
        ("night1.csv", 1),
        ("zebra.csv", 2),
        ("night2.csv", 3),
        ("tickets_test.csv", 0),
    ]
    refit_of = m.created.refit_of
    assert refit_of is not None and refit_of.appends == 2 and refit_of.n_features > 0
    assert m.problems(data) == [] and m.stats.coverage.rows == m.rows("train")
    # Appending after a refit continues the nights.
    shutil.copy(parts["night1"], data.parent / "again.csv")
    with open(data.parent / "again.csv", "a", encoding="utf-8") as fh:
        fh.write("one more row about a refund,returns\n")
    assert append(data, data.parent / "again.csv").appends[-1].night == 4


def test_refit_reads_each_recorded_input_once_as_it_is_now(data, parts, tmp_path):
    night = tmp_path / "night.csv"
    shutil.copy(parts["night1"], night)
    append(data, night)
    with open(night, "a", encoding="utf-8") as fh:
        fh.write("a row added after it was ingested,billing\n")
    assert append(data, night).sources[-1].start == parts["night1"].stat().st_size  # night 2: its new row
    night.write_text(night.read_text(encoding="utf-8").replace("a row added", "a row edited"), encoding="utf-8")
    proc = streamtrain("prepare", "--refit", "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert f"{night} (night 2): changed since it was last ingested" in proc.stderr
    m = Manifest.load(data)
    assert m.rows("train") + m.rows("val") == 3000 + 600 + 1  # the file once, as it is now; not once a night
    assert [(Path(s.path).name, s.night, s.rows) for s in m.sources if s.role == "train"] == [
        ("base.csv", 0, 3000),
        ("night.csv", 1, 601),
    ]
    before = files(data)
    night.unlink()
    proc = streamtrain("prepare", "--refit", "--data", data)
    assert proc.returncode == 65, proc.stderr
    assert f"{night} (night 1): missing" in proc.stderr and "nothing was replaced" in proc.stderr
    assert files(data) == before


def test_drift_is_logged_and_recorded(data, parts, logs):
    baseline = Manifest.load(data).stats.coverage
    assert 0 <= baseline.outside_share < 0.5 and baseline.rows == Manifest.load(data).rows("train")
    m = append(data, parts["novel"])
    drift = m.appends[-1].drift
    assert drift.baseline == baseline.outside_share and drift.outside_share > 0.9
    lines = [line for line in logs if line.startswith("drift: ")]
    assert len(lines) == 1
    assert f"({baseline.outside_share:.1%} when it was fitted); refit (prepare --refit)" in lines[0]
    what = (
        "n-gram occurrences are outside" if m.encoding == "ngram" else "tokens are outside the vectorizer's vocabulary"
    )
    assert what in lines[0]


def test_modes_are_checked(tmp_path, parts):
    missing = tmp_path / "nope"
    with pytest.raises(UsageError, match="--append needs an existing dataset"):
        append(missing, parts["night1"])
    with pytest.raises(UsageError, match="--refit needs an existing dataset"):
        prepare(PrepareOptions(data=str(missing), refit=True))
    with pytest.raises(UsageError, match="cannot be combined"):
        append(missing, parts["night1"], overwrite=True)
    with pytest.raises(UsageError, match="no training inputs"):
        prepare(PrepareOptions(data=str(missing)))
    proc = streamtrain("prepare", "--append", parts["night1"], "--refit", "--data", missing)
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr
    assert not missing.exists()


def test_a_directory_input_is_digested_and_skipped_once_ingested(tmp_path, logs):
    docs = tmp_path / "docs"
    for label in ("neg", "pos"):
        (docs / label).mkdir(parents=True)
        for i in range(40):
            (docs / label / f"{i}.txt").write_text(f"a {label} review number {i} with {label} words")
    size, sha = digest(docs)
    assert size == sum(p.stat().st_size for p in docs.rglob("*.txt"))
    (docs / "pos" / ".hidden").write_text("not a document")
    assert digest(docs) == (size, sha)  # the reader skips it, and so does the digest
    prepare_csv(docs, tmp_path / "data", hash_buckets=1 << 16)
    assert append(tmp_path / "data", docs).appends == []
    assert any(f"{docs}: already ingested as {docs} (night 0); skipped" in line for line in logs)
    (docs / "pos" / "0.txt").write_text("changed")
    assert digest(docs)[1] != sha
