"""predict's input: one text per line, or JSON lines with the text in a field, read in batches of ``Item``.

``open_texts`` opens a file (``.gz`` allowed) or ``-`` for standard input as
bytes; ``read_items`` yields its lines ``batch`` at a time, so any input size
runs in constant memory, and a line longer than ``limit`` bytes is never
held whole. Every input line becomes exactly one ``Item``, in order, so
predict's output lines stay aligned with its input lines: a line that cannot
be scored carries an ``error`` (the reason codes of ``io.readers``:
``empty_text``, ``invalid_utf8``, ``field_too_large``, ``invalid_json``,
``not_an_object``, ``missing_field``, ``text_not_a_string``) instead of a
text. A JSONL line may carry an ``id``, which is echoed back. ``auto`` reads
a line that parses as a JSON object as JSONL and any other line as text. A
stream that breaks (a truncated gzip) ends with one ``unreadable_remainder``
item.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from streamtrain.errors import UsageError

INPUT_FORMATS = ("auto", "lines", "jsonl")
_PIECE = 1 << 16


@dataclass
class Item:
    """One input line of predict: its text, or why it has none."""

    line: int  # 1-based input line
    text: str | None = None
    id: Any = None  # a JSONL line's "id", echoed back
    error: str | None = None  # why this line has no text to score


def open_texts(path: str) -> IO[bytes]:
    """The bytes of an input, inflated when it ends in ``.gz``.

    Args:
        path: a file, or ``-`` for standard input.

    Returns:
        A binary stream.

    Raises:
        UsageError: the file does not exist.
    """
    if path == "-":
        return sys.stdin.buffer
    if not os.path.exists(path):
        raise UsageError(f"input not found: {path}")
    return cast(IO[bytes], gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb"))


def _lines(stream: IO[bytes], limit: int) -> Iterator[tuple[bytes | None, str | None]]:
    """(line without its line break, None), or (None, reason) for a line over ``limit`` bytes or a broken stream."""
    while True:
        try:
            raw = stream.readline(limit + 1)
            if not raw:
                return
            if len(raw) > limit and not raw.endswith(b"\n"):
                while (piece := stream.readline(_PIECE)) and not piece.endswith(b"\n"):
                    pass  # the rest of an over-long line, in bounded pieces
                yield None, "field_too_large"
                continue
        except (OSError, EOFError, zlib.error):
            yield None, "unreadable_remainder"
            return
        yield raw.rstrip(b"\r\n"), None


def _item(n: int, raw: bytes, mode: str, field: str) -> Item:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Item(n, error="invalid_utf8")
    stripped = line.strip()
    if mode == "lines" or (mode == "auto" and not stripped.startswith("{")):
        return Item(n, line) if stripped else Item(n, error="empty_text")
    try:
        obj = json.loads(stripped)
    except json.JSONDecodeError:
        if mode == "auto":
            return Item(n, line)
        return Item(n, error="invalid_json" if stripped else "empty_text")
    if not isinstance(obj, dict):
        return Item(n, line) if mode == "auto" else Item(n, error="not_an_object")
    item = Item(n, id=obj.get("id"))
    text = obj.get(field)
    if field not in obj:
        item.error = "missing_field"
    elif not isinstance(text, str):
        item.error = "text_not_a_string"
    elif not text.strip():
        item.error = "empty_text"
    else:
        item.text = text
    return item


def read_items(stream: IO[bytes], mode: str, field: str, batch: int, limit: int) -> Iterator[list[Item]]:
    """Every line of ``stream`` as an ``Item``, in order, ``batch`` at a time.

    Args:
        stream: the input's bytes (``open_texts``).
        mode: ``lines``, ``jsonl`` or ``auto`` (``INPUT_FORMATS``).
        field: the JSONL field holding the text.
        batch: items per list.
        limit: a longer line is an error item (``field_too_large``), never held whole.

    Yields:
        Lists of ``batch`` items (the last may be shorter); a broken stream ends with an
        ``unreadable_remainder`` item.
    """
    items: list[Item] = []
    for n, (raw, problem) in enumerate(_lines(stream, limit), start=1):
        items.append(Item(n, error=problem) if raw is None else _item(n, raw, mode, field))
        if len(items) >= batch:
            yield items
            items = []
    if items:
        yield items
