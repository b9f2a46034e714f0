"""The spill's byte format: a ``SpillPart``'s rows as frames, one per shuffle bucket, and back (``spill``).

A frame (``encode_frames``) is a 40-byte header (``_HEADER``), then a few
arrays' bytes one after another; it is scratch, read only by the process that
wrote it. Compact, and exact: what is read back equals what was written,
whatever the values.

- Row lengths instead of ``indptr``.
- Column indices as gaps within their row (a row's first index as it is),
  modulo 2**32: a low 16-bit half stored as it is (uniform for hashed
  buckets: no codec shrinks it) and a high half, nearly all small for 2**21
  buckets.
- Counts in the narrowest of uint8, uint16 and uint32 that holds every value
  exactly (counts that are not such integers stay float32); the high halves
  and the counts compressed together by zstd (level 1; each thread reuses its
  own ``zstandard`` contexts).
- Lengths, labels and row-id gaps (a frame's first row id in its header) in
  their narrowest type, as they are.

Why this layout, and what it measured: docs/design/prepare.md, "The n-gram spill".
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import zstandard

_LEVEL = 1  # zstd's compression level
_NARROW = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))
_DTYPES = (*_NARROW, np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint64))
_MAGIC = 0x53545350  # "STSP"
_HEADER = np.dtype(
    [
        ("magic", "<u4"),
        ("rows", "<u4"),
        ("nnz", "<u8"),
        ("first_row_id", "<i8"),
        ("packed_bytes", "<u8"),  # the high halves and counts, compressed together
        ("types", "u1", (5,)),  # _DTYPES codes of lengths, high halves, counts, labels, row-id gaps
        ("pad", "u1", (3,)),
    ]
)

_HEADER_STRUCT = struct.Struct("<IIQqQ8B")  # ``_HEADER``'s fields, the five types and three pad bytes unpacked
assert _HEADER_STRUCT.size == _HEADER.itemsize


@dataclass
class SpillPart:
    """Rows' hashed n-gram counts and what the later passes need of them: one chunk's, or one bucket's."""

    counts: sp.csr_matrix  # rows x hash buckets
    labels: np.ndarray  # int32, provisional label ids
    splits: np.ndarray  # uint8 split codes
    row_ids: np.ndarray  # int64

    def take(self, order: np.ndarray) -> SpillPart:
        """Rows in ``order`` (positions: a permutation or any selection)."""
        return SpillPart(self.counts[order], self.labels[order], self.splits[order], self.row_ids[order])


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


def _code(array: np.ndarray) -> int:
    """``array``'s dtype as its position in ``_DTYPES`` (``ValueError`` for any other)."""
    return _DTYPES.index(array.dtype)


def encode_frames(part: SpillPart, bounds: np.ndarray) -> Frames:
    """Rows ``bounds[g]`` to ``bounds[g + 1]`` of ``part`` as one frame each, for every non-empty g.

    ``part``'s arrays are encoded once and the frames' headers made at once; each frame then compresses its
    slice of the high halves and counts, and the frames are joined once.
    """
    counts = part.counts
    indptr = counts.indptr.astype(np.int64, copy=False)
    gaps = _row_gaps(counts.indices[: indptr[-1]], indptr)
    lengths, low, high = _narrow(np.diff(indptr)), gaps.astype(np.uint16), _narrow(gaps >> 16)
    values, labels = _narrow(counts.data[: indptr[-1]].astype(np.float32, copy=False)), _narrow(part.labels)
    groups = np.flatnonzero(np.diff(bounds))
    starts, stops = bounds[groups], bounds[groups + 1]
    ids = part.row_ids.astype(np.int64, copy=False)
    id_gaps = np.diff(ids, prepend=ids[:1])
    id_gaps[starts] = 0  # a frame's first row id is in its header
    id_gaps = _narrow(id_gaps)
    headers = np.zeros(len(groups), _HEADER)
    headers["magic"], headers["rows"] = _MAGIC, stops - starts
    headers["nnz"], headers["first_row_id"] = indptr[stops] - indptr[starts], ids[starts]
    headers["types"] = [_code(lengths), _code(high), _code(values), _code(labels), _code(id_gaps)]
    rows, entries = (starts.tolist(), stops.tolist()), (indptr[starts].tolist(), indptr[stops].tolist())
    packed = _packed(high, values, *entries)
    headers["packed_bytes"] = [len(p) for p in packed]
    head, size = headers.tobytes(), _HEADER.itemsize
    by_row, by_entry = [a.data for a in (lengths, labels, id_gaps)], low.data  # sliced by element
    pieces: list = []
    for i, (lo, hi, e_lo, e_hi) in enumerate(zip(*rows, *entries)):
        pieces += [head[i * size : (i + 1) * size], by_row[0][lo:hi], by_entry[e_lo:e_hi], packed[i]]
        pieces += [by_row[1][lo:hi], by_row[2][lo:hi]]
    sizes = size + headers["packed_bytes"].astype(np.int64) + headers["nnz"].astype(np.int64) * low.itemsize
    sizes += (stops - starts) * (lengths.itemsize + labels.itemsize + id_gaps.itemsize)
    return Frames(groups, sizes, b"".join(pieces))


@dataclass(frozen=True)
class Frames:
    """``encode_frames``' result: frame ``i`` holds group ``groups[i]``'s rows and is ``sizes[i]`` bytes of ``data``."""

    groups: np.ndarray
    sizes: np.ndarray  # int64
    data: bytes  # the frames one after another


def _packed(high: np.ndarray, values: np.ndarray, starts: list[int], stops: list[int]) -> list[bytes]:
    """Each frame's high halves and counts (entries ``starts[i]`` to ``stops[i]``), one after the other, compressed."""
    compress = _zstd().compressor.compress
    highs, counts = high.data, values.data  # sliced by element
    return [compress(highs[lo:hi].tobytes() + counts[lo:hi].tobytes()) for lo, hi in zip(starts, stops)]


@dataclass
class _Zstd:
    """One thread's zstd contexts: made once and reused, as a context may not be shared between threads."""

    compressor: zstandard.ZstdCompressor = field(default_factory=lambda: zstandard.ZstdCompressor(level=_LEVEL))
    decompressor: zstandard.ZstdDecompressor = field(default_factory=zstandard.ZstdDecompressor)


_CONTEXTS = threading.local()


def _zstd() -> _Zstd:
    """This thread's zstd contexts."""
    got = getattr(_CONTEXTS, "zstd", None)
    if got is None:
        got = _CONTEXTS.zstd = _Zstd()
    return got


@dataclass
class _Arrays:
    """The arrays of a run of frames, gathered frame by frame (``_gather``) before one decoding (``decode_frames``)."""

    lengths: list[np.ndarray] = field(default_factory=list)
    low: list[np.ndarray] = field(default_factory=list)
    high: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    id_gaps: list[np.ndarray] = field(default_factory=list)
    first_ids: list[int] = field(default_factory=list)


def _gather(data: bytes, at: int, out: _Arrays) -> int:
    """Add the arrays of the frame at offset ``at`` of ``data`` (``encode_frames``') to ``out``; the next offset.

    Raises:
        ValueError: ``data`` does not hold such a frame there.
    """
    if at + _HEADER.itemsize > len(data):
        raise ValueError("cut short in a frame's header")
    magic, rows, nnz, first_id, packed_bytes, *types = _HEADER_STRUCT.unpack_from(data, at)
    if magic != _MAGIC or any(types[5:]) or max(types[:5]) >= len(_DTYPES):
        raise ValueError(f"no frame at byte {at}")
    t_lengths, t_high, t_values, t_labels, t_ids = (_DTYPES[c] for c in types[:5])
    sizes = [rows * t_lengths.itemsize, nnz * 2, packed_bytes, rows * t_labels.itemsize, rows * t_ids.itemsize]
    at += _HEADER.itemsize
    if at + sum(sizes) > len(data):
        raise ValueError("cut short in a frame")
    out.lengths.append(np.frombuffer(data, t_lengths, rows, at))
    out.low.append(np.frombuffer(data, np.uint16, nnz, at + sizes[0]))
    packed = memoryview(data)[at + sizes[0] + sizes[1] : at + sum(sizes[:3])]
    unpacked = _decompress(packed, nnz * (t_high.itemsize + t_values.itemsize))
    out.high.append(np.frombuffer(unpacked, t_high, nnz))
    out.values.append(np.frombuffer(unpacked, t_values, nnz, nnz * t_high.itemsize))
    out.labels.append(np.frombuffer(data, t_labels, rows, at + sum(sizes[:3])))
    out.id_gaps.append(np.frombuffer(data, t_ids, rows, at + sum(sizes[:4])))
    out.first_ids.append(first_id)
    return at + sum(sizes)


def _decompress(packed: memoryview, size: int) -> bytes:
    """``packed`` decompressed, which must be ``size`` bytes (``ValueError`` when it is not, or is not zstd)."""
    try:
        if zstandard.frame_content_size(packed) != size:  # checked first: a damaged size is not allocated
            raise ValueError(f"a frame's packed arrays do not say {size} bytes")
        unpacked = _zstd().decompressor.decompress(packed)
    except zstandard.ZstdError as exc:
        raise ValueError(f"a frame's packed arrays do not decompress ({exc})") from exc
    if len(unpacked) != size:
        raise ValueError(f"a frame's packed arrays are {len(unpacked)} bytes, not {size}")
    return unpacked


def decode_frames(data: bytes, n_cols: int, split: int) -> SpillPart:
    """The rows of the frames ``data`` holds one after another (``encode_frames``'), all of split ``split``.

    The frames are parsed one by one and their arrays decoded together.

    Raises:
        ValueError: ``data`` is not such frames.
    """
    got, at = _Arrays(), 0
    while at < len(data):
        at = _gather(data, at, got)
    if not got.first_ids:
        empty = sp.csr_matrix((0, n_cols), dtype=np.float32)
        return SpillPart(empty, np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(0, np.int64))
    lengths = np.concatenate(got.lengths).astype(np.int64)
    rows = len(lengths)
    indptr = np.zeros(rows + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    gaps = np.concatenate(got.high).astype(np.uint32)
    gaps <<= 16
    gaps |= np.concatenate(got.low)
    indices = _row_sums(gaps, indptr)
    values = np.concatenate(got.values).astype(np.float32)
    frame_rows = np.array([len(a) for a in got.lengths], np.int64)
    starts = np.concatenate([[0], np.cumsum(frame_rows)[:-1]])
    row_ids = np.cumsum(np.concatenate(got.id_gaps).astype(np.int64))  # a frame's first gap is 0
    row_ids += np.repeat(np.array(got.first_ids, np.int64) - row_ids[starts], frame_rows)
    matrix = sp.csr_matrix((values, indices, indptr), shape=(rows, n_cols))
    labels = np.concatenate(got.labels).astype(np.int32)
    return SpillPart(matrix, labels, np.full(rows, split, np.uint8), row_ids)
