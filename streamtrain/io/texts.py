"""predict's input: raw texts, one per line, or JSON lines with the text in a field, read in batches.

``open_texts`` opens a file (``.gz`` allowed) or ``-`` for standard input;
``read_texts`` yields the texts ``batch`` at a time, so any input size runs
in constant memory. ``auto`` reads a line that parses as a JSON object as
JSONL and any other line as plain text.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from collections.abc import Iterator

from streamtrain.errors import DataError, UsageError

INPUT_FORMATS = ("auto", "lines", "jsonl")


def _text_of(line: str, mode: str, field: str, where: tuple[str, int]) -> str:
    if mode == "lines":
        return line
    stripped = line.strip()
    if mode == "auto" and not stripped.startswith("{"):
        return line
    try:
        obj = json.loads(stripped)
    except json.JSONDecodeError as exc:
        if mode == "auto":
            return line
        raise DataError(f"invalid JSON: {exc.msg}", *where) from exc
    if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
        if mode == "auto" and not isinstance(obj, dict):
            return line
        raise DataError(f"expected a JSON object with a string field {field!r}", *where)
    return obj[field]


def read_texts(stream: io.TextIOBase, name: str, mode: str, field: str, batch: int) -> Iterator[list[str]]:
    texts: list[str] = []
    for row, line in enumerate(stream, start=1):
        texts.append(_text_of(line.rstrip("\r\n"), mode, field, (name, row)))
        if len(texts) >= batch:
            yield texts
            texts = []
    if texts:
        yield texts


def open_texts(path: str) -> io.TextIOBase:
    """A text stream of ``path`` (``-``: standard input); undecodable bytes become U+FFFD."""
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    if not os.path.exists(path):
        raise UsageError(f"input not found: {path}")
    raw = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115 - the wrapper owns it
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
