"""tools/bench_scale.py (issue 27's benchmark): a tiny run end to end as a user starts it (slow: streamtrain
trains), and, fast, its verdicts on issue 27's figures, its scratch fallback and its flags."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TOOLS, load_tool

bench_scale = load_tool("bench_scale")


@pytest.mark.slow
def test_a_tiny_run_measures_every_figure(tmp_path: Path) -> None:
    """3,000 rows, st-train and VW, one round: the JSON has each measurement and the ratio to VW; streamtrain
    gets the extra flags."""
    if importlib.util.find_spec("vowpalwabbit") is None:
        pytest.skip("vowpalwabbit is not installed: the ratio to VW needs it (pip install vowpalwabbit)")
    out = tmp_path / "scale.json"
    argv = [sys.executable, str(TOOLS / "bench_scale.py"), "--rows", "3000", "--test-rows", "1000", "--rounds", "1"]
    argv += ["--tools", "st-train,vw", "--work", str(tmp_path / "work"), "--json", str(out)]
    argv += ["--streamtrain-prepare-args", "--vectorizer ngram", "--streamtrain-fit-args", "--model linear"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done-when (issue 27):" in proc.stdout and "| st-train " in proc.stdout
    doc = json.loads(out.read_text())
    runs = {r["tool"]: r for r in doc["results"]}
    assert set(runs) == {"st-train", "vw"} and not any("error" in r for r in runs.values())
    for r in runs.values():
        assert math.isfinite(r["total_s"]) and r["total_s"] > 0
        assert r["peak_rss_mib"] > 0
        assert 0.25 < r["test_accuracy"] <= 1
        assert r["write_bytes"] is None or r["write_bytes"] >= 0
        assert r["scratch_bytes"] >= 0 and r["outputs_bytes"] > 0
    assert runs["st-train"]["data_bytes"] > 0 and runs["st-train"]["passes"]
    assert runs["st-train"]["model"] == "linear" and doc["argv"][-1] == "--model linear"
    summary = {r["tool"]: r for r in doc["summary"]["3000"]}
    assert summary["vw"]["vs_vw"] == 1.0
    assert summary["st-train"]["vs_vw"] == pytest.approx(runs["st-train"]["total_s"] / runs["vw"]["total_s"])
    assert [f["met"] for f in doc["done_when"]] == [None] * 6  # no size of the issue's ran
    assert not (tmp_path / "work" / "corpus" / "rows3000-test1000-seed0").exists()  # no --keep-corpus
    assert sorted(p.name for p in (tmp_path / "work" / "runs" / "rows3000" / "st-train").iterdir()) == [
        "train.err",
        "train.out",
    ]


def _row(tool: str, rows: int, **values) -> dict:
    return {"tool": tool, "rows": rows, **values}


def test_done_when_judges_the_issues_sizes_only() -> None:
    """Figures at 2 M and 8 M are met or missed; other sizes are shown for information, never judged."""
    by_size = {
        500_000: [_row("streamtrain", 500_000, prepare_rss_mib=1000.0, fit_rss_mib=2000.0)],
        2_000_000: [_row("st-train", 0, vs_vw=0.75, test_accuracy=0.950), _row("vw", 0, test_accuracy=0.951)],
        8_000_000: [
            _row("st-train", 0, vs_vw=0.72, test_accuracy=0.96),
            _row("vw", 0, test_accuracy=0.96),
            _row("streamtrain", 0, prepare_mb_s=16.0, prepare_scratch_share=1.6, prepare_rss_mib=1050.0),
        ],
    }
    figures = bench_scale.done_when(by_size)
    assert [f.met for f in figures] == [True, False, True, False, True, None]
    assert figures[0].value == "0.75x, -0.10 points"
    assert figures[4].value.startswith("1.05x (500,000 rows 1,000 MiB, 8,000,000 rows 1,050 MiB)")
    small = bench_scale.done_when({50_000: [_row("st-train", 0, vs_vw=2.0, test_accuracy=0.9)]})
    assert [f.met for f in small] == [None] * 6
    assert small[0].at_rows is None and small[0].value == "-"  # VW did not run


def test_scratch_falls_back_to_the_sampled_peak_without_write_accounting(tmp_path: Path) -> None:
    """write_bytes 0 beside wchar > 0 (tmpfs): scratch is the peak on disk minus the outputs, and says so."""
    work = tmp_path / "streamtrain"
    (work / "data").mkdir(parents=True)
    (work / "data" / "train-00000.h5").write_bytes(b"x" * 1000)
    (work / "prepare.err").write_text("[prepare] pass 1/3: reading and counting: done: 9 rows, 1 MB in 2.5 s\n")
    corpus = bench_scale.Corpus(10, tmp_path / "train.csv", tmp_path / "test.csv", input_bytes=2_000_000)
    disk = bench_scale.DiskPeak(work)
    disk.peak, disk.staging_peak = 5000, 4000
    res = {"write_bytes": 0, "wchar": 9000, "prepare_written": 0, "prepare_s": 2.0}
    out = bench_scale.disk_figures("streamtrain", res, corpus, work, disk)
    assert out["scratch_how"].startswith("peak on disk") and "unavailable" in out["prepare_scratch_how"]
    assert out["data_bytes"] == 1000 and out["scratch_bytes"] == 5000 - out["outputs_bytes"]
    assert out["prepare_scratch_bytes"] == 3000 and out["prepare_mb_s"] == 1.0
    assert bench_scale.passes(work / "prepare.err") == {"1": 2.5}
    counted = bench_scale.disk_figures(
        "streamtrain", res | {"write_bytes": 9000, "prepare_written": 6000}, corpus, work, disk
    )
    assert counted["scratch_how"] == "written - outputs" and "prepare_scratch_how" not in counted
    assert counted["prepare_scratch_bytes"] == 6000 - 1000 - (work / "prepare.err").stat().st_size


def test_flags(tmp_path: Path) -> None:
    args = bench_scale.parse_args(["--rows", "0.5M,2_000_000,50k", "--work", str(tmp_path)])
    assert args.rows == [500_000, 2_000_000, 50_000] and args.tools == list(bench_scale.TOOLS)
    for bad in (["--rows", "0"], ["--rows", "many"], ["--work", str(TOOLS)]):
        with pytest.raises(SystemExit):
            bench_scale.parse_args(bad)
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "bench_scale.py"), "--work", str(TOOLS.parent / "runs" / "scale")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "inside the repository" in proc.stderr
