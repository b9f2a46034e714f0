"""Tests for tools/bench_workers.py: the estimate's arithmetic, the loopback summary (with a stand-in for fit),
and a smoke run of the in-process parts (sizes, step rates, estimate) on the demo corpus."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import load_tool, prepare_csv

bench = load_tool("bench_workers")


def test_per_worker_batch_is_fits_ceiling_or_the_fixed_batch() -> None:
    assert [bench.per_worker_batch("global", 128, n) for n in (1, 2, 4, 8)] == [128, 64, 32, 16]
    assert bench.per_worker_batch("global", 100, 3) == 34  # fit: -(-batch_size // workers)
    assert [bench.per_worker_batch("per-worker", 128, n) for n in (1, 8)] == [128, 128]


def test_ring_all_reduce_and_all_gather_bytes() -> None:
    assert bench.ring_allreduce_bytes(1000, 1) == 0
    assert bench.ring_allreduce_bytes(1000, 2) == 1000  # 2 (N - 1) / N x size
    assert bench.ring_allreduce_bytes(1000, 4) == 1500
    assert bench.ring_allreduce_bytes(1000, 8) == 1750  # tends to twice the size
    assert bench.allgather_bytes(300, 1) == 0
    assert bench.allgather_bytes(300, 4) == 900  # the other N - 1 workers' slices
    assert bench.sparse_messages(1) == bench.dense_messages(1) == 0
    assert (bench.sparse_messages(4), bench.dense_messages(4)) == (9, 6)
    # The sparse path: the largest slice (+ its int32 length) from each other worker, plus the dense pack's ring.
    assert bench.received_sparse(100, 40, 3) == 2 * 104 + 4 / 3 * 40
    assert bench.received_dense(1000, 40, 2) == 1040
    assert bench.step_seconds(0.01, 2.5e6, 10, 1.25e9, 50e-6) == pytest.approx(0.01 + 0.002 + 0.0005)


def _cells(policy: str, extra: float = 0.0) -> list:
    compute = {128: 0.020, 64: 0.012, 32: 0.008, 16: 0.005}  # seconds a step at each batch/worker
    cells = []
    for n in (1, 2, 4, 8):
        batch = bench.per_worker_batch(policy, 128, n)
        cells.append(
            bench.Cell(
                policy=policy,
                n=n,
                batch=batch,
                compute_s=compute[batch],
                extra_update_s=extra * (n > 1),
                max_slice_bytes=3e6 * batch / 128,
                dense_bytes=17e3,
                first_layer_bytes=51.2e6,
            )
        )
    return cells


def test_estimate_is_one_at_one_worker_and_counts_the_network() -> None:
    rows = bench.estimate(_cells("global") + _cells("per-worker", extra=0.004), 1.25e9, 50e-6)
    for r in rows:
        if r["n"] == 1:
            assert r["sparse_speedup"] == r["dense_speedup"] == r["sparse_update_speedup"] == 1.0
            assert r["sparse_bytes"] == r["dense_bytes"] == 0 and r["sparse_step_s"] == r["compute_s"]
    two = next(r for r in rows if r["policy"] == "global" and r["n"] == 2)
    assert two["global_batch"] == 128
    assert two["sparse_step_s"] == pytest.approx(0.012 + (1.5e6 + 4 + 17e3) / 1.25e9 + 5 * 50e-6)
    assert two["dense_step_s"] == pytest.approx(0.012 + (51.2e6 + 17e3) / 1.25e9 + 2 * 50e-6)
    assert two["sparse_speedup"] == pytest.approx(0.020 / two["sparse_step_s"])
    assert two["sparse_speedup"] > two["dense_speedup"]  # 51 MB of dense kernel gradient is ~41 ms at 10 Gb/s
    eight = next(r for r in rows if r["policy"] == "per-worker" and r["n"] == 8)
    assert (eight["batch"], eight["global_batch"]) == (128, 1024)
    assert eight["sparse_bytes"] == pytest.approx(7 * (3e6 + 4) + 1.75 * 17e3)
    assert eight["sparse_update_step_s"] == pytest.approx(eight["sparse_step_s"] + 0.004)
    assert eight["sparse_update_speedup"] < eight["sparse_speedup"] < 8


def test_loopback_summary_takes_the_median_of_per_round_ratios() -> None:
    def run(workers, rnd, rate, **kw):
        return bench.benchlib.Run(workers, rnd, {"train_samples_per_second": rate, "train_seconds": 1.0, **kw})

    runs = [
        run(1, 1, 1000.0, test_accuracy=0.9),
        run(2, 1, 500.0, test_accuracy=0.8),
        run(2, 2, 900.0),
        run(1, 2, 1000.0),
        run(1, 3, 4000.0),
        run(2, 3, 1000.0),
        bench.benchlib.Run(2, 4, {"error": "exit 1"}),
    ]
    s = bench.loopback_summary(runs)
    assert s["ratios"] == [0.5, 0.9, 0.25]
    assert s["ratio_median"] == 0.5  # not the ratio of the medians (900 / 1000)
    assert s[1]["rounds"] == 3 and s[2]["rounds"] == 3
    assert s[1]["train_samples_per_second"] == 1000.0 and s[2]["test_accuracy"] == 0.8


def test_loopback_runs_fit_with_one_and_two_workers(tmp_path, monkeypatch, capsys) -> None:
    """Part 4's plumbing, with a stand-in for the streamtrain command (a real loopback fit takes too long here)."""
    fake = tmp_path / "streamtrain"
    fake.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import json, sys
            args = sys.argv[1:]
            assert args[0] == "fit" and "--quiet" in args and args[args.index("--validations") + 1] == "1"
            n = int(args[args.index("--workers") + 1])
            print(json.dumps({{"train_seconds": 2.0 * n, "train_samples_per_second": 1000.0 / n,
                              "test_accuracy": 0.9, "epochs": 1.0, "train_rows": 100}}, indent=1))
            """
        )
    )
    fake.chmod(0o755)
    monkeypatch.setattr(bench, "STREAMTRAIN", fake)
    runs = bench.loopback(str(tmp_path), 2, 60)
    assert [(r.round, r.arm) for r in runs] == [(1, 1), (1, 2), (2, 2), (2, 1)]  # interleaved
    assert all(r.ok and r.get("wall_s") > 0 and r.get("cores") >= 0 and r.get("others_cores") >= 0 for r in runs)
    summary = bench.print_loopback(runs)
    out = capsys.readouterr().out
    assert summary["ratio_median"] == 0.5
    assert "NOT how training scales" in out
    assert "2-worker / 1-worker samples/s per round: 0.50, 0.50; median 0.50x" in out


def test_in_process_parts_on_the_demo_corpus(tmp_path, capsys) -> None:
    """Sizes, step rates and the estimate, tiny settings: the structure and the sizes are sane (no timings)."""
    data = prepare_csv(DEMO_TRAIN, tmp_path / "data", DEMO_TEST, block_rows=256)
    report = tmp_path / "report.json"
    argv = ["--data", str(data), "--batches", "2", "--limit-rows", "128", "--rounds", "1", "--workers-list", "1,2"]
    assert bench.main([*argv, "--skip-loopback", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    for title in ("## 1. Per-step all-reduce size", "## 2. Step rate", "## 3. Estimate for N machines"):
        assert title in out
    assert "## 4. Loopback" not in out
    assert "Fixed global batch 128" in out and "Fixed per-worker batch 128" in out
    doc = json.loads(report.read_text())
    sizes = doc["sizes"]
    units = 16  # the MLP of 0.6-0.10 that the benchmark measures (fit's first candidate for 2-4 classes)
    assert sizes["units"] == units and sizes["first_layer_bytes"] == sizes["n_features"] * units * 4
    assert set(sizes["cells"]) == {"1x128", "2x64", "2x128"}
    for cell in sizes["cells"].values():
        # One row per unique feature id of the batch (and feature 0 for a row without features).
        assert cell["unique"] <= cell["rows"] <= cell["unique"] + 1 <= cell["nnz"] + 1
        assert cell["slice_bytes"] == cell["rows"] * (units * 4 + 8)
        assert 0 < cell["slice_bytes"] <= cell["max_slice_bytes"] < sizes["first_layer_bytes"]
        assert cell["dense_bytes"] == 4 * (units + units * units + units + units * 5 + 5)  # 5 classes
        assert cell["rows"] <= cell["union_rows"] <= cell["n"] * cell["rows"] * 2
    one, two = sizes["cells"]["1x128"], sizes["cells"]["2x64"]
    assert one["sparse_received"] == one["dense_received"] == 0
    assert 0 < two["sparse_received"] < two["dense_received"]
    assert set(doc["rates"]) == {"128", "64"} and all(r["rate"] > 0 for r in doc["rates"].values())
    est = {(r["policy"], r["n"]): r for r in doc["estimate"]}
    assert set(est) == {("global", 1), ("global", 2), ("per-worker", 1), ("per-worker", 2)}
    assert est[("global", 1)]["sparse_speedup"] == 1.0 and est[("per-worker", 1)]["dense_speedup"] == 1.0
    assert est[("global", 2)]["batch"] == 64 and est[("per-worker", 2)]["global_batch"] == 256
    assert est[("global", 2)]["sparse_bytes"] < est[("global", 2)]["dense_bytes"]
