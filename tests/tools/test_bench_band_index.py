"""tools/bench_band_index.py: a small run prints one line per million rows, the keys it holds and its runs."""

from __future__ import annotations

import subprocess
import sys

from helpers import TOOLS


def test_a_small_run_prints_a_line_per_million_rows_with_the_keys_held() -> None:
    argv = [sys.executable, str(TOOLS / "bench_band_index.py"), "--rows", "1200000", "--chunk", "50000"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[0] == "rows" and len(lines) == 3  # the header, 1,000,000, then the last 1,200,000
    first, last = (line.split() for line in lines[1:])
    assert first[0] == "1,000,000" and first[2] == "1.00" and last[0] == "1,200,000"
    keys = int(last[3].replace(",", ""))
    assert 0.9 * 1_200_000 * 16 * 0.19 < keys <= 1_200_000 * 16  # random keys: nearly all of them new
    assert int(last[4]) >= 64  # at least one run in each of the 64 partitions
