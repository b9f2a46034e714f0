"""Does prepare's peak memory depend on the number of classes? The same texts prepared with 2 and with 20 labels.

    .venv/bin/python tools/bench_classes.py --rounds 3           # IMDB train, about 40 s a round on 2 cores
    .venv/bin/python tools/bench_classes.py --corpus ag_news     # AG News titles: 7,600 short texts
    PYTHONPATH=/tmp/st-before .venv/bin/python tools/bench_classes.py   # another checkout's streamtrain

Two CSVs (columns ``text,label``) with the same texts in the same order are
written once under ``$STREAMTRAIN_BENCH_TEXT`` (default /tmp/streamtrain-bench,
outside the repository; reused when present):

imdb     IMDB train (25,000 reviews, ``benchlib.imdb_dir``): 2 classes are its
         own pos/neg; 20 classes are ``c00``..``c19``, the text's stable hash
         (``blake2b`` of its UTF-8 bytes, 8 bytes little-endian) modulo 20.
ag_news  ``$STREAMTRAIN_DATASETS/ag_news/test.csv``, titles only (7,600): 2 classes
         are World+Sports vs Business+Sci/Tech; 20 classes the same hash of the title.

Each round prepares both (interleaved: 2, 20, 2, 20, ...), each in a fresh
child process: ``prepare(PrepareOptions([csv], data=runs/bench/classes-N,
vectorizer="ngram", overwrite=True))``, train/val only, default options
(2**21 hash buckets, min_df 2, top 20,000). Printed: per run the peak RSS
(getrusage of the child) and prepare's seconds, then the medians over rounds
and the ratios 20-class / 2-class. The child reports which streamtrain it
imported, so a run against an older checkout (``PYTHONPATH``) says so.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
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
    path = benchlib.DATASETS / "ag_news" / "test.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found (set STREAMTRAIN_DATASETS)")
    with open(path, newline="", encoding="utf-8") as fh:
        return [(row[1], AG_PAIRS[row[0]]) for row in csv.reader(fh)]


def corpora(name: str, imdb: str | None) -> dict[int, Path]:
    """The CSV of each class count (written on first use)."""
    paths = {n: benchlib.TEXT_CACHE / f"classes-{name}-{n}.csv" for n in CLASSES}
    if all(p.is_file() for p in paths.values()):
        return paths
    rows = imdb_texts(benchlib.imdb_dir(imdb)) if name == "imdb" else ag_titles()
    benchlib.TEXT_CACHE.mkdir(parents=True, exist_ok=True)
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
    from streamtrain.dataset.prepare import prepare

    t0 = time.perf_counter()
    m = prepare(benchlib.prepare_options(inputs=[corpus], data=Path(out), overwrite=True))
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
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of both preparations (default 3)")
    p.add_argument("--corpus", choices=("imdb", "ag_news"), default="imdb", help="the texts (default imdb)")
    p.add_argument("--imdb", help="extracted aclImdb directory")
    p.add_argument("--keep", action="store_true", help="keep the prepared runs/bench/classes-N directories")
    p.add_argument("--step", help=argparse.SUPPRESS)  # child: CSV::OUT
    args = p.parse_args(argv)
    if args.step:
        benchlib.emit(run_prepare(*args.step.split("::")))
        return 0
    paths = corpora(args.corpus, args.imdb)
    me = str(Path(__file__).resolve())
    runs: dict[int, list[dict]] = {n: [] for n in CLASSES}
    started = time.perf_counter()
    for r in range(args.rounds):
        for n in CLASSES:
            data = OUT / f"classes-{n}"
            print(f"[bench_classes] round {r + 1}/{args.rounds}: {n} classes", file=sys.stderr, flush=True)
            res = benchlib.run_child([me, "--step", f"{paths[n]}::{data}"])
            print(f"[bench_classes]   {res}", file=sys.stderr, flush=True)
            runs[n].append(res)
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
    where = {res.get("streamtrain") for rs in runs.values() for res in rs} - {None}
    print(
        f"\n{args.corpus}: the same texts with 2 and 20 labels; {args.rounds} interleaved rounds; "
        f"total {time.perf_counter() - started:.0f} s; {os.cpu_count()} CPUs; streamtrain from {', '.join(where)}\n"
    )
    table = []
    for r in range(args.rounds):
        for n in CLASSES:
            res = runs[n][r]
            table.append(
                [
                    r + 1,
                    n,
                    benchlib.fmt(res.get("rows")),
                    benchlib.fmt(res.get("vocabulary_buckets")),
                    benchlib.fmt(res.get("features")),
                    benchlib.fmt(res.get("peak_rss_mib")),
                    benchlib.fmt(res.get("seconds"), 1),
                    res.get("error", ""),
                ]
            )
    benchlib.print_table(
        ["round", "classes", "rows", "vocabulary buckets", "features", "peak RSS MiB", "prepare s", "error"], table
    )
    med = {}
    for n in CLASSES:
        ok = [res for res in runs[n] if "error" not in res]
        if not ok:
            print(f"{n} classes: every run failed")
            return 1
        med[n] = {key: statistics.median(res[key] for res in ok) for key in ("peak_rss_mib", "seconds")}
        print(
            f"median over {len(ok)}, {n} classes: peak RSS {med[n]['peak_rss_mib']:.0f} MiB, {med[n]['seconds']:.1f} s"
        )
    a, b = med[CLASSES[1]], med[CLASSES[0]]
    print(
        f"ratio {CLASSES[1]}/{CLASSES[0]} classes: peak RSS {a['peak_rss_mib'] / b['peak_rss_mib']:.2f}, "
        f"seconds {a['seconds'] / b['seconds']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
