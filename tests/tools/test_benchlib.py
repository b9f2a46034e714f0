"""tools/benchlib.py's harness: interleaved rounds, medians, per-round ratios, the table, the common flags.

Fast: no benchmark runs, the measurements are stand-ins (one tiny child process for the child protocol).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pytest
from helpers import load_tool

benchlib = load_tool("benchlib")
Run = benchlib.Run


def test_rotated_changes_the_order_each_round() -> None:
    assert [benchlib.rotated(["a", "b", "c"], r) for r in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    assert benchlib.rotated([], 3) == []
    assert benchlib.rotated((1, 2), 1) == [2, 1]  # any sequence; a list back


def test_schedule_runs_every_arm_once_a_round_in_every_position() -> None:
    order = benchlib.schedule(["a", "b", "c"], 3)
    assert order == [(1, "a"), (1, "b"), (1, "c"), (2, "b"), (2, "c"), (2, "a"), (3, "c"), (3, "a"), (3, "b")]
    for rnd in (1, 2, 3):
        assert sorted(arm for r, arm in order if r == rnd) == ["a", "b", "c"]
    for position in range(3):
        assert {[arm for r, arm in order if r == rnd][position] for rnd in (1, 2, 3)} == {"a", "b", "c"}
    assert benchlib.schedule([1, 2], 2) == [(1, 1), (1, 2), (2, 2), (2, 1)]  # two arms: the order alternates


def test_run_rounds_measures_in_schedule_order_and_adds_the_others_load(capsys) -> None:
    calls = []

    def measure(arm: str, rnd: int) -> dict:
        calls.append((rnd, arm))
        if arm == "b" and rnd == 2:
            return {"error": "boom"}
        return {"seconds": 1.0} | ({"others_cores": 7.0} if arm == "own" else {})

    runs = benchlib.run_rounds(["a", "b", "own"], 2, measure, "t", describe=lambda v: f"{v['seconds']:.1f} s")
    assert calls == benchlib.schedule(["a", "b", "own"], 2)
    assert [(r.round, r.arm) for r in runs] == calls
    assert all(r.get("others_cores") >= 0 for r in runs)
    assert next(r for r in runs if r.arm == "own").get("others_cores") == 7.0  # an arm's own span is kept
    failed = next(r for r in runs if not r.ok)
    assert (failed.arm, failed.round) == ("b", 2)
    out = capsys.readouterr()
    assert out.out.splitlines()[:4] == [  # the arms' names padded: the results line up
        "round 1 a:   1.0 s",
        "round 1 b:   1.0 s",
        "round 1 own: 1.0 s",
        "round 2 b:   FAILED: boom",
    ]
    assert "[t] round 2/2: own" in out.err
    assert runs[0].record("tool", dataset="d") == {
        "dataset": "d",
        "tool": "a",
        "round": 1,
        "seconds": 1.0,
        "others_cores": runs[0].get("others_cores"),
    }


def test_median_of_skips_missing_values() -> None:
    assert benchlib.median_of([3.0, None, 1.0, 2.0]) == 2.0
    assert benchlib.median_of([4.0, 1.0]) == 2.5
    assert benchlib.median_of([None]) is None and benchlib.median_of([]) is None


def _runs() -> list:
    """Three rounds of two arms; ``slow`` fails in round 4, ``fast`` has no round 4 at all."""
    return [
        Run("slow", 1, {"s": 10.0, "acc": 0.90, "others_cores": 0.1}),
        Run("fast", 1, {"s": 5.0, "acc": 0.80, "others_cores": 0.3}),
        Run("fast", 2, {"s": 8.0, "acc": 0.82, "others_cores": 0.0}),
        Run("slow", 2, {"s": 20.0, "acc": 0.91, "others_cores": 0.2}),
        Run("slow", 3, {"s": 40.0, "acc": 0.92, "others_cores": 0.0}),
        Run("fast", 3, {"s": 10.0, "acc": None, "others_cores": 0.0}),
        Run("slow", 4, {"error": "exit 1", "others_cores": 0.0}),
    ]


def test_aggregates_use_the_successful_rounds_only() -> None:
    runs = _runs()
    assert len(benchlib.ok_runs(runs, "slow")) == 3 and len(benchlib.ok_runs(runs, "fast")) == 3
    assert benchlib.aggregate(runs, "slow", "s") == 20.0
    assert benchlib.aggregate(runs, "fast", "acc") == pytest.approx(0.81)  # None left out
    assert benchlib.aggregate(runs, "slow", "s", max) == 40.0
    assert benchlib.aggregate(runs, "slow", "missing") is None
    assert benchlib.rounds_of(runs) == 4


def test_ratios_pair_the_arms_round_by_round() -> None:
    runs = _runs()
    assert benchlib.ratios(runs, "slow", "fast", "s") == [2.0, 2.5, 4.0]
    assert benchlib.ratios(runs, "fast", "slow", "s") == [0.5, 0.4, 0.25]
    assert benchlib.median_ratio(runs, "fast", "slow", "s") == pytest.approx(0.4)  # not 8 / 20
    assert benchlib.ratios(runs, "fast", "slow", "acc") == pytest.approx([0.8 / 0.9, 0.82 / 0.91])  # None: no pair
    assert benchlib.ratios(runs, "slow", "slow", "s") == [1.0, 1.0, 1.0]
    assert benchlib.median_ratio(runs, "slow", "nobody", "s") is None
    zero = [Run("a", 1, {"s": 1.0}), Run("b", 1, {"s": 0.0})]
    assert benchlib.ratios(zero, "a", "b", "s") == []  # no division by a zero base
    assert benchlib.ratio_line([2.0, 2.5, 4.0]) == "2.00, 2.50, 4.00; median 2.50x"


def test_the_ratio_table_shows_medians_ratios_failures_and_the_others_load(capsys) -> None:
    b = benchlib
    columns = [
        b.Custom("set", lambda _runs, _arm: "d"),
        b.ArmName("arm"),
        b.Stat("seconds", "s", 1),
        b.Ratio("x fast", "s", "fast"),
        b.Stat("acc (mean)", "acc", 3, lambda v: sum(v) / len(v)),
        b.OTHERS,
    ]
    b.print_ratio_table(_runs(), ["slow", "fast"], columns)
    lines = capsys.readouterr().out.splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["set", "arm", "seconds", "x fast", "acc (mean)", "others"]
    assert set(lines[1]) == {"|", "-"}
    assert cells[2] == ["d", "slow (3/4 ok)", "20.0", "2.50x", "0.910", "0.10"]
    assert cells[3] == ["d", "fast (3/4 ok)", "8.0", "1.00x", "0.810", "0.00"]
    assert len({len(line) for line in lines}) == 1  # padded: it reads as plain text too


def test_common_flags_one_spelling_and_the_old_one_hidden() -> None:
    p = argparse.ArgumentParser()
    benchlib.add_common_flags(p, rounds=3, json=True, imdb=True)
    args = p.parse_args([])
    assert (args.rounds, args.json, args.imdb) == (3, None, None)
    assert not hasattr(args, "data")
    assert p.parse_args(["--rounds", "5", "--json", "out.json"]).rounds == 5
    assert p.parse_args(["--repeats", "2"]).rounds == 2  # bench_fit's old flag
    assert "--repeats" not in p.format_help() and "--rounds" in p.format_help()
    with pytest.raises(SystemExit):
        p.parse_args(["--rounds", "0"])
    bare = argparse.ArgumentParser()
    benchlib.add_common_flags(bare, rounds=1, data=True)
    assert vars(bare.parse_args([])) == {"rounds": 1, "data": None}


def test_cpu_watch_counts_reaped_children_as_ours() -> None:
    """A child's CPU time is not the others' load once it has been waited for."""
    import subprocess

    watch = benchlib.CpuWatch()
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert watch._ours() - watch.ours0 >= 0.25
    assert watch.cores() > 0 and watch.others() >= 0


def test_the_child_protocol_and_json_output(tmp_path) -> None:
    assert benchlib.result_in('noise\nBENCH_RESULT {"a": 1}\nBENCH_RESULT {"a": 2}\nmore') == {"a": 2}
    assert benchlib.result_in("no result here") is None
    out = benchlib.run_child(["-c", "print('log'); print('BENCH_RESULT {\"x\": 3}')"])
    assert out["x"] == 3 and out["wall_s"] >= 0
    failed = benchlib.run_child(["-c", "import sys; sys.exit(4)"])
    assert failed["error"] == "exit 4, no result"
    path = tmp_path / "sub" / "r.json"
    benchlib.write_json(path, {"n": np.float32(0.5), "i": np.int64(3), "p": tmp_path})
    assert json.loads(path.read_text()) == {"n": 0.5, "i": 3, "p": str(tmp_path)}


def test_io_delta_counts_what_a_reaped_grandchild_wrote(tmp_path) -> None:
    """/proc/self/io around a wait: a child's and its own child's writes, deleted ones in cancelled_write_bytes."""
    import subprocess

    before = benchlib.io_counters()
    if before is None:
        pytest.skip("no /proc/self/io here")
    script = tmp_path / "write.py"  # writes 2 MB to argv[1]; with a second argument, runs itself on it and deletes it
    script.write_text(
        "import os, subprocess, sys\n"
        "open(sys.argv[1], 'wb').write(b'x' * 2_000_000)\n"
        "if len(sys.argv) > 2:\n"
        "    subprocess.run([sys.executable, sys.argv[0], sys.argv[2]], check=True)\n"
        "    os.remove(sys.argv[2])\n"
    )
    subprocess.run([sys.executable, str(script), str(tmp_path / "kept"), str(tmp_path / "deleted")], check=True)
    io = benchlib.io_delta(before, benchlib.io_counters())
    assert io["wchar"] >= 4_000_000
    if io["write_bytes"]:  # 0 where the file system does not account dirtied pages (tmpfs)
        assert io["write_bytes"] >= 4_000_000 and io["cancelled_write_bytes"] >= 2_000_000
    assert benchlib.io_delta(None, before) == dict.fromkeys(benchlib.IO_KEYS)
