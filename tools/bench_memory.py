"""Does peak memory stay flat as the corpus grows? prepare + one epoch of fit on x1, x4, x16 IMDB train.

    /tmp/venv/bin/python tools/bench_memory.py                  # factors 1,4,16 (about 10 minutes on 2 cores,
                                                                # plus 1.5 minutes to grow the corpora once)
    /tmp/venv/bin/python tools/bench_memory.py --factors 1,2    # quick check
    .venv/bin/python tools/bench_memory.py --factors 1,16 --rounds 3 --prepare-only   # prepare's ratio, 3 rounds

For each factor F, ``tools/grow.py`` writes F copies of IMDB train (copies after
the first with 10% token dropout, locally shuffled) to
``$STREAMTRAIN_BENCH_TEXT/imdb-train-xF.jsonl.gz`` (default /tmp/streamtrain-bench,
outside the repository; reused when present). Then, each in its own subprocess:

prepare  ``prepare(PrepareOptions([corpus], data=runs/bench/mem-xF, vectorizer="ngram"))``
         (train/val only; ``--vectorizer auto`` would switch x16 to token sequences)
fit      ``streamtrain.train.fit.fit(FitOptions(data, epochs=1))``: one epoch (its time
         includes the validation pass), then fit's val/test scoring; the model
         directory is deleted afterwards

and prints each step's peak RSS (getrusage) and time, and the ratios to x1.
``--rounds`` runs all factors in interleaved rounds (``benchlib.run_rounds``,
the order rotated); the table shows the last round, the ratios are per round
and their median (peak RSS varies by ~50-100 MiB between identical runs:
worker threads, allocator arenas).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib

GROW = Path(__file__).resolve().parent / "grow.py"
OUT = benchlib.REPO / "runs" / "bench"


def grown(imdb: Path, factor: int) -> Path:
    path = benchdata.TEXT_CACHE / f"imdb-train-x{factor}.jsonl.gz"
    if not path.is_file():
        benchdata.TEXT_CACHE.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(GROW),
                str(imdb / "train"),
                str(path),
                "--factor",
                str(factor),
                "--classes",
                "neg",
                "pos",
            ],
            check=True,
        )
        print(f"[bench_memory] grew x{factor} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return path


def run_prepare(corpus: str, out: str, vectorizer: str) -> dict:
    from streamtrain.prepare import prepare

    t0 = time.perf_counter()
    m = prepare(benchdata.prepare_options(inputs=[corpus], data=Path(out), overwrite=True, vectorizer=vectorizer))
    return {
        "seconds": time.perf_counter() - t0,
        "rows": sum(m.stats.rows.values()),
        "encoding": m.encoding,
        "train_rows": m.rows("train"),
        "shard_bytes": sum(s.bytes for s in m.shards),
        "peak_rss_mib": benchlib.peak_rss_mib(),
    }


def run_fit(data: str) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from streamtrain.train.fit import FitOptions, fit

    model_dir = Path(data).parent / (Path(data).name + "-model")
    t0 = time.perf_counter()
    metrics = fit(FitOptions(data=data, model_dir=str(model_dir), epochs=1, overwrite=True))
    seconds = time.perf_counter() - t0
    shutil.rmtree(model_dir, ignore_errors=True)
    return {
        "seconds": seconds,
        "train_seconds": metrics["train_seconds"],
        "val_accuracy": metrics["val_accuracy"],
        "samples_per_s": metrics["train_samples_per_second"],
        "peak_rss_mib": benchlib.peak_rss_mib(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.step:
        kind, arg = args.step
        benchlib.emit(run_prepare(*arg.split("::"), args.vectorizer) if kind == "prepare" else run_fit(arg))
        return 0
    imdb = benchdata.imdb_dir(args.imdb)
    factors = [int(f) for f in args.factors.split(",")]
    started = time.perf_counter()
    runs = benchlib.run_rounds(factors, args.rounds, partial(measure, args, imdb), "bench_memory")
    print(
        f"\nIMDB train grown x{','.join(map(str, factors))}; "
        f"total {time.perf_counter() - started:.0f} s; {os.cpu_count()} CPUs\n"
    )
    print_last_round(runs, factors)
    for f in factors[1:]:
        for step in ("prepare",) if args.prepare_only else ("prepare", "fit"):
            key = f"{step}_peak_rss_mib"
            per_round = benchlib.ratios(runs, f, factors[0], key)
            big, ref = (benchlib.aggregate(runs, x, key) for x in (f, factors[0]))
            print(
                f"x{f}/x{factors[0]} {step} peak RSS per round: "
                f"{benchlib.ratio_line(per_round) if per_round else 'no round measured both'} "
                f"(medians of the peaks: {benchlib.fmt(big)} / {benchlib.fmt(ref)} MiB)"
            )
    return 0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--factors",
        default="1,4,16",
        help="comma-separated growth factors; the first is the reference (default 1,4,16)",
    )
    benchlib.add_common_flags(p, rounds=1, imdb=True)
    p.add_argument(
        "--vectorizer",
        choices=("ngram", "sequence", "auto"),
        default="ngram",
        help="prepare's --vectorizer (default ngram: TF-IDF + MLP at every size; auto picks sequences + sepCNN at x16)",
    )
    p.add_argument("--keep", action="store_true", help="keep the prepared runs/bench/mem-xF directories")
    p.add_argument("--prepare-only", action="store_true", help="measure prepare only (no fit)")
    p.add_argument("--step", nargs=2, help=argparse.SUPPRESS)  # child: prepare CORPUS:OUT | fit DATA
    return p.parse_args(argv)


def measure(args: argparse.Namespace, imdb: Path, f: int, _round: int) -> dict:
    """One factor: prepare (and fit, unless --prepare-only), each in its own child; their keys prefixed by the step."""
    me, corpus, data = str(Path(__file__).resolve()), grown(imdb, f), OUT / f"mem-x{f}"
    prep = benchlib.run_child([me, "--step", "prepare", f"{corpus}::{data}", "--vectorizer", args.vectorizer])
    print(f"[bench_memory]   x{f} prepare: {prep}", file=sys.stderr, flush=True)
    fitr: dict = {}
    if not args.prepare_only:
        fitr = {"error": "no data"}
        if "error" not in prep:
            fitr = benchlib.run_child([me, "--step", "fit", str(data), "--vectorizer", args.vectorizer])
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    out = {"text_bytes": corpus.stat().st_size}
    return out | {f"prepare_{k}": v for k, v in prep.items()} | {f"fit_{k}": v for k, v in fitr.items()}


def print_last_round(runs: list[benchlib.Run[int]], factors: list[int]) -> None:
    """The last round's measurements, one row per factor."""
    last = {r.arm: r for r in runs if r.round == benchlib.rounds_of(runs)}
    rows = []
    for f in factors:
        r, fmt = last[f], benchlib.fmt
        rows.append(
            [
                f"x{f}",
                r.get("prepare_encoding") or "-",
                fmt(r.get("prepare_rows")),
                f"{r.get('text_bytes') / 1e6:.0f}",
                fmt((r.get("prepare_shard_bytes") or 0) / 1e6),
                fmt(r.get("prepare_seconds"), 1),
                fmt(r.get("prepare_peak_rss_mib")),
                fmt(r.get("fit_train_seconds"), 1),
                fmt(r.get("fit_samples_per_s")),
                fmt(r.get("fit_peak_rss_mib")),
                fmt(r.get("others_cores"), 2),
                r.get("prepare_error") or r.get("fit_error") or "",
            ]
        )
    headers = ["corpus", "encoding", "rows", "text .gz MB", "shards MB", "prepare s", "prepare peak RSS MiB"]
    headers += ["fit epoch s", "fit samples/s", "fit peak RSS MiB", "others", "error"]
    benchlib.print_table(headers, rows)


if __name__ == "__main__":
    sys.exit(main())
