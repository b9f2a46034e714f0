"""What checking every shard against the manifest costs fit: IMDB, one epoch, checked vs unchecked, interleaved.

    .venv/bin/python tools/bench_integrity.py             # 3 rounds (about 2 minutes on 2 cores)
    .venv/bin/python tools/bench_integrity.py --rounds 5

IMDB train + test is prepared once with streamtrain (cached under runs/bench/).
Each round runs three children, each in its own subprocess, in an order that
alternates from round to round:

checked    ``fit(FitOptions(data, epochs=1))`` as shipped: every shard's size and
           sha256 against the manifest before training (``Manifest.check_shards``)
unchecked  the same with ``Manifest.check_shard`` patched to do nothing
hash       ``Manifest.check_shards`` alone: the checking time itself

and the medians over rounds, the checked/unchecked ratio of fit's wall time,
and the hashing rate are printed. The page cache is warm after the first
round, as it is for a nightly fit that follows its prepare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

DEFAULT_DATA = benchlib.REPO / "runs" / "bench" / "imdb-hdf5"
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data", help="a prepared dataset (default: IMDB, prepared once)")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        benchlib.emit(child(args.child, args.data))
        return 0
    if not args.data:
        imdb = benchlib.imdb_dir()
        args.data = str(benchlib.ensure_prepared(DEFAULT_DATA, [str(imdb / "train")], [str(imdb / "test")]))
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for v in order:
            out = benchlib.run_child([__file__, "--child", v, "--data", args.data], timeout=1800)
            if "error" in out:
                raise SystemExit(f"{v}: {out['error']}")
            results[v].append(out)
            print(f"[bench_integrity] round {r + 1} {v}: {out['seconds']:.2f} s", file=sys.stderr, flush=True)
    med = {v: statistics.median(o["seconds"] for o in results[v]) for v in VARIANTS}
    shard_bytes = results["hash"][0]["bytes"]
    print(f"\n{args.data}: {shard_bytes / 2**20:.1f} MiB of shards; {args.rounds} rounds, medians\n")
    benchlib.print_table(
        ["variant", "seconds (median)", "x unchecked"],
        [
            ["fit, 1 epoch, checked", f"{med['checked']:.2f}", f"{med['checked'] / med['unchecked']:.3f}"],
            ["fit, 1 epoch, unchecked", f"{med['unchecked']:.2f}", "1.000"],
            ["checking alone", f"{med['hash']:.2f}", f"{med['hash'] / med['unchecked']:.3f}"],
        ],
    )
    print(f"\nchecking rate: {shard_bytes / 2**20 / med['hash']:.0f} MiB/s (sha256, 1 MiB reads, one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
