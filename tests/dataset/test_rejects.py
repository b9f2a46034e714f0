"""Bad rows in prepare's inputs: rejected, counted and listed in rejected.jsonl, or the run fails and keeps the old."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest
from conftest import DEMO_TRAIN
from helpers import streamtrain

# line number (1-based, header = 1) -> (raw line, reason)
BAD = {
    101: ("only one column\n", "wrong_column_count"),
    602: (",billing\n", "empty_text"),
    1103: ('"   ",billing\n', "empty_text"),
    1504: ("a text with no label,\n", "empty_label"),
    2005: ("caf\xe9 latin-1 text,billing\n", "invalid_utf8"),
    2506: ('"' + "y" * 3_000 + '",billing\n', "field_too_large"),
    2907: ('"an unterminated quote,billing\n', "unterminated_quote"),
}


@pytest.fixture(scope="module")
def bad_csv(tmp_path_factory) -> tuple[Path, int]:
    """3,000 good demo rows with one row of each bad kind at known lines."""
    with open(DEMO_TRAIN, encoding="utf-8", newline="") as fh:
        good = list(csv.reader(fh))[1:3001]
    out = io.BytesIO()
    out.write(b"text,label\n")
    line, rows = 1, iter(good)
    while line <= 3000 + len(BAD):
        line += 1
        if line in BAD:
            raw, _ = BAD[line]
            out.write(raw.encode("latin-1") if "\xe9" in raw else raw.encode())
            continue
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(next(rows))
        out.write(buf.getvalue().encode())
    path = tmp_path_factory.mktemp("bad") / "bad.csv"
    path.write_bytes(out.getvalue())
    return path, 3000


def prepare(*args) -> subprocess.CompletedProcess:
    return streamtrain("prepare", *args, "--max-field-bytes", "2000")


def test_bad_rows_are_rejected_listed_and_counted(bad_csv, tmp_path):
    path, good = bad_csv
    data = tmp_path / "data"
    proc = prepare(path, "--data", data)
    assert proc.returncode == 0, proc.stderr
    listed = [json.loads(line) for line in (data / "rejected.jsonl").read_text().splitlines()]
    assert {r["row"]: r["reason"] for r in listed} == {line: reason for line, (_, reason) in BAD.items()}
    assert all(r["path"] == str(path) and r["input"] == 0 for r in listed)
    manifest = json.loads((data / "manifest.json").read_text())
    source = manifest["sources"][0]
    assert (source["rows"], source["rejected"], source["read"]) == (good, len(BAD), good + len(BAD))
    rows = manifest["stats"]["rows"]
    assert rows["train"] + rows["val"] == good  # every accepted row is in the shards
    rejected = manifest["stats"]["rejected"]
    assert rejected["rows"] == len(BAD) and sum(rejected["by_reason"].values()) == len(BAD)
    assert rejected["by_reason"]["empty_text"] == 2
    assert f"rejected {len(BAD)} of {good + len(BAD)} rows read" in proc.stderr  # the per-reason summary
    assert "unterminated_quote 1" in proc.stderr


def test_too_many_bad_rows_fail_and_keep_the_previous_dataset(bad_csv, tmp_path):
    path, _ = bad_csv
    data = tmp_path / "data"
    assert prepare(DEMO_TRAIN, "--data", data).returncode == 0
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data.iterdir()}
    proc = prepare(path, "--data", data, "--overwrite", "--max-bad-fraction", "0.0001")
    assert proc.returncode == 65, proc.stderr
    assert (
        "more than --max-bad-fraction 0.0001" in proc.stderr and f"{path}, row 101: wrong_column_count" in proc.stderr
    )
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["data"]


def test_a_test_label_training_never_saw_is_rejected(tmp_path):
    test = tmp_path / "test.csv"
    test.write_text("text,label\nmy card was charged twice,billing\na brand new kind of ticket,zebra\n")
    data = tmp_path / "data"
    proc = prepare(DEMO_TRAIN, "--test", test, "--data", data, "--max-bad-fraction", "0.5")
    assert proc.returncode == 0, proc.stderr
    listed = [json.loads(line) for line in (data / "rejected.jsonl").read_text().splitlines()]
    assert listed == [{"path": str(test), "row": 3, "reason": "unknown_label", "excerpt": "zebra", "input": 1}]
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["stats"]["rows"]["test"] == 1 and manifest["sources"][1]["rejected"] == 1


def test_jsonl_labels_that_are_not_strings_or_numbers_are_rejected(tmp_path):
    """0.9 turned these into the classes "[1]", "{'a': 1}", "True" and "nan"; now each is a label_not_a_string
    reject, and a number stays a label as it reads."""
    with open(DEMO_TRAIN, encoding="utf-8", newline="") as fh:
        good = [{"text": r["text"], "label": r["label"]} for r in list(csv.DictReader(fh))[:400]]
    bad = ['{"text": "a", "label": [1]}', '{"text": "b", "label": {"a": 1}}', '{"text": "c", "label": true}']
    bad += ['{"text": "d", "label": NaN}', '{"text": "e", "label": null}']
    source = tmp_path / "in.jsonl"
    lines = [json.dumps(r) for r in good] + bad + [json.dumps({"text": "f", "label": 7.0})]
    source.write_text("\n".join(lines) + "\n")
    data = tmp_path / "data"
    proc = prepare(source, "--data", data, "--max-bad-fraction", "0.05")
    assert proc.returncode == 0, proc.stderr
    listed = [json.loads(line) for line in (data / "rejected.jsonl").read_text().splitlines()]
    assert [(r["row"], r["reason"]) for r in listed] == [(401 + i, "label_not_a_string") for i in range(len(bad))]
    labels = json.loads((data / "manifest.json").read_text())["labels"]
    assert sorted(labels) == sorted({r["label"] for r in good} | {"7"})


def test_a_header_only_file_says_so(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    proc = prepare(empty, "--data", tmp_path / "data")
    assert proc.returncode == 65
    assert f"the training inputs hold no rows: {empty} (a header and nothing else?)" in proc.stderr


def test_an_unreadable_document_counts_as_one_lost_row(tmp_path):
    """A directory-per-class input with one broken .gz document: one reject, not an estimate scaled by its bytes."""
    import gzip

    for label in ("neg", "pos"):
        (tmp_path / "docs" / label).mkdir(parents=True)
        for i in range(150):
            (tmp_path / "docs" / label / f"{i}.txt").write_text(f"a {label} review number {i} with words")
    broken = tmp_path / "docs" / "pos" / "zz.txt.gz"
    packed = gzip.compress(" ".join(f"word{i * 7919 % 1000}" for i in range(150)).encode())  # about 1 KB of text
    broken.write_bytes(packed[: len(packed) // 2])
    proc = prepare(tmp_path / "docs", "--data", tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    rejected = manifest["stats"]["rejected"]
    assert rejected["by_reason"] == {"unreadable_remainder": 1} and rejected["estimated_lost_rows"] == 0
    listed = [json.loads(line) for line in (tmp_path / "data" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["path"], r["row"], r["reason"]) for r in listed] == [(str(broken), None, "unreadable_remainder")]
