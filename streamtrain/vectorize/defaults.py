"""The guide's recipe numbers, written once: the vectorizer configs and prepare's options take them from here."""

from __future__ import annotations

TOP_K = 20_000  # tokens kept by frequency (and n-gram features of datasets made before 0.4)
# n-gram features kept by F-value. The guide's 20,000 capped the MLP's first layer, whose every row Adam moved each
# step; with lazy updates (train.optimizers) a step costs the same at any width. IMDB, MLP, seed 0, sublinear TF:
# 0.9017 test accuracy at 20,000, 0.9052 at 200,000 (all 1-2-grams with df >= 2, 515k: no better, 0.8972).
NGRAM_TOP_K = 200_000
# The F-test scores at most this many buckets, the most frequent of the vocabulary (IMDB: 509k of 2**21; grown
# x16 with token dropout, whose new bigrams recur across copies, the vocabulary nears all 2**21 and the test's
# arrays made prepare's peak 1.19x of x1's; capped, memory stays flat in corpus size).
MAX_CANDIDATES = 1 << 19
MIN_DF = 2  # an n-gram must occur in this many training rows
HASH_BUCKETS = 1 << 21  # hash space of n-gram and token statistics: fixes prepare's memory
MAX_LENGTH = 500  # longest token sequence kept
SW_THRESHOLD = 1500.0  # sequences when samples / median words per sample >= this
