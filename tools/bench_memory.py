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
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

GROW = Path(__file__).resolve().parent / "grow.py"
OUT = benchlib.REPO / "runs" / "bench"


def grown(imdb: Path, factor: int) -> Path:
    path = benchlib.TEXT_CACHE / f"imdb-train-x{factor}.jsonl.gz"
    if not path.is_file():
        benchlib.TEXT_CACHE.mkdir(parents=True, exist_ok=True)
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
    from streamtrain.dataset.prepare import prepare

    t0 = time.perf_counter()
    m = prepare(benchlib.prepare_options(inputs=[corpus], data=Path(out), overwrite=True, vectorizer=vectorizer))
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
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--factors",
        default="1,4,16",
        help="comma-separated growth factors; the first is the reference (default 1,4,16)",
    )
    p.add_argument("--imdb", help="extracted aclImdb directory")
    p.add_argument(
        "--vectorizer",
        choices=("ngram", "sequence", "auto"),
        default="ngram",
        help="prepare's --vectorizer (default ngram: TF-IDF + MLP at every size; auto picks sequences + sepCNN at x16)",
    )
    p.add_argument("--keep", action="store_true", help="keep the prepared runs/bench/mem-xF directories")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds of all factors, interleaved; the table shows the last, the ratios are per round and their "
        "median (peak RSS varies by ~50-100 MiB between identical runs: worker threads, allocator arenas)",
    )
    p.add_argument("--prepare-only", action="store_true", help="measure prepare only (no fit)")
    p.add_argument("--step", nargs=2, help=argparse.SUPPRESS)  # child: prepare CORPUS:OUT | fit DATA
    args = p.parse_args(argv)
    if args.step:
        kind, arg = args.step
        benchlib.emit(run_prepare(*arg.split("::"), args.vectorizer) if kind == "prepare" else run_fit(arg))
        return 0
    imdb = benchlib.imdb_dir(args.imdb)
    factors = [int(f) for f in args.factors.split(",")]
    me = str(Path(__file__).resolve())
    results: dict = {}
    peaks: dict[str, list[list[float]]] = {"prepare": [], "fit": []}  # [round][factor]
    started = time.perf_counter()
    for r in range(args.rounds):
        peaks["prepare"].append([])
        peaks["fit"].append([])
        for f in factors:
            corpus = grown(imdb, f)
            data = OUT / f"mem-x{f}"
            print(f"[bench_memory] round {r + 1}, x{f}: prepare", file=sys.stderr, flush=True)
            prep = benchlib.run_child([me, "--step", "prepare", f"{corpus}::{data}", "--vectorizer", args.vectorizer])
            print(f"[bench_memory]   {prep}", file=sys.stderr, flush=True)
            fitr: dict = {}
            if not args.prepare_only:
                print(f"[bench_memory] round {r + 1}, x{f}: fit 1 epoch", file=sys.stderr, flush=True)
                fitr = (
                    benchlib.run_child([me, "--step", "fit", str(data), "--vectorizer", args.vectorizer])
                    if "error" not in prep
                    else {"error": "no data"}
                )
                print(f"[bench_memory]   {fitr}", file=sys.stderr, flush=True)
            results[f] = (corpus.stat().st_size, prep, fitr)
            peaks["prepare"][-1].append(prep.get("peak_rss_mib") or float("nan"))
            peaks["fit"][-1].append(fitr.get("peak_rss_mib") or float("nan"))
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
    rows = []
    for f, (gz, prep, fitr) in results.items():
        rows.append(
            [
                f"x{f}",
                prep.get("encoding", "-"),
                benchlib.fmt(prep.get("rows")),
                f"{gz / 1e6:.0f}",
                benchlib.fmt((prep.get("shard_bytes") or 0) / 1e6),
                benchlib.fmt(prep.get("seconds"), 1),
                benchlib.fmt(prep.get("peak_rss_mib")),
                benchlib.fmt(fitr.get("train_seconds"), 1),
                benchlib.fmt(fitr.get("samples_per_s")),
                benchlib.fmt(fitr.get("peak_rss_mib")),
                prep.get("error") or fitr.get("error") or "",
            ]
        )
    print(
        f"\nIMDB train grown x{','.join(map(str, factors))}; "
        f"total {time.perf_counter() - started:.0f} s; {os.cpu_count()} CPUs\n"
    )
    benchlib.print_table(
        [
            "corpus",
            "encoding",
            "rows",
            "text .gz MB",
            "shards MB",
            "prepare s",
            "prepare peak RSS MiB",
            "fit epoch s",
            "fit samples/s",
            "fit peak RSS MiB",
            "error",
        ],
        rows,
    )
    for i, f in enumerate(factors[1:], start=1):
        for step in ("prepare",) if args.prepare_only else ("prepare", "fit"):
            per_round = [round_[i] / round_[0] for round_ in peaks[step]]
            big, ref = (statistics.median(r[j] for r in peaks[step]) for j in (i, 0))
            print(
                f"x{f}/x{factors[0]} {step} peak RSS per round: {', '.join(f'{v:.2f}' for v in per_round)}; "
                f"median {statistics.median(per_round):.2f} (medians of the peaks: {big:.0f} / {ref:.0f} MiB)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
