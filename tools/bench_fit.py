"""Training throughput of one model fed five ways from the same prepared shards.

    /tmp/venv/bin/python tools/bench_fit.py                       # IMDB, 4 epochs, all variants
    /tmp/venv/bin/python tools/bench_fit.py --data runs/ag/data --epochs 3 --variants ram,streamtrain
    /tmp/venv/bin/python tools/bench_fit.py --rounds 3 --json runs/bench/fit.json
    /tmp/venv/bin/python tools/bench_fit.py --profile              # where streamtrain's input spends its time

Without ``--data`` it prepares IMDB (train + test from an extracted aclImdb,
see ``--imdb``) into ``runs/bench/imdb-hdf5`` once and reuses it.

Every variant trains ``build_mlp`` with its defaults (2 x Dense(64) +
Dropout 0.2, Adam 1e-3), seed ``--seed``, batch ``--batch-size``, for exactly
``--epochs`` epochs (no validation, no early stopping), each in its own
subprocess so its peak RSS is its own:

ram          all train rows in memory as one scipy CSR matrix, ``model.fit(X, y,
             batch_size, shuffle=True)``; Keras 3 turns it into a tf.SparseTensor
             and gathers each batch in tf.data (dense numpy is no faster here and
             needs rows x features x 4 bytes: 1.8 GB for IMDB).
h5gen        the guide's ``_data_generator`` pattern on the HDF5 shards: a plain
             Python generator looping forever, per batch reading an ``indptr``
             slice and the ``indices``/``values`` slice with h5py, yielding
             (scipy CSR, y) straight to ``fit`` with ``steps_per_epoch``.
             ``--gen-order batches`` (default) visits the contiguous batches in a
             new random order each epoch; ``sequential`` is the guide's order
             (prepare writes rows in a seeded random order, so a contiguous batch
             is a random sample either way; the rows of a batch are the same
             every epoch).
streamtrain  what ``streamtrain.train.fit`` does: ``tfdata.keras_dataset(BatchStream(...))``
             (one shuffled buffer of whole batches per generator step, cut into
             batches by tf.data) with ``steps_per_epoch``.
tfrecord     tf.data over TFRecord files of the same rows (written once into
             ``DATA-tfrecord/``: ``--tfrecord-files`` files, rows dealt from a
             seeded block order so every file mixes classes; one tf.train.Example
             per row: indices int64 list, values float list, label), read with
             interleave over files + shuffle buffer + batch + parse_example ->
             SparseTensor + prefetch; every row once per epoch.
cached       not a real pipeline: streamtrain's batches of one epoch cached in RAM
             by tf.data (``take(steps).cache().repeat()``), the same batches every
             epoch. Epochs 2..N measure the training step alone: the ceiling any
             input pipeline can reach on this machine.

Reported per variant: samples/s = train rows / epoch seconds, median over epochs
2..N (and over ``--rounds``, once ``--repeats``: interleaved by
``benchlib.run_rounds``, round r with seed SEED + r - 1); the median over
rounds of its ratio to ``ram`` in the same round; input-only samples/s (one
epoch of the same input consumed inside tf.data without training, after fit);
peak RSS of its process and the part above the RSS measured after TensorFlow was
imported and the model built; test accuracy from ``streamtrain.train.scoring.score``,
averaged over the rounds (each round has its own seed); CPU cores the
process kept busy during fit, and the most CPU any other process on the machine
used meanwhile (from /proc/stat; above ~0.2 cores the timings are suspect).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib

VARIANTS = ("ram", "h5gen", "streamtrain", "tfrecord", "cached")


# ---------------------------------------------------------------- inputs
def h5_generator(data: Path, manifest, batch: int, n_classes: int, order: str, seed: int):
    """The seed-style generator: per batch, slice indptr then indices/values from the HDF5 shard."""
    import h5py
    import numpy as np
    import scipy.sparse as sp

    files = [h5py.File(data / s.path, "r") for s in manifest.shards_for("train")]
    starts = [
        (f, lo, min(lo + batch, s.rows))
        for f, s in zip(files, manifest.shards_for("train"))
        for lo in range(0, s.rows, batch)
    ]

    def gen():
        rng = np.random.default_rng(seed)
        while True:
            visit = rng.permutation(len(starts)) if order == "batches" else range(len(starts))
            for i in visit:
                f, start, stop = starts[i]
                indptr = f["indptr"][start : stop + 1]
                lo, hi = int(indptr[0]), int(indptr[-1])
                x = sp.csr_matrix(
                    (f["values"][lo:hi], f["indices"][lo:hi], indptr - lo), shape=(stop - start, manifest.n_features)
                )
                yield x, benchdata.targets(f["labels"][start:stop], n_classes)

    return gen, len(starts)


def tfrecord_dir(data: Path) -> Path:
    return data.parent / (data.name + "-tfrecord")


def write_tfrecords(data: Path, n_files: int, seed: int) -> dict:
    """Train rows of ``data`` -> ``n_files`` TFRecord files (one Example per row), streamed block by block."""
    import numpy as np
    import tensorflow as tf

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.dataset.shuffle import epoch_blocks
    from streamtrain.train.batches import SplitSource

    manifest = Manifest.load(data)
    out = tfrecord_dir(data)
    key = [s.sha256 for s in manifest.shards_for("train")]
    done = out / "done.json"
    if (
        done.is_file()
        and json.loads(done.read_text()).get("shards") == key
        and json.loads(done.read_text()).get("files") == n_files
    ):
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.tfrecord"):
        old.unlink()
    t0 = time.perf_counter()
    src = SplitSource(data, manifest, "train")
    paths = [out / f"train-{i:05d}-of-{n_files:05d}.tfrecord" for i in range(n_files)]
    writers = [tf.io.TFRecordWriter(str(p)) for p in paths]
    feature, lists = tf.train.Feature, (tf.train.Int64List, tf.train.FloatList)
    dealt = 0
    for block in epoch_blocks(src.block_counts, seed, 0):
        rows = src.read(block)
        for r in np.random.default_rng([seed, dealt]).permutation(len(rows)):
            lo, hi = rows.indptr[r], rows.indptr[r + 1]
            ex = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "indices": feature(int64_list=lists[0](value=rows.indices[lo:hi].tolist())),
                        "values": feature(float_list=lists[1](value=rows.values[lo:hi].tolist())),
                        "label": feature(int64_list=lists[0](value=[int(rows.labels[r])])),
                    }
                )
            )
            writers[dealt % n_files].write(ex.SerializeToString())
            dealt += 1
    for w in writers:
        w.close()
    info = {
        "shards": key,
        "files": n_files,
        "rows": dealt,
        "bytes": benchdata.dir_bytes(out, "*.tfrecord"),
        "write_s": round(time.perf_counter() - t0, 1),
    }
    done.write_text(json.dumps(info))
    return info


def tfrecord_dataset(
    data: Path, rows: int, n_features: int, n_classes: int, batch: int, shuffle_buffer: int, seed: int
):
    import tensorflow as tf

    files = sorted(str(p) for p in tfrecord_dir(data).glob("*.tfrecord"))
    spec = {
        "indices": tf.io.VarLenFeature(tf.int64),
        "values": tf.io.VarLenFeature(tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(serialized):
        ex = tf.io.parse_example(serialized, spec)
        idx, val = ex["indices"], ex["values"]
        n = tf.shape(serialized, out_type=tf.int64)[0]
        x = tf.SparseTensor(tf.stack([idx.indices[:, 0], idx.values], axis=1), val.values, tf.stack([n, n_features]))
        y = tf.cast(tf.reshape(ex["label"], [-1, 1]), tf.float32) if n_classes == 2 else tf.cast(ex["label"], tf.int32)
        return x, y

    ds = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    ds = ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(4, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).batch(batch)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    # One epoch = one pass; telling Keras the length spares it a first epoch of unknown size.
    return ds.apply(tf.data.experimental.assert_cardinality(-(-rows // batch)))


def time_input(batches, steps: int) -> float:
    """Samples/s of ``steps`` batches of a tf.data pipeline consumed without training.

    Consumed by ``reduce``, inside TensorFlow as ``fit`` consumes it: a Python
    loop over the iterator would add ~2 ms of eager overhead per batch.
    """
    import tensorflow as tf

    t0 = time.perf_counter()
    n = batches.take(steps).reduce(tf.constant(0, tf.int64), lambda acc, b: acc + tf.shape(b[1], out_type=tf.int64)[0])
    return int(n) / (time.perf_counter() - t0)


# ---------------------------------------------------------------- child
def variant_input(args, data: Path, manifest) -> tuple[dict, Callable[[], float]]:
    """``model.fit``'s input arguments for ``args.variant``, and a function timing the same input without training."""
    from streamtrain.train.batches import BatchStream, SplitSource
    from streamtrain.train.tfdata import keras_dataset

    v, n_classes, n_features, rows = args.variant, len(manifest.labels), manifest.n_features, manifest.rows("train")
    if v == "ram":
        x, labels = benchdata.load_split_csr(data, "train")
        fit_kw = {"x": x, "y": benchdata.targets(labels, n_classes), "batch_size": args.batch_size, "shuffle": True}

        def input_only():
            # Keras's private adapter: used only to time the same input without training.
            from keras.src.trainers.data_adapters import get_data_adapter

            ad = get_data_adapter(x, benchdata.targets(labels, n_classes), batch_size=args.batch_size, shuffle=True)
            return time_input(ad.get_tf_dataset(), ad.num_batches)
    elif v == "h5gen":
        gen, steps = h5_generator(data, manifest, args.batch_size, n_classes, args.gen_order, args.seed)
        fit_kw = {"x": gen(), "steps_per_epoch": steps, "shuffle": False}

        def input_only():
            from keras.src.trainers.data_adapters import get_data_adapter

            return time_input(get_data_adapter(gen()).get_tf_dataset(), steps)
    elif v in ("streamtrain", "cached"):
        train = BatchStream(SplitSource(data, manifest, "train"), args.batch_size, True, args.seed)
        ds = keras_dataset(train, n_classes)
        if v == "cached":
            ds = ds.take(train.steps).cache().repeat()
        fit_kw = {"x": ds, "steps_per_epoch": train.steps, "shuffle": False}

        def input_only():
            return time_input(ds, train.steps)
    elif v == "tfrecord":
        ds = tfrecord_dataset(data, rows, n_features, n_classes, args.batch_size, args.shuffle_buffer, args.seed)
        fit_kw = {"x": ds, "shuffle": False}

        def input_only():
            return time_input(ds, -(-rows // args.batch_size))
    else:
        raise SystemExit(f"unknown variant {v}")
    return fit_kw, input_only


def run_variant(args) -> dict:
    import keras

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.train.batches import BatchStream, SplitSource
    from streamtrain.train.models import build_mlp
    from streamtrain.train.scoring import score

    data = Path(args.data)
    manifest = Manifest.load(data)
    if manifest.encoding != "ngram":
        raise SystemExit(f"{data}: encoding {manifest.encoding!r}; this benchmark feeds TF-IDF rows to the MLP")
    n_classes, n_features, rows = len(manifest.labels), manifest.n_features, manifest.rows("train")
    keras.utils.set_random_seed(args.seed)
    model = build_mlp(n_features, n_classes, 64, 2, 0.2, 1e-3)
    rss_base = benchlib.rss_mib()
    v, (fit_kw, input_only) = args.variant, variant_input(args, data, manifest)

    def test_accuracy():
        return score(model, BatchStream(SplitSource(data, manifest, "test"), 1024).epoch(0), n_classes)["accuracy"]

    timer, per_epoch = benchdata.epoch_timer(), []
    callbacks = [timer]  # the timer first: its epoch ends before any scoring starts
    if args.per_epoch_accuracy:
        callbacks.append(
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: per_epoch.append(test_accuracy()))
        )
    t0, watch = time.perf_counter(), benchlib.CpuWatch()
    model.fit(epochs=args.epochs, callbacks=callbacks, verbose=0, **fit_kw)
    fit_s, own_cores, others = time.perf_counter() - t0, watch.cores(), watch.others()
    try:
        input_rate = input_only()
    except Exception as exc:
        print(f"[bench_fit] {v}: input-only timing failed: {exc!r}", file=sys.stderr)
        input_rate = None
    return {
        "variant": v,
        "rows": rows,
        "epoch_s": [round(s, 3) for s in timer.seconds],
        "samples_per_s": benchdata.steady_rate(rows, timer.seconds),
        "input_only_samples_per_s": input_rate,
        "fit_s": round(fit_s, 2),
        "cores_used": round(own_cores, 2),
        "others_cores": round(others, 2),
        "test_accuracy": test_accuracy(),
        "test_accuracy_per_epoch": per_epoch,
        "rss_base_mib": round(rss_base, 1),
        "peak_rss_mib": round(benchlib.peak_rss_mib(), 1),
    }


# ---------------------------------------------------------------- profile
def profile_streamtrain(args) -> None:
    """Where (c) spends its time: each stage of streamtrain's input alone, training alone, both together."""
    import cProfile
    import pstats

    import keras

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.train.batches import BatchStream, SplitSource
    from streamtrain.train.models import build_mlp
    from streamtrain.train.tfdata import keras_dataset

    data = Path(args.data)
    manifest = Manifest.load(data)
    n_classes, n_features = len(manifest.labels), manifest.n_features
    stream = BatchStream(SplitSource(data, manifest, "train"), args.batch_size, True, args.seed)
    rows, steps, out = stream.rows, stream.steps, []

    def timed(name, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.append([name, benchlib.fmt(rows / wall), f"{wall:.2f}", f"{cpu / wall:.2f}"])

    def chunks():
        return sum(len(c) for c in stream.chunks(1))

    timed("read blocks (SplitSource.read)", lambda: [stream.source.read(b) for b in stream.plan(1)])
    timed("BatchStream.chunks (read+shuffle)", chunks)
    timed("BatchStream.epoch (+ batches cut in Python)", lambda: sum(len(b) for b in stream.epoch(1)))
    timed("keras_dataset (chunks cut in tf.data)", lambda: time_input(keras_dataset(stream, n_classes), steps))

    def fit_rate(ds, epochs=3):
        keras.utils.set_random_seed(args.seed)
        model, timer = build_mlp(n_features, n_classes, 64, 2, 0.2, 1e-3), benchdata.epoch_timer()
        c0 = time.process_time()
        model.fit(ds, steps_per_epoch=steps, epochs=epochs, callbacks=[timer], verbose=0, shuffle=False)
        return benchdata.steady_rate(rows, timer.seconds), (time.process_time() - c0) / sum(timer.seconds)

    cached = keras_dataset(stream, n_classes).take(steps).cache().repeat()
    for name, ds in [
        ("train only (cached batches)", cached),
        ("streamtrain fit (c)", keras_dataset(stream, n_classes)),
    ]:
        rate, cores = fit_rate(ds)
        out.append([name, benchlib.fmt(rate), f"{rows / rate:.2f}", f"{cores:.2f}"])
    print(f"\n{data}: one epoch = {rows} rows, {steps} batches of {args.batch_size}; {os.cpu_count()} CPUs\n")
    benchlib.print_table(["stage (one epoch)", "samples/s", "seconds", "CPU cores busy"], out)
    prof = cProfile.Profile()
    prof.enable()
    chunks()
    prof.disable()
    print("\ncProfile of one epoch of the generator's Python work (BatchStream.chunks), top 12 by own time:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


# ---------------------------------------------------------------- parent
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    benchlib.add_common_flags(p, rounds=1, json=True, imdb=True, data=True)  # --rounds: once --repeats
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    p.add_argument(
        "--gen-order", choices=("batches", "sequential"), default="batches", help="h5gen batch order per epoch"
    )
    p.add_argument("--tfrecord-files", type=int, default=16)
    p.add_argument("--shuffle-buffer", type=int, default=8192, help="tfrecord shuffle buffer, rows")
    p.add_argument(
        "--per-epoch-accuracy",
        action="store_true",
        help="also score the test split after every epoch (outside the epoch timings) and print the mean per epoch",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead of the table: time each stage of the streamtrain input and training alone",
    )
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--write-tfrecords", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.variant:
        benchlib.emit(run_variant(args))
        return 0
    if args.write_tfrecords:
        benchlib.emit(write_tfrecords(Path(args.data), args.tfrecord_files, args.seed))
        return 0
    if args.data is None:
        args.data = str(benchdata.imdb_data(args.imdb))
    if args.profile:
        profile_streamtrain(args)
        return 0
    variants = [v for v in args.variants.split(",") if v]
    if bad := set(variants) - set(VARIANTS):
        raise SystemExit(f"unknown variants {sorted(bad)}; choose from {VARIANTS}")
    common = ["--data", args.data, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    common += ["--per-epoch-accuracy"] if args.per_epoch_accuracy else []
    common += ["--gen-order", args.gen_order, "--tfrecord-files", str(args.tfrecord_files)]
    common += ["--shuffle-buffer", str(args.shuffle_buffer)]
    me = str(Path(__file__).resolve())
    if "tfrecord" in variants:
        info = benchlib.run_child([me, "--write-tfrecords", "--seed", str(args.seed), *common])
        print(f"[bench_fit] tfrecords: {info}", file=sys.stderr, flush=True)

    def measure(v: str, rnd: int) -> dict:  # round r trains with seed SEED + r - 1
        return benchlib.run_child([me, "--variant", v, "--seed", str(args.seed + rnd - 1), *common])

    runs = benchlib.run_rounds(variants, args.rounds, measure, "bench_fit")
    m = json.loads((Path(args.data) / "manifest.json").read_text())
    print(
        f"\n{args.data}: {m['stats']['rows']['train']} train rows, {m['n_features']} features; "
        f"batch {args.batch_size}, {args.epochs} epochs, {args.rounds} round(s) "
        f"with seeds {args.seed}..{args.seed + args.rounds - 1}, "
        f"{os.cpu_count()} CPUs\n"
    )
    benchlib.print_ratio_table(runs, variants, table_columns("ram" if "ram" in variants else None))
    if args.per_epoch_accuracy:
        print_per_epoch_accuracy(runs, variants, args.epochs)
    if args.json:
        benchlib.write_json(args.json, {"args": vars(args), "results": [r.record("variant") for r in runs]})
    return 0


def table_columns(base: str | None) -> list[benchlib.Column]:
    """Medians over rounds; test accuracy: the mean over the rounds' seeds; others: the most of any round."""
    b = benchlib

    def above_base(runs, v):
        peak, base_rss = b.aggregate(runs, v, "peak_rss_mib"), b.aggregate(runs, v, "rss_base_mib")
        return b.fmt(peak - base_rss if peak and base_rss else None)

    def first_epochs(runs, v):
        mine = [r for r in runs if r.arm == v]
        errors = [r.values["error"] for r in mine if not r.ok]
        return " ".join(f"{s:.1f}" for s in mine[0].values.get("epoch_s", [])) + (f" ERROR {errors}" if errors else "")

    ratio = [b.Ratio("x ram", "samples_per_s", base)] if base else [b.Custom("x ram", lambda *_: "-")]
    return [
        b.Custom("variant", lambda _runs, v: v),
        b.Stat("samples/s (ep 2..N)", "samples_per_s"),
        *ratio,
        b.Stat("input-only samples/s", "input_only_samples_per_s"),
        b.Stat("peak RSS MiB", "peak_rss_mib"),
        b.Custom("above base MiB", above_base),
        b.Stat("test acc (mean)", "test_accuracy", 4, statistics.mean),
        b.Stat("cores used", "cores_used", 2),
        b.Stat("max other load", "others_cores", 2, max),
        b.Custom("epoch s (1st run)", first_epochs),
    ]


def print_per_epoch_accuracy(runs: list[benchlib.Run[str]], variants: list[str], epochs: int) -> None:
    """Mean test accuracy after each epoch, and the largest gap to ``ram`` for the same seed."""

    def curves(v):
        return [c for r in runs if r.arm == v and len(c := r.values.get("test_accuracy_per_epoch", [])) == epochs]

    ref, rows = curves("ram"), []
    for v in variants:
        mine = curves(v)
        if not mine:
            continue
        cells = [f"{statistics.mean(c[e] for c in mine):.4f}" for e in range(epochs)]
        gaps = [abs(a[e] - b[e]) * 100 for a, b in zip(mine, ref) for e in range(epochs)]
        rows.append([v, *cells, f"{max(gaps):.2f}" if gaps and v != "ram" else "-"])
    print(
        "\nTest accuracy after each epoch, mean over seeds; "
        "largest |gap| to ram for the same seed and epoch, in points:\n"
    )
    benchlib.print_table(["variant", *[f"epoch {e + 1}" for e in range(epochs)], "max gap to ram"], rows)


if __name__ == "__main__":
    sys.exit(main())
