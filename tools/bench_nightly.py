"""The nightly scenario on IMDB: what ``fit --warm-start`` saves on night 2 against training from scratch.

    .venv/bin/python tools/bench_nightly.py              # 3 rounds (about 10 minutes on 2 cores)
    .venv/bin/python tools/bench_nightly.py --rounds 5

aclImdb/train is cut into two nights by a stable hash of each review's file
name (``split_nights``: symlink trees, the text never copied); the test set
is aclImdb/test. Once, untimed: night 1 (``prepare`` of night 1 + test,
``fit`` into a model directory), then night 2's ``prepare --append`` (timed
once, the same for both variants). Then each round, in an order rotated from
round to round (``benchlib.run_rounds``), each variant in its own subprocess:

warm     ``fit --warm-start`` on the appended dataset, into a copy of the
         night-1 model directory (whose current version it starts from)
warm-1   the same with ``--epochs 1``: one fine-tuning epoch a night
scratch  ``fit`` from scratch on the appended dataset, into another copy

Both run the promotion guard against night 1's model (``--force`` so every
round ends with a version; whether the guard alone would have promoted is
counted).

Printed: per variant the medians of fit's wall time (in-process, TensorFlow
import excluded), epochs, test accuracy and the others' load, and the medians
of the per-round warm/scratch time ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib

WORK = benchlib.REPO / "runs" / "bench" / "nightly"
VARIANTS = ("warm", "warm-1", "scratch")


def night_of(name: str, nights: int) -> int:
    """The night a review belongs to: a stable hash of its file name (not of its text, not of the order)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") % nights


def split_nights(train: Path, out: Path, nights: int = 2) -> list[Path]:
    """``train/<class>/*.txt`` cut into ``out/night-<k>/<class>/`` symlink trees, one per night."""
    roots = [out / f"night-{k + 1}" for k in range(nights)]
    for klass in sorted(p.name for p in train.iterdir() if p.is_dir()):
        for root in roots:
            (root / klass).mkdir(parents=True, exist_ok=True)
        for doc in sorted((train / klass).glob("*.txt")):
            link = roots[night_of(doc.name, nights)] / klass / doc.name
            if not link.is_symlink():
                link.symlink_to(doc.resolve())
    return roots


def child(variant: str, data: str, model_dir: str) -> dict:
    import logging

    from streamtrain.train.fit import FitOptions, fit

    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    warm, epochs = variant.startswith("warm"), 1 if variant == "warm-1" else 20
    result = fit(FitOptions(data=data, model_dir=model_dir, seed=0, epochs=epochs, warm_start=warm, force=True))
    return {
        "seconds": time.perf_counter() - t0,
        "epochs": result["epochs"],
        "test_accuracy": result["test_accuracy"],
        "promoted_by_guard": "forced" not in result["promotion"]["reason"],
    }


def setup(imdb: Path, work: Path) -> tuple[Path, Path, float]:
    """Night 1 prepared and fitted, night 2 appended; returns (dataset, night-1 model dir, append seconds)."""
    from streamtrain.dataset.prepare import PrepareOptions
    from streamtrain.prepare import prepare
    from streamtrain.train.fit import FitOptions, fit

    shutil.rmtree(work, ignore_errors=True)
    night1, night2 = split_nights(imdb / "train", work / "text")
    data, model = work / "data", work / "model-night-1"
    prepare(PrepareOptions(inputs=[str(night1)], test=[str(imdb / "test")], data=str(data)))
    fit(FitOptions(data=str(data), model_dir=str(model), seed=0))
    t0 = time.perf_counter()
    prepare(PrepareOptions(inputs=[str(night2)], data=str(data), append=True))
    return data, model, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    benchlib.add_common_flags(p, rounds=3, imdb=True)
    p.add_argument("--child", nargs=3, metavar=("VARIANT", "DATA", "MODEL_DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        benchlib.emit(child(*args.child))
        return 0
    data, night1_model, append_seconds = setup(benchdata.imdb_dir(args.imdb), WORK)
    print(f"night 2 prepare --append: {append_seconds:.1f} s (the same for both variants)", flush=True)

    def measure(variant: str, _round: int) -> dict:
        model = WORK / f"model-{variant}"
        shutil.rmtree(model, ignore_errors=True)
        shutil.copytree(night1_model, model, symlinks=True)  # night 1's model is current for both
        out = benchlib.run_child([__file__, "--child", variant, str(data), str(model)])
        if "error" in out:
            raise SystemExit(f"{variant}: {out['error']}")
        return out | {"night_s": append_seconds + out["seconds"]}  # night 2 end to end: append + fit

    runs = benchlib.run_rounds(VARIANTS, args.rounds, measure, "bench_nightly", said)
    print_summary(runs, append_seconds)
    return 0


def said(out: dict) -> str:
    """One round's line."""
    return f"{out['seconds']:.1f} s  epochs {out['epochs']}  test accuracy {out['test_accuracy']:.4f}"


def print_summary(runs: list[benchlib.Run[str]], append_seconds: float) -> None:
    """Medians per variant; each warm variant against scratch: the medians of the per-round ratios."""
    rounds = benchlib.rounds_of(runs)
    print(f"\nmedians over {rounds} rounds (fit only; night 2's append took {append_seconds:.1f} s):")
    med = {v: {k: benchlib.aggregate(runs, v, k) for k in ("seconds", "epochs", "test_accuracy")} for v in VARIANTS}
    for v in VARIANTS:
        others = benchlib.aggregate(runs, v, "others_cores")
        print(
            f"  {v:8s} {med[v]['seconds']:6.1f} s  {med[v]['epochs']:g} epochs  test accuracy "
            f"{med[v]['test_accuracy']:.4f}  others {others:.2f}"
        )
    for v in VARIANTS[:-1]:
        ratio = benchlib.median_ratio(runs, v, "scratch", "seconds")
        end_to_end = benchlib.median_ratio(runs, v, "scratch", "night_s")
        promoted = sum(bool(r.get("promoted_by_guard")) for r in runs if r.arm == v)
        print(
            f"  {v} / scratch fit time: {ratio:.2f}x; night 2 end to end (append + fit): {end_to_end:.2f}x; "
            f"promoted by the guard on its own: {promoted}/{rounds}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
