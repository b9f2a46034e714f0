"""Tests for the pure parts of tools/bench_peers.py: the peers' text formats and its summary (benchlib's harness)."""

from __future__ import annotations

import sys

import pytest
from helpers import load_tool

bench_peers = load_tool("bench_peers")
benchlib = bench_peers.benchlib


def test_vw_line_drops_separators_and_maps_labels() -> None:
    line = bench_peers.vw_line("Great |film: 10/10, Loved it!", "pos", ["neg", "pos"])
    assert line.endswith("\n") and line.count("\n") == 1
    label, body = line.rstrip("\n").split(" |t ", 1)
    assert label == "1"
    assert "|" not in body and ":" not in body
    assert body == "great film 10 / 10 , loved it !"
    assert bench_peers.vw_line("bad", "neg", ["neg", "pos"]).startswith("-1 |t ")
    assert bench_peers.vw_line("x", "Sports", ["Business", "Sci/Tech", "Sports", "World"]).startswith("3 |t ")


def test_ft_line_has_one_label_token_and_no_inner_newlines() -> None:
    line = bench_peers.ft_line("Two\nlines,\tand (tabs)", "Sci Tech")
    assert line == "__label__Sci_Tech two lines , and ( tabs )\n"


def test_in_test_is_stable_and_about_a_fifth() -> None:
    texts = [f"headline number {i}" for i in range(2000)]
    first = [bench_peers.in_test(t) for t in texts]
    assert first == [bench_peers.in_test(t) for t in texts]
    assert 0.17 < sum(first) / len(first) < 0.25


def _run(tool: str, rnd: int, total: float, acc: float = 0.9, **extra) -> benchlib.Run[str]:
    return benchlib.Run(tool, rnd, {"total_s": total, "test_accuracy": acc, "others_cores": 0.0, **extra})


def test_summary_takes_the_median_of_per_round_ratios() -> None:
    runs = [
        _run("streamtrain", 1, 10.0),
        _run("vw", 1, 5.0),
        _run("streamtrain", 2, 20.0),
        _run("vw", 2, 8.0),
        _run("streamtrain", 3, 40.0),
        _run("vw", 3, 10.0),
        benchlib.Run("vw", 4, {"error": "boom"}),  # failed: left out of every median
    ]
    assert benchlib.ratios(runs, "streamtrain", "vw", "total_s") == [2.0, 2.5, 4.0]
    rows = {r["tool"]: r for r in bench_peers.summary_rows(runs, "d", ["streamtrain", "vw"])}
    assert rows["vw"]["vs_streamtrain"] == pytest.approx(0.4)  # median of 0.5, 0.4, 0.25; not 8 / 20
    assert rows["vw"]["total_s"] == 8.0 and rows["vw"]["rounds"] == 3 and rows["vw"]["dataset"] == "d"
    assert rows["streamtrain"]["vs_streamtrain"] == 1.0
    assert rows["vw"]["prepare_s"] is None  # no round reported one


def test_print_summary_reports_the_vw_ratio_and_failures(capsys) -> None:
    runs = [
        _run("streamtrain", 1, 12.0, acc=0.9070, cores=1.5, val_accuracy=0.9082),
        _run("vw", 1, 10.0),
        benchlib.Run("vw", 2, {"error": "exit 1", "others_cores": 0.0}),
    ]
    rows = bench_peers.print_summary(runs, "d", ["streamtrain", "vw"])
    out = capsys.readouterr().out
    assert "d: medians over 2 round(s)" in out
    assert "streamtrain total / VW total per round: 1.20; median 1.20x" in out
    assert "vw (1/2 ok)" in out
    assert "round 2 vw FAILED: exit 1" in out
    assert "streamtrain validation accuracy 0.9082, test 0.9070: +0.12 points" in out
    assert [r["tool"] for r in rows] == ["streamtrain", "vw"]


def test_no_datasets_means_a_clear_skip(monkeypatch, capsys) -> None:
    monkeypatch.delenv("STREAMTRAIN_DATASETS", raising=False)
    assert bench_peers.main(["--datasets", "agnews", "--tools", "vw"]) == 0
    assert "skipped: STREAMTRAIN_DATASETS" in capsys.readouterr().out


def test_csv_round_trip_and_measured_subprocesses(tmp_path) -> None:
    """The common CSV reads back as written; measured() reports exit code, stdout, wall time and peak RSS."""
    rows = [("good fun", "pos"), ("dull", "neg")] * 5
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    bench_peers.write_csv(train, rows)
    bench_peers.write_csv(test, rows)
    assert list(bench_peers.read_csv(train)) == rows
    m = bench_peers.measured([sys.executable, "-c", "print('hi')"], tmp_path / "echo")
    assert m["rc"] == 0 and m["stdout"] == "hi\n" and m["peak_rss_mib"] > 1 and m["wall_s"] > 0
    failed = bench_peers.measured([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "fail")
    assert failed["rc"] == 3
