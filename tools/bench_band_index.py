"""Does the split index's cost per row grow with the rows before it? ``BandIndex.resolve`` on synthetic band keys.

    .venv/bin/python tools/bench_band_index.py                    # 8 M rows (about 25 s on 2 cores)
    .venv/bin/python tools/bench_band_index.py --rows 2000000 --live 0.19

prepare's first pass resolves every training row's band keys through the dataset's ``BandIndex``, in chunks,
on its main thread. This feeds it ``--rows`` rows in chunks of ``--chunk``: each row has ``LSH_BANDS`` random
64-bit keys, each kept with probability ``--live`` (0.19: the 3 keys a row that ``tools/gen_scale.py``'s corpus
gives on average; an IMDB review has about 16), and a random own split. Random keys rarely match, so the index
grows by about ``rows x bands x live`` keys, as it does on a corpus of distinct texts. Printed: the seconds of
each successive million rows and its ratio to the first million's (flat: the index costs the same per row at
any size), the keys held and the runs searched.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from streamtrain.vectorize.near_dups import LSH_BANDS, BandIndex


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=8_000_000, help="rows resolved (default 8,000,000)")
    p.add_argument("--chunk", type=int, default=4096, help="rows per resolve call, as prepare's chunks")
    p.add_argument("--live", type=float, default=0.19, help="share of a row's bands that have a key (default 0.19)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    index = BandIndex()
    step, first, mark = 1_000_000, None, time.perf_counter()
    print(f"{'rows':>10} {'s this million':>15} {'x first':>8} {'keys':>12} {'runs':>6}")
    for start in range(0, args.rows, args.chunk):
        n = min(args.chunk, args.rows - start)
        keys = rng.integers(1, 2**64, (n, LSH_BANDS), dtype=np.uint64)
        keys[rng.random((n, LSH_BANDS)) >= args.live] = 0
        index.resolve(keys, (rng.random(n) < 0.1).astype(np.uint8))
        done = start + n
        if done // step > start // step or done == args.rows:
            seconds = time.perf_counter() - mark
            first = first or seconds
            runs = sum(len(r) if isinstance(r, list) else 1 for r in index._keys)  # per partition, or one list
            print(f"{done:>10,} {seconds:>15.2f} {seconds / first:>8.2f} {len(index):>12,} {runs:>6}", flush=True)
            mark = time.perf_counter()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
