"""Vectorizing throughput and peak memory: streamtrain's prepare vs the guide's in-memory sklearn recipe.

    /tmp/venv/bin/python tools/bench_prepare.py                      # IMDB train + test
    /tmp/venv/bin/python tools/bench_prepare.py --train /tmp/imdb/aclImdb/test --test   # reduced: 25k docs, no test
    /tmp/venv/bin/python tools/bench_prepare.py --train ../shared/datasets/ag_news/test.csv --test \\
        --label-column 0 --text-column 1 --text-column 2

Both read the same inputs with streamtrain's readers (so reading costs the same)
and each runs in its own subprocess (its peak RSS is its own):

streamtrain  ``prepare(PrepareOptions(..., vectorizer="ngram"))`` into a scratch
             directory (HDF5 TF-IDF shards, deleted afterwards): streaming passes,
             bounded memory.
sklearn      all texts in lists, ``TfidfVectorizer(ngram_range=(1, 2), min_df=2,
             strip_accents='unicode')`` ``fit_transform`` on train and ``transform``
             on test, then ``SelectKBest(f_classif, k=20000)`` fit on train and applied
             to both, cast to float32 (the guide's ``ngram_vectorize``).

Docs/s and MB/s count every train and test document and the UTF-8 bytes of its
text (counted once, up front, by streaming the inputs). ``--rounds N`` runs
both N times in interleaved rounds (``benchlib.run_rounds``); the table shows
medians and the others' load, the speed and memory ratios are the medians of
the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib

VARIANTS = ("streamtrain", "sklearn")


def column(value: str):
    return int(value) if value.isdigit() else value


def spec(args):
    from streamtrain.io.readers import ColumnSpec

    return ColumnSpec(tuple(args.text_column or ["text"]), args.label_column)


def count(paths, columns) -> tuple[int, int]:
    from streamtrain.io.readers import read_chunks

    docs = nbytes = 0
    for chunk in read_chunks(paths, columns):
        docs += len(chunk)
        nbytes += sum(len(t.encode("utf-8")) for t in chunk.texts)
    return docs, nbytes


def run_streamtrain(args) -> dict:
    from streamtrain.prepare import prepare

    scratch = Path(tempfile.mkdtemp(prefix="bench-prepare-", dir=args.scratch))
    try:
        t0 = time.perf_counter()
        columns = spec(args)
        opts = benchdata.prepare_options(
            inputs=args.train,
            test=args.test,
            data=scratch / "data",
            text_column=list(columns.text),
            label_column=columns.label,
            overwrite=True,
        )
        m = prepare(opts)
        seconds = time.perf_counter() - t0
        shard_bytes = sum(s.bytes for s in m.shards)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "seconds": seconds,
        "n_features": m.n_features,
        "shard_bytes": shard_bytes,
        "peak_rss_mib": benchlib.peak_rss_mib(),
    }


def run_sklearn(args) -> dict:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectKBest, f_classif

    from streamtrain.io.readers import read_chunks

    t0 = time.perf_counter()

    def load(paths):
        texts, labels = [], []
        for chunk in read_chunks(paths, spec(args)):
            texts += chunk.texts
            labels += chunk.labels
        return texts, labels

    train_texts, train_labels = load(args.train)
    test_texts, _ = load(args.test)
    classes = sorted(set(train_labels))
    y = np.array([classes.index(c) for c in train_labels])
    t_read = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, strip_accents="unicode")
    x_train = vec.fit_transform(train_texts)
    x_test = vec.transform(test_texts) if test_texts else None
    t_vec = time.perf_counter()
    sel = SelectKBest(f_classif, k=min(args.top_k, x_train.shape[1]))
    x_train = sel.fit_transform(x_train, y).astype("float32")
    if x_test is not None:
        x_test = sel.transform(x_test).astype("float32")
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "read_s": t_read - t0,
        "tfidf_s": t_vec - t_read,
        "select_s": seconds - (t_vec - t0),
        "vocabulary": len(vec.vocabulary_),
        "n_features": x_train.shape[1],
        "peak_rss_mib": benchlib.peak_rss_mib(),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", nargs="+", help="training inputs (default: IMDB train/)")
    p.add_argument("--test", nargs="*", help="test inputs (default: IMDB test/; give --test alone for none)")
    benchlib.add_common_flags(p, rounds=1, imdb=True)
    p.add_argument("--text-column", action="append", type=column)
    p.add_argument("--label-column", type=column, default="label")
    p.add_argument("--top-k", type=int, default=20_000)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument(
        "--scratch", default=str(benchlib.REPO / "runs" / "bench"), help="where prepare writes (deleted after)"
    )
    p.add_argument("--variant", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.train is None or args.test is None:
        imdb = benchdata.imdb_dir(args.imdb)
        args.train = args.train or [str(imdb / "train")]
        args.test = [str(imdb / "test")] if args.test is None else args.test
    if args.variant:
        benchlib.emit({"streamtrain": run_streamtrain, "sklearn": run_sklearn}[args.variant](args))
        return 0
    Path(args.scratch).mkdir(parents=True, exist_ok=True)
    docs, nbytes = count(args.train + args.test, spec(args))
    print(f"[bench_prepare] {docs} documents, {nbytes / 1e6:.1f} MB of text", file=sys.stderr, flush=True)
    passthrough = ["--train", *args.train, "--test", *args.test, "--label-column", str(args.label_column)]
    passthrough += ["--top-k", str(args.top_k), "--scratch", args.scratch]
    for c in args.text_column or []:
        passthrough += ["--text-column", str(c)]
    me, variants = str(Path(__file__).resolve()), args.variants.split(",")
    runs = benchlib.run_rounds(
        variants, args.rounds, lambda v, _round: benchlib.run_child([me, "--variant", v, *passthrough]), "bench_prepare"
    )
    print(
        f"\n{docs} documents ({len(args.train)} train + {len(args.test)} test inputs), {nbytes / 1e6:.1f} MB of text, "
        f"{os.cpu_count()} CPUs; {args.rounds} round(s), medians\n"
    )
    benchlib.print_ratio_table(runs, variants, table_columns(docs, nbytes))
    if {"streamtrain", "sklearn"} <= set(variants):
        speed = benchlib.median_ratio(runs, "sklearn", "streamtrain", "seconds")
        peak = benchlib.median_ratio(runs, "streamtrain", "sklearn", "peak_rss_mib")
        if speed and peak:
            print(f"\nstreamtrain / sklearn: speed x{speed:.2f}, peak RSS x{peak:.2f}")
    return 0


def table_columns(docs: int, nbytes: int) -> list[benchlib.Column]:
    b = benchlib

    def per_second(amount: float, digits: int):
        def cell(runs, v):
            s = b.aggregate(runs, v, "seconds")
            return b.fmt(amount / s if s else None, digits)

        return cell

    def phases(runs, v):
        errors = [r.values["error"] for r in runs if r.arm == v and not r.ok]
        times = {k: b.aggregate(runs, v, k) for k in ("read_s", "tfidf_s", "select_s")}
        return "; ".join(errors) or ", ".join(f"{k} {t:.1f}" for k, t in times.items() if t is not None)

    return [
        b.ArmName("variant"),
        b.Stat("seconds", "seconds", 1),
        b.Custom("docs/s", per_second(docs, 0)),
        b.Custom("MB/s", per_second(nbytes / 1e6, 2)),
        b.Stat("peak RSS MiB", "peak_rss_mib"),
        b.Stat("features", "n_features"),
        b.Custom("phases (s)", phases),
        b.OTHERS,
    ]


if __name__ == "__main__":
    sys.exit(main())
