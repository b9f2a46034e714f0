"""Scratch store of hashed n-gram counts between prepare's passes.

Raw text is tokenized once; ``Spill.append`` writes each chunk's counts
(with its provisional labels, split codes and row ids: a ``SpillPart``) to
a numbered part on disk, and each later pass (feature selection, shard
writing) iterates the parts back in order. A part is its arrays' raw bytes
one after another (``part-NNNNNN.bin``; their dtypes and lengths stay in
the ``Spill``: the file is scratch, read only by the process that wrote
it). The parts live inside prepare's staging directory and are deleted
with it. Each read reports its progress (``streamtrain.progress``: rows and
bytes of the parts read) under the name of the pass that reads it, given
in order when the spill is made.

Why raw arrays, not ``.npz``: docs/design/prepare.md
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from streamtrain.errors import writing
from streamtrain.progress import Progress


@dataclass
class SpillPart:
    """One chunk's hashed n-gram counts and what the later passes need of its rows."""

    counts: sp.csr_matrix  # rows x hash buckets
    labels: np.ndarray  # int32, provisional label ids
    splits: np.ndarray  # uint8 split codes
    row_ids: np.ndarray  # int64


class Spill:
    """The spilled parts in ``directory``; iterating it reads them back.

    Args:
        directory: where the parts go (created).
        n_cols: hash buckets, the counts' columns.
        passes: the names of the passes that will read the spill back, in order, for their progress.
    """

    def __init__(self, directory: Path, n_cols: int, passes: Sequence[str] = ()) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.n_cols = n_cols
        self.parts = 0
        self.sizes: list[int] = []  # bytes of each part on disk
        self._layouts: list[dict[str, tuple[np.dtype, int]]] = []  # per part: array -> (dtype, count), in file order
        self._passes = list(passes)

    def append(self, part: SpillPart) -> None:
        """Write ``part`` as the next numbered part file.

        Args:
            part: one chunk's counts and rows.

        Raises:
            WriteError: the file system is full or read-only.
        """
        path = self.directory / f"part-{self.parts:06d}.bin"
        arrays = {
            "indptr": part.counts.indptr.astype(np.int64, copy=False),
            "indices": part.counts.indices.astype(np.int32, copy=False),
            "data": part.counts.data.astype(np.float32, copy=False),
            "labels": part.labels,
            "splits": part.splits,
            "row_ids": part.row_ids,
        }
        layout, size = {}, 0
        with writing(path), open(path, "wb") as fh:
            for name, array in arrays.items():
                array = np.ascontiguousarray(array)
                fh.write(array.data)  # not tofile: a failed write then carries its errno
                layout[name] = (array.dtype, array.size)
                size += array.nbytes
        self._layouts.append(layout)
        self.sizes.append(size)
        self.parts += 1

    def __iter__(self) -> Iterator[SpillPart]:
        """Every part, in the order written, reporting progress under the next pass's name.

        Yields:
            Each part as written.

        Raises:
            OSError: a part file is shorter than written.
        """
        name = self._passes.pop(0) if self._passes else "reading the spill"
        with Progress(name, sum(self.sizes)) as progress:
            for i in range(self.parts):
                path = self.directory / f"part-{i:06d}.bin"
                with open(path, "rb") as fh:  # the arrays in the order written
                    z = {key: np.fromfile(fh, dtype, count) for key, (dtype, count) in self._layouts[i].items()}
                if any(len(z[key]) != count for key, (_, count) in self._layouts[i].items()):
                    raise OSError(f"{path}: a scratch part is shorter than written (was it truncated?)")
                n = len(z["labels"])
                counts = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(n, self.n_cols))
                yield SpillPart(counts, z["labels"], z["splits"], z["row_ids"])
                progress.advance(n, self.sizes[i])
