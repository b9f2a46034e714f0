"""What every reader is given and what it yields: the types the readers share.

Who owns what:
- ``ColumnSpec``: which columns hold the text and the label, and whether a
  CSV/TSV file has a header row.
- ``Portion`` (and ``WHOLE``, the default): the part of an input to read.
- ``RawChunk``: consecutive records of one source, accepted and rejected;
  ``full`` says when a reader cuts it.

Importable from ``streamtrain.io.readers``, where the rest of the project
takes them from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamtrain.io.rejects import Reject

Column = str | int


@dataclass(frozen=True)
class ColumnSpec:
    """Where text and label live. Several text columns are joined by a space.

    ``header=None`` means: a CSV/TSV has a header unless every column is given
    by position (an int).
    """

    text: tuple[Column, ...] = ("text",)
    label: Column = "label"
    header: bool | None = None

    def csv_has_header(self) -> bool:
        """Whether a CSV/TSV file has a header row: ``header``, or when unset unless every column is by position."""
        if self.header is not None:
            return self.header
        return not all(isinstance(c, int) for c in (*self.text, self.label))

    def to_json(self) -> dict:
        """The spec as a manifest records it."""
        return {"text": list(self.text), "label": self.label, "header": self.header}


@dataclass
class RawChunk:
    """Consecutive records of one source: accepted texts, labels (as strings) and where each came from.

    Plus the records rejected among them (``rejected``).
    """

    path: str
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    rows: list[int | str] = field(default_factory=list)
    rejected: list[Reject] = field(default_factory=list)
    offset: int = field(default=0, compare=False)  # bytes of the source on disk read when cut: for progress

    def __len__(self) -> int:
        """Accepted rows only."""
        return len(self.texts)

    def append(self, text: str, label: str, row: int | str) -> None:
        """Accept one record.

        Args:
            text: its text.
            label: its label.
            row: its 1-based line or row; for a directory per class, the document's path.
        """
        self.texts.append(text)
        self.labels.append(label)
        self.rows.append(row)

    def where(self, i: int) -> tuple[str, int | None]:
        """(path, row) of row ``i`` for error messages."""
        row = self.rows[i]
        if isinstance(row, str):  # directory-per-class: the document file itself
            return row, None
        return self.path, row

    def full(self, chunk_rows: int) -> bool:
        """Whether it holds ``chunk_rows`` records (accepted + rejected): the reader yields it and starts another."""
        return len(self.texts) + len(self.rejected) >= chunk_rows


@dataclass(frozen=True)
class Portion:
    """The part of an input to read; the default: all of it.

    A CSV/TSV/JSONL file is read from byte ``start`` (its rows after an ingested prefix that ends with a line
    break, or for gzip where a gzip member starts) up to byte ``stop`` (the size it was digested at: what a
    writer adds meanwhile waits for the next append); a directory per class, only its ``documents`` (paths
    relative to it).
    """

    start: int = 0
    stop: int | None = None
    documents: frozenset[str] | None = None


WHOLE = Portion()
