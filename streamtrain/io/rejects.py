"""Records the readers read but did not keep: ``Reject``, the reasons, and the excerpt that shows one.

``Reject`` is one rejected record: its file, the line (or row) where it
starts, a reason from ``REJECT_REASONS`` (``REJECT_REASON_TEXT`` has the
words for each, and for prepare's own ``unknown_label``), a printable
excerpt, and for ``unreadable_remainder`` the bytes of the file that were
lost. ``MAX_FIELD_BYTES`` is the default limit on one record, line, text
cell or document, for prepare and predict alike.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_FIELD_BYTES = 1 << 20
"""Default limit on one line, record, text cell or document, in bytes."""

_READER_REASONS = {
    "wrong_column_count": "fewer columns than the column spec needs",
    "unterminated_quote": "a quote that never closes (or closes where a delimiter should follow)",
    "malformed_csv": "malformed CSV quoting",
    "empty_text": "empty or whitespace-only text",
    "empty_label": "empty label",
    "invalid_utf8": "not valid UTF-8",
    "field_too_large": "longer than the field size limit",
    "invalid_json": "invalid JSON",
    "not_an_object": "not a JSON object",
    "missing_field": "a named field is missing",
    "text_not_a_string": "a text field that is not a string",
    "label_not_a_string": "a label that is not a string or a number",
    "unreadable_remainder": "cannot read (corrupt or truncated compressed file?)",
}
REJECT_REASONS: tuple[str, ...] = tuple(_READER_REASONS)
"""Why a reader rejects a record."""
REJECT_REASON_TEXT: dict[str, str] = {
    **_READER_REASONS,
    "unknown_label": "a label the training rows never had",  # no reader says this: prepare does, for test rows
}
"""A short description of every reject reason: the readers' and the one prepare adds."""
_EXCERPT_CHARS = 80


@dataclass(frozen=True)
class Reject:
    """A record that was read but not kept.

    ``row``: for CSV/TSV/JSONL the physical line where the record starts, for
    Parquet the row number, ``None`` for a document file (then ``path`` is the
    document). ``excerpt``: at most 80 printable characters of the raw record
    (control characters and invalid bytes escaped); for ``unreadable_remainder``
    the error instead. ``lost_bytes``: only for ``unreadable_remainder``, the
    bytes of the file on disk (compressed, for gzip) not turned into records,
    from where ``row`` starts to the end of the file: exact for a plain file,
    for gzip an upper bound within one 16 KiB piece of inflated data.
    """

    path: str
    row: int | None
    reason: str
    excerpt: str
    lost_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.reason not in REJECT_REASON_TEXT:
            raise ValueError(f"unknown reject reason {self.reason!r}; expected one of {tuple(REJECT_REASON_TEXT)}")

    def to_json(self) -> dict:
        """The reject as ``rejected.jsonl`` records it (``lost_bytes`` only when set)."""
        out: dict = {"path": self.path, "row": self.row, "reason": self.reason, "excerpt": self.excerpt}
        if self.lost_bytes is not None:
            out["lost_bytes"] = self.lost_bytes
        return out


def excerpt_of(raw: bytes | str) -> str:
    """At most 80 printable characters of ``raw``: control characters and invalid bytes repr-escaped.

    Args:
        raw: a record's bytes (decoded as UTF-8, bad bytes escaped) or text; a trailing line break is dropped.

    Returns:
        The excerpt.
    """
    text = raw[: _EXCERPT_CHARS * 4]
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    text = text.rstrip("\r\n")
    out: list[str] = []
    n = 0
    for ch in text:
        piece = ch if ch.isprintable() else repr(ch)[1:-1]
        n += len(piece)
        if n > _EXCERPT_CHARS:
            break
        out.append(piece)
    return "".join(out)


def error_excerpt_of(exc: BaseException) -> str:
    """The excerpt of an error, ``Type: message``, for an ``unreadable_remainder``."""
    return excerpt_of(f"{type(exc).__name__}: {exc}")
