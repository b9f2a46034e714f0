"""Scratch store of hashed n-gram counts between prepare's passes.

Raw text is tokenized once; the counts go to numbered ``.npz`` parts on disk
and the later passes (feature selection, shard writing) stream them back. The
parts live inside prepare's staging directory and are deleted with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp


@dataclass
class SpillPart:
    counts: sp.csr_matrix  # rows x hash buckets
    labels: np.ndarray  # int32, provisional label ids
    splits: np.ndarray  # uint8 split codes
    row_ids: np.ndarray  # int64


class Spill:
    def __init__(self, directory: Path, n_cols: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.n_cols = n_cols
        self.parts = 0

    def append(self, part: SpillPart) -> None:
        path = self.directory / f"part-{self.parts:06d}.npz"
        np.savez(
            path,
            indptr=part.counts.indptr.astype(np.int64),
            indices=part.counts.indices.astype(np.int32),
            data=part.counts.data.astype(np.float32),
            labels=part.labels,
            splits=part.splits,
            row_ids=part.row_ids,
        )
        self.parts += 1

    def __iter__(self) -> Iterator[SpillPart]:
        for i in range(self.parts):
            with np.load(self.directory / f"part-{i:06d}.npz", allow_pickle=False) as z:
                n = len(z["labels"])
                counts = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(n, self.n_cols))
                yield SpillPart(counts, z["labels"], z["splits"], z["row_ids"])
