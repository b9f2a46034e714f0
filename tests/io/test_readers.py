"""Streaming readers: every format, chunking, row numbers, rejected records and loud, located errors.

A bad record is rejected (file, row, reason, excerpt) and the records around it are still
read; only what makes a whole file unusable is an error. All inputs are small invented
files written under ``tmp_path`` (plus a few 2-50 MiB ones for the size limit); the one
real-corpus test (AG News) runs only when ``$STREAMTRAIN_DATASETS`` is set.
"""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamtrain.errors import EXIT_DATA, EXIT_USAGE, DataError, UsageError
from streamtrain.io.readers import ColumnSpec, RawChunk, detect_format, read_chunks
from streamtrain.io.rejects import MAX_FIELD_BYTES, REJECT_REASON_TEXT, REJECT_REASONS, Reject

BY_NAME = ColumnSpec()  # text="text", label="label", header inferred (True)
AG_NEWS = ColumnSpec(text=(1, 2), label=0)  # header-less, label first, title + description


# --------------------------------------------------------------------------- helpers


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_jsonl(path: Path, records: list) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


def write_parquet(path: Path, columns: dict, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns)
    if path.name.lower().endswith(".gz"):
        plain = path.with_name(path.name[:-3])
        pq.write_table(table, plain, **kwargs)
        path.write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()
    else:
        pq.write_table(table, path, **kwargs)
    return path


def chunks_of(inputs, spec: ColumnSpec = BY_NAME, chunk_rows: int = 4096, **kw) -> list[RawChunk]:
    return list(read_chunks([str(p) for p in inputs], spec, chunk_rows, **kw))


def rows_of(path, spec: ColumnSpec = BY_NAME, chunk_rows: int = 4096) -> list[tuple[str, str, int | str]]:
    """(text, label, row) of every row of one input, across all its chunks."""
    out = []
    for chunk in chunks_of([path], spec, chunk_rows):
        assert len(chunk.texts) == len(chunk.labels) == len(chunk.rows) == len(chunk)
        out.extend(zip(chunk.texts, chunk.labels, chunk.rows))
    return out


def read_all(path, spec: ColumnSpec = BY_NAME, chunk_rows: int = 4096, **kw) -> tuple[list, list[Reject]]:
    """(accepted (text, label, row) rows, rejects) of one input, across all its chunks."""
    rows: list = []
    rejects: list[Reject] = []
    for chunk in chunks_of([path], spec, chunk_rows, **kw):
        assert len(chunk.texts) == len(chunk.labels) == len(chunk.rows) == len(chunk)
        assert 0 < len(chunk) + len(chunk.rejected) <= chunk_rows  # a chunk of only rejects is still yielded
        rows.extend(zip(chunk.texts, chunk.labels, chunk.rows))
        rejects.extend(chunk.rejected)
    return rows, rejects


def reasons(rejects: list[Reject]) -> list[tuple[int | None, str]]:
    return [(r.row, r.reason) for r in rejects]


def assert_rejects_well_formed(rejects: list[Reject], path) -> None:
    for r in rejects:
        assert r.path == str(path) or r.path.startswith(str(path))
        assert r.reason in REJECT_REASONS
        assert len(r.excerpt) <= 80 and r.excerpt.isprintable(), r.excerpt
        assert (r.lost_bytes is not None) == (r.reason == "unreadable_remainder") or r.row is None


def data_error(path, spec: ColumnSpec = BY_NAME, chunk_rows: int = 4096) -> DataError:
    with pytest.raises(DataError) as info:
        chunks_of([path], spec, chunk_rows)
    return info.value


def assert_located(err: DataError, path, row: int | None, *fragments: str) -> None:
    """The error names the file and row (in attributes and in the message) and says what is wrong."""
    assert err.exit_code == EXIT_DATA == 65
    assert err.path == str(path)
    assert err.row == row
    msg = str(err)
    where = f"{path}, row {row}: " if row is not None else f"{path}: "
    assert msg.startswith(where), msg
    for frag in fragments:
        assert frag in msg, msg


# --------------------------------------------------------------------------- ColumnSpec / RawChunk


@pytest.mark.parametrize(
    "spec, expected",
    [
        (ColumnSpec(), True),
        (ColumnSpec(text=(1, 2), label=0), False),
        (ColumnSpec(text=("body",), label=0), True),  # any name means a header row
        (ColumnSpec(text=(1,), label=0, header=True), True),
        (ColumnSpec(text=("text",), label="label", header=False), False),
    ],
)
def test_csv_has_header(spec, expected):
    assert spec.csv_has_header() is expected


def test_column_spec_to_json():
    assert ColumnSpec(text=(1, 2), label=0).to_json() == {"text": [1, 2], "label": 0, "header": None}
    assert ColumnSpec(text=("a", "b"), label="y", header=True).to_json() == {
        "text": ["a", "b"],
        "label": "y",
        "header": True,
    }


def test_raw_chunk_where():
    chunk = RawChunk("corpus.csv")
    chunk.append("first text", "a", 7)
    chunk.append("second text", "b", "/data/pos/3_9.txt")
    assert len(chunk) == 2
    assert chunk.where(0) == ("corpus.csv", 7)
    assert chunk.where(1) == ("/data/pos/3_9.txt", None)
    assert chunk.rejected == []  # rejects live beside the rows and do not count in len()


def test_reject_interface():
    assert REJECT_REASONS == (
        "wrong_column_count",
        "unterminated_quote",
        "malformed_csv",
        "empty_text",
        "empty_label",
        "invalid_utf8",
        "field_too_large",
        "invalid_json",
        "not_an_object",
        "missing_field",
        "text_not_a_string",
        "label_not_a_string",
        "unreadable_remainder",
    )
    assert MAX_FIELD_BYTES == 1 << 20
    r = Reject("a.csv", 3, "empty_label", "some text,")
    assert r.lost_bytes is None
    assert r.to_json() == {"path": "a.csv", "row": 3, "reason": "empty_label", "excerpt": "some text,"}
    lost = Reject("a.csv.gz", 9, "unreadable_remainder", "EOFError: ...", lost_bytes=123)
    assert lost.to_json() == {
        "path": "a.csv.gz",
        "row": 9,
        "reason": "unreadable_remainder",
        "excerpt": "EOFError: ...",
        "lost_bytes": 123,
    }
    assert json.loads(json.dumps(lost.to_json())) == lost.to_json()
    with pytest.raises(ValueError, match="unknown reject reason"):
        Reject("a.csv", 1, "bad_vibes", "")
    # every reason has words for messages; prepare adds one of its own, which no reader produces
    assert set(REJECT_REASON_TEXT) == {*REJECT_REASONS, "unknown_label"}
    assert Reject("test.csv", 4, "unknown_label", "sports").reason == "unknown_label"
    with pytest.raises(UsageError, match="max_field_bytes"):
        list(read_chunks([], BY_NAME, max_field_bytes=0))


# --------------------------------------------------------------------------- CSV / TSV


def test_csv_header_columns_by_name(tmp_path):
    path = write(
        tmp_path / "tickets.csv",
        "id,label,text,extra\n"
        "17,billing,My invoice shows a double charge,x\n"
        "18,shipping,Parcel stuck in the depot for a week,y\n"
        "19,billing,Refund has not arrived,z\n",
    )
    assert detect_format(path) == "csv"
    chunks = chunks_of([path])
    assert len(chunks) == 1
    chunk = chunks[0]
    assert chunk.path == str(path)
    assert chunk.texts == [
        "My invoice shows a double charge",
        "Parcel stuck in the depot for a week",
        "Refund has not arrived",
    ]
    assert chunk.labels == ["billing", "shipping", "billing"]
    assert chunk.rows == [2, 3, 4]  # the header is line 1
    assert chunk.where(1) == (str(path), 3)


def test_csv_header_names_are_stripped_and_label_whitespace_trimmed(tmp_path):
    path = write(tmp_path / "a.csv", " text , label \nhello there , 1 \n")
    assert rows_of(path) == [("hello there ", "1", 2)]  # text kept as is, label trimmed


def test_csv_several_named_text_columns_joined_by_space(tmp_path):
    path = write(tmp_path / "a.csv", "title,body,label\nLate parcel,It never came,shipping\n")
    spec = ColumnSpec(text=("title", "body"), label="label")
    assert rows_of(path, spec) == [("Late parcel It never came", "shipping", 2)]


def test_csv_without_header_columns_by_index_like_ag_news(tmp_path):
    path = write(
        tmp_path / "news.csv",
        '"3","Markets rally","Stocks rose on Tuesday after a quiet week."\n'
        '"4","New probe launched","A small probe left orbit, heading for the moon."\n'
        '"1","Summit ends","Leaders agreed on ""modest"" steps."\n',
    )
    assert AG_NEWS.csv_has_header() is False
    assert rows_of(path, AG_NEWS) == [
        ("Markets rally Stocks rose on Tuesday after a quiet week.", "3", 1),
        ("New probe launched A small probe left orbit, heading for the moon.", "4", 2),
        ('Summit ends Leaders agreed on "modest" steps.', "1", 3),
    ]


def test_csv_header_true_override_skips_first_line_with_index_columns(tmp_path):
    path = write(tmp_path / "a.csv", "class,title,body\n2,Goal in extra time,The home side won.\n")
    default = rows_of(path, AG_NEWS)  # all ints: no header by default, line 1 is data
    assert default[0] == ("title body", "class", 1)
    assert len(default) == 2
    spec = ColumnSpec(text=(1, 2), label=0, header=True)
    assert rows_of(path, spec) == [("Goal in extra time The home side won.", "2", 2)]


def test_csv_header_false_override_reads_first_line_as_data(tmp_path):
    path = write(tmp_path / "a.csv", "1,first line is data\n2,second line\n")
    spec = ColumnSpec(text=(1,), label=0, header=False)
    assert rows_of(path, spec) == [("first line is data", "1", 1), ("second line", "2", 2)]
    # header=False with named columns cannot work: there are no names to look up
    err = data_error(path, ColumnSpec(header=False))
    assert_located(err, path, 1, "no column named 'text'")


@pytest.mark.parametrize("name", ["a.tsv", "a.tab", "A.TSV"])
def test_tsv(tmp_path, name):
    path = write(
        tmp_path / name,
        "label\ttext\npos\tGreat film, loved it\nneg\tDull; two hours, wasted\n",
    )
    assert detect_format(path) == "tsv"
    assert rows_of(path) == [
        ("Great film, loved it", "pos", 2),  # commas are plain characters in TSV
        ("Dull; two hours, wasted", "neg", 3),
    ]


def test_csv_quoted_fields_commas_quotes_and_newlines(tmp_path):
    path = write(
        tmp_path / "q.csv",
        "text,label\n"
        '"one, two, three",a\n'  # line 2
        '"she said ""hi"" twice",b\n'  # line 3
        '"line one\nline two\nline three",c\n'  # lines 4-6
        '"crlf inside\r\nstill the same field",d\n'  # lines 7-8
        "plain after,e\n",  # line 9
    )
    assert rows_of(path) == [
        ("one, two, three", "a", 2),
        ('she said "hi" twice', "b", 3),
        ("line one\nline two\nline three", "c", 4),  # a multi-line record reports its first line
        ("crlf inside\r\nstill the same field", "d", 7),
        ("plain after", "e", 9),
    ]


def test_csv_crlf_line_endings(tmp_path):
    path = write(tmp_path / "w.csv", "text,label\r\nfirst,x\r\nsecond,y\r\n")
    assert rows_of(path) == [("first", "x", 2), ("second", "y", 3)]


def test_csv_blank_lines_skipped_but_counted(tmp_path):
    path = write(tmp_path / "b.csv", "text,label\n\nalpha,1\n\n\nbeta,2\n\n")
    assert rows_of(path) == [("alpha", "1", 3), ("beta", "2", 6)]


def test_csv_utf8_byte_order_mark_is_dropped(tmp_path):
    bom = b"\xef\xbb\xbf"
    with_header = write(tmp_path / "h.csv", bom + "text,label\ncafé au lait,drinks\n".encode())
    assert rows_of(with_header) == [("café au lait", "drinks", 2)]
    no_header = write(tmp_path / "n.csv", bom + b"1,first\n2,second\n")
    assert rows_of(no_header, ColumnSpec(text=(1,), label=0)) == [("first", "1", 1), ("second", "2", 2)]


@pytest.mark.parametrize("name, sep", [("a.csv.gz", ","), ("a.tsv.gz", "\t"), ("A.CSV.GZ", ",")])
def test_gzipped_csv_and_tsv(tmp_path, name, sep):
    body = f"text{sep}label\nzipped row one{sep}x\n\n" + f'"quoted{sep} row\ntwo"{sep}y\n'
    path = write(tmp_path / name, body)
    assert gzip.decompress(path.read_bytes()).decode() == body  # really compressed on disk
    assert rows_of(path) == [("zipped row one", "x", 2), (f"quoted{sep} row\ntwo", "y", 4)]


def test_csv_empty_files(tmp_path):
    empty = write(tmp_path / "e.csv", "")
    assert chunks_of([empty], AG_NEWS) == []  # header-less: simply no rows
    assert_located(data_error(empty), empty, 1, "empty file")  # a header was expected
    header_only = write(tmp_path / "h.csv", "text,label\n")
    assert chunks_of([header_only]) == []


# --------------------------------------------------------------------------- JSONL


def test_jsonl_labels_as_strings_and_rows(tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"text": "int label", "label": 1},
            {"text": "integral float label", "label": 2.0},
            {"text": "fractional float label", "label": 2.5},
            {"text": "string label", "label": "sports"},
            {"text": "zero label", "label": 0},
            {"text": "ünïcödé text ✓", "label": " spaced "},
        ],
    )
    assert detect_format(path) == "jsonl"
    assert rows_of(path) == [
        ("int label", "1", 1),
        ("integral float label", "2", 2),
        ("fractional float label", "2.5", 3),
        ("string label", "sports", 4),
        ("zero label", "0", 5),
        ("ünïcödé text ✓", "spaced", 6),
    ]


def test_jsonl_blank_lines_skipped_but_counted(tmp_path):
    path = write(
        tmp_path / "b.jsonl",
        '\n{"text": "a", "label": "x"}\n   \n\n{"text": "b", "label": "y"}\r\n\n',
    )
    assert rows_of(path) == [("a", "x", 2), ("b", "y", 5)]


def test_jsonl_several_text_fields_joined_nulls_skipped(tmp_path):
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"title": "Late parcel", "body": "Never arrived.", "y": 3, "other": "ignored"},
            {"title": "No body here", "body": None, "y": 4},
            {"title": None, "body": "Only a body", "y": 5},
        ],
    )
    spec = ColumnSpec(text=("title", "body"), label="y")
    assert rows_of(path, spec) == [
        ("Late parcel Never arrived.", "3", 1),
        ("No body here", "4", 2),
        ("Only a body", "5", 3),
    ]


@pytest.mark.parametrize("name", ["a.jsonl.gz", "a.ndjson", "a.json", "a.ndjson.gz"])
def test_jsonl_other_extensions_and_gzip(tmp_path, name):
    path = write_jsonl(tmp_path / name, [{"text": "first", "label": 1}, {"text": "second", "label": "b"}])
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert detect_format(path) == "jsonl"
    assert rows_of(path) == [("first", "1", 1), ("second", "b", 2)]


def test_jsonl_byte_order_mark_is_dropped(tmp_path):
    path = write(tmp_path / "bom.jsonl", b'\xef\xbb\xbf{"text": "t", "label": "l"}\n')
    assert rows_of(path) == [("t", "l", 1)]


# --------------------------------------------------------------------------- Parquet


def test_parquet_columns_by_name_and_index(tmp_path):
    path = write_parquet(
        tmp_path / "p.parquet",
        {
            "id": [10, 11, 12],
            "title": ["Cup final", "Rate cut", "Chip shortage"],
            "body": ["Extra time again.", None, "Fabs run late."],
            "label": [1, 2, 3],
        },
    )
    assert detect_format(path) == "parquet"
    expected = [
        ("Cup final Extra time again.", "1", 1),
        ("Rate cut", "2", 2),  # a null text column is skipped, like JSONL null
        ("Chip shortage Fabs run late.", "3", 3),
    ]
    assert rows_of(path, ColumnSpec(text=("title", "body"), label="label")) == expected
    assert rows_of(path, ColumnSpec(text=(1, 2), label=3)) == expected
    chunk = chunks_of([path], ColumnSpec(text=(1,), label="label"))[0]
    assert chunk.path == str(path)
    assert chunk.where(2) == (str(path), 3)


def test_parquet_float_and_string_labels(tmp_path):
    path = write_parquet(tmp_path / "f.parquet", {"text": ["a", "b", "c"], "label": [2.0, 0.0, 1.5]})
    assert [r[1] for r in rows_of(path)] == ["2", "0", "1.5"]
    path = write_parquet(tmp_path / "s.parquet", {"text": ["a", "b"], "label": ["neg", " pos "]})
    assert [r[1] for r in rows_of(path)] == ["neg", "pos"]


def test_parquet_same_column_for_text_twice(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", {"text": ["echo"], "label": ["e"]})
    assert rows_of(path, ColumnSpec(text=("text", 0), label="label")) == [("echo echo", "e", 1)]


def test_parquet_gz(tmp_path):
    path = write_parquet(tmp_path / "p.parquet.gz", {"text": ["squeezed", "again"], "label": [7, 8]})
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert detect_format(path) == "parquet"
    chunks = chunks_of([path], chunk_rows=1)
    assert [c.path for c in chunks] == [str(path), str(path)]  # the .gz, never the inflated temp copy
    assert rows_of(path) == [("squeezed", "7", 1), ("again", "8", 2)]


def test_parquet_chunks_span_row_groups(tmp_path):
    n = 10
    path = write_parquet(
        tmp_path / "rg.parquet",
        {"text": [f"doc {i}" for i in range(n)], "label": [str(i % 2) for i in range(n)]},
        row_group_size=4,
    )
    assert pq.ParquetFile(path).num_row_groups == 3
    chunks = chunks_of([path], chunk_rows=3)
    # pyarrow may or may not cut batches at row-group edges; either way no chunk is too big
    assert all(1 <= len(c) <= 3 for c in chunks)
    assert [t for c in chunks for t in c.texts] == [f"doc {i}" for i in range(n)]
    assert [r for c in chunks for r in c.rows] == list(range(1, n + 1))
    assert [lab for c in chunks for lab in c.labels] == [str(i % 2) for i in range(n)]


def test_parquet_empty_file_yields_nothing(tmp_path):
    path = write_parquet(
        tmp_path / "e.parquet", {"text": pa.array([], pa.string()), "label": pa.array([], pa.string())}
    )
    assert chunks_of([path]) == []


# --------------------------------------------------------------------------- directory per class


@pytest.fixture
def imdb_like(tmp_path) -> Path:
    """aclImdb layout plus things that must be ignored."""
    root = tmp_path / "aclImdb" / "train"
    write(root / "pos" / "0_9.txt", "A warm, funny film.")
    write(root / "pos" / "1_10.txt.gz", "Zipped praise: <br /><br />superb.")
    write(root / "pos" / "2_8.txt", "Lovely score\nand a second line.\n")
    write(root / "neg" / "0_2.txt", "Plodding and long.")
    write(root / "neg" / "1_1.txt", "Überlang, sadly.")
    write(root / "neg" / ".DS_Store", b"\x00\x01binary junk")  # hidden file
    write(root / "neg" / "._0_2.txt", b"\x00\x05AppleDouble")  # hidden file
    write(root / "pos" / ".ipynb_checkpoints" / "0_9-checkpoint.txt", "stale copy")  # hidden sub-directory
    write(root / ".cache" / "x.txt", "not a class")  # hidden class directory
    write(root / "labeledBow.feat", "0:1 5:2")  # files directly under root
    write(root / "urls_pos.txt", "http://example.invalid/1")
    return root


def test_dir_per_class(imdb_like):
    root = imdb_like
    assert detect_format(root) == "dir"
    chunks = chunks_of([root])
    assert len(chunks) == 1
    chunk = chunks[0]
    assert chunk.path == str(root)
    # classes in sorted order, documents in sorted order within a class
    assert chunk.labels == ["neg", "neg", "pos", "pos", "pos"]
    assert chunk.texts == [
        "Plodding and long.",
        "Überlang, sadly.",
        "A warm, funny film.",
        "Zipped praise: <br /><br />superb.",
        "Lovely score\nand a second line.\n",
    ]
    expected_docs = [
        root / "neg" / "0_2.txt",
        root / "neg" / "1_1.txt",
        root / "pos" / "0_9.txt",
        root / "pos" / "1_10.txt.gz",
        root / "pos" / "2_8.txt",
    ]
    assert chunk.rows == [str(p) for p in expected_docs]
    assert [chunk.where(i) for i in range(len(chunk))] == [(str(p), None) for p in expected_docs]


def test_dir_chunking_runs_across_classes(tmp_path):
    root = tmp_path / "corpus"
    for i in range(4):
        write(root / "a" / f"{i}.txt", f"a{i}")
    for i in range(6):
        write(root / "b" / f"{i}.txt", f"b{i}")
    chunks = chunks_of([root], chunk_rows=3)
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert [c.labels for c in chunks] == [["a", "a", "a"], ["a", "b", "b"], ["b", "b", "b"], ["b"]]
    assert [t for c in chunks for t in c.texts] == [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(6)]


def test_dir_without_class_subdirectories(tmp_path):
    root = tmp_path / "flat"
    write(root / "doc.txt", "no classes here")
    write(root / ".hidden" / "doc.txt", "hidden does not count")
    assert_located(data_error(root), root, None, "no class sub-directories")


def test_dir_invalid_utf8_document_named(tmp_path):
    root = tmp_path / "c"
    write(root / "pos" / "a.txt", "fine")
    bad = write(root / "pos" / "b.txt", b"caf\xe9 latin-1")
    write(root / "pos" / "c.txt", "also fine")
    rows, rejects = read_all(root)
    assert [r[0] for r in rows] == ["fine", "also fine"]
    assert rejects == [Reject(str(bad), None, "invalid_utf8", "caf\\xe9 latin-1")]


def test_dir_rejects(tmp_path):
    root = tmp_path / "d"
    write(root / "a" / "0_good.txt", "a good document")
    empty = write(root / "a" / "1_empty.txt", "")
    blank = write(root / "a" / "2_blank.txt", " \n\t ")
    big = write(root / "a" / "3_big.txt", "y" * 101)
    write(root / "a" / "4_limit.txt", "z" * 100)  # exactly the limit is fine
    data = gzip.compress(b"a zipped document, cut short " * 50)
    cut = root / "b" / "5_cut.txt.gz"
    cut.parent.mkdir(parents=True)
    cut.write_bytes(data[: len(data) // 2])
    write(root / "b" / "6_good.txt.gz", "a zipped good one")
    rows, rejects = read_all(root, max_field_bytes=100)
    assert [r[0] for r in rows] == ["a good document", "z" * 100, "a zipped good one"]
    assert [r.row for r in rejects] == [None] * 4
    assert [r.reason for r in rejects] == ["empty_text", "empty_text", "field_too_large", "unreadable_remainder"]
    assert [r.path for r in rejects] == [str(empty), str(blank), str(big), str(cut)]
    assert rejects[1].excerpt == " \\n\\t "  # control characters escaped
    assert rejects[2].excerpt == "y" * 80
    assert rejects[3].lost_bytes == cut.stat().st_size
    assert "EOFError" in rejects[3].excerpt
    assert_rejects_well_formed(rejects, root)


# --------------------------------------------------------------------------- chunking, every format


def _ten_rows(tmp_path: Path, fmt: str) -> tuple[Path, list[int | str]]:
    texts = [f"text number {i}" for i in range(10)]
    labels = [str(i % 3) for i in range(10)]
    if fmt == "csv":
        path = write(tmp_path / "t.csv", "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in zip(texts, labels)))
        return path, list(range(2, 12))
    if fmt == "tsv":
        path = write(tmp_path / "t.tsv", "".join(f"{lab}\t{t}\n" for t, lab in zip(texts, labels)))
        return path, list(range(1, 11))
    if fmt == "jsonl":
        path = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "label": int(lab)} for t, lab in zip(texts, labels)])
        return path, list(range(1, 11))
    if fmt == "parquet":
        path = write_parquet(tmp_path / "t.parquet", {"text": texts, "label": labels})
        return path, list(range(1, 11))
    root = tmp_path / "d"
    for i, (t, lab) in enumerate(zip(texts, labels)):
        write(root / lab / f"{i:02d}.txt", t)
    order = sorted(range(10), key=lambda i: (labels[i], i))
    return root, [str(root / labels[i] / f"{i:02d}.txt") for i in order]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "dir"])
@pytest.mark.parametrize("chunk_rows, sizes", [(3, [3, 3, 3, 1]), (5, [5, 5]), (1, [1] * 10), (10, [10]), (99, [10])])
def test_chunking_loses_and_duplicates_nothing(tmp_path, fmt, chunk_rows, sizes):
    path, expected_rows = _ten_rows(tmp_path, fmt)
    spec = ColumnSpec(text=(1,), label=0) if fmt == "tsv" else BY_NAME
    chunks = chunks_of([path], spec, chunk_rows)
    assert [len(c) for c in chunks] == sizes
    assert all(c.path == str(path) for c in chunks)
    rows = [r for c in chunks for r in c.rows]
    assert rows == expected_rows
    texts = [t for c in chunks for t in c.texts]
    assert sorted(texts) == sorted(f"text number {i}" for i in range(10))  # each once
    pairs = {t: lab for c in chunks for t, lab in zip(c.texts, c.labels)}
    assert pairs == {f"text number {i}": str(i % 3) for i in range(10)}


def test_csv_chunking_with_blank_and_multiline_rows(tmp_path):
    lines = ["text,label"]
    expected = []
    for i in range(10):
        if i % 4 == 1:
            lines.append("")
        next_line = sum(item.count("\n") + 1 for item in lines) + 1  # physical line of the record start
        if i % 3 == 0:
            expected.append((f"multi {i}\nsecond half", str(i), next_line))
            lines.append(f'"multi {i}\nsecond half",{i}')
        else:
            expected.append((f"single {i}", str(i), next_line))
            lines.append(f"single {i},{i}")
    path = write(tmp_path / "m.csv", "\n".join(lines) + "\n")
    chunks = chunks_of([path], chunk_rows=3)
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert [r for c in chunks for r in zip(c.texts, c.labels, c.rows)] == expected
    # hand-checked: header 1, multi 0 on 2-3, blank 4, single 1 on 5, single 2 on 6, multi 3 on 7-8, single 4 on 9
    assert [e[2] for e in expected[:5]] == [2, 5, 6, 7, 9]


# --------------------------------------------------------------------------- read_chunks over several inputs


def test_read_chunks_several_inputs_in_order(tmp_path):
    csv_path = write(tmp_path / "1.csv", "text,label\nfrom csv a,x\nfrom csv b,y\n")
    jsonl_path = write_jsonl(tmp_path / "2.jsonl", [{"text": "from jsonl", "label": 1}])
    pq_path = write_parquet(tmp_path / "3.parquet", {"text": ["from parquet a", "from parquet b"], "label": [2, 3]})
    root = tmp_path / "4"
    write(root / "z" / "doc.txt", "from dir")
    tsv_path = write(tmp_path / "5.tsv.gz", "text\tlabel\nfrom tsv\tw\n")

    inputs = [csv_path, jsonl_path, pq_path, root, tsv_path]
    chunks = list(read_chunks(inputs, BY_NAME, chunk_rows=3))  # Path objects are fine too
    # a chunk never mixes files, even when it is not full
    assert [(c.path, len(c)) for c in chunks] == [
        (str(csv_path), 2),
        (str(jsonl_path), 1),
        (str(pq_path), 2),
        (str(root), 1),
        (str(tsv_path), 1),
    ]
    assert [t for c in chunks for t in c.texts] == [
        "from csv a",
        "from csv b",
        "from jsonl",
        "from parquet a",
        "from parquet b",
        "from dir",
        "from tsv",
    ]
    assert [lab for c in chunks for lab in c.labels] == ["x", "y", "1", "2", "3", "z", "w"]

    reversed_texts = [t for c in read_chunks(inputs[::-1], BY_NAME, 3) for t in c.texts]
    assert reversed_texts[0] == "from tsv" and reversed_texts[-1] == "from csv b"


def test_read_chunks_no_inputs():
    assert list(read_chunks([], BY_NAME)) == []


# --------------------------------------------------------------------------- rejects: file, row, reason


CSV_REJECTS = [
    # (file name, content, spec, accepted (text, label, row), rejects (row, reason))
    (
        "short.csv",
        "text,label\nok,1\nno label column\nafter,2\n",
        BY_NAME,
        [("ok", "1", 2), ("after", "2", 4)],
        [(3, "wrong_column_count")],
    ),
    (
        "empty_label.csv",
        "text,label\nok,1\n\nno label,\nafter,2\n",
        BY_NAME,
        [("ok", "1", 2), ("after", "2", 5)],
        [(4, "empty_label")],
    ),
    ("blank_label.csv", "text,label\nspaces only,   \n", BY_NAME, [], [(2, "empty_label")]),
    (
        "empty_text.csv",
        'text,label\n,1\n   ,2\n"",3\n" \t ",4\nok,5\n',
        BY_NAME,
        [("ok", "5", 6)],
        [(2, "empty_text"), (3, "empty_text"), (4, "empty_text"), (5, "empty_text")],
    ),
    (
        "few.csv",
        '"1","t","d"\n"2","only title"\n"3","x","y"\n',
        AG_NEWS,
        [("t d", "1", 1), ("x y", "3", 3)],
        [(2, "wrong_column_count")],
    ),
    ("few.tsv", "1\tt\td\n\n2\n", ColumnSpec(text=(1, 2), label=0), [("t d", "1", 1)], [(3, "wrong_column_count")]),
    (
        "after_multiline.csv",
        'text,label\n"a\nb",1\n"c",\nd,2\n',
        BY_NAME,
        [("a\nb", "1", 2), ("d", "2", 5)],
        [(4, "empty_label")],
    ),
    (
        "bad_quote.csv",
        'text,label\n"closed" too early,1\nok,2\n',
        BY_NAME,
        [("ok", "2", 3)],
        [(2, "malformed_csv")],
    ),
    (
        "whitespace_line.csv",  # a line of spaces is a record (one empty-ish column), not a blank line
        "text,label\n   \nok,1\n",
        BY_NAME,
        [("ok", "1", 3)],
        [(2, "wrong_column_count")],
    ),
]


@pytest.mark.parametrize("name, content, spec, accepted, rejected", CSV_REJECTS, ids=[c[0] for c in CSV_REJECTS])
def test_csv_rejects(tmp_path, name, content, spec, accepted, rejected):
    path = write(tmp_path / name, content)
    rows, rejects = read_all(path, spec)
    assert rows == accepted
    assert reasons(rejects) == rejected
    assert all(r.path == str(path) and r.lost_bytes is None for r in rejects)
    assert_rejects_well_formed(rejects, path)


def test_csv_reject_excerpt_is_the_raw_record(tmp_path):
    path = write(tmp_path / "x.csv", b'text,label\n"two\nlines",\n' + b"\x01\xff" * 100 + b",\n")
    rows, rejects = read_all(path)
    assert rows == []
    assert reasons(rejects) == [(2, "empty_label"), (4, "invalid_utf8")]
    assert rejects[0].excerpt == '"two\\nlines",'  # the record as written, newline escaped
    assert rejects[1].excerpt == "\\x01\\xff" * 10  # 80 characters at most, bytes escaped
    assert_rejects_well_formed(rejects, path)


CSV_ERRORS = [
    # header problems make the whole file unusable: (file name, content, spec, row, fragments)
    ("noname.csv", "body,label\nx,1\n", BY_NAME, 1, ["no column named 'text'", "body"]),
    ("nolabel.csv", "text,class\nx,1\n", ColumnSpec(label="label"), 1, ["no column named 'label'"]),
    ("nolabel.csv.gz", "text,class\nx,1\n", BY_NAME, 1, ["no column named 'label'"]),
    ("blank_header.csv", "\ntext,label\nx,1\n", BY_NAME, 1, ["no column named 'text'"]),
    ("quote_header.csv", '"text,label\nx,1\n', BY_NAME, 1, ["header row", "quote"]),
    ("bad_header.csv", '"text"x,label\nx,1\n', BY_NAME, 1, ["header row", "malformed CSV"]),
]


@pytest.mark.parametrize("name, content, spec, row, fragments", CSV_ERRORS, ids=[c[0] for c in CSV_ERRORS])
def test_csv_data_errors(tmp_path, name, content, spec, row, fragments):
    path = write(tmp_path / name, content)
    assert_located(data_error(path, spec), path, row, *fragments)


def test_csv_header_over_the_limit_is_an_error(tmp_path):
    path = write(tmp_path / "h.csv", "text,label," + "x" * 200 + "\na,1\n")
    with pytest.raises(DataError) as info:
        chunks_of([path], max_field_bytes=100)
    assert_located(info.value, path, 1, "header row", "field size limit")


JSONL_REJECTS = [
    ("invalid.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": \n', 2, "invalid_json"),
    ("trailing.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b"} junk\n', 3, "invalid_json"),
    ("deep.jsonl", '{"text": "a", "label": 1}\n' + "[" * 100_000 + "\n", 2, "invalid_json"),
    ("huge_int.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": ' + "9" * 5000 + "}\n", 2, "invalid_json"),
    ("list.jsonl", '{"text": "a", "label": 1}\n["b", 2]\n', 2, "not_an_object"),
    ("number.jsonl", '{"text": "a", "label": 1}\n42\n', 2, "not_an_object"),
    ("string.jsonl", '{"text": "a", "label": 1}\n\n"just text"\n', 3, "not_an_object"),
    ("no_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n', 2, "missing_field"),
    ("no_text.jsonl", '{"text": "a", "label": 1}\n{"body": "b", "label": 1}\n', 2, "missing_field"),
    # A label is a string or a finite number; 0.9 made "[1]", "{'a': 1}", "True" and "nan" labels of these.
    ("null_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": null}\n', 2, "label_not_a_string"),
    ("list_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": [1]}\n', 2, "label_not_a_string"),
    ("object_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": {"a": 1}}\n', 2, "label_not_a_string"),
    ("bool_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": true}\n', 2, "label_not_a_string"),
    ("nan_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": NaN}\n', 2, "label_not_a_string"),
    ("inf_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": -Infinity}\n', 2, "label_not_a_string"),
    ("empty_list_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": []}\n', 2, "label_not_a_string"),
    ("empty_label.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": " "}\n', 2, "empty_label"),
    ("null_text.jsonl", '{"text": "a", "label": 1}\n{"text": null, "label": 1}\n', 2, "empty_text"),
    ("blank_text.jsonl", '{"text": "a", "label": 1}\n{"text": " \\n", "label": 1}\n', 2, "empty_text"),
    ("int_text.jsonl", '{"text": "a", "label": 1}\n{"text": 5, "label": 1}\n', 2, "text_not_a_string"),
    ("list_text.jsonl", '{"text": "a", "label": 1}\n{"text": ["a", "b"], "label": 1}\n', 2, "text_not_a_string"),
    ("surrogate.jsonl", '{"text": "a", "label": 1}\n{"text": "x\\ud800", "label": 1}\n', 2, "invalid_utf8"),
    ("invalid.jsonl.gz", '{"text": "a", "label": 1}\n{oops}\n', 2, "invalid_json"),
]


@pytest.mark.parametrize("name, content, row, reason", JSONL_REJECTS, ids=[c[0] for c in JSONL_REJECTS])
def test_jsonl_rejects(tmp_path, name, content, row, reason):
    path = write(tmp_path / name, content + '{"text": "after", "label": "z"}\n')
    rows, rejects = read_all(path)
    after = content.count("\n") + 1
    assert rows == [("a", "1", 1), ("after", "z", after)]  # the rows around the bad one are read
    assert reasons(rejects) == [(row, reason)]
    assert rejects[0].path == str(path)
    assert_rejects_well_formed(rejects, path)


def test_rejects_come_in_order_with_the_good_chunks(tmp_path):
    records = [{"text": f"t{i}", "label": 1} for i in range(5)] + [{"text": "x"}, {"text": "t5", "label": 2}]
    path = write_jsonl(tmp_path / "late.jsonl", records)
    chunks = list(read_chunks([path], BY_NAME, chunk_rows=2))
    assert [c.texts for c in chunks] == [["t0", "t1"], ["t2", "t3"], ["t4"], ["t5"]]
    assert [reasons(c.rejected) for c in chunks] == [[], [], [(6, "missing_field")], []]


def test_a_chunk_of_only_rejects_is_yielded(tmp_path):
    path = write(tmp_path / "bad.csv", "text,label\n" + "no label\n" * 5 + "ok,1\n")
    chunks = chunks_of([path], chunk_rows=2)
    assert [(len(c), len(c.rejected)) for c in chunks] == [(0, 2), (0, 2), (1, 1)]
    assert [r.row for c in chunks for r in c.rejected] == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("name", ["bad.csv", "bad.tsv", "bad.csv.gz", "bad.jsonl", "bad.jsonl.gz"])
@pytest.mark.parametrize("bad_line", [3, 2500])  # 2500: well past the first block the decoder reads
def test_invalid_utf8_rejects_the_row_and_reads_around_it(tmp_path, name, bad_line):
    if "jsonl" in name:
        line = b'{"text": "%s", "label": 1}\n'
        spec = BY_NAME
    else:
        line = b"1\t%s\n" if ".tsv" in name else b"1,%s\n"
        spec = ColumnSpec(text=(1,), label=0)
    good = [line % b"fine %d" % i for i in range(1, bad_line)]
    body = b"".join(good) + line % b"caf\xe9 \xff" + line % b"tail"
    path = write(tmp_path / name, body)
    rows, rejects = read_all(path, spec)
    assert reasons(rejects) == [(bad_line, "invalid_utf8")]
    assert "caf\\xe9 \\xff" in rejects[0].excerpt
    assert [r[2] for r in rows] == [*range(1, bad_line), bad_line + 1]
    assert rows[-1][:2] == ("tail", "1")


def test_invalid_utf8_in_csv_header(tmp_path):
    path = write(tmp_path / "h.csv", b"te\xffxt,label\nx,1\n")
    assert_located(data_error(path), path, 1, "not valid UTF-8")


def test_parquet_rejects(tmp_path):
    null_label = write_parquet(tmp_path / "nl.parquet", {"text": ["a", "b", "c"], "label": ["x", "y", None]})
    rows, rejects = read_all(null_label)
    assert [r[0] for r in rows] == ["a", "b"]
    assert reasons(rejects) == [(3, "empty_label")]
    assert rejects[0].path == str(null_label)

    blank_label = write_parquet(tmp_path / "bl.parquet", {"text": ["a", "b"], "label": ["x", " "]})
    assert reasons(read_all(blank_label)[1]) == [(2, "empty_label")]

    texts = write_parquet(tmp_path / "nt.parquet", {"text": ["a", None, "", "  ", "e"], "label": ["x"] * 5})
    rows, rejects = read_all(texts)
    assert rows == [("a", "x", 1), ("e", "x", 5)]
    assert reasons(rejects) == [(2, "empty_text"), (3, "empty_text"), (4, "empty_text")]

    int_text = write_parquet(tmp_path / "it.parquet", {"text": [1, 2], "label": ["x", "y"]})
    assert reasons(read_all(int_text)[1]) == [(1, "text_not_a_string"), (2, "text_not_a_string")]

    big = write_parquet(tmp_path / "big.parquet", {"text": ["ok", "é" * 60, "é" * 50], "label": ["x", "y", "z"]})
    rows, rejects = read_all(big, max_field_bytes=100)  # 120 and 100 bytes of UTF-8
    assert rows == [("ok", "x", 1), ("é" * 50, "z", 3)]
    assert reasons(rejects) == [(2, "field_too_large")]
    assert len(rejects[0].excerpt) <= 80

    # row numbers keep counting across chunks
    late = write_parquet(tmp_path / "late.parquet", {"text": ["a"] * 7, "label": ["x"] * 6 + [None]})
    rows, rejects = read_all(late, chunk_rows=3)
    assert [r[2] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert reasons(rejects) == [(7, "empty_label")]

    # the .gz is named, not the temporary inflated copy
    gz = write_parquet(tmp_path / "nl.parquet.gz", {"text": ["a", "b"], "label": ["x", None]})
    rows, rejects = read_all(gz)
    assert rejects == [Reject(str(gz), 2, "empty_label", "['b', None]")]

    # a string cell that is not UTF-8 (Parquet writers do not check)
    offsets = pa.py_buffer(b"".join(n.to_bytes(4, "little") for n in (0, 2, 5, 7)))
    texts = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(b"ok\xff\xfe!ok")])
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": texts, "label": ["a", "b", "c"]}), bad)
    rows, rejects = read_all(bad)
    assert rows == [("ok", "a", 1), ("ok", "c", 3)]
    assert rejects == [Reject(str(bad), 2, "invalid_utf8", "[<not UTF-8>, 'b']")]


def test_parquet_column_errors(tmp_path):
    path = write_parquet(tmp_path / "c.parquet", {"body": ["a"], "label": ["x"]})
    assert_located(data_error(path), path, None, "no column named 'text'", "body")
    assert_located(data_error(path, ColumnSpec(text=(5,), label=1)), path, None, "column 5 out of range", "2 columns")
    gz = write_parquet(tmp_path / "c.parquet.gz", {"body": ["a"], "label": ["x"]})
    assert_located(data_error(gz), gz, None, "no column named 'text'")


def test_not_a_parquet_file(tmp_path):
    path = write(tmp_path / "fake.parquet", "text,label\nthis is csv,1\n")
    assert_located(data_error(path), path, None, "not a readable Parquet file")


# --------------------------------------------------------------------------- UsageError


@pytest.mark.parametrize("name", ["notes.txt", "sheet.xlsx", "noext", "archive.gz", "data.csv.bz2", "x.txt.gz"])
def test_unknown_extension(tmp_path, name):
    path = write(tmp_path / name, "text,label\na,1\n")
    with pytest.raises(UsageError) as info:
        detect_format(path)
    assert info.value.exit_code == EXIT_USAGE == 2
    assert str(path) in str(info.value)
    assert "cannot tell the format" in str(info.value)
    with pytest.raises(UsageError):
        chunks_of([path])


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(UsageError) as info:
        detect_format(missing)
    assert info.value.exit_code == 2
    assert str(info.value) == f"input not found: {missing}"
    good = write(tmp_path / "good.csv", "text,label\na,1\n")
    stream = read_chunks([good, missing], BY_NAME)
    assert next(stream).texts == ["a"]  # inputs are opened lazily, in order
    with pytest.raises(UsageError, match="input not found"):
        next(stream)


@pytest.mark.parametrize(
    "spec",
    [ColumnSpec(text=(1,), label=0), ColumnSpec(text=("text",), label=0), ColumnSpec(text=("text", 2), label="label")],
)
def test_integer_columns_on_jsonl(tmp_path, spec):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "a", "label": 1}])
    with pytest.raises(UsageError) as info:
        chunks_of([path], spec)
    assert info.value.exit_code == 2
    assert str(path) in str(info.value)
    assert "by name" in str(info.value)


# --------------------------------------------------------------------------- broken quoting, broken streams


def test_csv_unterminated_quote_is_rejected_where_it_starts(tmp_path):
    """An unmatched quote must not swallow the rest of the file into one field, nor lose it."""
    path = write(tmp_path / "u.csv", '1,"never closed\n2,second row\n3,third row\n')
    rows, rejects = read_all(path, ColumnSpec(text=(1,), label=0))
    assert reasons(rejects) == [(1, "unterminated_quote")]
    assert rows == [("second row", "2", 2), ("third row", "3", 3)]
    assert rejects[0].excerpt.startswith('1,"never closed\\n2,second row')


def test_csv_stray_quote_reported_at_its_line_not_where_csv_noticed(tmp_path):
    """The quote on line 151 is noticed at line 158 (the next quote); the reject says 151."""
    lines = ["text,label"]
    for n in range(2, 301):
        if n == 151:
            lines.append('"stray quote,x')
        elif n % 7 == 4:
            lines.append(f'"quoted, with a comma {n}",q')
        else:
            lines.append(f"plain {n},p")
    path = write(tmp_path / "q.csv", "\n".join(lines) + "\n")
    assert next(n for n in range(152, 300) if n % 7 == 4) == 158
    rows, rejects = read_all(path)
    assert reasons(rejects) == [(151, "unterminated_quote")]
    assert [r[2] for r in rows] == [n for n in range(2, 301) if n != 151]


@pytest.mark.parametrize("name", ["long.csv", "long.csv.gz"])
def test_csv_unterminated_quote_longer_than_the_limit(tmp_path, name):
    """The stray quote swallows more than max_field_bytes: skipped in pieces, then read again after its start."""
    lines = ["text,label"] + [f"row {n},r" for n in range(2, 40)] + ['"open,x'] + [f"row {n},r" for n in range(41, 400)]
    path = write(tmp_path / name, "\n".join(lines) + "\n")
    rows, rejects = read_all(path, max_field_bytes=256, chunk_rows=7)
    assert reasons(rejects) == [(40, "unterminated_quote")]
    assert [r[2] for r in rows] == [*range(2, 40), *range(41, 400)]


def test_csv_multiline_field_over_the_limit_is_one_reject(tmp_path):
    field = "\n".join(f"line {i} of a long quoted field" for i in range(50))
    path = write(tmp_path / "m.csv", f'text,label\nbefore,a\n"{field}",b\n"short\nfield",c\nafter,d\n')
    rows, rejects = read_all(path, max_field_bytes=200)
    assert reasons(rejects) == [(3, "field_too_large")]
    assert rows == [("before", "a", 2), ("short\nfield", "c", 53), ("after", "d", 55)]


def test_csv_invalid_utf8_inside_a_multiline_field(tmp_path):
    path = write(tmp_path / "m.csv", b'text,label\nbefore,a\n"one\ntw\xff\nthree",b\nafter,c\n')
    rows, rejects = read_all(path)
    assert reasons(rejects) == [(3, "invalid_utf8")]
    assert rows == [("before", "a", 2), ("after", "c", 6)]


def test_csv_lone_carriage_returns_end_lines(tmp_path):
    path = write(tmp_path / "mac.csv", 'text,label\rfirst,a\r"two\rlines",b\r\rlast,c')
    assert rows_of(path) == [("first", "a", 2), ("two\rlines", "b", 3), ("last", "c", 6)]


def csv_with_every_bad_kind(n_good: int = 3000) -> tuple[bytes, list, list]:
    """A CSV of ``n_good`` good rows with one row of each bad kind among them: (bytes, accepted, rejects)."""
    records: list[bytes] = [b"text,label"]
    line = 2  # physical line of the next record
    accepted: list = []
    rejected: list = []
    bad = {
        400: (b"no comma in this row", "wrong_column_count"),
        900: (b",empty text", "empty_text"),
        1300: (b" \t  ,whitespace text", "empty_text"),
        1500: (b'"a quote that never closes,x', "unterminated_quote"),
        1800: (b"a row without a label,", "empty_label"),
        2200: (b"caf\xe9 in latin-1 \xff,bytes", "invalid_utf8"),
        2600: (b"x" * (2 << 20) + b",huge", "field_too_large"),
    }
    good = 0
    while good < n_good:
        label = f"L{good % 4}"
        if bad and line >= min(bad):  # at that line, or just after a two-line record that covers it
            raw, reason = bad.pop(min(bad))
            records.append(raw)
            rejected.append((line, reason))
        elif line % 500 == 7:
            records.append(b"")  # a blank line is not a record
        elif good % 11 == 5:  # quoted, with a comma and a line break: two physical lines
            text = f"row {good}, quoted\nover two lines"
            records.append(f'"{text}",{label}'.encode())
            accepted.append((text, label, line))
            good += 1
        else:
            records.append(f"row {good} words,{label}".encode())
            accepted.append((f"row {good} words", label, line))
            good += 1
        line += records[-1].count(b"\n") + 1
    assert not bad, bad
    return b"\n".join(records) + b"\n", accepted, rejected


@pytest.mark.parametrize("name", ["mixed.csv", "mixed.csv.gz"])
def test_csv_one_row_of_each_bad_kind_among_3000(tmp_path, name):
    body, accepted, rejected = csv_with_every_bad_kind()
    path = write(tmp_path / name, body)
    rows, rejects = read_all(path, chunk_rows=1000)
    assert reasons(rejects) == rejected
    assert rows == accepted
    assert len(rows) + len(rejects) == 3000 + 7  # every record read is accepted or rejected
    assert_rejects_well_formed(rejects, path)
    assert rejects[-1].excerpt == "x" * 80


def test_jsonl_one_row_of_each_bad_kind(tmp_path):
    bad = [
        (b'{"text": "cut', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"label": "x"}', "missing_field"),
        (b'{"text": 3, "label": "x"}', "text_not_a_string"),
        (b'{"text": "  ", "label": "x"}', "empty_text"),
        (b'{"text": "t", "label": ""}', "empty_label"),
        (b'{"text": "caf\xe9", "label": "x"}', "invalid_utf8"),
        (b'{"text": "' + b"x" * (2 << 20) + b'", "label": "x"}', "field_too_large"),
    ]
    lines: list[bytes] = []
    accepted, rejected = [], []
    for i in range(300):
        if i % 40 == 20:
            raw, reason = bad[i // 40]
            lines.append(raw)
            rejected.append((len(lines), reason))
        elif i % 50 == 3:
            lines.append(b"   ")
        else:
            lines.append(json.dumps({"text": f"t{i}", "label": i % 3}).encode())
            accepted.append((f"t{i}", str(i % 3), len(lines)))
    path = write(tmp_path / "mixed.jsonl", b"\n".join(lines) + b"\n")
    rows, rejects = read_all(path, chunk_rows=64)
    assert reasons(rejects) == rejected
    assert rows == accepted
    assert_rejects_well_formed(rejects, path)


@pytest.mark.parametrize("name", ["t.csv.gz", "t.jsonl.gz"])
def test_truncated_gzip_keeps_what_was_read(tmp_path, name):
    is_csv = name.startswith("t.csv")
    rows = "text,label\n" if is_csv else ""
    rows += "".join(
        (f"row {i} some words,a\n" if is_csv else f'{{"text": "row {i}", "label": "a"}}\n') for i in range(5000)
    )
    data = gzip.compress(rows.encode())
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    accepted, rejects = read_all(path, ColumnSpec(), chunk_rows=1000)
    first = 2 if is_csv else 1
    assert len(accepted) > 1000
    assert [r[2] for r in accepted] == list(range(first, first + len(accepted)))  # everything before the break
    assert [r[0] for r in accepted] == [f"row {i}" + (" some words" if is_csv else "") for i in range(len(accepted))]
    assert len(rejects) == 1
    lost = rejects[0]
    assert (lost.path, lost.row, lost.reason) == (str(path), first + len(accepted), "unreadable_remainder")
    assert 0 < lost.lost_bytes <= path.stat().st_size
    assert "EOFError" in lost.excerpt


def test_gzip_with_trailing_garbage(tmp_path):
    path = tmp_path / "g.csv.gz"
    path.write_bytes(gzip.compress(b"text,label\na,1\nb,2\n") + gzip.compress(b"c,3\n") + b"garbage!")
    rows, rejects = read_all(path)
    assert rows == [("a", "1", 2), ("b", "2", 3), ("c", "3", 4)]  # several members are one stream
    assert reasons(rejects) == [(5, "unreadable_remainder")]
    assert rejects[0].lost_bytes == len(b"garbage!")


def test_not_gzip_at_all(tmp_path):
    path = write(tmp_path / "plain.csv", "1,a\n2,b\n").rename(tmp_path / "plain.csv.gz")
    rows, rejects = read_all(path, ColumnSpec(text=(1,), label=0))
    assert rows == []
    assert reasons(rejects) == [(1, "unreadable_remainder")]
    assert rejects[0].lost_bytes == path.stat().st_size
    with pytest.raises(DataError) as info:  # with a header expected, nothing usable at all
        chunks_of([path])
    assert_located(info.value, path, 1, "header row", "cannot read")


FIFTY_MIB = 50 << 20


@pytest.mark.parametrize("shape", ["csv line", "csv quoted lines", "jsonl.gz line"])
def test_a_50_mib_field_is_skipped_in_bounded_memory(tmp_path, shape):
    if shape == "csv line":
        path = tmp_path / "big.csv"
        head, tail = b"text,label\nbefore,a\n", b",b\nafter,c\n"
        with open(path, "wb") as f:
            f.write(head + b"x" * FIFTY_MIB + tail)
        expected = [("before", "a", 2), ("after", "c", 4)]
    elif shape == "csv quoted lines":
        path = tmp_path / "lines.csv"
        line = b"y" * 1023 + b"\n"
        with open(path, "wb") as f:
            f.write(b'text,label\nbefore,a\n"' + line * (FIFTY_MIB // 1024) + b'",b\nafter,c\n')
        expected = [("before", "a", 2), ("after", "c", 3 + FIFTY_MIB // 1024 + 1)]
    else:
        path = tmp_path / "big.jsonl.gz"
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(b'{"text": "before", "label": "a"}\n{"text": "')
            for _ in range(50):
                f.write(b"z" * (1 << 20))
            f.write(b'", "label": "b"}\n{"text": "after", "label": "c"}\n')
        expected = [("before", "a", 1), ("after", "c", 3)]
    tracemalloc.start()
    try:
        rows, rejects = read_all(path, max_field_bytes=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == expected
    assert reasons(rejects) == [(3 if shape == "csv quoted lines" else expected[0][2] + 1, "field_too_large")]
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB while skipping a 50 MiB field"


# --------------------------------------------------------------------------- real data


def test_ag_news_test_split():
    root = os.environ.get("STREAMTRAIN_DATASETS")
    if not root:
        pytest.skip("STREAMTRAIN_DATASETS is not set: the AG News check needs $STREAMTRAIN_DATASETS/ag_news/test.csv")
    path = Path(root) / "ag_news" / "test.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    total = 0
    labels: Counter[str] = Counter()
    next_row = 1
    for chunk in read_chunks([path], AG_NEWS, chunk_rows=1000):
        assert len(chunk) <= 1000
        assert chunk.rows == list(range(next_row, next_row + len(chunk)))  # one line per record, no header
        next_row += len(chunk)
        total += len(chunk)
        labels.update(chunk.labels)
        assert all(t.strip() for t in chunk.texts)
    assert total == 7600
    assert labels == {"1": 1900, "2": 1900, "3": 1900, "4": 1900}
