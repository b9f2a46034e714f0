"""Multi-worker fit on paper and on loopback: all-reduce sizes, step rates, an estimate for N machines, 2 vs 1 worker.

    .venv/bin/python tools/bench_workers.py                    # IMDB, all four parts (about 8 minutes on 2 cores)
    .venv/bin/python tools/bench_workers.py --skip-loopback    # parts 1-3 only (about 3 minutes)
    .venv/bin/python tools/bench_workers.py --skip-estimate --rounds 5
    .venv/bin/python tools/bench_workers.py --data runs/ag/data --json runs/bench/workers.json

Without ``--data`` it prepares IMDB train + test (``benchdata.imdb_dir``: the
archive in $STREAMTRAIN_DATASETS, extracted once) with prepare's defaults into
``runs/bench/imdb-hdf5`` (``benchdata.ensure_prepared``, shared with
bench_fit and bench_integrity) and reuses it. The model is fit's default MLP
(``models.build_model("mlp", ...)`` with ``FitOptions``' defaults: 2 x 16 units since 0.6, 2 x 64 before,
the first a ``SparseDense`` on the TF-IDF rows, dropout 0.2, LazyAdam 1e-3).
Every part is printed as a Markdown table.

1. Per-step all-reduce size, measured. For each N in ``--workers-list``
   (default 1,2,4,8) and two batch policies (fixed global batch G =
   ``--global-batch``, fit's default 128: N workers of ceil(G / N) rows;
   fixed per-worker batch G: global G x N), ``--batches`` K steps of N
   workers: worker i's real training batches (``BatchStream(worker=i,
   workers=N)`` + ``keras_dataset``, as fit feeds them), each one's gradients
   computed eagerly with a GradientTape exactly as
   ``Trainer.gradients`` does (what ``_train_step_fn`` applies) (the loss scaled by 1 / N). The first
   layer's kernel gradient is a ``tf.IndexedSlices``; per worker: its rows,
   its bytes (values float32 + indices int64), the batch's non-zeros and
   the unique feature ids among them (the slice has one row per unique id:
   ``embedding_lookup_sparse`` de-duplicates the ids before its gather);
   per step: the rows of the summed gradient (the union of the N workers'
   rows) and the bytes each worker receives. TensorFlow's
   MultiWorkerMirroredStrategy all-reduces an IndexedSlices by all-gather
   (``CollectiveReplicaLauncher.all_reduce_indexed_slices``: an all-gather of
   the lengths, then of values and of indices, each padded to the longest
   worker's, so a worker receives (N - 1) x the largest slice) and the dense
   tensors (every other layer: one pack) by ring all-reduce (2 (N - 1) / N x
   their size per worker). "dense 1st" is what the same step would receive
   if the first layer were a plain ``Dense``: its n_features x units float32
   kernel gradient, ring all-reduced with the rest. And, timed: LazyAdam's
   ``apply_gradients`` (a tf.function) of worker 0's gradients with its own
   slice and with all N workers' slices concatenated (what the all-gather
   hands every worker's optimizer): the update work that grows with N.
   Medians over the K steps (and the N workers).
2. Step rate, measured in this process on this machine's cores (TensorFlow's
   default threads, or ``--threads``): samples/s of fit's training step
   alone (``Trainer.train_round`` under TensorFlow's default strategy, on
   ``--limit-rows`` rows of batches cached in memory after a warm-up pass,
   so no input reading is timed) at each per-worker batch the estimate
   needs (128, 64, 32, 16 by default). ``--rounds`` interleaved rounds (the
   batch order rotated each round), medians.
3. Estimate for N machines on a ``--gbps`` network (default 10 Gb/s = 1.25
   GB/s), ``--latency-us`` per message (default 50 us per ring hop; the
   sparse all-reduce is 3 all-gathers of N - 1 hops, the dense pack's ring
   all-reduce 2 (N - 1) hops): step time = compute(per-worker batch, part
   2) + bytes received per worker / bandwidth + hops x latency, with no
   overlap of computation and communication and the full line rate;
   samples/s = global batch / step time; speed-up against N = 1 of the same
   policy (one machine, no communication). For the sparse first layer as it
   is, and for a dense one with the same compute (only the communication
   differs: optimistic for the dense layer, whose own update would touch
   every kernel row). "+update" adds to the sparse step the measured extra
   time of applying the N workers' gathered slices instead of one's own
   (part 1). A worker machine with more cores than this one computes
   faster, which makes the communication a larger share than shown.
4. Loopback, measured: ``streamtrain fit --data D --model-dir TMP --epochs 1
   --validations 1 --patience 9 --seed 0 --quiet`` with ``--workers 1`` and
   ``--workers 2`` (a fresh model directory each), ``--rounds`` interleaved
   rounds (the order alternating), ``train_seconds``,
   ``train_samples_per_second`` and ``test_accuracy`` from fit's JSON, medians
   and the per-round ratio of 2-worker to 1-worker samples/s. On one machine
   the 2 workers share its cores and talk over loopback: this measures the
   overhead of the multi-worker path (collectives, coordination), not
   scaling. Above ~0.2 ``others`` cores the timings are suspect.

Reading it: part 1 is what a step puts on the wire, part 2 how long a step
computes, part 3 a model combining them for N machines (its assumptions are
printed with it: trust its ratios more than its digits), part 4 the only
end-to-end multi-worker measurement, on one machine. A speed-up with the
fixed global batch means the same training (same steps, same batches
overall) finishes sooner; with a fixed per-worker batch the global batch
grows with N, which is other training (fewer, larger steps an epoch; the
accuracy may change), so its samples/s are not like for like.

``--skip-estimate`` skips parts 1-3, ``--skip-loopback`` part 4. ``--json``
writes every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib

STREAMTRAIN = Path(sys.executable).parent / "streamtrain"  # the console script of the venv running this
FLOAT32, INT32 = 4, 4  # bytes
POLICIES = ("global", "per-worker")  # fixed global batch G; fixed per-worker batch G
LOOPBACK_ARGS = ("--epochs", "1", "--validations", "1", "--patience", "9", "--seed", "0", "--quiet")
LOOPBACK_KEYS = ("train_seconds", "train_samples_per_second", "test_accuracy", "wall_s", "cores", "others_cores")


# ---------------------------------------------------------------- the arithmetic of the estimate (pure)
def per_worker_batch(policy: str, global_batch: int, n: int) -> int:
    """Rows each of ``n`` workers trains per step: fit's ceil(G / N), or G itself with a fixed per-worker batch."""
    return -(-global_batch // n) if policy == "global" else global_batch


def ring_allreduce_bytes(size: float, n: int) -> float:
    """Bytes each of ``n`` workers receives in a ring all-reduce of a ``size``-byte tensor: 2 (N - 1) / N x size
    (N - 1 reduce-scatter steps, then N - 1 all-gather steps, each of a 1 / N chunk)."""
    return 2 * (n - 1) / n * size


def allgather_bytes(per_worker: float, n: int) -> float:
    """Bytes each of ``n`` workers receives in an all-gather of ``per_worker`` bytes from each: the other N - 1's."""
    return (n - 1) * per_worker


def sparse_messages(n: int) -> int:
    """Ring hops in TensorFlow's all-reduce of one IndexedSlices: all-gathers of lengths, values, indices."""
    return 3 * (n - 1)


def dense_messages(n: int) -> int:
    """Ring hops in one ring all-reduce (the dense gradients go as one pack)."""
    return 2 * (n - 1)


def step_seconds(compute_s: float, received_bytes: float, messages: int, bandwidth: float, latency_s: float) -> float:
    """One step: computation, then receiving ``received_bytes`` at ``bandwidth`` B/s, plus per-message latency."""
    return compute_s + received_bytes / bandwidth + messages * latency_s


def received_sparse(max_slice_bytes: float, dense_bytes: float, n: int) -> float:
    """Per worker and step, sparse first layer: the all-gather of the slices (each padded to the largest; plus the
    int32 lengths) and the ring all-reduce of the dense gradients."""
    return allgather_bytes(max_slice_bytes + INT32, n) + ring_allreduce_bytes(dense_bytes, n)


def received_dense(first_layer_bytes: float, dense_bytes: float, n: int) -> float:
    """Per worker and step, dense first layer: one ring all-reduce of its kernel and the other dense gradients."""
    return ring_allreduce_bytes(first_layer_bytes + dense_bytes, n)


@dataclass
class Cell:
    """What the estimate needs of one (policy, N): part 1's sizes and part 2's compute times."""

    policy: str
    n: int
    batch: int  # per worker
    compute_s: float  # one training step at ``batch`` rows, one machine
    extra_update_s: float  # applying the N workers' gathered slices instead of its own (0 for N = 1)
    max_slice_bytes: float  # the largest worker's IndexedSlices bytes (median over steps)
    dense_bytes: float  # the other layers' dense gradients
    first_layer_bytes: float  # a dense first layer's kernel gradient


def estimate(cells: Sequence[Cell], bandwidth: float, latency_s: float) -> list[dict]:
    """Step time, samples/s and speed-up against N = 1 of the same policy, for the sparse and a dense first layer.

    ``sparse_update``: the sparse step with ``extra_update_s`` added: each worker's optimizer applies the
    all-gathered slices of all N workers, not only its own as the one-machine step at its batch does.
    """
    rows = []
    for c in cells:
        global_batch = c.batch * c.n
        sparse_in = received_sparse(c.max_slice_bytes, c.dense_bytes, c.n)
        dense_in = received_dense(c.first_layer_bytes, c.dense_bytes, c.n)
        comm_sparse = step_seconds(0.0, sparse_in, sparse_messages(c.n) + dense_messages(c.n), bandwidth, latency_s)
        comm_dense = step_seconds(0.0, dense_in, dense_messages(c.n), bandwidth, latency_s)
        compute_update = c.compute_s + c.extra_update_s
        step = {
            "sparse": c.compute_s + comm_sparse,
            "sparse_update": compute_update + comm_sparse,
            "dense": c.compute_s + comm_dense,
        }
        rows.append(
            {
                "policy": c.policy,
                "n": c.n,
                "batch": c.batch,
                "global_batch": global_batch,
                "compute_s": c.compute_s,
                "compute_update_s": compute_update,
                "sparse_bytes": sparse_in,
                "sparse_comm_s": comm_sparse,
                "dense_bytes": dense_in,
                "dense_comm_s": comm_dense,
                **{f"{k}_step_s": v for k, v in step.items()},
                **{f"{k}_rate": global_batch / v for k, v in step.items()},
            }
        )
    for r in rows:
        base = next((b for b in rows if b["policy"] == r["policy"] and b["n"] == 1), None)
        for k in ("sparse", "sparse_update", "dense"):
            r[f"{k}_speedup"] = r[f"{k}_rate"] / base[f"{k}_rate"] if base else None
    return rows


def loopback_summary(runs: Sequence[benchlib.Run[int]]) -> dict:
    """Medians per worker count and the median of the per-round ratios of 2-worker to 1-worker samples/s."""
    out: dict = {}
    for n in sorted({r.arm for r in runs}):
        out[n] = {key: benchlib.aggregate(runs, n, key) for key in LOOPBACK_KEYS}
        out[n]["rounds"] = len(benchlib.ok_runs(runs, n))
    out["ratios"] = benchlib.ratios(runs, 2, 1, "train_samples_per_second")
    out["ratio_median"] = benchlib.median_of(out["ratios"])
    return out


# ---------------------------------------------------------------- formatting
def mb(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value / 1e6:,.{digits}f}"


def ms(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 1e3:,.{digits}f}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


# ---------------------------------------------------------------- TensorFlow parts (in this process)
def _model_and_trainer(data: str, seed: int):
    """fit's default MLP for ``data`` (its seed, sizes, dropout, optimizer) in a ``Trainer`` under the default
    strategy: one worker's step, exactly as fit runs it."""
    from streamtrain.train.runtime import import_tensorflow

    import_tensorflow()
    import keras
    import tensorflow as tf

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.train.cluster import Cluster
    from streamtrain.train.fit import FitOptions
    from streamtrain.train.loop import Trainer
    from streamtrain.train.models import build_model
    from streamtrain.train.tune import Candidate

    manifest = Manifest.load(data)
    if manifest.encoding != "ngram":
        raise SystemExit(f"{data}: {manifest.encoding} rows; this benchmark is about the MLP's sparse first layer")
    opts = FitOptions(data=data, model_dir="")
    keras.utils.set_random_seed(seed)
    mlp = Candidate("mlp", 16, 2, 1e-3, 0.2)  # 0.6-0.10's default MLP, which the measurements were made with
    model = build_model(mlp, manifest.n_features, manifest.row_width, len(manifest.labels), opts)
    return manifest, opts, model, Trainer(tf.distribute.get_strategy(), model, Cluster(), len(manifest.labels))


def _nbytes(t) -> int:
    return int(t.numpy().nbytes)


def measure_sizes(data: str, global_batch: int, workers_list: Sequence[int], k: int, seed: int) -> dict:
    """Part 1: per (N, per-worker batch), K steps of N workers' real batches, their gradients' sizes, and the time
    the optimizer takes to apply the all-gathered slices of all N workers against its own worker's alone."""
    import numpy as np
    import tensorflow as tf

    from streamtrain.train.batches import BatchStream, SplitSource
    from streamtrain.train.tfdata import keras_dataset

    watch = benchlib.CpuWatch()
    manifest, opts, model, trainer = _model_and_trainer(data, seed)
    n_classes = len(manifest.labels)
    kernel = model.get_layer("dense_0").kernel
    variables = model.trainable_variables
    first = [i for i, v in enumerate(variables) if v.path == kernel.path]
    first_layer_bytes = int(np.prod(kernel.shape)) * FLOAT32
    apply = tf.function(lambda grads: model.optimizer.apply_gradients(zip(grads, variables)), reduce_retracing=True)

    def apply_seconds(grads) -> float:
        t0 = time.perf_counter()
        apply(grads)
        return time.perf_counter() - t0

    pairs = sorted({(n, per_worker_batch(p, global_batch, n)) for p in POLICIES for n in workers_list})
    out: dict = {
        "n_features": manifest.n_features,
        "units": 16,
        "classes": n_classes,
        "first_layer_bytes": first_layer_bytes,
        "cells": {},
    }
    for n, batch in pairs:
        t0 = time.perf_counter()
        trainer.workers = n  # the loss scaled by 1 / N, as in an N-worker step (the sizes do not depend on it)
        sources = [SplitSource(data, manifest, "train") for _ in range(n)]
        streams = [BatchStream(s, batch, True, seed, opts.buffer_blocks, i, n) for i, s in enumerate(sources)]
        iterators = [iter(keras_dataset(s, n_classes).take(k)) for s in streams]
        per_worker: dict[str, list[float]] = {"rows": [], "slice_bytes": [], "nnz": [], "unique": []}
        per_step: dict[str, list[float]] = {"max_slice_bytes": [], "union_rows": [], "dense_bytes": []}
        timing: dict[str, list[float]] = {"own_update_s": [], "gathered_update_s": [], "extra_update_s": []}
        for step in range(k):
            workers = []
            for it in iterators:
                x, y = next(it)
                grads, _ = trainer.gradients(x, y)
                sparse = [i for i, g in enumerate(grads) if isinstance(g, tf.IndexedSlices)]
                if sparse != first:
                    raise RuntimeError(f"expected one IndexedSlices gradient, of dense_0's kernel, not {sparse}")
                g = grads[first[0]]
                per_worker["rows"].append(len(g.indices))
                per_worker["slice_bytes"].append(_nbytes(g.values) + _nbytes(g.indices))
                per_worker["nnz"].append(int(x.indices.shape[0]))
                per_worker["unique"].append(len(np.unique(x.indices[:, 1].numpy())))
                workers.append(grads)
            slices = [w[first[0]] for w in workers]
            per_step["max_slice_bytes"].append(max(_nbytes(g.values) + _nbytes(g.indices) for g in slices))
            per_step["union_rows"].append(len(np.unique(np.concatenate([g.indices.numpy() for g in slices]))))
            per_step["dense_bytes"].append(sum(_nbytes(d) for d in workers[0] if not isinstance(d, tf.IndexedSlices)))
            if n > 1:  # what all_reduce_indexed_slices hands the optimizer: every worker's slices, concatenated
                own = workers[0]
                gathered = list(own)
                gathered[first[0]] = tf.IndexedSlices(
                    tf.concat([g.values for g in slices], 0),
                    tf.concat([g.indices for g in slices], 0),
                    slices[0].dense_shape,
                )
                if step == 0:  # trace (and retrace for unknown lengths) before timing
                    for grads in (own, gathered, own, gathered):
                        apply(grads)
                order = benchlib.rotated(("own", "gathered"), step)  # alternating: fair to both
                seconds = {name: apply_seconds(own if name == "own" else gathered) for name in order}
                timing["own_update_s"].append(seconds["own"])
                timing["gathered_update_s"].append(seconds["gathered"])
                timing["extra_update_s"].append(seconds["gathered"] - seconds["own"])
        for s in sources:
            s.close()
        cell = {key: statistics.median(v) if v else 0.0 for key, v in {**per_worker, **per_step, **timing}.items()}
        cell.update(n=n, batch=batch, steps=k)
        cell["sparse_received"] = received_sparse(cell["max_slice_bytes"], cell["dense_bytes"], n)
        cell["dense_received"] = received_dense(first_layer_bytes, cell["dense_bytes"], n)
        out["cells"][f"{n}x{batch}"] = cell
        print(
            f"[bench_workers] sizes N={n} batch {batch}: {cell['rows']:,.0f} gradient rows, "
            f"{cell['slice_bytes'] / 1e6:.3f} MB a worker; update {ms(cell['own_update_s'], 3)} ms own, "
            f"{ms(cell['gathered_update_s'], 3)} ms gathered ({time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    out["others_cores"] = watch.others()
    return out


def measure_rates(data: str, batches: Sequence[int], limit_rows: int, rounds: int, seed: int) -> dict:
    """Part 2: samples/s of fit's training step at each per-worker batch size (cached batches: the step alone)."""
    import keras

    from streamtrain.train.batches import BatchStream, SplitSource
    from streamtrain.train.tfdata import keras_dataset

    manifest, opts, model, trainer = _model_and_trainer(data, seed)
    n_classes = len(manifest.labels)
    hooks = keras.callbacks.CallbackList([], model=model)
    source = SplitSource(data, manifest, "train")
    steps, cached = {}, {}
    for b in batches:
        steps[b] = max(1, limit_rows // b)
        stream = BatchStream(source, b, True, seed, opts.buffer_blocks)
        one = keras_dataset(stream, n_classes).take(steps[b]).cache().repeat()
        cached[b] = trainer.distribute(lambda one=one: one)
        trainer.train_round(cached[b], steps[b], hooks)  # fills the cache; traces the step once

    def measure(b: int, _round: int) -> dict:
        t0 = time.perf_counter()
        trainer.train_round(cached[b], steps[b], hooks)
        return {"rate": steps[b] * b / (time.perf_counter() - t0)}

    runs = benchlib.run_rounds(list(batches), rounds, measure, "bench_workers rates")
    source.close()
    out = {}
    for b in batches:
        rate = benchlib.aggregate(runs, b, "rate")
        out[b] = {"steps": steps[b], "rows": steps[b] * b, "rates": [r.get("rate") for r in runs if r.arm == b]}
        out[b] |= {"rate": rate, "step_s": b / rate, "others_cores": benchlib.aggregate(runs, b, "others_cores")}
    return out


def measured_cells(sizes: dict, global_batch: int, workers_list: Sequence[int]) -> Iterator[tuple[str, int, int, dict]]:
    """(policy, N, batch per worker, part 1's measured cell) for every policy and N, in table order."""
    for policy in POLICIES:
        for n in workers_list:
            b = per_worker_batch(policy, global_batch, n)
            yield policy, n, b, sizes["cells"][f"{n}x{b}"]


def cells_for(sizes: dict, rates: dict, global_batch: int, workers_list: Sequence[int]) -> list[Cell]:
    """Part 1's sizes and part 2's times, per (policy, N), in the form ``estimate`` takes."""
    return [
        Cell(
            policy=policy,
            n=n,
            batch=b,
            compute_s=rates[b]["step_s"],
            extra_update_s=max(0.0, c["extra_update_s"]) if n > 1 else 0.0,
            max_slice_bytes=c["max_slice_bytes"],
            dense_bytes=c["dense_bytes"],
            first_layer_bytes=sizes["first_layer_bytes"],
        )
        for policy, n, b, c in measured_cells(sizes, global_batch, workers_list)
    ]


# ---------------------------------------------------------------- printing parts 1-3
def print_sizes(sizes: dict, global_batch: int, workers_list: Sequence[int], k: int) -> None:
    print(
        f"\n## 1. Per-step all-reduce size (measured: {k} steps of real training batches, medians; "
        f"others {sizes['others_cores']:.2f} cores)\n\n"
        f"{sizes['n_features']:,} features x {sizes['units']} units; a dense first layer's kernel gradient: "
        f"{mb(sizes['first_layer_bytes'])} MB. Slice = the first layer's IndexedSlices (values float32 + indices "
        "int64); union = rows of the N workers' summed gradient. Received = bytes each worker receives per step "
        "(all-gather of the slices, padded to the largest, + ring all-reduce of the dense gradients). Update = "
        "LazyAdam's apply_gradients (a tf.function) of worker 0's gradients with its own slice, and with the "
        "N workers' slices concatenated, as the all-gather hands them to every worker's optimizer.\n"
    )
    rows = []
    for policy, n, b, c in measured_cells(sizes, global_batch, workers_list):
        rows.append(
            [
                "global " + str(global_batch) if policy == "global" else f"per-worker {global_batch}",
                n,
                b,
                f"{c['nnz']:,.0f}",
                f"{c['unique']:,.0f}",
                f"{c['rows']:,.0f}",
                f"{c['union_rows']:,.0f}",
                mb(c["slice_bytes"], 3),
                mb(c["max_slice_bytes"], 3),
                f"{c['dense_bytes'] / 1e3:,.1f}",
                mb(c["sparse_received"], 3),
                mb(c["dense_received"], 2),
                ms(c["own_update_s"], 3) if n > 1 else "-",
                ms(c["gathered_update_s"], 3) if n > 1 else "-",
            ]
        )
    benchlib.print_table(
        [
            "policy",
            "N",
            "batch/worker",
            "non-zeros/worker",
            "unique ids/worker",
            "slice rows/worker",
            "union rows",
            "slice MB/worker",
            "largest slice MB",
            "other dense KB",
            "received MB, sparse",
            "received MB, dense 1st",
            "update ms, own slice",
            "update ms, gathered",
        ],
        rows,
    )
    one = sizes["cells"][f"1x{global_batch}"]
    print(
        f"\nAt batch {global_batch} the slice has {one['rows']:,.0f} rows for {one['nnz']:,.0f} non-zeros "
        f"({one['unique']:,.0f} unique ids): SparseDense's embedding_lookup_sparse de-duplicates the ids before its "
        "gather, so the gradient already has one row per unique feature (plus feature 0 for a row with no "
        f"features). Per row: {sizes['units']} x 4 + 8 bytes. A gradient with a row per non-zero would be "
        f"{one['nnz'] / max(one['rows'], 1):.2f}x larger; the dense first layer's is "
        f"{sizes['first_layer_bytes'] / max(one['slice_bytes'], 1):,.0f}x larger."
    )


def print_rates(rates: dict, limit_rows: int, rounds: int, threads: int) -> None:
    how = f"{threads} intra-op thread(s)" if threads else f"TensorFlow's default threads, {os.cpu_count()} cores"
    print(
        f"\n## 2. Step rate (measured in-process on this one machine, {how}: fit's Trainer under the default "
        f"strategy on {limit_rows:,} rows of cached batches per timing, {rounds} interleaved round(s), medians). "
        "others = cores busy with other processes meanwhile (above ~0.2 the timings are suspect).\n"
    )
    benchlib.print_table(
        ["batch", "steps/timing", "samples/s", "step ms", "samples/s per round", "others"],
        [
            [
                b,
                r["steps"],
                f"{r['rate']:,.0f}",
                ms(r["step_s"], 3),
                ", ".join(f"{v:,.0f}" for v in r["rates"]),
                f"{r['others_cores']:.2f}",
            ]
            for b, r in sorted(rates.items(), reverse=True)
        ],
    )


def print_estimate(est: list[dict], bandwidth: float, latency_s: float, global_batch: int) -> None:
    print(
        f"\n## 3. Estimate for N machines ({bandwidth * 8 / 1e9:g} Gb/s = {bandwidth / 1e9:g} GB/s, "
        f"{latency_s * 1e6:g} us per message)\n\n"
        "Model: step = compute(batch/worker, part 2, this machine) + received bytes / bandwidth + messages x latency; "
        "no overlap of computation and communication; the full line rate for TensorFlow's gRPC collectives; "
        "messages: sparse first layer 3 (N - 1) all-gather hops (lengths, values, indices) + 2 (N - 1) ring hops for "
        "the dense pack, dense first layer 2 (N - 1). The dense first layer keeps the sparse model's compute "
        "(communication only: its own update of every kernel row would be slower still). '+update': the sparse "
        "step plus the extra time the optimizer takes to apply all N workers' gathered slices instead of its own "
        "(part 1, measured). Not counted: input reading (part 2 trains cached batches), worker start-up, "
        "validation, stragglers. Speed-up against N = 1 of the same policy (one machine, no network).\n"
    )
    for policy in POLICIES:
        title = (
            f"Fixed global batch {global_batch} (batch/worker {global_batch}/N)"
            if policy == "global"
            else f"Fixed per-worker batch {global_batch} (global {global_batch} N)"
        )
        print(f"{title}:\n")
        benchlib.print_table(
            [
                "N",
                "batch/worker",
                "compute ms",
                "sparse: MB in",
                "comm ms",
                "step ms",
                "samples/s",
                "speed-up",
                "+update: step ms",
                "speed-up",
                "dense 1st: MB in",
                "comm ms",
                "samples/s",
                "speed-up",
            ],
            [
                [
                    r["n"],
                    r["batch"],
                    ms(r["compute_s"]),
                    mb(r["sparse_bytes"]),
                    ms(r["sparse_comm_s"]),
                    ms(r["sparse_step_s"]),
                    f"{r['sparse_rate']:,.0f}",
                    times(r["sparse_speedup"]),
                    ms(r["sparse_update_step_s"]),
                    times(r["sparse_update_speedup"]),
                    mb(r["dense_bytes"]),
                    ms(r["dense_comm_s"]),
                    f"{r['dense_rate']:,.0f}",
                    times(r["dense_speedup"]),
                ]
                for r in est
                if r["policy"] == policy
            ],
        )
        print()


# ---------------------------------------------------------------- part 4: loopback
def run_fit(data: str, workers: int, timeout: float) -> dict:
    """One ``streamtrain fit --workers N`` in a fresh model directory: fit's JSON numbers, wall time, others' CPU."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-workers-{workers}-"))
    cmd = [str(STREAMTRAIN), "fit", "--data", data, "--model-dir", str(work / "model"), "--workers", str(workers)]
    watch, started = benchlib.CpuWatch(), time.perf_counter()
    try:
        proc = subprocess.run([*cmd, *LOOPBACK_ARGS], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"workers": workers, "error": f"timed out after {timeout:g} s"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 3):  # 3: a version kept but not promoted (cannot happen in a fresh directory)
        return {"workers": workers, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}", "wall_s": wall}
    doc = json.loads(proc.stdout[proc.stdout.index("{") :])
    return {
        "workers": workers,
        "wall_s": wall,
        "cores": watch.cores(),  # the command and its workers (each reaped by its parent)
        "train_seconds": doc["train_seconds"],
        "train_samples_per_second": doc["train_samples_per_second"],
        "test_accuracy": doc["test_accuracy"],
        "epochs": doc.get("epochs"),
        "train_rows": doc.get("train_rows"),
        "rows_per_worker": doc.get("rows_per_worker"),
    }


def loopback(data: str, rounds: int, timeout: float) -> list[benchlib.Run[int]]:
    """``--workers 1`` and ``--workers 2`` in interleaved rounds (others' load: ``benchlib.run_rounds``)."""
    return benchlib.run_rounds([1, 2], rounds, lambda n, _round: run_fit(data, n, timeout), "bench_workers", said)


def said(res: dict) -> str:
    """One loopback round's line."""
    return (
        f"train {res['train_seconds']:.1f} s, {res['train_samples_per_second']:,.0f} samples/s, "
        f"test acc {res['test_accuracy']:.4f}, wall {res['wall_s']:.1f} s"
    )


def print_loopback(runs: Sequence[benchlib.Run[int]]) -> dict:
    s, rounds, b = loopback_summary(runs), benchlib.rounds_of(runs), benchlib
    print(
        f"\n## 4. Loopback: 2 workers against 1 on this machine ({os.cpu_count()} cores; {rounds} interleaved "
        "round(s), medians)\n\n"
        "Both workers run on the same cores and talk over loopback: this shows what the multi-worker path costs "
        "here (collectives on every step, coordination, a second process), NOT how training scales on N machines. "
        "`streamtrain fit --epochs 1 --validations 1 --patience 9 --seed 0 --quiet`, a fresh model directory each; "
        "train s includes the validation pass; cores = CPU of the command and its workers / wall time; others = "
        "cores busy with anything else meanwhile (above ~0.2 the timings are suspect).\n"
    )
    columns: list[benchlib.Column] = [
        b.Custom("workers", lambda _runs, n: str(n)),
        b.Custom("rounds ok", lambda runs, n: f"{len(b.ok_runs(runs, n))}/{rounds}"),
        b.Stat("train s", "train_seconds", 2),
        b.Stat("samples/s", "train_samples_per_second", 0),
        b.Stat("test acc", "test_accuracy", 4),
        b.Stat("wall s", "wall_s", 1),
        b.Stat("cores", "cores", 2),
        b.OTHERS,
    ]
    b.print_ratio_table(runs, [n for n in (1, 2) if n in s], columns)
    if s["ratios"]:
        print(f"\n2-worker / 1-worker samples/s per round: {b.ratio_line(s['ratios'])}")
    for r in runs:
        if not r.ok:
            print(f"round {r.round} --workers {r.arm} FAILED: {r.values['error']}")
    return s


# ---------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    benchlib.add_common_flags(p, rounds=3, json=True, imdb=True, data=True)
    p.add_argument("--global-batch", type=int, default=128, help="G: fit's --batch-size (default 128)")
    p.add_argument("--workers-list", default="1,2,4,8", help="N values of the estimate (default 1,2,4,8)")
    p.add_argument("--batches", type=int, default=50, help="K: steps measured per N and batch size (default 50)")
    p.add_argument(
        "--limit-rows", type=int, default=16384, help="rows per step-rate timing: steps = rows / batch (default 16384)"
    )
    p.add_argument("--gbps", type=float, default=10.0, help="network bandwidth, Gb/s (default 10)")
    p.add_argument("--latency-us", type=float, default=50.0, help="latency per message (ring hop), us (default 50)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads in parts 1-2; 0: its default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed to one loopback fit")
    p.add_argument("--skip-estimate", action="store_true", help="skip parts 1-3 (sizes, step rates, estimate)")
    p.add_argument("--skip-loopback", action="store_true", help="skip part 4 (streamtrain fit --workers 1 and 2)")
    args = p.parse_args(argv)
    args.workers = sorted({int(n) for n in args.workers_list.split(",") if n.strip()})
    if not args.workers or min(args.workers) < 1 or 1 not in args.workers:
        p.error("--workers-list must hold positive numbers, 1 among them (the reference)")
    if min(args.global_batch, args.batches, args.limit_rows) < 1:
        p.error("--global-batch, --batches and --limit-rows must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.data is None:
        args.data = str(benchdata.imdb_data(args.imdb))
    source = benchlib.source_state()
    print(
        f"# Multi-worker training: sizes, step rates, estimate, loopback\n\nstreamtrain at {source}"
        f"; {os.cpu_count()} cores; data {args.data}; "
        f"global batch {args.global_batch}; N in {', '.join(map(str, args.workers))}",
        flush=True,
    )
    report: dict = {"argv": sys.argv[1:] if argv is None else list(argv), "commit": source, "data": args.data}
    took: dict[str, float] = {}
    started = time.perf_counter()
    if not args.skip_estimate:
        from streamtrain.train.runtime import import_tensorflow

        import_tensorflow()  # without its start-up noise
        if args.threads:  # before TensorFlow runs its first operation
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        t0 = time.perf_counter()
        sizes = measure_sizes(args.data, args.global_batch, args.workers, args.batches, args.seed)
        print_sizes(sizes, args.global_batch, args.workers, args.batches)
        sys.stdout.flush()
        took["sizes"] = time.perf_counter() - t0
        needed = sorted({per_worker_batch(p, args.global_batch, n) for p in POLICIES for n in args.workers})
        t0 = time.perf_counter()
        rates = measure_rates(args.data, needed[::-1], args.limit_rows, args.rounds, args.seed)
        print_rates(rates, args.limit_rows, args.rounds, args.threads)
        sys.stdout.flush()
        took["step rates"] = time.perf_counter() - t0
        bandwidth, latency = args.gbps * 1e9 / 8, args.latency_us * 1e-6
        est = estimate(cells_for(sizes, rates, args.global_batch, args.workers), bandwidth, latency)
        print_estimate(est, bandwidth, latency, args.global_batch)
        report.update(sizes=sizes, rates={str(b): r for b, r in rates.items()}, estimate=est)
        sys.stdout.flush()
    if not args.skip_loopback:
        t0 = time.perf_counter()
        runs = loopback(args.data, args.rounds, args.timeout)
        summary = print_loopback(runs)
        took["loopback"] = time.perf_counter() - t0
        records = [r.record("workers") for r in runs]
        report.update(loopback=records, loopback_summary={str(k): v for k, v in summary.items()})
    took["total"] = time.perf_counter() - started
    print("\ntook: " + ", ".join(f"{k} {v:.0f} s" for k, v in took.items()), flush=True)
    report["seconds"] = took
    if args.json:
        benchlib.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
