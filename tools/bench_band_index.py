"""Does the split index's cost per row grow with the rows before it, and what does scratch cost? ``BandIndex.resolve``.

    .venv/bin/python tools/bench_band_index.py                    # 8 M rows, memory and scratch (about 70 s)
    .venv/bin/python tools/bench_band_index.py --rows 2000000 --live 0.19 --rounds 3
    .venv/bin/python tools/bench_band_index.py --only scratch     # one run, in this process

prepare's first pass resolves every training row's band keys through the dataset's ``BandIndex``, in chunks,
on its main thread. This feeds it ``--rows`` rows in chunks of ``--chunk``: each row has ``LSH_BANDS`` random
64-bit keys, each kept with probability ``--live`` (0.19: the 3 keys a row that ``tools/gen_scale.py``'s corpus
gives on average; an IMDB review has about 16), and a random own split. Random keys rarely match, so the index
grows by about ``rows x bands x live`` keys, as it does on a corpus of distinct texts.

Each run is a child process, the index held in memory (``memory``) or with a scratch directory, as prepare
makes it (``scratch``: keys past ``MEMORY_KEYS`` on disk), alternating for ``--rounds`` rounds. A run prints
the seconds of each successive million rows and its ratio to the first million's (flat: the index costs the
same per row at any size), the keys held and the runs in memory and on disk; then its seconds and peak RSS.
Last: per mode, the median seconds and peak RSS, and scratch's ratios to memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from streamtrain.vectorize.near_dups import LSH_BANDS, BandIndex

MODES = ("memory", "scratch")


def run(rows: int, chunk: int, live: float, seed: int, scratch: Path | None) -> float:
    """Resolve the rows, printing a line per million; the seconds it took."""
    rng = np.random.default_rng(seed)
    index = BandIndex(scratch=scratch)
    step, first, mark = 1_000_000, None, time.perf_counter()
    began = mark
    print(f"{'rows':>10} {'s this million':>15} {'x first':>8} {'keys':>12} {'runs':>6} {'on disk':>8}")
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        keys = rng.integers(1, 2**64, (n, LSH_BANDS), dtype=np.uint64)
        keys[rng.random((n, LSH_BANDS)) >= live] = 0
        index.resolve(keys, (rng.random(n) < 0.1).astype(np.uint8))
        done = start + n
        if done // step > start // step or done == rows:
            seconds = time.perf_counter() - mark
            first = first or seconds
            runs = sum(len(r) for r in index._keys)  # per partition
            disk = len(index._spilled)
            print(f"{done:>10,} {seconds:>15.2f} {seconds / first:>8.2f} {len(index):>12,} {runs:>6} {disk:>8}")
            sys.stdout.flush()
            mark = time.perf_counter()
    took = time.perf_counter() - began
    index.close()
    return took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=8_000_000, help="rows resolved (default 8,000,000)")
    p.add_argument("--chunk", type=int, default=4096, help="rows per resolve call, as prepare's chunks")
    p.add_argument("--live", type=float, default=0.19, help="share of a row's bands that have a key (default 0.19)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=1, help="rounds of both modes, alternating (default 1)")
    p.add_argument("--only", choices=MODES, help="one run of this mode, in this process")
    args = p.parse_args(argv)
    if args.only:
        with tempfile.TemporaryDirectory(prefix="bench-band-index-") as tmp:
            took = run(args.rows, args.chunk, args.live, args.seed, Path(tmp) if args.only == "scratch" else None)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"mode": args.only, "seconds": round(took, 2), "peak_rss_mib": round(peak, 1)}))
        return 0
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for r in range(args.rounds):
        for mode in MODES if r % 2 == 0 else MODES[::-1]:
            argv_child = [sys.executable, __file__, "--only", mode, "--rows", str(args.rows)]
            argv_child += ["--chunk", str(args.chunk), "--live", str(args.live), "--seed", str(args.seed)]
            print(f"round {r + 1}, {mode}:", flush=True)
            out = subprocess.run(argv_child, capture_output=True, text=True, check=True).stdout
            print(out, end="", flush=True)
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    median = {m: {k: statistics.median(x[k] for x in results[m]) for k in ("seconds", "peak_rss_mib")} for m in MODES}
    for mode in MODES:
        print(f"{mode:>8}: median {median[mode]['seconds']:.2f} s, peak RSS {median[mode]['peak_rss_mib']:.0f} MiB")
    ratio = {k: median["scratch"][k] / median["memory"][k] for k in ("seconds", "peak_rss_mib")}
    print(f"scratch / memory: time {ratio['seconds']:.2f}x, peak RSS {ratio['peak_rss_mib']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
