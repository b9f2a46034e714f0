"""The guide's recipe numbers, written once: the vectorizer configs and prepare's options take them from here."""

from __future__ import annotations

TOP_K = 20_000  # tokens kept by frequency (and n-gram features of datasets made before 0.4)
# n-gram features kept by F-value: ten times the guide's 20,000, as a step of the lazily updated first layer
# (train.optimizers) costs the same at any width. Measurements: docs/design/tfidf.md
NGRAM_TOP_K = 200_000
# The F-test scores at most this many buckets, the most frequent of the vocabulary, so its arrays (and prepare's
# memory) stop growing with the corpus. Measurements: docs/design/tfidf.md
MAX_CANDIDATES = 1 << 19
MIN_DF = 2  # an n-gram must occur in this many training rows, unless every n-gram seen fits (``tfidf.auto_min_df``)
HASH_BUCKETS = 1 << 21  # hash space of n-gram and token statistics: fixes prepare's memory
MAX_LENGTH = 500  # longest token sequence kept
SW_THRESHOLD = 1500.0  # sequences when samples / median words per sample >= this
