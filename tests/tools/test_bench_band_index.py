"""tools/bench_band_index.py: a small run of each mode prints a line per million rows, the keys and runs it holds,
its seconds and peak RSS; then the medians and scratch's ratios to memory."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import TOOLS


def test_a_small_run_of_each_mode_holds_the_same_keys_and_scratch_puts_some_on_disk() -> None:
    argv = [sys.executable, str(TOOLS / "bench_band_index.py"), "--rows", "1200000", "--chunk", "50000"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    runs = {}
    for mode in ("memory", "scratch"):
        at = lines.index(f"round 1, {mode}:")
        header, first, last, summary = lines[at + 1 : at + 5]
        assert header.split()[0] == "rows" and first.split()[0] == "1,000,000" and first.split()[2] == "1.00"
        runs[mode] = (last.split(), json.loads(summary))
    (memory, memory_summary), (scratch, scratch_summary) = runs["memory"], runs["scratch"]
    assert memory[0] == scratch[0] == "1,200,000" and memory[3] == scratch[3]  # the same keys either way
    keys = int(memory[3].replace(",", ""))
    assert 0.9 * 1_200_000 * 16 * 0.19 < keys <= 1_200_000 * 16  # random keys: nearly all of them new
    assert int(memory[4]) >= 64 and int(memory[5]) == 0  # in memory: at least a run per partition, none on disk
    assert int(scratch[5]) >= 1  # past MEMORY_KEYS (2 M) the keys went to disk
    assert memory_summary["mode"] == "memory" and scratch_summary["peak_rss_mib"] > 0
    assert lines[-1].startswith("scratch / memory: time ")
