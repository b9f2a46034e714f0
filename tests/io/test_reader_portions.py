"""``Portion``: the readers read a file's tail with its header and line numbers, and a directory's chosen files."""

from __future__ import annotations

import gzip

import pytest

from streamtrain.io.readers import ColumnSpec, Portion, read_chunks


def rows_of(path, portion: Portion, spec: ColumnSpec | None = None) -> list[tuple]:
    chunks = read_chunks([path], spec or ColumnSpec(), 3, portion=portion)
    return [(row, text, label) for c in chunks for row, text, label in zip(c.rows, c.texts, c.labels)]


@pytest.mark.parametrize("gz", [False, True])
def test_a_tail_keeps_the_header_columns_and_the_files_line_numbers(tmp_path, gz):
    path = tmp_path / ("t.csv.gz" if gz else "t.csv")
    prefix = '\ufefflabel,text\r\na,"two\nlines"\rb,one line\n'.encode()  # BOM, \r\n, a quoted newline, a lone \r
    tail = b'c,after the prefix\nd,"and, more"\n'
    if gz:
        path.write_bytes(gzip.compress(prefix) + gzip.compress(tail))  # grown by a new member
        start = len(gzip.compress(prefix))
    else:
        path.write_bytes(prefix + tail)
        start = len(prefix)
    whole = rows_of(path, Portion())
    assert [r[2] for r in whole] == ["a", "b", "c", "d"]
    assert rows_of(path, Portion(start=start)) == whole[2:] == [(5, "after the prefix", "c"), (6, "and, more", "d")]
    if not gz:
        assert rows_of(path, Portion(start=start, stop=start + len(b"c,after the prefix\n"))) == whole[2:3]


def test_a_jsonl_tail_and_a_directory_portion(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "x", "label": "a"}\n\n{"text": "y", "label": "b"}\n', encoding="utf-8")
    start = path.stat().st_size
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"text": "z", "label": "c"}\n')
    assert rows_of(path, Portion(start=start)) == [(4, "z", "c")]

    for name in ("neg/1.txt", "neg/2.txt", "pos/1.txt"):
        (tmp_path / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "docs" / name).write_text(f"text of {name}", encoding="utf-8")
    picked = rows_of(tmp_path / "docs", Portion(documents=frozenset({"neg/2.txt", "pos/1.txt"})))
    assert [(text, label) for _, text, label in picked] == [("text of neg/2.txt", "neg"), ("text of pos/1.txt", "pos")]
