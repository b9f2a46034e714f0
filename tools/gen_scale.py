#!/usr/bin/env python3
"""Generate a nightly-scale corpus: millions of distinct short rows, streamed to CSV, the same bytes per seed.

The corpus of issue 27's measurements: 4 classes; words drawn from a 200,000-word vocabulary by Zipf's law with
exponent 1.05; 15-60 words a row; each class has three marker words, each kept in a row of that class with
probability 0.6, at a random position. Rows are written as ``label,text`` (header ``label,text``); words are
lowercase ASCII, so no field needs quoting. The test file is made the same way from its own stream of the seed.

    python tools/gen_scale.py --rows 2000000 --out /tmp/scale      # train.csv (2 M rows), test.csv (20,000 rows)
    python tools/gen_scale.py --rows 8000000 --test-rows 20000 --seed 1 --out /tmp/scale8

Memory stays flat at any row count: rows are made and written ``BATCH`` at a time.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BATCH = 50_000  # rows made and written at a time
LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@dataclass(frozen=True)
class Shape:
    """What the corpus is made of (the defaults are issue 27's)."""

    classes: int = 4
    vocabulary: int = 200_000
    zipf: float = 1.05
    min_words: int = 15
    max_words: int = 60
    markers: int = 3  # marker words per class
    keep: float = 0.6  # probability that a marker word is in a row of its class


def words(n: int) -> list[str]:
    """``n`` distinct lowercase words: the base-26 numerals of 0..n-1, written with letters, prefixed ``w``."""
    out = []
    for i in range(n):
        digits = []
        while True:
            i, r = divmod(i, 26)
            digits.append(LETTERS[r])
            if i == 0:
                break
        out.append("w" + "".join(reversed(digits)))
    return out


def zipf_cdf(shape: Shape) -> np.ndarray:
    """Cumulative probabilities of the vocabulary's ranks 1..V under Zipf's law with ``shape.zipf``."""
    weights = np.arange(1, shape.vocabulary + 1, dtype=np.float64) ** -shape.zipf
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def rows(rng: np.random.Generator, n: int, shape: Shape, vocab: np.ndarray, cdf: np.ndarray) -> list[str]:
    """``n`` CSV lines ``label,text`` (without the newline)."""
    labels = rng.integers(0, shape.classes, n)
    lengths = rng.integers(shape.min_words, shape.max_words + 1, n)
    drawn = np.searchsorted(cdf, rng.random(int(lengths.sum())), side="right")
    kept = rng.random((n, shape.markers)) < shape.keep
    ends = np.cumsum(lengths)
    lines = []
    for i in range(n):
        text = list(vocab[drawn[ends[i] - lengths[i] : ends[i]]])
        for m in np.flatnonzero(kept[i]):
            text.insert(int(rng.integers(0, len(text) + 1)), f"marker{labels[i]}x{m}")
        lines.append(f"class{labels[i]}," + " ".join(text))
    return lines


def write(path: Path, n: int, seed: int, stream: int, shape: Shape) -> None:
    """Write ``n`` rows to ``path`` from the seed's stream ``stream`` (0: train, 1: test)."""
    rng = np.random.default_rng([seed, stream])
    vocab, cdf = np.array(words(shape.vocabulary)), zipf_cdf(shape)
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write("label,text\n")
        for start in range(0, n, BATCH):
            fh.write("\n".join(rows(rng, min(BATCH, n - start), shape, vocab, cdf)) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True, help="training rows")
    parser.add_argument("--test-rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="directory for train.csv and test.csv")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "train.csv", args.rows, args.seed, 0, Shape())
    write(args.out / "test.csv", args.test_rows, args.seed, 1, Shape())
    print(f"{args.out}: train.csv {args.rows:,} rows, test.csv {args.test_rows:,} rows")


if __name__ == "__main__":
    main()
