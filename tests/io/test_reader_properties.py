"""Property tests of the readers: any bytes in, only ``StreamtrainError`` out, every record accounted for.

CSV/TSV and JSONL results are compared with a naive reference that holds the whole
file in memory (``reference_csv``, ``reference_jsonl``): the file split into physical
lines, ``csv.reader`` run from each record's first line, a record whose quoting fails
rejected and reading resumed at the line after its start. The streaming readers must
agree with it exactly while reading in bounded memory, so small ``max_field_bytes``
values are drawn to drive them through their skip-in-pieces paths. Files built from a
known list of N records must come back as accepted + rejected == N.

Runs are derandomized (the same examples every time, no example database) and write
into one module-scoped temporary directory.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import zlib
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamtrain.errors import DataError, StreamtrainError, UsageError
from streamtrain.io.lines import Lines
from streamtrain.io.readers import ColumnSpec, read_chunks
from streamtrain.io.rejects import REJECT_REASONS, Reject

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BOM = b"\xef\xbb\xbf"
BAD_BYTE = "\ue000"  # marks where an invalid UTF-8 byte goes once a file is encoded
LIMITS = st.sampled_from([12, 40, 100, 1 << 20])

Outcome = tuple[list[tuple[str, str, int]], list[tuple[int | None, str]]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reader-properties")


def put(workdir: Path, name: str, data: bytes) -> Path:
    path = workdir / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def read(path: Path, spec: ColumnSpec, chunk_rows: int, limit: int) -> Outcome | StreamtrainError:
    """The readers' outcome: accepted (text, label, row) and (row, reason) rejects, or the error raised."""
    rows: list[tuple[str, str, int]] = []
    rejects: list[Reject] = []
    try:
        for chunk in read_chunks([path], spec, chunk_rows, max_field_bytes=limit):
            assert chunk.path == str(path)
            assert len(chunk.texts) == len(chunk.labels) == len(chunk.rows) == len(chunk)
            assert 0 < len(chunk) + len(chunk.rejected) <= chunk_rows
            rows.extend(zip(chunk.texts, chunk.labels, chunk.rows))  # type: ignore[arg-type]
            rejects.extend(chunk.rejected)
    except StreamtrainError as exc:
        assert isinstance(exc, DataError | UsageError)
        assert str(path) in str(exc), str(exc)  # the message names the file
        return exc
    for r in rejects:
        assert r.reason in REJECT_REASONS
        assert len(r.excerpt) <= 80 and r.excerpt.isprintable(), r.excerpt
        assert (r.lost_bytes is not None) == (r.reason == "unreadable_remainder")
        if r.lost_bytes is not None:
            assert 0 <= r.lost_bytes <= path.stat().st_size
    return rows, [(r.row, r.reason) for r in rejects]


def assert_same(got: Outcome | StreamtrainError, want: Outcome | None) -> None:
    """``want`` None: the reference finds the file unusable, so the readers must raise."""
    if want is None:
        assert isinstance(got, DataError), got
        return
    assert not isinstance(got, StreamtrainError), got
    assert got[1] == want[1]  # rejects first: the more telling difference
    assert got[0] == want[0]


# --------------------------------------------------------------------------- the naive reference


def physical_lines(data: bytes) -> list[bytes]:
    """Lines with their breaks: ``\\r\\n``, ``\\r`` or ``\\n``."""
    lines, pos = [], 0
    for m in re.finditer(rb"\r\n|\r|\n", data):
        lines.append(data[pos : m.end()])
        pos = m.end()
    if pos < len(data):
        lines.append(data[pos:])
    return lines


def eol_len(raw: bytes) -> int:
    return 2 if raw.endswith(b"\r\n") else 1 if raw.endswith((b"\r", b"\n")) else 0


def csv_items(data: bytes, delimiter: str, limit: int) -> list[tuple[int, list[str] | str]]:
    """Every record of a CSV file as (first line, fields or reject reason), the whole file in memory."""
    data = data.removeprefix(BOM)
    lines = physical_lines(data)
    items: list[tuple[int, list[str] | str]] = []
    i = 0
    while i < len(lines):
        start = i
        seen = {"last": start, "reason": None}

        def feed(start=start, seen=seen):
            size = 0
            for k in range(start, len(lines)):
                raw = lines[k]
                size += len(raw)
                if seen["reason"] is None:
                    if len(raw) - eol_len(raw) > limit or (k > start and size - eol_len(raw) > limit):
                        seen["reason"] = "field_too_large"
                    else:
                        try:
                            raw.decode("utf-8")
                        except UnicodeDecodeError:
                            seen["reason"] = "invalid_utf8"
                seen["last"] = k
                yield raw.decode("utf-8", "surrogateescape")

        reader = csv.reader(feed(), delimiter=delimiter, strict=True)
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            quote = seen["last"] > start or str(exc).startswith("unexpected end of data")
            items.append((start + 1, "unterminated_quote" if quote else "malformed_csv"))
            i = start + 1
            continue
        items.append((start + 1, seen["reason"] or fields))
        i = seen["last"] + 1
    return items


def reference_csv(data: bytes, delimiter: str, spec: ColumnSpec, limit: int) -> Outcome | None:
    items = csv_items(data, delimiter, limit)
    names: list[str] = []
    if spec.csv_has_header():
        if not items or isinstance(items[0][1], str):
            return None  # no header, or one that cannot be read
        names = [h.strip() for h in items.pop(0)[1]]
    if any(isinstance(c, str) and c not in names for c in (*spec.text, spec.label)):
        return None
    text_idx = [c if isinstance(c, int) else names.index(c) for c in spec.text]
    label_idx = spec.label if isinstance(spec.label, int) else names.index(spec.label)
    width = max(*text_idx, label_idx) + 1
    accepted, rejects = [], []
    for row, fields in items:
        if isinstance(fields, str):
            rejects.append((row, fields))
        elif not fields:
            continue  # a blank line
        elif len(fields) < width:
            rejects.append((row, "wrong_column_count"))
        else:
            text = " ".join(fields[i] for i in text_idx)
            label = fields[label_idx].strip()
            if not text.strip():
                rejects.append((row, "empty_text"))
            elif not label:
                rejects.append((row, "empty_label"))
            else:
                accepted.append((text, label, row))
    return accepted, rejects


def label_str(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def json_label_ok(value: object) -> bool:
    """A JSONL label is a string or a finite number: not a list, object, boolean, null, NaN or infinity."""
    if isinstance(value, bool) or value is None:
        return False
    return isinstance(value, str | int) or (isinstance(value, float) and math.isfinite(value))


def utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def reference_jsonl(data: bytes, spec: ColumnSpec, limit: int) -> Outcome:
    accepted, rejects = [], []
    for row, raw in enumerate(physical_lines(data.removeprefix(BOM)), 1):
        if len(raw) - eol_len(raw) > limit:
            rejects.append((row, "field_too_large"))
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            rejects.append((row, "invalid_utf8"))
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            rejects.append((row, "invalid_json"))
            continue
        if not isinstance(obj, dict):
            rejects.append((row, "not_an_object"))
            continue
        if any(c not in obj for c in (*spec.text, spec.label)):
            rejects.append((row, "missing_field"))
            continue
        parts = [obj[c] for c in spec.text if obj[c] is not None]
        if not all(isinstance(p, str) for p in parts):
            rejects.append((row, "text_not_a_string"))
            continue
        text, value = " ".join(parts), obj[spec.label]
        label = label_str(value)
        if not text.strip():
            rejects.append((row, "empty_text"))
        elif not json_label_ok(value):
            rejects.append((row, "label_not_a_string"))
        elif not label:
            rejects.append((row, "empty_label"))
        elif not (utf8_ok(text) and utf8_ok(label)):
            rejects.append((row, "invalid_utf8"))
        else:
            accepted.append((text, label, row))
    return accepted, rejects


def encode(text: str, encoding: str) -> bytes:
    """``text`` in ``encoding`` (unencodable characters as ``?``), each BAD_BYTE an invalid UTF-8 byte."""
    return b"\xff".join(part.encode(encoding, "replace") for part in text.split(BAD_BYTE))


# --------------------------------------------------------------------------- strategies

FIELD = st.one_of(
    st.text(alphabet=st.sampled_from([*'ab ,\t"\n\r\x00é☃', BAD_BYTE]), max_size=10),
    st.integers(0, 150).map(lambda n: "x" * n),  # over the small limits
)
CSV_LAYOUTS = {
    "positional": (ColumnSpec(text=(1,), label=0), None),
    "named": (ColumnSpec(text=("text",), label="label"), ["label", "text"]),
    "two texts": (ColumnSpec(text=("title", "body"), label="y"), ["y", "title", "body", "extra"]),
}


def csv_line(fields: list[str], delimiter: str, eol: str) -> str:
    out = []
    for f in fields:
        if any(c in f for c in (delimiter, '"', "\r", "\n")) or (f == "" and len(fields) == 1):
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return delimiter.join(out) + eol


@st.composite
def csv_files(draw) -> dict:
    """A CSV/TSV file written from a known list of records, some of them bad in ways that keep their bounds."""
    spec, header = CSV_LAYOUTS[draw(st.sampled_from(sorted(CSV_LAYOUTS)))]
    delimiter = draw(st.sampled_from([",", "\t"]))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    records = draw(st.lists(st.lists(FIELD, min_size=1, max_size=4), max_size=25))
    text = (csv_line(header, delimiter, eol) if header else "") + "".join(csv_line(r, delimiter, eol) for r in records)
    if records and draw(st.booleans()):
        text = text[: -len(eol)]  # no line break after the last record
    data = encode(text, draw(st.sampled_from(["utf-8", "latin-1"])))
    if draw(st.booleans()):
        data = BOM + data
    return {
        "data": data,
        "spec": spec,
        "delimiter": delimiter,
        "records": len(records),
        "gz": draw(st.booleans()),
        "chunk_rows": draw(st.integers(1, 5)),
        "limit": draw(LIMITS),
    }


JSON_TEXT = st.text(alphabet=st.sampled_from(list('ab \t"\\\n\r\x00é☃\u2028{}[]')), max_size=10)
JSON_VALUE = st.one_of(
    JSON_TEXT,
    JSON_TEXT,
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.lists(st.integers(0, 3), max_size=2),
    st.sampled_from([float("nan"), float("inf"), {"a": 1}, {}]),
)
JUNK_CHAR = st.characters(blacklist_characters="\r\n\ufeff", blacklist_categories=("Cs",))
JUNK = st.builds(  # a line that is not blank: its first character is not whitespace
    str.__add__, JUNK_CHAR.filter(lambda c: not c.isspace()), st.text(alphabet=JUNK_CHAR, max_size=11)
)


@st.composite
def jsonl_files(draw) -> dict:
    """A JSONL file written from a known list of records (one per non-blank line), good and bad."""
    lines: list[str] = []
    records = 0
    for _ in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from(["object", "object", "object", "junk", "bad byte", "long", "blank"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", "  ", "\t"])))
            continue
        records += 1
        if kind == "object":
            obj = {key: draw(JSON_VALUE) for key in ("text", "label", "other") if draw(st.integers(0, 5))}
            lines.append(json.dumps(obj, ensure_ascii=draw(st.booleans())))
        elif kind == "junk":
            lines.append(draw(JUNK))
        elif kind == "bad byte":
            lines.append('{"text": "caf' + BAD_BYTE + '", "label": 1}')
        else:
            lines.append(json.dumps({"text": "y" * draw(st.integers(0, 150)), "label": "long"}))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    data = encode("".join(line + eol for line in lines), draw(st.sampled_from(["utf-8", "latin-1"])))
    if draw(st.booleans()):
        data = BOM + data
    return {
        "data": data,
        "records": records,
        "gz": draw(st.booleans()),
        "chunk_rows": draw(st.integers(1, 5)),
        "limit": draw(LIMITS),
    }


NASTY = [b'"', b",", b"\t", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xc3", BOM, b"{", b"}", b"\\", b" ", b'""']


@st.composite
def mangled(draw, data: bytes) -> bytes:
    """``data`` with a few bytes inserted, replaced or deleted, or re-encoded as UTF-16."""
    if draw(st.integers(0, 9)) == 0:
        return data.decode("utf-8", "replace").encode(draw(st.sampled_from(["utf-16", "utf-16-le"])))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "replace", "delete"]))
        if op == "delete":
            data = data[:pos] + data[pos + draw(st.integers(1, 4)) :]
        else:
            piece = draw(st.sampled_from(NASTY))
            data = data[:pos] + piece + data[pos + (op == "replace") :]
    return data


def csv_name(case: dict) -> str:
    return ("f.tsv" if case["delimiter"] == "\t" else "f.csv") + (".gz" if case["gz"] else "")


# --------------------------------------------------------------------------- CSV / TSV


@SETTINGS
@given(case=csv_files())
def test_csv_every_written_record_is_accounted_for(workdir, case):
    path = put(workdir, csv_name(case), case["data"])
    got = read(path, case["spec"], case["chunk_rows"], case["limit"])
    want = reference_csv(case["data"], case["delimiter"], case["spec"], case["limit"])
    assert_same(got, want)
    if want is not None:
        accepted, rejected = want
        assert len(accepted) + len(rejected) == case["records"]


@SETTINGS
@given(case=csv_files(), data=st.data())
def test_mangled_csv_matches_the_reference(workdir, case, data):
    raw = data.draw(mangled(case["data"]))
    path = put(workdir, csv_name(case), raw)
    got = read(path, case["spec"], case["chunk_rows"], case["limit"])
    assert_same(got, reference_csv(raw, case["delimiter"], case["spec"], case["limit"]))


def chunks_in_full(path: Path, case: dict) -> list | str:
    """Everything ``read_chunks`` gives: each chunk's rows, rejects (excerpts and lost bytes too) and offset."""
    try:
        return [
            (chunk.texts, chunk.labels, chunk.rows, [vars(r) for r in chunk.rejected], chunk.offset)
            for chunk in read_chunks([path], case["spec"], case["chunk_rows"], max_field_bytes=case["limit"])
        ]
    except StreamtrainError as exc:
        return str(exc)


@SETTINGS
@given(case=csv_files(), data=st.data())
def test_lines_without_quotes_read_past_csv_reader_give_what_it_gives(workdir, case, data):
    raw = data.draw(mangled(case["data"]))
    path = put(workdir, csv_name(case), raw)
    fast = chunks_in_full(path, case)
    with mock.patch.object(Lines, "plain", lambda self, avoid: b""):  # every line through csv.reader
        assert chunks_in_full(path, case) == fast


# --------------------------------------------------------------------------- JSONL

JSONL_SPEC = ColumnSpec()


@SETTINGS
@given(case=jsonl_files())
def test_jsonl_every_written_record_is_accounted_for(workdir, case):
    path = put(workdir, "f.jsonl.gz" if case["gz"] else "f.jsonl", case["data"])
    got = read(path, JSONL_SPEC, case["chunk_rows"], case["limit"])
    want = reference_jsonl(case["data"], JSONL_SPEC, case["limit"])
    assert_same(got, want)
    assert len(want[0]) + len(want[1]) == case["records"]


@SETTINGS
@given(case=jsonl_files(), data=st.data())
def test_mangled_jsonl_matches_the_reference(workdir, case, data):
    raw = data.draw(mangled(case["data"]))
    path = put(workdir, "f.jsonl.gz" if case["gz"] else "f.jsonl", raw)
    got = read(path, JSONL_SPEC, case["chunk_rows"], case["limit"])
    assert_same(got, reference_jsonl(raw, JSONL_SPEC, case["limit"]))


# --------------------------------------------------------------------------- random bytes, every reader

SPECS = [ColumnSpec(), ColumnSpec(text=(1,), label=0), ColumnSpec(text=(0, 2), label=1)]


@SETTINGS
@given(
    raw=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"\x1f\x8b\x08\x00" + b)),
    name=st.sampled_from(["r.csv", "r.tsv", "r.jsonl", "r.csv.gz", "r.jsonl.gz", "r.parquet", "r.parquet.gz"]),
    spec=st.sampled_from(SPECS),
    limit=LIMITS,
)
def test_random_bytes_at_every_reader(workdir, raw, name, spec, limit):
    path = workdir / name
    path.write_bytes(raw)  # as is: for .gz names, mostly not gzip at all
    got = read(path, spec, 2, limit)
    if "jsonl" in name and not spec.csv_has_header():  # columns by position: refused for JSONL
        assert isinstance(got, UsageError)
        return
    if ".parquet" in name:
        assert isinstance(got, DataError)  # random bytes are never a Parquet file
        return
    if name.endswith(".gz"):
        try:
            plain: bytes | None = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):  # not gzip, truncated, corrupt
            plain = None
        if plain is None:
            # cannot be inflated: refused (a header was expected) or what was read plus one unreadable_remainder
            if not isinstance(got, StreamtrainError):
                accepted, rejected = got
                assert rejected and rejected[-1][1] == "unreadable_remainder"
                assert [r for r, reason in rejected if reason == "unreadable_remainder"] == [rejected[-1][0]]
                assert all(row < rejected[-1][0] for _, _, row in accepted)
            return
        raw = plain
    if "jsonl" in name:
        assert_same(got, reference_jsonl(raw, spec, limit))
    else:
        assert_same(got, reference_csv(raw, "\t" if ".tsv" in name else ",", spec, limit))


# --------------------------------------------------------------------------- Parquet

CELL = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("ab \t\né☃")), max_size=8), st.just("é" * 30))


@SETTINGS
@given(
    texts=st.lists(CELL, max_size=20),
    data=st.data(),
    int_texts=st.booleans(),
    chunk_rows=st.integers(1, 5),
    limit=st.sampled_from([40, 1 << 20]),
)
def test_parquet_every_row_is_accounted_for(workdir, texts, data, int_texts, chunk_rows, limit):
    n = len(texts)
    labels = data.draw(
        st.one_of(
            st.lists(st.one_of(st.none(), st.sampled_from(["a", " ", "", "b "])), min_size=n, max_size=n),
            st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n),
        )
    )
    text_col = pa.array([None if t is None else len(t) for t in texts], pa.int64()) if int_texts else texts
    table = pa.table({"text": pa.array(text_col, pa.int64() if int_texts else pa.string()), "label": labels})
    path = workdir / "p.parquet"
    pq.write_table(table, path, row_group_size=data.draw(st.integers(1, 8)))
    got = read(path, ColumnSpec(), chunk_rows, limit)
    assert not isinstance(got, StreamtrainError), got
    accepted, rejected = got
    want_accepted, want_rejected = [], []
    for row, (text, label) in enumerate(zip(table.column("text").to_pylist(), labels), 1):
        if text is not None and not isinstance(text, str):
            want_rejected.append((row, "text_not_a_string"))
        elif text is not None and len(text.encode()) > limit:
            want_rejected.append((row, "field_too_large"))
        elif text is None or not text.strip():
            want_rejected.append((row, "empty_text"))
        elif not label_str(label):
            want_rejected.append((row, "empty_label"))
        else:
            want_accepted.append((text, label_str(label), row))
    assert rejected == want_rejected
    assert accepted == want_accepted
    assert len(accepted) + len(rejected) == n


@SETTINGS
@given(data=st.data())
def test_mangled_parquet_only_refused_or_accounted_for(workdir, data):
    path = workdir / "m.parquet"
    n = data.draw(st.integers(0, 30))
    pq.write_table(
        pa.table({"text": [f"text {i}" for i in range(n)], "label": [i % 3 for i in range(n)]}), path, row_group_size=7
    )
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(raw))
    got = read(path, ColumnSpec(), 4, 1 << 20)
    if isinstance(got, StreamtrainError):
        assert isinstance(got, DataError)
        return
    accepted, rejected = got
    rows = sorted([r for _, _, r in accepted] + [r for r, _ in rejected])
    assert rows == list(range(1, len(rows) + 1))  # each row once, in order, from the first
    lost = [r for r, reason in rejected if reason == "unreadable_remainder"]
    assert lost == [] or lost == [rows[-1]]  # at most one, and nothing read after it


# --------------------------------------------------------------------------- directory per class


@SETTINGS
@given(
    docs=st.lists(
        st.tuples(
            st.sampled_from(["pos", "neg"]),
            st.one_of(st.binary(max_size=60), st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass"))),
            st.sampled_from(["plain", "gz", "cut gz"]),
        ),
        min_size=1,
        max_size=12,
    ),
    limit=st.sampled_from([20, 1 << 20]),
)
def test_every_document_is_accounted_for(workdir, docs, limit):
    root = workdir / "docs"
    if root.exists():
        for f in sorted(root.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
    for i, (label, body, how) in enumerate(docs):
        (root / label).mkdir(parents=True, exist_ok=True)
        if how == "plain":
            (root / label / f"{i:02d}.txt").write_bytes(body)
        else:
            packed = gzip.compress(body)
            (root / label / f"{i:02d}.txt.gz").write_bytes(packed[: len(packed) // 2] if how == "cut gz" else packed)
    got = read(root, ColumnSpec(), 3, limit)
    assert not isinstance(got, StreamtrainError), got
    accepted, rejected = got
    assert len(accepted) + len(rejected) == len(docs)
    assert all(row is None for row, _ in rejected)
    assert all(label in ("pos", "neg") and text.strip() for text, label, _ in accepted)
