"""Scratch store of hashed n-gram counts between prepare's passes.

Raw text is tokenized once; ``Spill.append`` writes each chunk's counts
(with its provisional labels, split codes and row ids: a ``SpillPart``) to
a numbered part on disk, and each later pass (feature selection, shard
writing) iterates the parts back in order. The parts live inside prepare's
staging directory and are deleted with it. Each read reports its progress
(``streamtrain.progress``: rows and bytes of the parts read) under the name
of the pass that reads it, given in order when the spill is made.

A part (``part-NNNNNN.bin``) is a few arrays' bytes one after another; how
each is stored stays in the ``Spill`` (the file is scratch, read only by the
process that wrote it). Compact, and exact: what is read back equals what was
written, whatever the values.

- Row lengths instead of ``indptr``.
- Column indices as gaps within their row (a row's first index as it is),
  modulo 2**32: a low 16-bit half stored as it is (uniform for hashed
  buckets: no codec shrinks it) and a high half, nearly all zeros for 2**21
  buckets.
- Counts, labels, lengths and the high half in the narrowest of uint8,
  uint16 and uint32 that holds every value exactly (counts that are not
  such integers stay float32), each compressed by zstd (level 1).
- Row ids as their first one when they count up by one (the first pass's
  always do), else as an array.

Why this format, and what it measured: docs/design/prepare.md, "The n-gram spill".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from streamtrain.errors import writing
from streamtrain.progress import Progress

log = logging.getLogger(__name__)

_CODEC = pa.Codec("zstd", compression_level=1)
_NARROW = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))
_RAW = frozenset({"low"})  # arrays no codec shrinks: stored as they are


@dataclass
class SpillPart:
    """One chunk's hashed n-gram counts and what the later passes need of its rows."""

    counts: sp.csr_matrix  # rows x hash buckets
    labels: np.ndarray  # int32, provisional label ids
    splits: np.ndarray  # uint8 split codes
    row_ids: np.ndarray  # int64


@dataclass(frozen=True)
class _Stored:
    """One array of a part file: its dtype and length as stored, and its bytes in the file."""

    dtype: np.dtype
    count: int
    nbytes: int  # in the file: compressed unless the array is in ``_RAW``


@dataclass(frozen=True)
class _Layout:
    """How one part file holds its arrays (in this order) and what the part's own arrays were."""

    arrays: dict[str, _Stored]
    dtypes: dict[str, np.dtype]  # labels, splits, row_ids: the dtypes they came with
    first_row_id: int | None  # the row ids are first_row_id + 0, 1, ...; None: stored as "row_ids"

    @property
    def nbytes(self) -> int:
        """The part file's size."""
        return sum(a.nbytes for a in self.arrays.values())

    @property
    def rows(self) -> int:
        """The part's rows (one length each)."""
        return self.arrays["lengths"].count


def _narrow(values: np.ndarray) -> np.ndarray:
    """``values`` in the narrowest of uint8, uint16 and uint32 that holds each of them exactly.

    Args:
        values: a 1-D numeric array.

    Returns:
        A new array of that type; ``values`` themselves when none holds them (negative, -0.0, fractional, NaN
        or over 2**32 - 1); uint8 when there are none.
    """
    if not values.size:
        return values.astype(np.uint8)
    high = float(values.max())  # exact for every value a narrow type holds; compared exactly with ints below
    if not values.min() >= 0 or (values.dtype.kind == "f" and np.signbit(values).any()):  # NaN, -0.0 too
        return values
    for dtype in _NARROW:
        if high <= np.iinfo(dtype).max:
            narrow = values.astype(dtype)
            return narrow if values.dtype.kind in "iu" or np.array_equal(narrow, values) else values
    return values


def _row_gaps(indices: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Each index minus the one before it in its row (a row's first: itself), modulo 2**32, as uint32.

    Exact for any indices below 2**32, sorted or not (``_row_sums`` undoes it); small where rows are sorted.
    """
    values = indices.astype(np.uint32)
    gaps = np.empty_like(values)
    gaps[:1] = values[:1]
    np.subtract(values[1:], values[:-1], out=gaps[1:])  # wraps below 0 where a row starts, set right below
    starts = indptr[:-1][np.diff(indptr) > 0]
    gaps[starts] = values[starts]
    return gaps


def _row_sums(gaps: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """The indices ``_row_gaps`` took ``gaps`` (uint32, overwritten) from, as int32."""
    np.cumsum(gaps, dtype=np.uint32, out=gaps)  # modulo 2**32, as the gaps were taken
    starts = indptr[:-1]
    before = np.zeros(len(starts), np.uint32)  # the sum of every row before: 0 for the first
    later = starts > 0
    before[later] = gaps[starts[later] - 1]
    gaps -= np.repeat(before, np.diff(indptr))
    return gaps.view(np.int32)  # the indices: below 2**31


def _encode(part: SpillPart) -> tuple[dict[str, np.ndarray], int | None]:
    """The arrays that hold ``part`` (by name, in file order) and its first row id when the ids count up by one."""
    counts = part.counts
    indptr = counts.indptr.astype(np.int64, copy=False)
    nnz = int(indptr[-1])
    gaps = _row_gaps(counts.indices[:nnz], indptr)
    arrays = {
        "lengths": _narrow(np.diff(indptr)),
        "low": gaps.astype(np.uint16),
        "high": _narrow(gaps >> 16),
        "counts": _narrow(counts.data[:nnz].astype(np.float32, copy=False)),
        "labels": _narrow(part.labels),
        "splits": part.splits,
    }
    ids = part.row_ids
    if len(ids) and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids), dtype=ids.dtype)):
        return arrays, int(ids[0])
    arrays["row_ids"] = _narrow(ids)
    return arrays, None


def _decode(buffer: memoryview, layout: _Layout, n_cols: int) -> SpillPart:
    """The part that ``_encode`` gave ``layout`` for, from the part file's bytes.

    Raises:
        OSError: the bytes do not decompress to what was written.
    """
    z, at = {}, 0
    for name, stored in layout.arrays.items():
        raw: memoryview | pa.Buffer = buffer[at : at + stored.nbytes]
        at += stored.nbytes
        if name not in _RAW:
            raw = _CODEC.decompress(raw, decompressed_size=stored.count * stored.dtype.itemsize)
        z[name] = np.frombuffer(raw, stored.dtype, stored.count)
    rows = len(z["lengths"])
    indptr = np.zeros(rows + 1, np.int64)
    np.cumsum(z["lengths"], dtype=np.int64, out=indptr[1:])
    gaps = z.pop("high").astype(np.uint32)
    gaps <<= 16
    gaps |= z.pop("low")
    indices = _row_sums(gaps, indptr)
    counts = sp.csr_matrix((z.pop("counts").astype(np.float32), indices, indptr), shape=(rows, n_cols))
    dtypes = layout.dtypes
    if layout.first_row_id is None:
        row_ids = z["row_ids"].astype(dtypes["row_ids"])
    else:
        row_ids = np.arange(layout.first_row_id, layout.first_row_id + rows, dtype=dtypes["row_ids"])
    return SpillPart(counts, z["labels"].astype(dtypes["labels"]), z["splits"].astype(dtypes["splits"]), row_ids)


class Spill:
    """The spilled parts in ``directory``; iterating it reads them back.

    Args:
        directory: where the parts go (created).
        n_cols: hash buckets, the counts' columns (at most 2**31: the indices come back as int32).
        passes: the names of the passes that will read the spill back, in order, for their progress.
    """

    def __init__(self, directory: Path, n_cols: int, passes: Sequence[str] = ()) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.n_cols = n_cols
        self._layouts: list[_Layout] = []  # per part written, in order
        self._passes = list(passes)

    @property
    def parts(self) -> int:
        """Parts written."""
        return len(self._layouts)

    @property
    def sizes(self) -> list[int]:
        """Bytes of each part on disk, in order."""
        return [layout.nbytes for layout in self._layouts]

    def append(self, part: SpillPart) -> None:
        """Write ``part`` as the next numbered part file.

        Args:
            part: one chunk's counts (CSR, indices below 2**31) and rows.

        Raises:
            WriteError: the file system is full or read-only.
        """
        path = self.directory / f"part-{self.parts:06d}.bin"
        arrays, first_row_id = _encode(part)
        stored = {}
        with writing(path), open(path, "wb") as fh:
            for name, array in arrays.items():
                array = np.ascontiguousarray(array)
                data = array.data if name in _RAW else _CODEC.compress(array)
                fh.write(data)  # not tofile: a failed write then carries its errno
                stored[name] = _Stored(array.dtype, array.size, memoryview(data).nbytes)
        dtypes = {"labels": part.labels.dtype, "splits": part.splits.dtype, "row_ids": part.row_ids.dtype}
        self._layouts.append(_Layout(stored, dtypes, first_row_id))

    def __iter__(self) -> Iterator[SpillPart]:
        """Every part, in the order written, reporting progress under the next pass's name.

        Yields:
            Each part as written.

        Raises:
            OSError: a part file is shorter than written, or its bytes are not what was written.
        """
        name = self._passes.pop(0) if self._passes else "reading the spill"
        total, rows = sum(self.sizes), sum(layout.rows for layout in self._layouts)
        log.debug(f"{name}: {self.parts} spilled parts, {total} bytes, {total / max(rows, 1):.1f} a row")
        with Progress(name, total) as progress:
            for i, layout in enumerate(self._layouts):
                path = self.directory / f"part-{i:06d}.bin"
                with open(path, "rb") as fh:
                    buffer = fh.read(layout.nbytes)
                if len(buffer) < layout.nbytes:
                    raise OSError(f"{path}: a scratch part is shorter than written (was it truncated?)")
                try:
                    part = _decode(memoryview(buffer), layout, self.n_cols)
                except (OSError, ValueError) as exc:
                    raise OSError(f"{path}: a scratch part is not what was written ({exc})") from exc
                del buffer
                yield part
                progress.advance(len(part.labels), layout.nbytes)
