"""Does prepare's peak memory depend on the number of classes? The same texts prepared with 2 and with 20 labels.

    .venv/bin/python tools/bench_classes.py --rounds 3           # IMDB train, about 40 s a round on 2 cores
    .venv/bin/python tools/bench_classes.py --corpus ag_news     # AG News titles: 7,600 short texts
    PYTHONPATH=/tmp/st-before .venv/bin/python tools/bench_classes.py   # another checkout's streamtrain

Two CSVs (columns ``text,label``) with the same texts in the same order are
written once under ``$STREAMTRAIN_BENCH_TEXT`` (default /tmp/streamtrain-bench,
outside the repository; reused when present):

imdb     IMDB train (25,000 reviews, ``benchdata.imdb_dir``): 2 classes are its
         own pos/neg; 20 classes are ``c00``..``c19``, the text's stable hash
         (``blake2b`` of its UTF-8 bytes, 8 bytes little-endian) modulo 20.
ag_news  ``$STREAMTRAIN_DATASETS/ag_news/test.csv``, titles only (7,600): 2 classes
         are World+Sports vs Business+Sci/Tech; 20 classes the same hash of the title.

Each round prepares both (interleaved by ``benchlib.run_rounds``: 2, 20, then
20, 2, ...), each in a fresh child process: ``prepare(PrepareOptions([csv],
data=runs/bench/classes-N, vectorizer="ngram", overwrite=True))``, train/val
only, default options (2**21 hash buckets, min_df 2, top 20,000). Printed: per
run the peak RSS (getrusage of the child), prepare's seconds and the others'
load, then the medians over rounds and the medians of the per-round ratios
20-class / 2-class. The child reports which streamtrain it
imported, so a run against an older checkout (``PYTHONPATH``) says so.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib

OUT = benchlib.REPO / "runs" / "bench"
CLASSES = (2, 20)
AG_PAIRS = {"1": "world_sports", "2": "world_sports", "3": "business_scitech", "4": "business_scitech"}


def hashed_label(text: str, n: int) -> str:
    """A stable label in ``n`` classes: blake2b of the text modulo ``n``."""
    h = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
    return f"c{h % n:02d}"


def imdb_texts(imdb: Path) -> list[tuple[str, str]]:
    """(text, pos|neg) of every IMDB train review, in file-name order."""
    out = []
    for label in ("neg", "pos"):
        for path in sorted((imdb / "train" / label).glob("*.txt")):
            out.append((path.read_text(encoding="utf-8"), label))
    return out


def ag_titles() -> list[tuple[str, str]]:
    path = benchdata.DATASETS / "ag_news" / "test.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found (set STREAMTRAIN_DATASETS)")
    with open(path, newline="", encoding="utf-8") as fh:
        return [(row[1], AG_PAIRS[row[0]]) for row in csv.reader(fh)]


def corpora(name: str, imdb: str | None) -> dict[int, Path]:
    """The CSV of each class count (written on first use)."""
    paths = {n: benchdata.TEXT_CACHE / f"classes-{name}-{n}.csv" for n in CLASSES}
    if all(p.is_file() for p in paths.values()):
        return paths
    rows = imdb_texts(benchdata.imdb_dir(imdb)) if name == "imdb" else ag_titles()
    benchdata.TEXT_CACHE.mkdir(parents=True, exist_ok=True)
    for n, path in paths.items():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            for text, label in rows:
                w.writerow([text, label if n == 2 else hashed_label(text, n)])
        tmp.replace(path)
    return paths


def run_prepare(corpus: str, out: str) -> dict:
    import streamtrain
    from streamtrain.prepare import prepare

    t0 = time.perf_counter()
    m = prepare(benchdata.prepare_options(inputs=[corpus], data=Path(out), overwrite=True))
    return {
        "seconds": time.perf_counter() - t0,
        "rows": sum(m.stats.rows.values()),
        "classes": len(m.labels),
        "vocabulary_buckets": m.stats.vocabulary_buckets,
        "features": m.n_features,
        "peak_rss_mib": benchlib.peak_rss_mib(),
        "streamtrain": str(Path(streamtrain.__file__).resolve().parent.parent),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    benchlib.add_common_flags(p, rounds=3, imdb=True)
    p.add_argument("--corpus", choices=("imdb", "ag_news"), default="imdb", help="the texts (default imdb)")
    p.add_argument("--keep", action="store_true", help="keep the prepared runs/bench/classes-N directories")
    p.add_argument("--step", help=argparse.SUPPRESS)  # child: CSV::OUT
    args = p.parse_args(argv)
    if args.step:
        benchlib.emit(run_prepare(*args.step.split("::")))
        return 0
    paths = corpora(args.corpus, args.imdb)
    me = str(Path(__file__).resolve())

    def measure(n: int, _round: int) -> dict:
        data = OUT / f"classes-{n}"
        res = benchlib.run_child([me, "--step", f"{paths[n]}::{data}"])
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        return res

    started = time.perf_counter()
    runs = benchlib.run_rounds(CLASSES, args.rounds, measure, "bench_classes")
    where = {r.get("streamtrain") for r in runs} - {None}
    print(
        f"\n{args.corpus}: the same texts with 2 and 20 labels; {args.rounds} interleaved rounds; "
        f"total {time.perf_counter() - started:.0f} s; {os.cpu_count()} CPUs; streamtrain from {', '.join(where)}\n"
    )
    print_runs(runs)
    return print_medians(runs)


def print_runs(runs: list[benchlib.Run[int]]) -> None:
    """One row per run, in the order they ran."""
    digits = {"rows": 0, "vocabulary_buckets": 0, "features": 0, "peak_rss_mib": 0, "seconds": 1, "others_cores": 2}
    table = [
        [r.round, r.arm, *(benchlib.fmt(r.get(k), d) for k, d in digits.items()), r.get("error") or ""] for r in runs
    ]
    headers = ["round", "classes", "rows", "vocabulary buckets", "features", "peak RSS MiB", "prepare s", "others"]
    benchlib.print_table([*headers, "error"], table)


def print_medians(runs: list[benchlib.Run[int]]) -> int:
    """Medians per class count, and the medians of the per-round ratios 20-class / 2-class; 1 when a count failed."""
    for n in CLASSES:
        ok = benchlib.ok_runs(runs, n)
        if not ok:
            print(f"{n} classes: every run failed")
            return 1
        peak, seconds = (benchlib.aggregate(runs, n, k) for k in ("peak_rss_mib", "seconds"))
        print(f"median over {len(ok)}, {n} classes: peak RSS {peak:.0f} MiB, {seconds:.1f} s")
    many, two = CLASSES[1], CLASSES[0]
    peak, seconds = (benchlib.median_ratio(runs, many, two, k) for k in ("peak_rss_mib", "seconds"))
    print(f"ratio {many}/{two} classes (median over rounds): peak RSS {peak:.2f}, seconds {seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
