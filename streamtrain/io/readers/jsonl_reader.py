"""The JSONL reader: one JSON object per line of a plain or gzip file, in chunks (``read_jsonl``).

Who owns what:
- ``read_jsonl``: a file's lines as ``RawChunk`` records; a line over the
  limit is skipped in pieces (``field_too_large``), a file that cannot be
  read past some point ends with one ``unreadable_remainder``.
- ``jsonl_record``: one line to an accepted record, or the reason it is
  rejected (``invalid_utf8``, ``invalid_json``, ``not_an_object``,
  ``missing_field``, ``text_not_a_string``, ``empty_text``,
  ``label_not_a_string``, ``empty_label``, ``field_too_large``).
- ``json_label``/``encodable``: which JSON values can be a label, and which
  strings can be written as UTF-8.

Columns are given by name; by position is a ``UsageError``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

from streamtrain.errors import UsageError
from streamtrain.io.lines import Broken, Lines, eol_len
from streamtrain.io.readers.base import Column, ColumnSpec, Portion, RawChunk
from streamtrain.io.readers.csv_reader import prefix
from streamtrain.io.readers.values import label_of, text_of
from streamtrain.io.rejects import Reject, excerpt_of


def read_jsonl(
    path: str, spec: ColumnSpec, chunk_rows: int, max_field_bytes: int, portion: Portion
) -> Iterator[RawChunk]:
    """The records of a JSONL file, one JSON object per line, in chunks.

    Args:
        path: the file (``.gz`` allowed).
        spec: the text and label columns.
        chunk_rows: the most records (accepted + rejected) in one chunk.
        max_field_bytes: a longer line is rejected (``field_too_large``), never held whole.
        portion: the part of the file to read.

    Yields:
        Chunks of accepted records and rejects, in file order; a blank line is not a record.

    Raises:
        UsageError: a column given by position.
        DataError: the file cannot be opened.
    """
    if any(isinstance(c, int) for c in (*spec.text, spec.label)):
        raise UsageError(f"{path}: JSONL columns must be given by name, not position")
    columns = (*spec.text, spec.label)
    chunk = RawChunk(path)
    lines = prefix(path, spec, max_field_bytes, portion.start, None)[0]
    with Lines(path, max_field_bytes, start=portion.start, stop=portion.stop) as src:
        src.line = lines
        while True:
            u, row = src.u, src.line + 1
            lost = None
            try:
                raw = src.next_line()
                if raw is not None and src.long:
                    lost = src.lost_from(u)  # now, while the start of the line is still mapped
                    for _ in src.rest():
                        pass
            except Broken as broken:
                lost = src.lost_from(u) if lost is None else lost
                chunk.rejected.append(Reject(path, row, "unreadable_remainder", excerpt_of(str(broken)), lost))
                break
            if raw is None:
                break
            reject = jsonl_record(raw, row, columns, spec, chunk, max_field_bytes)
            if reject is not None:
                chunk.rejected.append(Reject(path, row, reject, excerpt_of(raw)))
            if chunk.full(chunk_rows):
                chunk.offset = src.bytes_read
                yield chunk
                chunk = RawChunk(path)
        chunk.offset = src.bytes_read
    if chunk.texts or chunk.rejected:
        yield chunk


def jsonl_record(
    raw: bytes, row: int, columns: tuple[Column, ...], spec: ColumnSpec, chunk: RawChunk, limit: int
) -> str | None:
    """Append the record on line ``row`` to ``chunk``, or say why it is rejected.

    Args:
        raw: the line, with its line break.
        row: its 1-based line number.
        columns: the text and label fields, each must be present.
        spec: the columns.
        chunk: where an accepted record goes.
        limit: a longer line is rejected (``field_too_large``).

    Returns:
        The reject reason; None when accepted, or for a blank line (not a record).
    """
    if len(raw) - eol_len(raw) > limit:
        return "field_too_large"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    if not line.strip():
        return None  # a blank line is not a record
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError, or an integer too long to convert; too deep
        return "invalid_json"
    if not isinstance(obj, dict):
        return "not_an_object"
    if any(c not in obj for c in columns):
        return "missing_field"
    text, reason = text_of([obj[c] for c in spec.text])
    if reason is not None:
        return reason
    if not json_label(obj[spec.label]):
        return "label_not_a_string"
    label = label_of(obj[spec.label])
    if not label:
        return "empty_label"
    if not (encodable(text) and encodable(label)):
        return "invalid_utf8"
    chunk.append(text, label, row)
    return None


def json_label(value: object) -> bool:
    """Whether a JSON value can be a label: a string or a finite number (``True`` is not the class ``"True"``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)


def encodable(text: str) -> bool:
    r"""False for a string with lone surrogates (JSON ``\ud800``): it cannot be written as UTF-8."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
