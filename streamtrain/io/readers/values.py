"""Typed cell values to a record's text and label: shared by the JSONL and Parquet readers (CSV fields are strings).

Who owns what:
- ``text_of``: the text of a record's text values (nulls skipped, the rest
  joined by a space), or why it is rejected (``text_not_a_string``,
  ``empty_text``).
- ``label_of``: a label value as a string (``2.0`` is ``"2"``); ``""`` when
  empty.
"""

from __future__ import annotations


def text_of(values: list[object]) -> tuple[str, str | None]:
    """(text, reject reason or None): null parts are skipped, the rest joined by a space."""
    parts = []
    for v in values:
        if v is None:
            continue
        if not isinstance(v, str):
            return "", "text_not_a_string"
        parts.append(v)
    text = " ".join(parts)
    return text, (None if text.strip() else "empty_text")


def label_of(value: object) -> str:
    """The label as a string, ``""`` when empty; a float that is integral loses its ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()
