"""In-memory blocks of vectorized rows, the unit every stage passes around.

``SparseRows`` holds TF-IDF rows as CSR (``indptr``/``indices``/``values``),
``TokenRows`` fixed-width token-id sequences; both carry integer labels and
global row ids, and share one small interface (``len``, ``slice``, ``take``,
``concat``, ``empty``) so shards, batching and shuffling work on either.
Reading and writing belong to ``dataset.shards``, batching to ``train.batches``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np


@dataclass
class SparseRows:
    """TF-IDF rows as CSR, with integer labels and global row ids.

    Raises:
        ValueError: the arrays' lengths disagree.
    """

    indptr: np.ndarray  # int64, len n+1, starts at 0
    indices: np.ndarray  # int32 column ids
    values: np.ndarray  # float32
    labels: np.ndarray  # int32
    row_ids: np.ndarray  # int64, unique within a dataset
    n_cols: int

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.indptr) != n + 1 or len(self.row_ids) != n:
            raise ValueError("inconsistent SparseRows lengths")
        if len(self.indices) != len(self.values) or (n and self.indptr[-1] != len(self.indices)):
            raise ValueError("inconsistent SparseRows nnz")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nnz(self) -> int:
        """The number of stored entries."""
        return len(self.indices)

    @classmethod
    def empty(cls, n_cols: int) -> SparseRows:
        """No rows, ``n_cols`` columns wide."""
        return cls(
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            n_cols,
        )

    def slice(self, start: int, stop: int) -> SparseRows:
        """Rows ``start`` to ``stop`` (exclusive); the entries are views of these arrays."""
        lo, hi = self.indptr[start], self.indptr[stop]
        return SparseRows(
            self.indptr[start : stop + 1] - lo,
            self.indices[lo:hi],
            self.values[lo:hi],
            self.labels[start:stop],
            self.row_ids[start:stop],
            self.n_cols,
        )

    def take(self, order: np.ndarray) -> SparseRows:
        """Rows in ``order``, vectorized.

        Args:
            order: row positions: a permutation or any selection, repeats allowed.

        Returns:
            New rows, copies.
        """
        lengths = np.diff(self.indptr)[order]
        indptr = np.zeros(len(order) + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Position of every kept element in the source arrays.
        starts = self.indptr[:-1][order]
        gather = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return SparseRows(
            indptr,
            self.indices[gather],
            self.values[gather],
            self.labels[order],
            self.row_ids[order],
            self.n_cols,
        )

    @classmethod
    def concat(cls, parts: Sequence[SparseRows]) -> SparseRows:
        """``parts`` one after another (at least one; an only non-empty part is returned as it is)."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [p.nnz for p in parts[:-1]])
        indptr = np.concatenate([parts[0].indptr[:1]] + [p.indptr[1:] + o for p, o in zip(parts, offsets)])
        return cls(
            indptr.astype(np.int64),
            np.concatenate([p.indices for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.row_ids for p in parts]),
            parts[0].n_cols,
        )

    def coo_indices(self) -> np.ndarray:
        """(nnz, 2) int64 [row, col] pairs, the layout of ``tf.SparseTensor``."""
        rows = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))
        return np.stack([rows, self.indices.astype(np.int64)], axis=1)

    def to_dense(self) -> np.ndarray:
        """The rows as a dense float32 array (rows x ``n_cols``)."""
        out = np.zeros((len(self), self.n_cols), np.float32)
        rows = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        out[rows, self.indices] = self.values
        return out


@dataclass
class TokenRows:
    """Token-id rows of fixed width (0 = padding), with labels and global row ids.

    Raises:
        ValueError: the arrays' shapes disagree.
    """

    tokens: np.ndarray  # int32 (n, width)
    labels: np.ndarray  # int32
    row_ids: np.ndarray  # int64

    def __post_init__(self) -> None:
        if self.tokens.ndim != 2 or len(self.tokens) != len(self.labels) or len(self.row_ids) != len(self.labels):
            raise ValueError("inconsistent TokenRows shapes")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_cols(self) -> int:
        """Row width: the sequence length."""
        return self.tokens.shape[1]

    @classmethod
    def empty(cls, n_cols: int) -> TokenRows:
        """No rows, ``n_cols`` tokens wide."""
        return cls(np.zeros((0, n_cols), np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64))

    def slice(self, start: int, stop: int) -> TokenRows:
        """Rows ``start`` to ``stop`` (exclusive), as views."""
        return TokenRows(self.tokens[start:stop], self.labels[start:stop], self.row_ids[start:stop])

    def take(self, order: np.ndarray) -> TokenRows:
        """Rows in ``order`` (a permutation or any selection), copies."""
        return TokenRows(self.tokens[order], self.labels[order], self.row_ids[order])

    @classmethod
    def concat(cls, parts: Sequence[TokenRows]) -> TokenRows:
        """``parts`` one after another (at least one; an only non-empty part is returned as it is)."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([p.tokens for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.row_ids for p in parts]),
        )


Rows = SparseRows | TokenRows
ENCODINGS: dict[str, type[SparseRows] | type[TokenRows]] = {"ngram": SparseRows, "sequence": TokenRows}


def empty_rows(encoding: str, n_cols: int) -> Rows:
    """No rows of ``encoding`` ("ngram" or "sequence"), ``n_cols`` wide."""
    return ENCODINGS[encoding].empty(n_cols)


PADDING_LABEL = -1  # a padding row's label (``blank_rows``): the training and validation steps weigh it 0


def blank_rows(encoding: str, n_cols: int, label: int = 0) -> Rows:
    """One row with no features (or only padding tokens): a warm-up's input, or a worker's padding step.

    Args:
        encoding: "ngram" or "sequence".
        n_cols: the row's width.
        label: its label; ``PADDING_LABEL`` for a padding step (``train.tfdata``), which weighs 0.

    Returns:
        The row, row id 0.
    """
    labels, row_ids = np.full(1, label, np.int32), np.zeros(1, np.int64)
    if encoding == "sequence":
        return TokenRows(np.zeros((1, n_cols), np.int32), labels, row_ids)
    return SparseRows(np.zeros(2, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), labels, row_ids, n_cols)


def concat_rows(parts: Sequence[Rows]) -> Rows:
    """Rows of one kind (that of ``parts[0]``), concatenated in order."""
    if isinstance(parts[0], SparseRows):
        return SparseRows.concat(cast(Sequence[SparseRows], parts))
    return TokenRows.concat(cast(Sequence[TokenRows], parts))
