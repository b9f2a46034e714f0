"""``io.readers.parquet_reader``: columns, cell values, reject reasons, lost bytes and the inflated copy of a .gz."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamtrain.errors import DataError
from streamtrain.io.readers.base import ColumnSpec
from streamtrain.io.readers.parquet_reader import (
    ParquetColumns,
    Undecodable,
    cells_of,
    parquet_bytes,
    parquet_columns,
    parquet_reason,
    read_parquet,
)


def test_parquet_columns_by_name_and_position_each_read_once():
    names = ["label", "title", "text"]
    assert parquet_columns(names, ColumnSpec(text=("title", 2, "title"), label=0), "f.parquet") == ParquetColumns(
        text=["title", "text", "title"], label="label", wanted=["title", "text", "label"]
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        (ColumnSpec(), "no column named 'text'; columns are ['body', 'label']"),
        (ColumnSpec(text=(2,), label=1), "column 2 out of range; file has 2 columns"),
    ],
)
def test_parquet_columns_errors_name_the_file(spec, message):
    with pytest.raises(DataError) as info:
        parquet_columns(["body", "label"], spec, "f.parquet")
    assert info.value.path == "f.parquet" and message in str(info.value)


def test_cells_of_marks_only_the_undecodable_cells():
    assert cells_of(pa.array(["a", None, "b"])) == ["a", None, "b"]
    offsets = pa.py_buffer(b"".join(n.to_bytes(4, "little") for n in (0, 2, 4, 5)))
    bad = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(b"ok\xff\xfe!")])
    cells = cells_of(bad)
    assert cells[0] == "ok" and isinstance(cells[1], Undecodable) and cells[2] == "!"
    assert repr(cells[1]) == "<not UTF-8>"


@pytest.mark.parametrize(
    "values, label, reason",
    [
        (["a", None], "x", None),
        (["a"], 3.0, None),
        ([Undecodable()], "x", "invalid_utf8"),
        (["a"], Undecodable(), "invalid_utf8"),
        ([1], "x", "text_not_a_string"),
        (["é" * 6], "x", "field_too_large"),  # 12 bytes of UTF-8 over a limit of 10
        (["é" * 5], "x", None),
        ([None, " "], "x", "empty_text"),
        (["a"], None, "empty_label"),
        (["a"], " ", "empty_label"),
    ],
)
def test_parquet_reason(values, label, reason):
    assert parquet_reason(values, label, 10) == reason


def test_parquet_bytes_from_a_row_group_on(tmp_path: Path):
    path = tmp_path / "g.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(30)], "label": ["x"] * 30}), path, row_group_size=10)
    pf = pq.ParquetFile(path)
    meta = pf.metadata
    group_bytes = [sum(meta.row_group(g).column(j).total_compressed_size for j in range(2)) for g in range(3)]
    size = path.stat().st_size
    assert parquet_bytes(pf, 0, size) == sum(group_bytes)
    assert parquet_bytes(pf, 2, size) == group_bytes[2]
    assert parquet_bytes(pf, 3, size) == 0
    assert parquet_bytes(pf, 0, 1) == 1  # more than the file holds: the file's size


def test_a_gz_file_is_read_from_a_temporary_copy_removed_after(tmp_path: Path, monkeypatch):
    plain = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": ["x", "y", "z"]}), plain)
    gz = tmp_path / "p.parquet.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    chunks = read_parquet(str(gz), ColumnSpec(), 2, 1 << 20)
    first = next(chunks)
    assert (first.path, first.texts, first.rows) == (str(gz), ["a", "b"], [1, 2])
    assert len(list(scratch.iterdir())) == 1  # the inflated copy, while it is read
    assert [c.texts for c in chunks] == [["c"]]
    assert list(scratch.iterdir()) == []
    early = read_parquet(str(gz), ColumnSpec(), 1, 1 << 20)
    next(early)
    early.close()  # a reader stopped early removes it too
    assert list(scratch.iterdir()) == []


def test_a_gz_that_does_not_inflate_is_a_data_error(tmp_path: Path):
    gz = tmp_path / "bad.parquet.gz"
    gz.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot inflate") as info:
        list(read_parquet(str(gz), ColumnSpec(), 10, 1 << 20))
    assert info.value.path == str(gz)


def test_offsets_grow_with_the_rows_read_to_the_file_size(tmp_path: Path):
    path = tmp_path / "o.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(10)], "label": ["x"] * 10}), path, row_group_size=4)
    chunks = list(read_parquet(str(path), ColumnSpec(), 3, 1 << 20))
    size = path.stat().st_size
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert [c.offset for c in chunks] == [size * 3 // 10, size * 6 // 10, size * 9 // 10, size]
    assert [r for c in chunks for r in c.rows] == list(range(1, 11))
