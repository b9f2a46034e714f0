"""``SparseDense``'s product in column slices against one product: speed of a training step and of scoring.

    .venv/bin/python tools/bench_sparse_layer.py                       # widths 16 to 1,024 (about a minute)
    .venv/bin/python tools/bench_sparse_layer.py --units 64,512 --rounds 7

TensorFlow's CPU kernel for ``sparse_dense_matmul`` multiplies by a dense side narrower than 32 columns in a
plain loop, and by a wider one through an Eigen expression per non-zero; ``SparseDense`` multiplies a wider
kernel in ``models.column_slices`` (``sliced``). ``whole`` is the same layer with the slicing off (one
product, as before 0.20). Rows are IMDB-like: ``--nnz`` n-gram entries a row on average, their columns drawn
by Zipf's law over ``--features`` columns, TF-IDF-like values, one row per document, seeded.

For each width, both variants run in this process, one op per thread as fit runs them, alternating for
``--rounds`` rounds (``benchlib.schedule``) after one untimed round: the median milliseconds of a training
step (``--batch`` rows: the MLP's ``SparseDense``, ReLU, a one-column sigmoid head, ``LazyAdam``) and of
scoring ``--score-batch`` rows (``training=False``), their ratios, and whether the two variants' outputs and
trained kernels are equal to the bit (they must be: the slices add the same products in the same order).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchlib  # beside this file: a script's own folder is on sys.path


def batches(rows: int, count: int, features: int, nnz: int, seed: int) -> list:
    """``count`` sparse batches of ``rows`` rows and their labels."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        lengths = np.maximum(1, rng.poisson(nnz, rows))
        cols, row_ids = [], []
        for r, n in enumerate(lengths):
            drawn = np.unique(np.minimum(rng.zipf(1.1, n), features) - 1)
            cols.append(drawn)
            row_ids.append(np.full(len(drawn), r))
        indices = np.stack([np.concatenate(row_ids), np.concatenate(cols)], axis=1).astype(np.int64)
        values = rng.random(len(indices)).astype(np.float32)
        labels = rng.integers(0, 2, (rows, 1)).astype(np.float32)
        out.append((tf.SparseTensor(indices, values, [rows, features]), tf.constant(labels)))
    return out


def variant(units: int, features: int, seed: int) -> tuple:
    """A fresh model (SparseDense, ReLU, sigmoid head) with its optimizer; the same weights for the same seed."""
    import keras

    from streamtrain.train.models import SparseDense
    from streamtrain.train.optimizers import LazyAdam

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(features,), sparse=True)
    hidden = SparseDense(units, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    optimizer = LazyAdam(1e-3)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def functions(model, optimizer) -> tuple:
    """The traced training step and scoring function of ``model`` (traced with the module's slicing as it is)."""
    import keras
    import tensorflow as tf

    loss = keras.losses.BinaryCrossentropy()

    def step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))

    return tf.function(step, autograph=False), tf.function(lambda x: model(x, training=False), autograph=False)


def timed(fn, items) -> float:
    """Milliseconds per call of ``fn`` over ``items`` (tuples of arguments)."""
    began = time.perf_counter()
    for args in items:
        fn(*args)
    return (time.perf_counter() - began) / len(items) * 1000


def measure(units: int, args: argparse.Namespace) -> dict:
    """Both variants at one width: median step and scoring milliseconds, and whether they agree to the bit."""
    from streamtrain.train import models

    train = batches(args.batch, args.steps, args.features, args.nnz, 1)
    score = [(x,) for x, _ in batches(args.score_batch, 3, args.features, args.nnz, 2)]
    runs = {}
    for name, columns in (("whole", 1 << 30), ("sliced", models.SLICE_COLUMNS)):
        saved = models.SLICE_COLUMNS
        models.SLICE_COLUMNS = columns  # read when the functions trace, below
        try:
            model, optimizer = variant(units, args.features, 0)
            step, infer = functions(model, optimizer)
            step(*train[0])
            infer(*score[0])
        finally:
            models.SLICE_COLUMNS = saved
        runs[name] = (model, step, infer)
    times: dict = {name: {"step": [], "score": []} for name in runs}
    for _, step, infer in runs.values():  # a round untimed: the first calls of a width run slower
        timed(step, train)
        timed(infer, score)
    for _, name in benchlib.schedule(list(runs), args.rounds):
        _, step, infer = runs[name]
        times[name]["step"].append(timed(step, train))
        times[name]["score"].append(timed(infer, score))
    kernels = {name: model.get_weights()[0] for name, (model, _, _) in runs.items()}
    scores = {name: infer(*score[0]).numpy() for name, (_, _, infer) in runs.items()}
    medians = {f"{name} {what}": statistics.median(v) for name, d in times.items() for what, v in d.items()}
    return {
        **medians,
        "step ratio": medians["whole step"] / medians["sliced step"],
        "score ratio": medians["whole score"] / medians["sliced score"],
        "equal": bool(np.array_equal(kernels["whole"], kernels["sliced"]) and np.array_equal(*scores.values())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", default="16,32,64,128,512,1024", help="comma-separated widths")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per width (medians)")
    parser.add_argument("--steps", type=int, default=30, help="training steps timed a round")
    parser.add_argument("--batch", type=int, default=128, help="rows of a training step")
    parser.add_argument("--score-batch", type=int, default=1024, help="rows scored at a time")
    parser.add_argument("--features", type=int, default=200_000, help="columns of the sparse rows")
    parser.add_argument("--nnz", type=int, default=205, help="entries a row on average (IMDB's: 205)")
    args = parser.parse_args()

    from streamtrain.train.runtime import import_tensorflow, one_thread_per_op

    import_tensorflow()
    one_thread_per_op()
    from streamtrain.train.models import column_slices

    rows = []
    for units in (int(u) for u in args.units.split(",")):
        m = measure(units, args)
        times = [benchlib.fmt(m[k], 2) for k in ("whole step", "sliced step")]
        scores = [benchlib.fmt(m[k], 2) for k in ("whole score", "sliced score")]
        ratios = [f"{m['step ratio']:.2f}x", f"{m['score ratio']:.2f}x"]
        equal = "yes" if m["equal"] else "NO"
        rows.append([units, len(column_slices(units)), *times, ratios[0], *scores, ratios[1], equal])
    headers = ["units", "slices", "step whole ms", "step sliced ms", "step ratio", "score whole ms"]
    benchlib.print_table([*headers, "score sliced ms", "score ratio", "equal"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
