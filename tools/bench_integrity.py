"""What checking every shard against the manifest costs fit: IMDB, one epoch, checked vs unchecked, interleaved.

    .venv/bin/python tools/bench_integrity.py             # 3 rounds (about 2 minutes on 2 cores)
    .venv/bin/python tools/bench_integrity.py --rounds 5

IMDB train + test is prepared once with streamtrain (cached under runs/bench/).
Each round runs three children, each in its own subprocess, in an order
rotated from round to round (``benchlib.run_rounds``):

checked    ``fit(FitOptions(data, epochs=1))`` as shipped: every shard's size and
           sha256 against the manifest before training (``Manifest.check_shards``)
unchecked  the same with ``Manifest.check_shard`` patched to do nothing
hash       ``Manifest.check_shards`` alone: the checking time itself

and the medians over rounds, the median of the per-round checked/unchecked
ratios of fit's wall time, the others' load and the hashing rate are printed.
The page cache is warm after the first round, as it is for a nightly fit that
follows its prepare.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib

VARIANTS = ("checked", "unchecked", "hash")


def child(variant: str, data: str) -> dict:
    from streamtrain.dataset.manifest import Manifest

    manifest = Manifest.load(data)
    if variant == "hash":
        t0 = time.perf_counter()
        manifest.check_shards(data)
        return {"seconds": time.perf_counter() - t0, "bytes": sum(s.bytes for s in manifest.shards)}
    if variant == "unchecked":
        Manifest.check_shard = lambda self, directory, shard: None  # type: ignore[method-assign]
    from streamtrain.train.fit import FitOptions, fit

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(FitOptions(data=data, model_dir=f"{tmp}/model", epochs=1))
        return {"seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    benchlib.add_common_flags(p, rounds=3, data=True)
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        benchlib.emit(child(args.child, args.data))
        return 0
    if not args.data:
        args.data = str(benchdata.imdb_data())

    def measure(v: str, _round: int) -> dict:
        out = benchlib.run_child([__file__, "--child", v, "--data", args.data], timeout=1800)
        if "error" in out:
            raise SystemExit(f"{v}: {out['error']}")
        return out

    runs = benchlib.run_rounds(VARIANTS, args.rounds, measure, "bench_integrity", lambda o: f"{o['seconds']:.2f} s")
    shard_bytes = next(r.get("bytes") for r in runs if r.arm == "hash")
    print(f"\n{args.data}: {shard_bytes / 2**20:.1f} MiB of shards; {args.rounds} rounds, medians\n")
    names = {"checked": "fit, 1 epoch, checked", "unchecked": "fit, 1 epoch, unchecked", "hash": "checking alone"}
    columns: list[benchlib.Column] = [
        benchlib.Custom("variant", lambda _runs, v: names[v]),
        benchlib.Stat("seconds (median)", "seconds", 2),
        benchlib.Ratio("x unchecked", "seconds", "unchecked", 3),
        benchlib.OTHERS,
    ]
    benchlib.print_ratio_table(runs, VARIANTS, columns)
    rate = shard_bytes / 2**20 / benchlib.aggregate(runs, "hash", "seconds")
    print(f"\nchecking rate: {rate:.0f} MiB/s (sha256, 1 MiB reads, one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
