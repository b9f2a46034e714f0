"""tools/bench_sparse_layer.py: a small run prints a row per width, the slices, both variants' times and ratios,
and that the sliced product equals the whole one to the bit."""

from __future__ import annotations

import subprocess
import sys

from helpers import TOOLS


def test_a_small_run_prints_a_row_per_width_and_the_variants_agree() -> None:
    argv = [sys.executable, str(TOOLS / "bench_sparse_layer.py"), "--units", "8,40", "--rounds", "1", "--steps", "2"]
    argv += ["--features", "2000", "--nnz", "20", "--batch", "16", "--score-batch", "64"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.strip("|").split("|") for line in proc.stdout.splitlines() if line.startswith("| ")][1:]
    assert [(r[0].strip(), r[1].strip(), r[-1].strip()) for r in rows] == [("8", "1", "yes"), ("40", "2", "yes")]
    assert all(float(r[4].strip().rstrip("x")) > 0 for r in rows)
