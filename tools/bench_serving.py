"""Serving speed: one text at a time (p50/p99 latency) and batches of 1,000 (texts/s), streamtrain beside its peers.

    STREAMTRAIN_DATASETS=../shared/datasets .venv/bin/python tools/bench_serving.py --datasets imdb,agnews
    .venv/bin/python tools/bench_serving.py --datasets agnews --rounds 5 --single 2000 --json serving.json

Models are trained once per dataset and kept under
/tmp/streamtrain-bench/serving/ (``--retrain`` trains again), on the train
CSV of ``tools/bench_peers.py`` (the same conversion): streamtrain with
``streamtrain train`` and its defaults; fastText and Vowpal Wabbit with
``bench_peers``' settings. The texts scored are the dataset's test texts.

Ways of scoring, each measured in this one process after a warm-up, in
interleaved rounds (``benchlib.run_rounds``: each round runs every way once,
in a rotated order; ``predict`` runs ``--predict-rounds`` times after them);
the table shows the median over rounds, "x fastText" the median of the
per-round ratios of batch texts/s, and the others' load:

load        ``streamtrain.load(M).probabilities(texts)`` (the current version's SavedModel)
saved_model ``tf.saved_model.load(M/current/saved_model).signatures["serving_default"]``
fasttext    its C++ ``predict`` one text at a time, ``multilinePredict`` for batches (through
            ``model.f``: the Python wrapper's ``predict`` breaks on numpy 2); the tutorial's
            normalisation included
vw          ``Workspace(-t -i model).predict(line)``, one VW example line per text (its
            normalisation included)
predict     ``streamtrain predict --model-dir M FILE`` on all test texts, a subprocess: texts/s
            over its whole wall time (interpreter start, TensorFlow import, load)

single: per-text latency over ``--single`` texts (p50, p99, in ms); batch:
texts/s over batches of ``--batch`` texts (all test texts, in order).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_peers
import benchdata
import benchlib

WORK = benchdata.TEXT_CACHE / "serving"
WAYS = ("load", "saved_model", "fasttext", "vw")
WAY_KEYS = ("p50_ms", "p99_ms", "texts_per_s")
FT_SETTINGS = {"imdb": {"lr": 0.25, "epoch": 10}, "agnews": {"lr": 1.0, "epoch": 25}}


def train_streamtrain(name: str, train: Path, test: Path, retrain: bool) -> Path:
    model = WORK / name / "model"
    if (model / "current" / "saved_model").is_dir() and not retrain:
        return model
    shutil.rmtree(WORK / name, ignore_errors=True)
    (WORK / name).mkdir(parents=True)
    cmd = [str(Path(sys.executable).parent / "streamtrain"), "train", str(train), "--test", str(test)]
    cmd += ["--data", str(WORK / name / "data"), "--model-dir", str(model)]
    print(f"[serving] {name}: training streamtrain ...", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return model


def train_peers(name: str, train: Path, labels: list[str]) -> tuple[Path, Path]:
    import fasttext
    import vowpalwabbit

    ft_model, vw_model = WORK / name / "model.ftz", WORK / name / "model.vw"
    if not ft_model.is_file():
        ft_train = WORK / name / "train.ft"
        with ft_train.open("w", encoding="utf-8") as fh:
            for text, label in bench_peers.read_csv(train):
                fh.write(bench_peers.ft_line(text, label))
        model = fasttext.train_supervised(input=str(ft_train), dim=10, wordNgrams=2, verbose=0, **FT_SETTINGS[name])
        model.save_model(str(ft_model))
    if not vw_model.is_file():
        vw_train = WORK / name / "train.vw"
        with vw_train.open("w", encoding="utf-8") as fh:
            for text, label in bench_peers.read_csv(train):
                fh.write(bench_peers.vw_line(text, label, labels))
        args = ["-d", str(vw_train), "--cache", "--passes", "20", "--loss_function", "logistic", "--ngram", "2"]
        args += ["-b", "24", "-l", "0.5", "-f", str(vw_model), "--quiet", "-k"]
        if len(labels) > 2:
            args += ["--oaa", str(len(labels))]
        vowpalwabbit.Workspace(arg_list=args).finish()
    return ft_model, vw_model


def scorers(model: Path, ft_model: Path, vw_model: Path, labels: list[str]) -> dict[str, Callable[[list[str]], object]]:
    """Each way: a function scoring a list of texts (one text: a list of one)."""
    import fasttext
    import tensorflow as tf
    import vowpalwabbit

    import streamtrain

    served = streamtrain.load(model)
    signature = tf.saved_model.load(str(model / "current" / "saved_model")).signatures["serving_default"]
    ft = fasttext.load_model(str(ft_model))
    vw = vowpalwabbit.Workspace(arg_list=["-t", "-i", str(vw_model), "--quiet"])

    def fasttext_scores(texts: list[str]):
        lines = [bench_peers.normalize(t) for t in texts]
        if len(lines) == 1:
            return ft.f.predict(lines[0], 1, 0.0, "strict")
        return ft.f.multilinePredict(lines, 1, 0.0, "strict")

    def vw_scores(texts: list[str]):
        return [vw.predict(bench_peers.vw_line(t, labels[0], labels)) for t in texts]

    return {
        "load": served.probabilities,
        "saved_model": lambda texts: signature(text=tf.constant(texts, tf.string))["probabilities"].numpy(),
        "fasttext": fasttext_scores,
        "vw": vw_scores,
    }


def single_latencies(score: Callable, texts: Sequence[str]) -> list[float]:
    out = []
    for text in texts:
        t0 = time.perf_counter()
        score([text])
        out.append(time.perf_counter() - t0)
    return out


def batch_rate(score: Callable, texts: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        score(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - t0)


def predict_rate(model: Path, texts: list[str]) -> float:
    path = WORK / "predict-input.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    cmd = [str(Path(sys.executable).parent / "streamtrain"), "predict", "--model-dir", str(model), str(path)]
    cmd += ["--input-format", "jsonl"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return len(texts) / (time.perf_counter() - t0)


def measure(name: str, args: argparse.Namespace) -> dict | None:
    files = bench_peers.dataset_files(name)
    if files is None:
        return None
    train, test, meta = files
    texts = [text for text, _ in bench_peers.read_csv(test)]
    model = train_streamtrain(name, train, test, args.retrain)
    ft_model, vw_model = train_peers(name, train, meta["labels"])
    ways = scorers(model, ft_model, vw_model, meta["labels"])
    for score in ways.values():  # warm-up: traces, caches
        score(texts[:1])
        score(texts[: args.batch])

    def one_way(way: str, _round: int) -> dict:
        lat = sorted(single_latencies(ways[way], texts[: args.single]))
        p50, p99 = lat[len(lat) // 2] * 1e3, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
        return {"p50_ms": p50, "p99_ms": p99, "texts_per_s": batch_rate(ways[way], texts, args.batch)}

    def predict(_way: str, _round: int) -> dict:
        return {"texts_per_s": predict_rate(model, texts)}

    runs = benchlib.run_rounds(WAYS, args.rounds, one_way, f"serving {name}")
    runs += benchlib.run_rounds(["predict"], min(args.predict_rounds, args.rounds), predict, f"serving {name}")
    rows = {}
    for way in (*WAYS, "predict"):
        rows[way] = {key: benchlib.aggregate(runs, way, key) for key in (*WAY_KEYS, "others_cores")}
        rows[way]["batch_vs_fasttext"] = benchlib.median_ratio(runs, way, "fasttext", "texts_per_s")
    return {"dataset": name, "texts": len(texts), "model": str(model), "ways": rows}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="imdb,agnews")
    benchlib.add_common_flags(parser, rounds=3, json=True)
    parser.add_argument("--predict-rounds", type=int, default=1, help="rounds that also time streamtrain predict")
    parser.add_argument("--single", type=int, default=1000, help="texts scored one at a time per round")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    WORK.mkdir(parents=True, exist_ok=True)
    results = [r for name in args.datasets.split(",") if (r := measure(name, args)) is not None]
    print(f"streamtrain {benchlib.source_state()}; {args.rounds} rounds, medians; machine: {os.cpu_count()} cores")
    for result in results:
        print(f"\n{result['dataset']}: {result['texts']:,} test texts")
        table = [
            [
                way,
                benchlib.fmt(v["p50_ms"], 3),
                benchlib.fmt(v["p99_ms"], 3),
                benchlib.fmt(v["texts_per_s"]),
                "-" if v["batch_vs_fasttext"] is None else f"{v['batch_vs_fasttext']:.2f}x",
                benchlib.fmt(v["others_cores"], 2),
            ]
            for way, v in result["ways"].items()
        ]
        benchlib.print_table(["way", "p50 ms", "p99 ms", "batch texts/s", "x fastText", "others"], table)
    if args.json:
        benchlib.write_json(args.json, results)


if __name__ == "__main__":
    main()
