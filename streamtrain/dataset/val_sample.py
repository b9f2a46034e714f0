"""A bounded, deterministic sample of a dataset's validation rows as raw text: ``val_sample.parquet``.

The promotion guard scores models with different vectorizers on the same
rows, so it needs raw text. The sample (``ValSample``) is the validation
rows with the smallest 64-bit keys ``blake2b(utf8(text), digest_size=8,
person=b"st-valsample")``: every row whose key is below ``below_key``, the
smallest key at which the rows with keys <= it would exceed
``VAL_SAMPLE_ROWS`` rows or ``VAL_SAMPLE_BYTES`` bytes of UTF-8 text (None
while everything fits). It depends only on the multiset of rows offered,
never on their order or chunking; memory is bounded by the bounds plus one
row. An append starts from the recorded sample (``load_sample``), so the
result is the sample of every validation row ever seen. File: Parquet,
columns ``text``, ``label`` (the label name) and ``key`` (uint64), sorted by
key; the manifest's ``val_sample`` (``records.ValSampleRecord``) records it
and its rule; ``read_val_sample`` checks size and sha256 before reading.

Design (the max-heap, why order does not matter): docs/design/nightly.md
"""

from __future__ import annotations

import hashlib
import heapq
from pathlib import Path
from typing import TYPE_CHECKING

from streamtrain.dataset.records import FileRecord, ValSampleRecord
from streamtrain.errors import DataError, writing

if TYPE_CHECKING:
    from streamtrain.dataset.manifest import Manifest

VAL_SAMPLE_ROWS = 5000
VAL_SAMPLE_BYTES = 32 << 20
VAL_SAMPLE_NAME = "val_sample.parquet"
_PERSON = b"st-valsample"


def sample_key(text: str) -> int:
    """A row's 64-bit sampling key, independent of the split rules' hashes (which use no ``person``).

    Args:
        text: the row's raw text.

    Returns:
        ``blake2b(utf8(text), digest_size=8, person=b"st-valsample")`` as a little-endian integer.
    """
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=_PERSON).digest(), "little")


def rule(max_rows: int = VAL_SAMPLE_ROWS, max_bytes: int = VAL_SAMPLE_BYTES) -> str:
    """The sample's rule in one line, as the manifest records it.

    Args:
        max_rows: the bound on rows.
        max_bytes: the bound on UTF-8 text bytes.

    Returns:
        The rule's text.
    """
    return (
        "the validation rows with the smallest keys blake2b-64(utf8(text), person='st-valsample'): "
        f"every row with key < below_key, the smallest key at which the rows with keys <= it exceed "
        f"{max_rows} rows or {max_bytes} bytes of UTF-8 text"
    )


class ValSample:
    """The validation rows added with the smallest keys, bounded in rows and text bytes (the module docstring).

    Args:
        max_rows: the bound on rows (``ValueError`` below 1).
        max_bytes: the bound on UTF-8 text bytes (``ValueError`` below 1).
        below_key: a recorded sample's threshold: rows with keys >= it are never kept; None: no limit yet.
    """

    def __init__(
        self, max_rows: int = VAL_SAMPLE_ROWS, max_bytes: int = VAL_SAMPLE_BYTES, below_key: int | None = None
    ) -> None:
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("max_rows and max_bytes must be positive")
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.below_key = below_key  # rows with keys >= this are never kept; None: no limit yet
        self._heap: list[tuple[int, int, str, str, int]] = []  # (-key, sequence, text, label, text bytes)
        self._seq = 0
        self.text_bytes = 0
        self.changed = False  # a row was kept or evicted since construction

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, text: str, label: str, key: int | None = None) -> None:
        """Offer one validation row; while over a bound, evict every row with the largest key.

        Args:
            text: its raw text.
            label: its label name.
            key: its ``sample_key`` when already known (a recorded sample's); None: computed.
        """
        key = sample_key(text) if key is None else key
        if self.below_key is not None and key >= self.below_key:
            return
        size = len(text.encode("utf-8"))
        heapq.heappush(self._heap, (-key, self._seq, text, label, size))
        self._seq += 1
        self.text_bytes += size
        self.changed = True
        while len(self._heap) > self.max_rows or self.text_bytes > self.max_bytes:
            top = -self._heap[0][0]
            while self._heap and -self._heap[0][0] == top:
                self.text_bytes -= heapq.heappop(self._heap)[4]
            self.below_key = top

    def add_many(self, texts: list[str], labels: list[str]) -> None:
        """``add`` each ``(text, label)`` pair."""
        for text, label in zip(texts, labels):
            self.add(text, label)

    def rows(self) -> list[tuple[int, str, str]]:
        """``(key, text, label)`` of every kept row, by key (then by text and label: a total order)."""
        return sorted((-k, text, label) for k, _, text, label, _ in self._heap)

    def write(self, directory: str | Path, relative: str = VAL_SAMPLE_NAME) -> ValSampleRecord | None:
        """Write the sample as Parquet to ``directory/relative``.

        Args:
            directory: the dataset (or staging) directory.
            relative: the file's path inside it.

        Returns:
            The manifest's ``val_sample`` record; None, and no file, when the sample is empty.

        Raises:
            WriteError: the file system is full or read-only.
        """
        if not self._heap:
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self.rows()
        table = pa.table(
            {
                "text": pa.array([r[1] for r in rows], pa.string()),
                "label": pa.array([r[2] for r in rows], pa.string()),
                "key": pa.array([r[0] for r in rows], pa.uint64()),
            }
        )
        path = Path(directory) / relative
        with writing(path):
            pq.write_table(table, path, compression="zstd")
        return ValSampleRecord(
            **FileRecord.of(directory, relative).__dict__,
            rows=len(rows),
            text_bytes=self.text_bytes,
            below_key=self.below_key,
            max_rows=self.max_rows,
            max_bytes=self.max_bytes,
            rule=rule(self.max_rows, self.max_bytes),
        )


def _read(directory: str | Path, record: ValSampleRecord) -> tuple[list[str], list[str], list[int]]:
    """(texts, label names, keys) of the recorded sample, its file checked first (``DataError``)."""
    path = Path(directory) / record.path
    if issue := record.problem(directory):
        raise DataError(f"validation sample {issue} (the dataset is damaged: prepare it again)", str(path))
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["text", "label", "key"])
    except Exception as exc:  # pyarrow raises several types for a file it cannot decode
        raise DataError(f"cannot read the validation sample: {exc}", str(path)) from exc
    return table.column("text").to_pylist(), table.column("label").to_pylist(), table.column("key").to_pylist()


def read_val_sample(directory: str | Path, manifest: Manifest) -> tuple[list[str], list[str]]:
    """A dataset's validation sample.

    Args:
        directory: the dataset directory.
        manifest: its manifest.

    Returns:
        (texts, label names), by key; ``([], [])`` when it has none.

    Raises:
        DataError: the file differs from its record (size, sha256) or cannot be read.
    """
    record = manifest.val_sample
    if record is None:
        return [], []
    texts, labels, _ = _read(directory, record)
    return texts, labels


def load_sample(directory: str | Path, record: ValSampleRecord | None) -> ValSample:
    """The recorded sample as a ``ValSample`` to add an append's validation rows to.

    Args:
        directory: the dataset directory.
        record: the manifest's ``val_sample``; None: the dataset has none.

    Returns:
        A sample with the record's bounds, threshold and rows (``changed`` False); an empty default one
        when ``record`` is None.

    Raises:
        DataError: as ``read_val_sample``.
    """
    if record is None:
        return ValSample()
    sample = ValSample(record.max_rows, record.max_bytes, record.below_key)
    for text, label, key in zip(*_read(directory, record)):
        sample.add(text, label, key)
    sample.changed = False
    return sample
