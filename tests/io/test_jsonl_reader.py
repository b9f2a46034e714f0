"""``io.readers.jsonl_reader``: one line to a record or the reason it is rejected, and which values are labels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from streamtrain.errors import UsageError
from streamtrain.io.readers.base import WHOLE, ColumnSpec, RawChunk
from streamtrain.io.readers.jsonl_reader import encodable, json_label, jsonl_record, read_jsonl

SPEC = ColumnSpec(text=("title", "text"))
COLUMNS = ("title", "text", "label")


def record(raw: bytes, limit: int = 100) -> tuple[str | None, RawChunk]:
    chunk = RawChunk("f.jsonl")
    return jsonl_record(raw, 4, COLUMNS, SPEC, chunk, limit), chunk


def test_an_accepted_record_is_appended_with_its_row():
    reason, chunk = record(b'{"title": "T", "text": null, "label": 2.0}\n')
    assert reason is None
    assert (chunk.texts, chunk.labels, chunk.rows) == (["T"], ["2"], [4])


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"  \r\n", None),  # a blank line is not a record
        (b'{"title": "' + b"x" * 200 + b'"}\n', "field_too_large"),
        (b'{"title": "\xff"}\n', "invalid_utf8"),
        (b'{"title": \n', "invalid_json"),
        (b"[1, 2]\n", "not_an_object"),
        (b'{"title": "t", "label": "a"}\n', "missing_field"),
        (b'{"title": 3, "text": "t", "label": "a"}\n', "text_not_a_string"),
        (b'{"title": " ", "text": null, "label": "a"}\n', "empty_text"),
        (b'{"title": "t", "text": "u", "label": true}\n', "label_not_a_string"),
        (b'{"title": "t", "text": "u", "label": " "}\n', "empty_label"),
        (b'{"title": "\\ud800", "text": "u", "label": "a"}\n', "invalid_utf8"),
    ],
)
def test_rejected_records_are_not_appended(raw, reason):
    got, chunk = record(raw)
    assert got == reason
    assert len(chunk) == 0


def test_the_limit_does_not_count_the_line_break():
    line = b'{"title": "t", "text": "u", "label": "a"}'
    assert record(line + b"\r\n", limit=len(line))[0] is None
    assert record(line + b"\r\n", limit=len(line) - 1)[0] == "field_too_large"


@pytest.mark.parametrize(
    "value, ok",
    [
        ("a", True),
        (3, True),
        (2.5, True),
        (True, False),
        (None, False),
        (math.nan, False),
        (math.inf, False),
        ([1], False),
        ({}, False),
    ],
)
def test_json_label(value, ok):
    assert json_label(value) is ok


def test_encodable():
    assert encodable("plain") and encodable("é ✓")
    assert not encodable("a\ud800b")


def test_read_jsonl_refuses_columns_by_position(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n')
    with pytest.raises(UsageError, match="JSONL columns must be given by name"):
        list(read_jsonl(str(path), ColumnSpec(text=(0,), label=1), 10, 1 << 20, WHOLE))
