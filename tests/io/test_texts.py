"""predict's input reader: every input line becomes exactly one item, scored text or a named error, in order."""

from __future__ import annotations

import gzip
import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from streamtrain.io.rejects import REJECT_REASON_TEXT
from streamtrain.io.texts import INPUT_FORMATS, read_items


def items(data: bytes, mode: str = "auto", limit: int = 1 << 20, batch: int = 7):
    return [i for b in read_items(io.BytesIO(data), mode, "text", batch, limit) for i in b]


def expected_lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


LINE = st.one_of(
    st.binary(max_size=60).filter(lambda b: b"\n" not in b),
    st.text(max_size=40).map(lambda t: t.replace("\n", " ").encode("utf-8", "surrogatepass")),
    st.builds(lambda t, i: json.dumps({"text": t, "id": i}).encode(), st.text(max_size=20), st.integers()),
    st.builds(
        lambda v: json.dumps(v).encode(), st.one_of(st.lists(st.integers()), st.dictionaries(st.text(), st.none()))
    ),
    st.sampled_from([b"", b"   ", b"\r", b"{", b'{"text": 3}', b'{"text": ""}', b"\xff\xfe", b"x" * 300]),
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(LINE, max_size=30), st.sampled_from(INPUT_FORMATS), st.booleans())
def test_every_line_is_one_item_in_order(lines, mode, final_newline):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = items(data, mode, limit=200)
    assert [i.line for i in got] == list(range(1, expected_lines(data) + 1))
    for item in got:
        assert (item.text is None) != (item.error is None)
        assert item.error is None or item.error in REJECT_REASON_TEXT
        assert item.text is None or item.text.strip()


def test_each_kind_of_bad_line():
    data = b"\n".join([b"good text", b"", b"caf\xe9", b'{"a": 1}', b'{"text": 5}', b"[1, 2]", b"x" * 300, b"ok"])
    got = items(data, "auto", limit=200)
    assert [i.error for i in got] == [
        None,
        "empty_text",
        "invalid_utf8",
        "missing_field",
        "text_not_a_string",
        None,
        "field_too_large",
        None,
    ]
    assert got[5].text == "[1, 2]"  # auto: not a JSON object, so plain text
    strict = items(b'[1, 2]\n{"text": "t", "id": 9}\nnot json\n', "jsonl")
    assert [(i.error, i.id) for i in strict] == [("not_an_object", None), (None, 9), ("invalid_json", None)]


def test_a_broken_gzip_stream_ends_with_one_item_for_the_rest():
    packed = gzip.compress(b"".join(b"line %d\n" % i for i in range(20_000)))
    stream = gzip.GzipFile(fileobj=io.BytesIO(packed[: len(packed) // 2]))
    got = [i for b in read_items(stream, "lines", "text", 100, 1 << 20) for i in b]
    assert got[-1].error == "unreadable_remainder" and all(i.text for i in got[:-1]) and len(got) > 1000
