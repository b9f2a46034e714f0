"""The split index's sorted runs kept out of its merged in-memory runs: in scratch files, or loaded and held.

- ``SortedRun``: one sorted run of distinct uint32 fingerprints and their values, either a file this index
  wrote to scratch (``in_file``, read with ``os.pread``, never mapped: a file cut short is a ``DataError``,
  not a signal) or arrays in memory (``held``). In memory it keeps each partition's bounds (a fingerprint's
  partition: its top ``PARTITION_BITS`` bits) and a fence, every ``FENCE_EVERY``-th key: ``lookup`` finds
  each query's block of ``FENCE_EVERY`` keys by the fence and reads only those blocks, adjacent ones in one
  read, so a run in a file costs memory only for the blocks a lookup reads.
- ``DiskFilter``: two bits set per key of those runs, in ``FILTER_BITS_PER_KEY`` bits a key, at most
  ``2**MAX_FILTER_LOG2`` bits: a query with either bit clear is in none of them and reads nothing.
- ``write_run``: partitions' sorted, distinct keys and values as a new run file (keys, then values);
  ``merge_runs``: two runs of disjoint keys as one, a partition at a time.
- ``saved_runs``: the runs of an ``.npz`` that ``BandIndex.save_added`` wrote (stored, not compressed),
  checked (type, shape, sorted and distinct) a block at a time with plain reads: copied to scratch as runs
  in files, or held.

Rationale and measurements: docs/design/split.md ("The index")
"""

from __future__ import annotations

import itertools
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from streamtrain.errors import DataError, writing

PARTITION_BITS = 6  # a fingerprint's partition: its top bits (64 partitions)
# Where each partition's fingerprints start, and the end of the last: bounds for ``np.searchsorted``.
PARTITION_STARTS = np.arange((1 << PARTITION_BITS) + 1, dtype=np.uint64) << np.uint64(32 - PARTITION_BITS)
FENCE_EVERY = 64  # keys per block a lookup reads; the fence holds one key in this many (1/64 of a run's keys)
LOOKUP_BLOCKS = 4096  # blocks a lookup reads at a time: at most 1 MiB of keys (and their values) in memory
# The filter: 8 bits a key on disk (2 set per key: about 5% of misses pass), from 2**20 bits (128 KiB) up to
# 2**27 (16 MiB, 16 M keys); past that it stays that size and lets more misses through.
FILTER_BITS_PER_KEY = 8
MIN_FILTER_LOG2, MAX_FILTER_LOG2 = 20, 27
CHECK_BLOCK = 1 << 20  # keys a saved run is checked by at a time
_LOCAL_HEADER = 30  # a zip local file header's fixed part; then the name and the extra field


class SortedRun:
    """A sorted run of ``length`` distinct fingerprints and their values: in a file, or held in memory.

    Made by ``in_file`` and ``held``. A run in a file is read with ``os.pread``, never mapped: what a read
    copies is all it costs, and a file cut short is an error, not a signal.

    Args:
        length: the keys.
        dtype: the values' type.
        keys: held: the keys; values: theirs. None: in ``path``, keys then values.
        path: the file (``close`` deletes it).
    """

    def __init__(
        self,
        length: int,
        dtype: np.dtype,
        keys: np.ndarray | None = None,
        values: np.ndarray | None = None,
        path: Path | None = None,
        layout: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.length, self.dtype, self.path = length, np.dtype(dtype), path
        self._held = (keys, values) if keys is not None and values is not None else None
        self._fh: BinaryIO | None = open(path, "rb", buffering=0) if path is not None else None  # noqa: SIM115
        if layout is None:
            outline = _Outline()
            for start in range(0, length, CHECK_BLOCK):
                outline.add(self._keys(start, min(start + CHECK_BLOCK, length)))
            layout = outline.layout()
        self.bounds, self.fence = layout

    @classmethod
    def held(cls, keys: np.ndarray, values: np.ndarray) -> SortedRun:
        """A run held in memory."""
        return cls(len(keys), values.dtype, keys, values)

    @classmethod
    def in_file(
        cls, path: Path, length: int, dtype: np.dtype, layout: tuple[np.ndarray, np.ndarray] | None = None
    ) -> SortedRun:
        """The run of ``length`` keys this index wrote to ``path`` (``write_run``: keys, then values).

        ``layout``: its partition bounds and fence as ``_Outline`` gave them while the keys were written;
        None: read from the file.
        """
        return cls(length, dtype, path=path, layout=layout)

    def _keys(self, lo: int, hi: int) -> np.ndarray:
        """Keys ``lo`` to ``hi``."""
        if self._held is not None:
            return self._held[0][lo:hi]
        return self._read(4 * lo, 4 * (hi - lo), np.dtype(np.uint32))

    def _values(self, lo: int, hi: int) -> np.ndarray:
        """Values ``lo`` to ``hi``."""
        if self._held is not None:
            return self._held[1][lo:hi]
        size = self.dtype.itemsize
        return self._read(4 * self.length + size * lo, size * (hi - lo), self.dtype)

    def _read(self, at: int, nbytes: int, dtype: np.dtype) -> np.ndarray:
        """``nbytes`` of the file from ``at``, as ``dtype``."""
        out = np.empty(nbytes // dtype.itemsize, dtype)
        self._read_into([memoryview(out.data).cast("B")], [at])
        return out

    def _read_into(self, views: list[memoryview], offsets: list[int]) -> None:
        """Fill each of ``views`` from the file at its offset; a file cut short is a ``DataError``."""
        assert self._fh is not None and self.path is not None, "a run in a file, not closed"
        fd = self._fh.fileno()
        for view, at in zip(views, offsets):
            if os.preadv(fd, [view], at) != len(view):
                raise DataError("split index scratch file shorter than its run", str(self.path))

    def read(self, partition: int) -> tuple[np.ndarray, np.ndarray]:
        """Partition ``partition``'s keys and values."""
        lo, hi = int(self.bounds[partition]), int(self.bounds[partition + 1])
        return self._keys(lo, hi), self._values(lo, hi)

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of the sorted fingerprints ``queries`` the run holds, and those ones' values.

        A run in a file reads only the blocks of ``FENCE_EVERY`` keys the queries fall in, at most
        ``LOOKUP_BLOCKS`` of them at a time (adjacent ones in one read), and the values of the ranges
        read that hold a hit.

        Returns:
            (a bool per query, the values of those it holds).
        """
        if not self.length or not len(queries):
            return np.zeros(len(queries), bool), np.zeros(0, self.dtype)
        if self._held is not None:
            keys, values = self._held
            at = positions(keys, queries)
            hit = at >= 0
            return hit, values[at[hit]]
        block = np.searchsorted(self.fence, queries, side="right") - 1  # non-decreasing: the queries are sorted
        hit, found = np.zeros(len(queries), bool), np.zeros(len(queries), self.dtype)
        blocks = np.unique(block[block >= 0])  # none: every query is below the run's first key
        for group in range(0, len(blocks), LOOKUP_BLOCKS):
            part = blocks[group : group + LOOKUP_BLOCKS]
            lo, hi = int(np.searchsorted(block, part[0])), int(np.searchsorted(block, part[-1], side="right"))
            part_hit, part_found = self._lookup_blocks(part, queries[lo:hi])
            hit[lo:hi], found[lo:hi] = part_hit, part_found
        return hit, found[hit]

    def _lookup_blocks(self, blocks: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``lookup`` in a run in a file, for sorted ``queries`` that all fall in the sorted ``blocks``.

        Returns:
            (a bool per query, a value per query: the run's where it holds the query, else 0).
        """
        cut = np.flatnonzero(np.diff(blocks) != 1) + 1  # ranges of adjacent blocks: one read each
        firsts = blocks[np.r_[0, cut]] * FENCE_EVERY
        lasts = np.minimum(blocks[np.r_[cut - 1, -1]] * FENCE_EVERY + FENCE_EVERY, self.length)
        starts = np.zeros(len(firsts) + 1, np.int64)  # where each range starts in ``gathered``
        np.cumsum(lasts - firsts, out=starts[1:])
        gathered = np.empty(int(starts[-1]), np.uint32)
        view = memoryview(gathered.data).cast("B")
        self._read_into([view[4 * a : 4 * b] for a, b in itertools.pairwise(starts.tolist())], (4 * firsts).tolist())
        at = positions(gathered, queries)
        hit = at >= 0
        found = np.zeros(len(queries), self.dtype)
        if hit.any():
            ranges = np.unique(np.searchsorted(starts, at[hit], side="right") - 1)  # the ranges that hold a hit
            size = self.dtype.itemsize
            values = np.zeros(len(gathered), self.dtype)
            vview = memoryview(values.data).cast("B")
            self._read_into(
                [vview[size * int(starts[r]) : size * int(starts[r + 1])] for r in ranges.tolist()],
                [4 * self.length + size * int(firsts[r]) for r in ranges.tolist()],
            )
            found[hit] = values[at[hit]]
        return hit, found

    def close(self) -> None:
        """Let the keys go; a run in a file closed and the file deleted."""
        self._held = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _Outline:
    """A run's partition bounds and fence, from its keys added in order, a block at a time."""

    def __init__(self) -> None:
        self.at = 0
        self.bounds = np.zeros(len(PARTITION_STARTS), np.int64)
        self.fence = [np.zeros(0, np.uint32)]

    def add(self, keys: np.ndarray) -> None:
        """The run's next ``keys``."""
        self.bounds += np.searchsorted(keys, PARTITION_STARTS)
        self.fence.append(keys[(-self.at) % FENCE_EVERY :: FENCE_EVERY].copy())
        self.at += len(keys)

    def layout(self) -> tuple[np.ndarray, np.ndarray]:
        """(partition bounds, fence: every ``FENCE_EVERY``-th key)."""
        return self.bounds, np.concatenate(self.fence)


class DiskFilter:
    """Two bits of ``2**log2_bits`` for each key added: a key with either bit clear is in none of the runs.

    Args:
        log2_bits: the filter's size: ``2**log2_bits`` bits (``sized`` picks it).
    """

    def __init__(self, log2_bits: int) -> None:
        self.log2_bits = log2_bits
        self.bits = np.zeros(1 << (log2_bits - 3), np.uint8)

    @staticmethod
    def sized(keys: int) -> int:
        """The ``log2_bits`` for ``keys`` keys: ``FILTER_BITS_PER_KEY`` bits a key, within the bounds."""
        wanted = max(1, keys * FILTER_BITS_PER_KEY - 1).bit_length()
        return min(max(wanted, MIN_FILTER_LOG2), MAX_FILTER_LOG2)

    def _slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A fingerprint's two bits: its top bits, and those of it times an odd constant (mod 2**32)."""
        shift = np.uint32(32 - self.log2_bits)
        with np.errstate(over="ignore"):
            mixed = keys.astype(np.uint32) * np.uint32(0x9E3779B1)
        return keys >> shift, mixed >> shift

    def add(self, keys: np.ndarray) -> None:
        """Set the bits of fingerprints ``keys``."""
        for slot in self._slots(keys):
            np.bitwise_or.at(self.bits, slot >> np.uint32(3), np.left_shift(1, slot & np.uint32(7)).astype(np.uint8))

    def add_run(self, run: SortedRun) -> None:
        """Set the bits of a run's keys, a partition at a time."""
        for p in range(len(PARTITION_STARTS) - 1):
            self.add(run.read(p)[0])

    def may_hold(self, keys: np.ndarray) -> np.ndarray:
        """Per fingerprint: False where no run holds it; True where one may."""
        out = np.ones(len(keys), bool)
        for slot in self._slots(keys):
            out &= ((self.bits[slot >> np.uint32(3)] >> (slot & np.uint32(7)).astype(np.uint8)) & 1).astype(bool)
        return out


def write_run(path: Path, parts: Iterable[tuple[np.ndarray, np.ndarray]], total: int, dtype: np.dtype) -> SortedRun:
    """Write partitions' sorted, distinct keys and values as they come: a run that ``close`` deletes.

    Args:
        path: the new file (in scratch).
        parts: per partition, in order, its (keys, values); the keys of one lie in that partition only.
        total: the keys of all parts.
        dtype: the values' type.

    Raises:
        WriteError: the file system refused the write.
    """
    dtype = np.dtype(dtype)
    outline = _Outline()
    with writing(path), open(path, "wb") as fh:
        fh.truncate(total * (4 + dtype.itemsize))
        for keys, values in parts:
            at = outline.at
            os.pwrite(fh.fileno(), np.ascontiguousarray(keys, np.uint32).tobytes(), 4 * at)
            os.pwrite(fh.fileno(), np.ascontiguousarray(values, dtype).tobytes(), 4 * total + dtype.itemsize * at)
            outline.add(keys)
    assert outline.at == total, "the parts hold ``total`` keys"
    return SortedRun.in_file(path, total, dtype, outline.layout())


def merge_runs(path: Path, older: SortedRun, newer: SortedRun) -> SortedRun:
    """``older`` and ``newer`` (disjoint keys) as one new run at ``path``, a partition at a time; both closed.

    Raises:
        WriteError: the file system refused the write.
    """

    def parts() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for p in range(len(PARTITION_STARTS) - 1):
            (k1, v1), (k2, v2) = older.read(p), newer.read(p)
            yield merged_parts([k1, k2], [v1, v2], older.dtype)

    merged = write_run(path, parts(), older.length + newer.length, older.dtype)
    older.close()
    newer.close()
    return merged


def positions(run: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Where each of the sorted ``queries`` is in the sorted ``run`` of distinct keys (int64), -1 where it is not."""
    from streamtrain.vectorize import kernels  # numba: imported on first use

    if kernels.AVAILABLE:
        return kernels.lookup_sorted(run, queries)
    if not len(run):
        return np.full(len(queries), -1, np.int64)
    at = np.minimum(np.searchsorted(run, queries), len(run) - 1)
    return np.where(run[at] == queries, at, -1)


def merged_pair(k1: np.ndarray, v1: np.ndarray, k2: np.ndarray, v2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted runs (uint32 keys) as one, with their values, in one pass where numba is there."""
    from streamtrain.vectorize import kernels

    if kernels.AVAILABLE:
        return kernels.merge_sorted(k1, v1, k2, v2)
    merged, values = np.empty(len(k1) + len(k2), np.uint32), np.empty(len(k1) + len(k2), v1.dtype)
    at = np.searchsorted(k1, k2) + np.arange(len(k2))
    other = np.ones(len(merged), dtype=bool)
    other[at] = False
    merged[at], values[at] = k2, v2
    merged[other], values[other] = k1, v1
    return merged, values


def merged_parts(keys: list[np.ndarray], values: list[np.ndarray], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted runs of one partition as one sorted run, with their values."""
    if not keys:
        return np.zeros(0, np.uint32), np.zeros(0, dtype)
    if len(keys) == 1:
        return keys[0], values[0]
    if len(keys) == 2:
        return merged_pair(keys[0], values[0].astype(dtype, copy=False), keys[1], values[1].astype(dtype, copy=False))
    joined = np.concatenate(keys)
    order = np.argsort(joined, kind="stable")
    return joined[order], np.concatenate(values)[order]


def saved_runs(
    path: Path, value_dtype: np.dtype, scratch: Path | None, name: Callable[[], Path]
) -> tuple[tuple[int, int], list[SortedRun]]:
    """The ``(bands, rows)`` and the runs of a ``save_added`` file, checked: copied to ``scratch``, or held.

    Args:
        path: the file.
        value_dtype: the values' type the runs must have.
        scratch: where the runs are copied to (``name()`` gives each copy's path); None: held in memory.
        name: see ``scratch``.

    Raises:
        DataError: naming the file, when it is unreadable, compressed, or does not hold such runs.
    """
    runs: list[SortedRun] = []
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as fh:
            members = {info.filename: _member(fh, info) for info in archive.infolist()}
            with np.load(path, allow_pickle=False) as doc:
                saved = (int(doc["bands"]), int(doc["rows"]))
                count = int(doc["runs"])
            for i in range(count):
                keys, values = members[f"keys_{i}.npy"], members[f"values_{i}.npy"]
                runs.append(_copied(path, fh, keys, values, value_dtype, name() if scratch is not None else None))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        for run in runs:
            run.close()
        raise DataError(f"unreadable split index: {exc}", str(path)) from exc
    except BaseException:
        for run in runs:
            run.close()
        raise
    return saved, runs


def _member(fh: BinaryIO, info: zipfile.ZipInfo) -> tuple[int, tuple[int, ...], np.dtype]:
    """A stored ``.npy`` member's data offset in the file, its shape and type."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{info.filename} is compressed")
    fh.seek(info.header_offset)
    header = fh.read(_LOCAL_HEADER)
    if len(header) != _LOCAL_HEADER or header[:4] != b"PK\x03\x04":
        raise ValueError(f"no local header for {info.filename}")
    name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    fh.seek(info.header_offset + _LOCAL_HEADER + name_length + extra_length)
    version = np.lib.format.read_magic(fh)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(fh)
    if fortran and len(shape) > 1:
        raise ValueError(f"{info.filename} is in Fortran order")
    return fh.tell(), shape, dtype


def _copied(
    path: Path,
    fh: BinaryIO,
    keys: tuple[int, tuple, np.dtype],
    values: tuple[int, tuple, np.dtype],
    dtype: np.dtype,
    copy: Path | None,
) -> SortedRun:
    """A saved run, checked a block at a time as it is read: copied to ``copy`` (a run in a file), or held."""
    (keys_at, keys_shape, keys_dtype), (values_at, values_shape, values_dtype) = keys, values
    if keys_dtype != np.uint32 or values_dtype != dtype or keys_shape != values_shape or len(keys_shape) != 1:
        raise DataError("split index arrays of the wrong type or shape", str(path))
    length = keys_shape[0]
    key_blocks = _blocks(path, fh, keys_at, length, np.dtype(np.uint32))
    value_blocks = _blocks(path, fh, values_at, length, np.dtype(dtype))
    if copy is None:
        return SortedRun.held(_sorted_keys(path, key_blocks, None), np.concatenate([np.zeros(0, dtype), *value_blocks]))
    outline = _Outline()  # the copy's bounds and fence, kept as its keys are written
    with writing(copy), open(copy, "wb") as out:
        _sorted_keys(path, key_blocks, out, outline)
        for block in value_blocks:
            out.write(block.tobytes())
    return SortedRun.in_file(copy, length, dtype, outline.layout())


def _blocks(path: Path, fh: BinaryIO, at: int, length: int, dtype: np.dtype) -> Iterator[np.ndarray]:
    """An array of the file read ``CHECK_BLOCK`` items at a time."""
    for start in range(0, length, CHECK_BLOCK):
        count = min(CHECK_BLOCK, length - start)
        fh.seek(at + dtype.itemsize * start)
        block = np.frombuffer(fh.read(dtype.itemsize * count), dtype)
        if len(block) != count:
            raise DataError("split index file shorter than its runs", str(path))
        yield block


def _sorted_keys(
    path: Path, blocks: Iterator[np.ndarray], out: BinaryIO | None, outline: _Outline | None = None
) -> np.ndarray:
    """The keys of ``blocks``, checked sorted and distinct: written to ``out``, or (None) returned whole.

    ``outline``, with ``out``: each block written is added to it (the copy's bounds and fence).
    """
    held, last = [np.zeros(0, np.uint32)], -1
    for block in blocks:
        if int(block[0]) <= last or (len(block) > 1 and not (block[1:] > block[:-1]).all()):
            raise DataError("split index keys are not sorted and distinct", str(path))
        last = int(block[-1])
        if out is None:
            held.append(block)
        else:
            out.write(block.tobytes())
            if outline is not None:
                outline.add(block)
    return np.concatenate(held)
