"""Deterministic train/validation assignment.

A row's split is a pure function of its text: the same text lands in the
same split on every run and on every ``--append``, and exact duplicates can
never straddle train and validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "val", "test")


def text_unit(text: str) -> float:
    """Uniform value in [0, 1) from a keyed-free 64-bit BLAKE2b hash of ``text``."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def assign_splits(texts: Sequence[str], val_fraction: float, is_test: bool) -> np.ndarray:
    """Split code (TRAIN/VAL/TEST) for each text."""
    if is_test:
        return np.full(len(texts), TEST, dtype=np.uint8)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    units = np.fromiter((text_unit(t) for t in texts), dtype=np.float64, count=len(texts))
    return np.where(units < val_fraction, VAL, TRAIN).astype(np.uint8)
