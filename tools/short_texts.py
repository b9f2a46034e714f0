#!/usr/bin/env python3
"""Short-text test corpora from AG News, for the vectorizer bake-off (``streamtrain.train.bakeoff``).

Both write ``OUTDIR/train.csv`` and ``OUTDIR/test.csv`` (header ``text,label``);
the AG News rows are split into train and test by a stable hash of the title
(``crc32(title) % 100 < --test-percent``: test), so no title, nor any copy of
one, is on both sides.

* ``titles``: AG News TITLES only (one-line texts, ~7 words), label = the AG
  News class (1..4). The training titles are grown ``--factor`` times with
  ``tools/grow.py`` (copies after the first lose each token with probability
  ``--dropout``; locally shuffled); test titles are written once. At factor
  2 the guide's rule already says sequences (S/W ~ 1,600); the S/W-rule's
  failure case: n-grams + MLP score higher there.
* ``order``: labels that depend on word ORDER beyond adjacent pairs, which
  word unigrams and bigrams cannot see. Each row is a run of
  ``--carrier-words`` consecutive words (default 3; 0: all) of a real AG
  News title with ``g a f b h`` inserted at a random position: ``a`` and
  ``b`` two different marker words out of the first ``--markers``
  (default 2) of ``MARKERS``; ``g``, ``f`` and ``h`` random filler words
  drawn from the vocabulary of the AG News descriptions (~19k words, so
  almost every bigram with a marker in it is new: a marker's neighbours
  never tell which comes first). Label ``forward`` when ``a`` comes before
  ``b`` in ``MARKERS``, ``backward`` otherwise: both classes hold the same
  words with the same frequencies. ``--rows`` training rows,
  ``--test-rows`` test rows, from the train and test titles respectively.
  A sepCNN sees ``a f b`` in one kernel-3 window; the MLP on 1-2-grams is
  at chance. Median 8 words: from 12,000 rows the guide's rule says
  sequences.

* ``classes``: many classes, few rows: ``--classes`` classes (default 300)
  of ``--rows-per-class`` training rows (default 10) and ``--test-per-class``
  test rows (default 3). Each row is a random run of ``--carrier-words``
  words of a real AG News title (train titles for training rows, test titles
  for test rows) with the class's own marker word (``class0042``) inserted
  at a random position; label ``c0042``. Everything but the marker is noise
  shared by all classes: a model that learns at all reaches ~1.0, one that
  stops on the initial plateau stays at chance (0.0033 at 300 classes).

Examples::

    python tools/short_texts.py titles ../shared/datasets/ag_news/test.csv out/titles --factor 8
    python tools/short_texts.py order ../shared/datasets/ag_news/test.csv out/order --rows 12500
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grow  # a sibling tool, found by path

MARKERS = ("zab", "zeb", "zib", "zob", "zub", "zyb", "zac", "zec")
_WORD = re.compile(r"[a-z]{3,}")


def is_test(title: str, percent: int) -> bool:
    """The stable train/test split of an AG News title."""
    return zlib.crc32(title.encode("utf-8")) % 100 < percent


def read_ag_news(path: str) -> list[tuple[str, str, str]]:
    """(label, title, description) of every AG News row (``grow.iter_csv`` reads the CSV)."""
    titles = list(grow.iter_csv(path, 0, [1]))
    descriptions = list(grow.iter_csv(path, 0, [2]))
    return [(label, title, desc) for (title, label), (desc, _) in zip(titles, descriptions)]


def write_rows(path: Path, rows: Sequence[tuple[str, str]]) -> None:
    with grow.RowWriter(str(path)) as writer:
        for row in rows:
            writer.write(row)


def titles(src: str, out: Path, factor: int, dropout: float, test_percent: int, seed: int) -> dict:
    """Write the grown training titles and the held-out test titles; return the row counts."""
    rows = read_ag_news(src)
    train = [(t, label) for label, t, _ in rows if not is_test(t, test_percent)]
    test = [(t, label) for label, t, _ in rows if is_test(t, test_percent)]
    out.mkdir(parents=True, exist_ok=True)
    summary = grow.grow(lambda: iter(train), str(out / "train.csv"), factor, dropout, seed, 10_000, src)
    write_rows(out / "test.csv", test)
    return {"train_rows": summary.rows_out, "test_rows": len(test)}


def order_row(
    title: str, fillers: Sequence[str], rng: random.Random, carrier: int = 0, markers: int = 2
) -> tuple[str, str]:
    """``title`` (a random run of ``carrier`` of its words; 0: all) with ``g a f b h`` inserted at a random word
    boundary, ``a`` and ``b`` two of the first ``markers`` of ``MARKERS``, ``g f h`` random fillers; and its
    order label."""
    i, j = rng.sample(range(markers), 2)
    words = title.split()
    if carrier and len(words) > carrier:
        start = rng.randint(0, len(words) - carrier)
        words = words[start : start + carrier]
    at = rng.randint(0, len(words))
    words[at:at] = [rng.choice(fillers), MARKERS[i], rng.choice(fillers), MARKERS[j], rng.choice(fillers)]
    return " ".join(words), "forward" if i < j else "backward"


def order(
    src: str, out: Path, rows: int, test_rows: int, test_percent: int, seed: int, carrier: int = 3, markers: int = 2
) -> dict:
    """Write the word-order corpus; return the row counts and the filler vocabulary's size."""
    data = read_ag_news(src)
    vocab = sorted({w for _, _, desc in data for w in _WORD.findall(desc.lower())} - set(MARKERS))
    train = [t for _, t, _ in data if not is_test(t, test_percent)]
    test = [t for _, t, _ in data if is_test(t, test_percent)]
    rng = random.Random(f"short_texts/order/{seed}")
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "train.csv", [order_row(rng.choice(train), vocab, rng, carrier, markers) for _ in range(rows)])
    write_rows(out / "test.csv", [order_row(rng.choice(test), vocab, rng, carrier, markers) for _ in range(test_rows)])
    return {"train_rows": rows, "test_rows": test_rows, "fillers": len(vocab)}


def classes_rows(
    titles_: Sequence[str], n_classes: int, per_class: int, rng: random.Random, carrier: int
) -> list[tuple[str, str]]:
    """``per_class`` rows of each of ``n_classes`` classes (see the module docstring), classes interleaved."""
    rows = []
    for _ in range(per_class):
        for c in range(n_classes):
            words = rng.choice(titles_).split()
            if len(words) > carrier:
                start = rng.randint(0, len(words) - carrier)
                words = words[start : start + carrier]
            words.insert(rng.randint(0, len(words)), f"class{c:04d}")
            rows.append((" ".join(words), f"c{c:04d}"))
    return rows


def classes(
    src: str, out: Path, n_classes: int, per_class: int, test_per_class: int, test_percent: int, seed: int, carrier: int
) -> dict:
    """Write the many-classes corpus; return the row counts."""
    data = read_ag_news(src)
    train = [t for _, t, _ in data if not is_test(t, test_percent)]
    test = [t for _, t, _ in data if is_test(t, test_percent)]
    rng = random.Random(f"short_texts/classes/{seed}")
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "train.csv", classes_rows(train, n_classes, per_class, rng, carrier))
    write_rows(out / "test.csv", classes_rows(test, n_classes, test_per_class, rng, carrier))
    return {"train_rows": n_classes * per_class, "test_rows": n_classes * test_per_class}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="corpus", required=True)
    for name in ("titles", "order", "classes"):
        p = sub.add_parser(name)
        p.add_argument("ag_news", help="AG News CSV: class,title,description, no header")
        p.add_argument("outdir", help="writes train.csv and test.csv here")
        p.add_argument("--test-percent", type=int, default=20, help="share of the titles held out for test")
        p.add_argument("--seed", type=int, default=0)
    sub.choices["titles"].add_argument("--factor", type=int, default=8, help="copies of the training titles")
    sub.choices["titles"].add_argument("--dropout", type=float, default=0.1, help="token dropout of later copies")
    sub.choices["order"].add_argument("--rows", type=int, default=12_500, help="training rows")
    sub.choices["order"].add_argument("--test-rows", type=int, default=4_000, help="test rows")
    sub.choices["order"].add_argument(
        "--carrier-words", type=int, default=3, help="title words around the markers, a random run of them; 0: all"
    )
    sub.choices["order"].add_argument(
        "--markers", type=int, choices=range(2, len(MARKERS) + 1), default=2, help="marker words a and b come from"
    )
    sub.choices["classes"].add_argument("--classes", type=int, default=300, help="classes")
    sub.choices["classes"].add_argument("--rows-per-class", type=int, default=10, help="training rows per class")
    sub.choices["classes"].add_argument("--test-per-class", type=int, default=3, help="test rows per class")
    sub.choices["classes"].add_argument("--carrier-words", type=int, default=6, help="title words around the marker")
    args = parser.parse_args(argv)
    out = Path(args.outdir)
    try:
        if args.corpus == "titles":
            counts = titles(args.ag_news, out, args.factor, args.dropout, args.test_percent, args.seed)
        elif args.corpus == "classes":
            counts = classes(
                args.ag_news,
                out,
                args.classes,
                args.rows_per_class,
                args.test_per_class,
                args.test_percent,
                args.seed,
                args.carrier_words,
            )
        else:
            counts = order(
                args.ag_news,
                out,
                args.rows,
                args.test_rows,
                args.test_percent,
                args.seed,
                args.carrier_words,
                args.markers,
            )
    except grow.GrowError as exc:
        print(f"short_texts: {exc}", file=sys.stderr)
        return 1
    print(f"{args.corpus}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" in {os.fspath(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
