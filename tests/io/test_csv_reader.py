"""``io.readers.csv_reader``: column resolution, the header, and the prefix a tail is read after."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streamtrain.errors import DataError
from streamtrain.io.readers.base import WHOLE, ColumnSpec, Portion
from streamtrain.io.readers.csv_reader import CsvColumns, csv_columns, header, prefix, read_csv, read_tsv
from streamtrain.io.rejects import Reject


def test_csv_columns_by_name_consume_the_header():
    records = iter([(1, [" label ", "title", "text "]), (2, ["a", "t", "x"])])
    columns = csv_columns(records, ColumnSpec(text=("title", "text")), "f.csv")
    assert columns == CsvColumns(text=[1, 2], label=0, width=3)
    assert next(records) == (2, ["a", "t", "x"])  # the header was read, the first record was not


def test_csv_columns_by_position_read_no_header():
    records = iter([(1, ["a", "t", "x"])])
    assert csv_columns(records, ColumnSpec(text=(2,), label=0), "f.csv") == CsvColumns([2], 0, 3)
    assert next(records) == (1, ["a", "t", "x"])


def test_csv_columns_of_a_tail_use_the_prefix_header():
    records = iter([(7, ["x", "a"])])
    assert csv_columns(records, ColumnSpec(), "f.csv", names=["text", "label"]) == CsvColumns([0], 1, 2)
    assert next(records) == (7, ["x", "a"])


def test_csv_columns_missing_name_is_located():
    with pytest.raises(DataError) as info:
        csv_columns(iter([(1, ["body", "label"])]), ColumnSpec(), "f.csv")
    assert (info.value.path, info.value.row) == ("f.csv", 1)
    assert "no column named 'text' in header ['body', 'label']" in str(info.value)


def test_header_errors_name_file_and_row():
    with pytest.raises(DataError, match="empty file, expected a header row") as info:
        header(iter([]), "f.csv")
    assert info.value.row == 1
    with pytest.raises(DataError, match="header row: ") as info:
        header(iter([Reject("f.csv", 1, "invalid_utf8", "x\\xff")]), "f.csv")
    assert info.value.row == 1


@pytest.mark.parametrize("gz", [False, True])
def test_prefix_counts_lines_and_reads_the_header(tmp_path: Path, gz: bool):
    data = b"text,label\r\nfirst,a\n\nsecond\rline,b\n"
    path = tmp_path / ("p.csv.gz" if gz else "p.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    start = path.stat().st_size  # the whole file is the prefix (a gzip member ends there)
    assert prefix(str(path), ColumnSpec(), 1 << 20, 0, ",") == (0, None)
    assert prefix(str(path), ColumnSpec(), 1 << 20, start, ",") == (5, ["text", "label"])
    assert prefix(str(path), ColumnSpec(), 1 << 20, start, None) == (5, None)  # JSONL: only counted
    assert prefix(str(path), ColumnSpec(text=(0,), label=1), 1 << 20, start, ",") == (5, None)


def test_read_csv_and_read_tsv_cut_chunks_of_records(tmp_path: Path):
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("text,label\na,x\n,y\nb,\nc\nd,z\n")
    chunks = list(read_csv(str(csv_path), ColumnSpec(), 2, 1 << 20, WHOLE))
    assert [c.texts for c in chunks] == [["a"], [], ["d"]]
    assert [[(r.row, r.reason) for r in c.rejected] for c in chunks] == [
        [(3, "empty_text")],
        [(4, "empty_label"), (5, "wrong_column_count")],
        [],
    ]
    assert chunks[-1].offset == csv_path.stat().st_size
    tsv_path = tmp_path / "r.tsv"
    tsv_path.write_text("text\tlabel\na, b\tx\n")
    assert [(c.texts, c.labels, c.rows) for c in read_tsv(str(tsv_path), ColumnSpec(), 10, 1 << 20, Portion())] == [
        (["a, b"], ["x"], [2])
    ]
