"""The guide's recipe numbers, written once: the vectorizer configs and prepare's options take them from here."""

from __future__ import annotations

TOP_K = 20_000  # n-gram features kept by F-value; tokens kept by frequency
MIN_DF = 2  # an n-gram must occur in this many training rows
HASH_BUCKETS = 1 << 21  # hash space of n-gram and token statistics: fixes prepare's memory
MAX_LENGTH = 500  # longest token sequence kept
SW_THRESHOLD = 1500.0  # sequences when samples / median words per sample >= this
