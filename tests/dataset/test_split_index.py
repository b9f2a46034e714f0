"""The lsh-bigrams split in prepare: the same bytes for any executor, the index saved, checked, appended to, and
datasets of an older rule still appended with it. On real IMDB reviews with tools/grow.py token-dropout copies."""

from __future__ import annotations

import csv
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import imdb_train_texts
from helpers import files_of, load_tool, streamtrain, without_keys

from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.parallel import InlineExecutor
from streamtrain.dataset.prepare import PrepareOptions, prepare
from streamtrain.dataset.shards import open_reader
from streamtrain.errors import DataError
from streamtrain.vectorize.split import TRAIN, VAL, assign_splits

VOLATILE = ("at", "ingested_at", "data", "jobs")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """1,200 IMDB train reviews, each with 2 token-dropout copies (rate 0.1) later in the file."""
    grow = load_tool("grow")
    texts = imdb_train_texts(1200)
    labels = ["pos" if i % 2 else "neg" for i in range(len(texts))]  # the split does not read labels
    rng = random.Random("test_split_index")
    rows = list(zip(texts, labels))
    rows += [(grow.token_dropout(t, 0.1, rng), label) for _ in range(2) for t, label in zip(texts, labels)]
    root = tmp_path_factory.mktemp("lsh")
    path = root / "train.csv"
    _write(path, rows)
    return {"root": root, "path": path, "texts": texts, "labels": labels, "rows": rows, "rng": rng, "grow": grow}


def _write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def _opts(corpus: dict, data: Path, **kw) -> PrepareOptions:
    return PrepareOptions(inputs=[str(corpus["path"])], data=str(data), chunk_rows=500, shard_rows=1000, **kw)


def row_ids(data: Path, m: Manifest, split: str, under: str = "") -> np.ndarray:
    ids = []
    for shard in m.shards_for(split):
        if shard.path.startswith(under):
            reader = open_reader(m.shard_format, data / shard.path, m.encoding, m.row_width, shard.block_rows)
            ids += [reader.read_block(b).row_ids for b in range(shard.blocks)]
            reader.close()
    return np.sort(np.concatenate(ids)) if ids else np.zeros(0, np.int64)


def test_near_copies_one_split_same_bytes_on_any_executor(corpus, tmp_path):
    """Inline and on 2 threads (chunks of 500 rows: copies in other chunks, duplicates in the same one): the same
    bytes, the index recorded, and the clusters whole; the sequence path (which reads the raw rows twice) agrees."""
    manifests = {}
    for name, executor in (("inline", InlineExecutor()), ("threads", ThreadPoolExecutor(2))):
        manifests[name] = prepare(_opts(corpus, tmp_path / name), executor)
    one, two = files_of(tmp_path / "inline"), files_of(tmp_path / "threads")
    assert set(one) == set(two) and "split_index.npz" in one
    for name in one:
        if name == "manifest.json":
            docs = [json.loads(d[name]) for d in (one, two)]
            assert without_keys(docs[0], VOLATILE) == without_keys(docs[1], VOLATILE)
        else:
            assert one[name] == two[name], name
    m = manifests["inline"]
    assert m.split.name == "lsh-bigrams" and m.split.params["bands"] >= 1
    assert [r.path for r in m.split_index()] == ["split_index.npz"]
    texts = [t for t, _ in corpus["rows"]]
    expected = assign_splits(texts, 0.1, False, "lsh-bigrams")
    data = tmp_path / "inline"
    assert row_ids(data, m, "val").tolist() == np.flatnonzero(expected == VAL).tolist()
    clusters = (expected == VAL).reshape(3, -1).sum(axis=0)
    assert ((clusters == 0) | (clusters == 3)).mean() >= 0.97
    seq = prepare(_opts(corpus, tmp_path / "seq", vectorizer="sequence"))
    assert row_ids(tmp_path / "seq", seq, "val").tolist() == row_ids(data, m, "val").tolist()


def test_appended_near_copies_of_validation_rows_land_in_validation(corpus, tmp_path):
    data = tmp_path / "d"
    m = prepare(_opts(corpus, data))
    texts = [t for t, _ in corpus["rows"]]
    splits = np.zeros(len(texts), np.uint8)
    splits[row_ids(data, m, "val")] = VAL
    originals = len(corpus["texts"])
    in_val = [i for i in range(originals) if splits[i] == VAL]
    picked = in_val[:60] + [i for i in range(originals) if splits[i] != VAL][:60]
    rng, grow = random.Random("append"), corpus["grow"]
    night = tmp_path / "night1.csv"
    _write(night, [(grow.token_dropout(corpus["texts"][i], 0.1, rng), corpus["labels"][i]) for i in picked])
    first = int(m.stats.next_row_id)
    after = prepare(PrepareOptions(inputs=[str(night)], data=str(data), append=True))
    got = np.full(len(picked), TRAIN, np.uint8)
    got[row_ids(data, after, "val", "append-0001/") - first] = VAL
    assert (got == splits[picked]).mean() >= 0.97, (got, splits[picked])
    assert [r.path for r in after.split_index()] == ["split_index.npz", "append-0001/split_index.npz"]
    assert after.problems(data) == []


def test_verify_and_append_name_a_damaged_index(corpus, tmp_path):
    data = tmp_path / "d"
    prepare(_opts(corpus, data))
    path = data / "split_index.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    proc = streamtrain("verify", data)
    assert proc.returncode != 0 and "split_index.npz" in proc.stderr and "sha256" in proc.stderr, proc.stderr
    with pytest.raises(DataError, match=r"split_index\.npz"):
        prepare(PrepareOptions(inputs=[str(corpus["path"])], data=str(data), append=True, test=[]))


def test_a_dataset_of_an_older_rule_appends_with_it(corpus, tmp_path):
    data = tmp_path / "d"
    m = prepare(_opts(corpus, data, split_rule="minhash2-words"))
    assert m.split.name == "minhash2-words" and m.split.index is None and not (data / "split_index.npz").exists()
    night = tmp_path / "night1.csv"
    rows = [(corpus["grow"].token_dropout(t, 0.1, random.Random(i)), lab) for i, (t, lab) in enumerate(corpus["rows"])]
    _write(night, rows[:300])
    first = int(m.stats.next_row_id)
    after = prepare(PrepareOptions(inputs=[str(night)], data=str(data), append=True))
    assert after.split.name == "minhash2-words" and after.split_index() == []
    expected = assign_splits([t for t, _ in rows[:300]], 0.1, False, "minhash2-words")
    got = row_ids(data, after, "val", "append-0001/") - first
    assert got.tolist() == np.flatnonzero(expected == VAL).tolist()
