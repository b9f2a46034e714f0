"""``io.readers.class_dirs``: one document read or rejected, the documents' bytes, and a directory's selection."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streamtrain.errors import DataError
from streamtrain.io.readers.base import WHOLE, ColumnSpec, Portion
from streamtrain.io.readers.class_dirs import Document, dir_bytes, read_dir, read_document


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_read_document_plain_and_gzip(tmp_path: Path):
    assert read_document(put(tmp_path / "a.txt", "héllo\n".encode()), 100) == Document(None, "héllo\n")
    assert read_document(put(tmp_path / "b.txt.GZ", gzip.compress(b"zipped")), 100) == Document(None, "zipped")


def test_read_document_rejects(tmp_path: Path):
    assert read_document(put(tmp_path / "big.txt", b"x" * 11), 10) == Document("field_too_large", excerpt="x" * 11)
    assert read_document(put(tmp_path / "ten.txt", b"x" * 10), 10) == Document(None, "x" * 10)
    assert read_document(put(tmp_path / "bad.txt", b"a\xffb"), 10).reason == "invalid_utf8"
    assert read_document(put(tmp_path / "blank.txt", b" \n\t"), 10).reason == "empty_text"
    broken = put(tmp_path / "broken.txt.gz", gzip.compress(b"some words " * 100)[:30])
    got = read_document(broken, 10_000)
    assert (got.reason, got.text, got.lost) == ("unreadable_remainder", "", broken.stat().st_size)
    assert got.excerpt


def test_dir_bytes_sums_the_documents_read(tmp_path: Path):
    put(tmp_path / "pos" / "1.txt", b"abc")
    put(tmp_path / "pos" / "deeper" / "2.txt", b"de")
    put(tmp_path / "neg" / "3.txt", b"f")
    put(tmp_path / "neg" / ".hidden", b"ignored")
    put(tmp_path / ".git" / "x", b"ignored")
    put(tmp_path / "README", b"not in a class")
    assert dir_bytes(str(tmp_path)) == 6
    chunks = list(read_dir(str(tmp_path), ColumnSpec(), 10, 100, WHOLE))
    assert chunks[-1].offset == 6
    assert sorted(zip(chunks[0].labels, chunks[0].texts)) == [("neg", "f"), ("pos", "abc"), ("pos", "de")]


def test_read_dir_order_selection_and_rows(tmp_path: Path):
    docs = [put(tmp_path / c / n, n.encode()) for c, n in [("b", "2.txt"), ("a", "9.txt"), ("a", "1.txt")]]
    chunks = list(read_dir(str(tmp_path), ColumnSpec(), 2, 100, WHOLE))
    assert [c.rows for c in chunks] == [[str(docs[2]), str(docs[1])], [str(docs[0])]]
    assert [c.labels for c in chunks] == [["a", "a"], ["b"]]
    some = Portion(documents=frozenset({"a/9.txt", "b/2.txt"}))
    assert [c.texts for c in read_dir(str(tmp_path), ColumnSpec(), 10, 100, some)] == [["9.txt", "2.txt"]]


def test_read_dir_without_classes_names_the_path_as_given(tmp_path: Path):
    put(tmp_path / "only.txt", b"x")
    given = str(tmp_path) + "/"
    with pytest.raises(DataError, match="directory has no class sub-directories") as info:
        list(read_dir(given, ColumnSpec(), 10, 100, WHOLE))
    assert info.value.path == given
