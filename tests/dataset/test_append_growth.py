"""prepare --append on inputs that grow: a directory's new files and a file's new tail, never a row twice."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from conftest import DEMO_TRAIN
from helpers import files_of, streamtrain

from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest
from streamtrain.dataset.prepare import PrepareOptions, prepare

LINES = DEMO_TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)
HEADER, BODY = LINES[0], LINES[1:]
SMALL = {"hash_buckets": 1 << 16, "jobs": 1}


def rows(data: Path) -> int:
    return sum(Manifest.load(data).stats.rows.values())


def append_cli(data: Path, *inputs: Path, rc: int = 0) -> str:
    proc = streamtrain("prepare", "--append", *inputs, "--data", data, "--jobs", "1")
    assert proc.returncode == rc, proc.stderr
    return proc.stderr


def write_docs(root: Path, first: int, n: int) -> None:
    """Documents ``first .. first + n - 1`` of the demo corpus, a directory per class."""
    for i in range(first, first + n):
        text, label = BODY[i].rstrip("\n").rsplit(",", 1)
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i:05d}.txt").write_text(text.strip('"'), encoding="utf-8")


def test_a_directory_that_gains_files_appends_only_them(tmp_path):
    docs, data = tmp_path / "docs", tmp_path / "data"
    write_docs(docs, 0, 400)
    prepare(PrepareOptions(inputs=[str(docs)], data=str(data), **SMALL))
    assert rows(data) == 400
    write_docs(docs, 400, 10)
    next(docs.rglob("00001.txt")).unlink()  # a document removed since: it stays in the dataset
    stderr = append_cli(data, docs)
    assert rows(data) == 410  # not 400 + 409
    assert "10 new document(s) of 409" in stderr
    m = Manifest.load(data)
    assert len(m.sources[0].documents) == 400
    assert sorted(d.path.split("/")[1] for d in m.sources[-1].documents) == [f"{i:05d}.txt" for i in range(400, 410)]
    assert (m.sources[-1].night, m.sources[-1].rows) == (1, 10)

    before = files_of(data)
    append_cli(data, docs)  # nothing new: nothing changes
    assert files_of(data) == before

    edited = next(docs.rglob("00002.txt"))
    edited.write_text("an edited review of an old ticket", encoding="utf-8")
    write_docs(docs, 410, 5)
    stderr = append_cli(data, docs, rc=65)
    assert f"{edited}: edited history: this document was ingested (night 0)" in stderr
    assert "nothing was appended" in stderr and "prepare --refit" in stderr
    assert files_of(data) == before


@pytest.mark.parametrize("suffix", ["csv", "csv.gz", "tsv", "jsonl"])
def test_a_file_that_grew_appends_only_its_new_rows(tmp_path, suffix):
    src, data = tmp_path / f"t.{suffix}", tmp_path / "data"
    extra = ['"a row, with ""quotes"" that starts broken,billing\n', "where is my parcel,zebra\n"]
    if suffix == "jsonl":
        as_json = [json.dumps(dict(zip(("text", "label"), line.rstrip("\n").rsplit(",", 1)))) + "\n" for line in BODY]
        head, new, bad = as_json[:1000], as_json[1000:1010], ['{"text": "no label"}\n']
    elif suffix == "tsv":
        as_tsv = ["\t".join(line.rsplit(",", 1)) for line in BODY]
        head, new, bad = ["text\tlabel\n", *as_tsv[:1000]], as_tsv[1000:1010], extra
    else:
        head, new, bad = [HEADER, *BODY[:1000]], BODY[1000:1010], extra
    write = gzip.open if suffix.endswith(".gz") else open
    with write(src, "wt", encoding="utf-8", newline="") as fh:
        fh.writelines(head)
    prepare(PrepareOptions(inputs=[str(src)], data=str(data), **SMALL))
    assert rows(data) == 1000
    with write(src, "at", encoding="utf-8", newline="") as fh:  # gzip: a new member
        fh.writelines(new + bad)
    proc = streamtrain("prepare", "--append", src, "--data", data, "--max-bad-fraction", "0.5", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    m = Manifest.load(data)
    assert rows(data) == 1010  # not 1000 + 1012
    assert m.sources[-1].start == m.sources[0].bytes and m.sources[-1].rows == 10
    rejected = [json.loads(line) for line in (data / "append-0001" / "rejected.jsonl").read_text().splitlines()]
    first_new = len(head) + 1  # the file's own line numbers: the header and the ingested rows counted
    assert [r["row"] for r in rejected] == list(range(first_new + 10, first_new + 10 + len(bad)))

    before = files_of(data)
    append_cli(data, src)  # the same content again: skipped
    assert files_of(data) == before
    if suffix.endswith(".gz"):  # compressed again as a whole: the compressed prefix changed
        with gzip.open(src, "rt", encoding="utf-8", newline="") as fh:
            text = fh.read()
        with gzip.open(src, "wt", encoding="utf-8", newline="") as fh:
            fh.write(text + new[0])
    else:
        text = src.read_text(encoding="utf-8")
        src.write_text(text.replace(head[-1], head[-1].replace("e", "E", 1)) + new[0], encoding="utf-8")
    stderr = append_cli(data, src, rc=65)
    assert f"{src}: edited history: its first {m.sources[-1].bytes} bytes, ingested by night 1" in stderr
    assert files_of(data) == before


def test_growth_the_readers_cannot_take_is_refused(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    pq_file, no_eol, gz = tmp_path / "t.parquet", tmp_path / "t.csv", tmp_path / "g.csv.gz"
    split = [line.rstrip("\n").rsplit(",", 1) for line in BODY[:300]]
    pq.write_table(pa.table({"text": [t for t, _ in split], "label": [lb for _, lb in split]}), pq_file)
    no_eol.write_text(HEADER + "".join(BODY[300:600]).rstrip("\n"), encoding="utf-8")  # the last row: no line break
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.writelines([HEADER, *BODY[600:900]])
    prepare(PrepareOptions(inputs=[str(pq_file), str(no_eol), str(gz)], data=str(data), **SMALL))
    before = files_of(data)

    pq.write_table(pa.table({"text": [t for t, _ in split] * 2, "label": [lb for _, lb in split] * 2}), pq_file)
    assert "a Parquet file cannot grow in place" in append_cli(data, pq_file, rc=65)
    with open(no_eol, "a", encoding="utf-8") as fh:
        fh.write(" and more words,billing\n")
    assert f"{no_eol}: its last ingested line (ending at byte" in append_cli(data, no_eol, rc=65)
    with open(gz, "ab") as fh:
        fh.write(b"not a gzip member\n")
    assert "do not start a new gzip member" in append_cli(data, gz, rc=65)
    assert files_of(data) == before


def as_0_9(data: Path, **changes) -> None:
    """The manifest as 0.9 wrote it: a directory's record without its documents."""
    manifest = json.loads((data / MANIFEST_NAME).read_text())
    manifest["sources"][0].pop("documents", None)
    manifest["sources"][0].update(changes)
    (data / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_a_directory_recorded_by_0_9_is_read_by_its_documents_times(tmp_path):
    """A 0.9 manifest records a directory by its digest only: the documents older than its ingest that reproduce
    the digest are taken as ingested; when none do, the append is refused, pointing to --refit."""
    docs, data = tmp_path / "docs", tmp_path / "data"
    write_docs(docs, 0, 200)
    old = 1_700_000_000
    for doc in docs.rglob("*.txt"):
        os.utime(doc, (old, old))
    prepare(PrepareOptions(inputs=[str(docs)], data=str(data), **SMALL))
    as_0_9(data, ingested_at="2024-01-01T00:00:00+00:00")  # after the documents' time, before the new ones'
    write_docs(docs, 200, 7)
    append_cli(data, docs)
    assert rows(data) == 207

    data2 = tmp_path / "data2"
    prepare(PrepareOptions(inputs=[str(docs)], data=str(data2), **SMALL))
    as_0_9(data2, ingested_at="2020-01-01T00:00:00+00:00")  # no document is that old
    write_docs(docs, 207, 3)
    stderr = append_cli(data2, docs, rc=65)
    assert f"{docs}: was ingested as a whole by an older streamtrain" in stderr and "prepare --refit" in stderr


def test_a_row_written_while_an_append_reads_waits_for_the_next_one(tmp_path, monkeypatch):
    """The append reads a file up to the size it digested: a row a writer adds after that is not read now
    (its record would not cover it, and the next night would read it again) but by the next append."""
    from streamtrain.dataset import sources

    src, data = tmp_path / "t.csv", tmp_path / "data"
    src.write_text(HEADER + "".join(BODY[:300]), encoding="utf-8")
    prepare(PrepareOptions(inputs=[str(src)], data=str(data), **SMALL))
    with open(src, "a", encoding="utf-8") as fh:
        fh.writelines(BODY[300:310])
    plan = sources.plan

    def writer_meanwhile(*args):
        planned = plan(*args)
        with open(src, "a", encoding="utf-8") as fh:
            fh.write(BODY[310])
        return planned

    monkeypatch.setattr(sources, "plan", writer_meanwhile)
    prepare(PrepareOptions(inputs=[str(src)], data=str(data), append=True, **SMALL))
    assert rows(data) == 310
    monkeypatch.setattr(sources, "plan", plan)
    prepare(PrepareOptions(inputs=[str(src)], data=str(data), append=True, **SMALL))
    assert rows(data) == 311 and Manifest.load(data).sources[-1].rows == 1
