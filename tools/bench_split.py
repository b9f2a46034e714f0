"""Do near-copies straddle train and validation? Each split rule on IMDB train grown with token-dropout copies.

    .venv/bin/python tools/bench_split.py                  # rates 0.1 and 0.2 (about 4 minutes on 2 cores)
    .venv/bin/python tools/bench_split.py --rates 0.1 --copies 4 --val-fraction 0.2

Every review of aclImdb/train (25,000) comes with ``--copies - 1`` copies
made by ``tools/grow.py``'s ``token_dropout`` (each whitespace token dropped
with probability RATE, seeded): one cluster of ``--copies`` near-identical
rows per review, as ``grow.py --factor`` writes them. Each rule of
``streamtrain.vectorize.split.SPLIT_RULES`` then splits all rows, in chunks
of ``--chunk`` rows as ``prepare`` reads them. Printed per rate and rule:

straddling      share of clusters whose rows are not all in one split
val w/ copy     share of validation rows with a near-copy of theirs in train
val fraction    realized share of validation rows (asked: ``--val-fraction``)
val positive    share of positive reviews among validation rows (train: 0.5)
largest group   the largest share of rows that share one key (blake2b: the
                text, minhash-words: the smallest-hash word; lsh-bigrams: the
                row whose split they took, directly or through others), so
                always land together: how coarse the split is
MB/s cpu, wall  text through the rule (word hashing included; lsh-bigrams:
                its band keys and its index too), per second of this
                process's CPU time and of wall time

The rows come in ``grow.py``'s order (``--order passes``, the default: every
original, then each pass of copies) or each review followed by its copies
(``--order clusters``): per-text rules do not care, lsh-bigrams splits a row
by the rows before it.

Then, for the originals alone, the realized validation fraction of
minhash-words under ``--salts`` salts (the rule's own first): how much it
depends on which common word happens to get a small hash. Timings on a
shared machine: "others" is the average number of cores busy with other
processes meanwhile (benchlib.CpuWatch). ``--rounds N`` times every rule N
times in interleaved rounds (``benchlib.run_rounds``, the order rotated) and
shows medians (the splits themselves are the same every round).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib
import grow

from streamtrain.vectorize.near_dups import BandIndex, band_keys
from streamtrain.vectorize.split import INDEXED_RULES, MINHASH_SALT, SPLIT_RULES, minhash_keys, own_rule, split_units
from streamtrain.vectorize.words import splitmix64, word_hashes


def read_reviews(imdb: Path) -> tuple[list[str], np.ndarray]:
    """aclImdb/train texts (pos, then neg, sorted by file name) and their labels (1 = pos)."""
    texts, labels = [], []
    for label, klass in ((1, "pos"), (0, "neg")):
        for path in sorted((imdb / "train" / klass).glob("*.txt")):
            texts.append(path.read_text(encoding="utf-8"))
            labels.append(label)
    return texts, np.array(labels, dtype=np.int8)


def grown(texts: list[str], copies: int, rate: float, seed: int) -> list[str]:
    """Each text followed by ``copies - 1`` token-dropout copies: row ``i`` belongs to cluster ``i // copies``."""
    rng = random.Random(f"bench_split/{seed}/{rate}")
    out: list[str] = []
    for text in texts:
        out.append(text)
        out.extend(grow.token_dropout(text, rate, rng) for _ in range(copies - 1))
    return out


def timed_units(rows: list[str], rule: str, chunk: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Each row's unit (val iff < val fraction) and group, chunk by chunk as prepare does; the throughput.

    Per-text rules: ``split_units``, grouped by unit. Indexed rules: the unit of the row whose split a row
    takes (its own when no band matches), through a ``BandIndex`` of row numbers; grouped by that row.
    """
    megabytes = sum(len(t.encode("utf-8")) for t in rows) / 1e6
    watch, cpu0, wall0 = benchlib.CpuWatch(), time.process_time(), time.perf_counter()
    if rule in INDEXED_RULES:
        index, own, roots = BandIndex(dtype=np.int64), [], []
        for i in range(0, len(rows), chunk):
            words = word_hashes(rows[i : i + chunk])
            own.append(split_units(rows[i : i + chunk], own_rule(rule), words))
            roots.append(index.resolve(band_keys(words), np.arange(i, i + len(own[-1]))))
        groups = np.concatenate(roots)
        units = np.concatenate(own)[groups]
    else:
        units = groups = np.concatenate([split_units(rows[i : i + chunk], rule) for i in range(0, len(rows), chunk)])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return units, groups, {"cpu_mb_s": megabytes / cpu, "wall_mb_s": megabytes / wall, "others_cores": watch.others()}


def largest_group(groups: np.ndarray) -> float:
    """The largest share of rows in one group."""
    return np.unique(groups, return_counts=True)[1].max() / len(groups)


COLUMNS: list[benchlib.Column] = [
    benchlib.ArmName("rule"),
    benchlib.Stat("straddling", "straddling", 4),
    benchlib.Stat("val w/ copy", "val_with_copy", 4),
    benchlib.Stat("val fraction", "val_fraction", 4),
    benchlib.Stat("val positive", "val_positive", 3),
    benchlib.Stat("largest group", "largest_group", 4),
    benchlib.Stat("MB/s cpu", "cpu_mb_s", 1),
    benchlib.Stat("MB/s wall", "wall_mb_s", 1),
    benchlib.Stat("others", "others_cores", 1),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    benchlib.add_common_flags(p, rounds=1, imdb=True)
    p.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.2], help="token dropout rates (default 0.1 0.2)")
    p.add_argument("--copies", type=int, default=8, help="rows per review, the original included (default 8)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--chunk", type=int, default=4096, help="rows per split call, as prepare's chunk_rows")
    p.add_argument("--salts", type=int, default=8, help="salts tried on the originals (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--order", choices=("passes", "clusters"), default="passes", help="row order (default passes)")
    args = p.parse_args(argv)

    texts, labels = read_reviews(benchdata.imdb_dir(args.imdb))
    print(f"IMDB train: {len(texts)} reviews, {sum(len(t.encode()) for t in texts) / 1e6:.1f} MB", flush=True)
    table = []
    for rate in args.rates:
        print(f"[bench] {args.copies - 1} token-dropout copies per review at rate {rate}", file=sys.stderr, flush=True)
        measure = partial(measure_rule, args, *ordered(grown(texts, args.copies, rate, args.seed), labels, args))
        runs = benchlib.run_rounds(list(SPLIT_RULES), args.rounds, measure, f"bench_split rate {rate}")
        table += [[str(rate), *row] for row in benchlib.table_rows(runs, list(SPLIT_RULES), COLUMNS)]
    print(
        f"\n{len(texts)} clusters of {args.copies} rows in {args.order} order, val fraction {args.val_fraction}, "
        f"chunks of {args.chunk}; {args.rounds} round(s), medians"
    )
    benchlib.print_table(["rate", *(c.header for c in COLUMNS)], table)
    print_salts(texts, labels, args)
    return 0


def ordered(rows: list[str], labels: np.ndarray, args: argparse.Namespace) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The rows in ``--order`` (passes: row k of the output is row order[k] of the cluster-major list), the label of
    each cluster-major row, and the way back (cluster-major position -> output position)."""
    clusters = np.arange(len(rows)).reshape(-1, args.copies)
    order = clusters.T.ravel() if args.order == "passes" else clusters.ravel()
    return [rows[i] for i in order], np.repeat(labels, args.copies), np.argsort(order)


def measure_rule(
    args: argparse.Namespace, rows: list[str], row_labels: np.ndarray, back: np.ndarray, rule: str, _round: int
) -> dict:
    """One rule on every row: how its splits fall across the clusters, and its throughput."""
    units, groups, speed = timed_units(rows, rule, args.chunk)
    units, groups = units[back], groups[back]
    val = units < args.val_fraction
    clusters = val.reshape(-1, args.copies)
    straddling = clusters.any(axis=1) & ~clusters.all(axis=1)
    val_with_copy = np.repeat(straddling, args.copies)[val].mean() if val.any() else float("nan")
    return speed | {
        "straddling": float(straddling.mean()),
        "val_with_copy": float(val_with_copy),
        "val_fraction": float(val.mean()),
        "val_positive": float(row_labels[val].mean()),
        "largest_group": float(largest_group(groups)),
    }


def print_salts(texts: list[str], labels: np.ndarray, args: argparse.Namespace) -> None:
    """minhash-words on the originals under other salts: how much its validation fraction depends on the salt."""
    salts = [MINHASH_SALT, *range(1, args.salts)]
    salt_rows, fallback = [], split_units(texts, "blake2b")
    for salt in salts:
        keys, has_words = minhash_keys(texts, salt)
        units = np.where(has_words, splitmix64(keys).astype(np.float64) * 2.0**-64, fallback)
        val = units < args.val_fraction
        salt_rows.append(
            [f"{salt:#x}", f"{val.mean():.4f}", f"{labels[val].mean():.3f}", f"{largest_group(units):.4f}"]
        )
    print(f"\nminhash-words on the {len(texts)} originals under other salts (the rule's own first)")
    benchlib.print_table(["salt", "val fraction", "val positive", "largest group"], salt_rows)


if __name__ == "__main__":
    sys.exit(main())
