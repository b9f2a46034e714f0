"""streamtrain at nightly scale against Vowpal Wabbit and fastText: time, accuracy, memory and disk per phase.

    .venv/bin/python tools/bench_scale.py --rows 500000 --json scale-0.5m.json     # 3 rounds unless --rounds
    .venv/bin/python tools/bench_scale.py --rows 2000000 --json scale-2m.json
    .venv/bin/python tools/bench_scale.py --rows 8000000 --json scale-8m.json
    .venv/bin/python tools/bench_scale.py --json scale.json      # all three (0.5 M, 2 M, 8 M): every figure of issue 27
    .venv/bin/python tools/bench_scale.py --rows 50000 --rounds 1 --tools st-train,vw   # a quick look
    .venv/bin/python tools/bench_scale.py --rows 500000 --streamtrain-prepare-args "--vectorizer ngram"

Issue 27's measurements. Who owns what: the corpus is ``gen_scale.py``'s (seeded, the same bytes per seed),
made once per size and seed under ``--work`` (default $STREAMTRAIN_BENCH_TEXT/scale, /tmp/streamtrain-bench/scale;
never inside the repository) and removed after its size unless ``--keep-corpus`` (a kept one is reused, a
half-made one made again). Rounds, medians and ratios are ``benchlib``'s (interleaved rounds, the order rotated;
ratios are medians of per-round ratios); running a tool and measuring its process tree is ``bench_peers``'.

Tools, each from the CSV files to a test accuracy, in fresh processes:

st-train     ``streamtrain train TRAIN --test TEST``, all defaults: a first night (``run_streamtrain_train``).
streamtrain  ``streamtrain prepare`` then ``streamtrain fit``, all defaults (``run_streamtrain``): each
             phase's wall time, peak RSS and bytes written apart.
vw           ``bench_peers.run_vw``: --ngram 2 -b 24 --passes 20 -l 0.5 --loss_function logistic --cache --oaa 4.
fasttext     ``bench_peers.run_fasttext``: dim 10, wordNgrams 2, lr 0.25, 5 epochs ("Bag of Tricks"; the
             25 epochs bench_peers uses on AG News would take hours at 8 M rows).

Columns of each size's table (medians over the rounds that succeeded):

total s        wall time, interpreter start included (streamtrain: prepare + fit).
x VW           the median over rounds of total / VW's total in the same round.
test acc       accuracy on the test file (20,000 rows unless ``--test-rows``).
peak RSS       the largest single process's high-water mark (``wait4``).
prepare s, MB/s, RSS
               streamtrain: the prepare command; MB/s = input bytes (train + test CSV, 10^6 a MB) / its
               wall time. vw, fasttext: writing their text files (in the process that trains: no RSS apart).
fit s, RSS     streamtrain: the fit command; vw, fasttext: training and scoring.
passes s       prepare's own passes, from its ``pass i/n ...: done: ... in X s`` log lines.
written MB     ``write_bytes`` of /proc/<pid>/io for the tool's whole process tree: ``bench_peers.measured``
               reads this process's own counters around ``os.wait4``, as reaping a child adds its counters
               (its reaped children's in them) to its parent's: threads and grandchildren with no wrapper
               process. Dirtied pages count, also of files deleted before they reached the disk (which the
               JSON's ``cancelled_write_bytes`` counts again).
scratch MB     written minus what the tool leaves on purpose (streamtrain: the dataset and model directories;
               vw: model and predictions; fastText: nothing) and the logs. prepare scratch: the prepare
               command's written minus the dataset and its logs.
               Where write_bytes is not accounted (no /proc/self/io; 0 on tmpfs) the scratch is the peak bytes
               on disk under the tool's work directory (prepare's: in the dataset's ``data.partial-*``
               staging directory), sampled every 0.5 s, minus the same outputs; a line under the table says so.
dataset MB     the prepared dataset directory at the end.
others         cores busy with other processes meanwhile (above ~0.2: suspect).

Then "Done-when": issue 27's figures with target and met / MISSED; a size not run shows "not measured" (and
the value at the sizes that ran). ``--json`` writes every measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_peers
import benchdata
import benchlib
import gen_scale

TOOLS = ("st-train", "streamtrain", "vw", "fasttext")
ROWS = (500_000, 2_000_000, 8_000_000)
WORK = benchdata.TEXT_CACHE / "scale"
LABELS = [f"class{c}" for c in range(gen_scale.Shape().classes)]
# fastText checked on 50,000 rows of seed 5, validated on 5,000 of seed 5's test stream: lr 0.1 / 0.25 / 0.5 with
# 5 epochs 0.9536 / 0.9532 / 0.9532 (3.5 s), 10 epochs 0.9540 (6 s), lr 1.0, 25 epochs, dim 50 0.9518 (24 s).
PEERS = {"vw": {"l": 0.5, "passes": 20}, "fasttext": {"lr": 0.25, "epoch": 5, "dim": 10}}
OUTPUTS = {"st-train": ("data", "model"), "streamtrain": ("data", "model"), "vw": ("model.vw", "preds.txt")}
LOGS = ("*.out", "*.err")
MB = 1e6
PASS = re.compile(r"\[prepare\] pass (\d+)/\d+: [^:]+: done: .* in ([\d.]+) s")


@dataclass(frozen=True)
class Corpus:
    rows: int
    train: Path
    test: Path
    input_bytes: int  # train + test CSV: what prepare reads


# ---------------------------------------------------------------- corpus and disk
def make_corpus(work: Path, rows: int, test_rows: int, seed: int) -> Corpus:
    """``gen_scale``'s corpus of ``rows`` rows under ``work``/corpus, made unless a finished one is there."""
    out = work / "corpus" / f"rows{rows}-test{test_rows}-seed{seed}"
    if not (out / "done").is_file():
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        argv = [sys.executable, str(Path(gen_scale.__file__)), "--rows", str(rows), "--test-rows", str(test_rows)]
        subprocess.run([*argv, "--seed", str(seed), "--out", str(out)], check=True, stdout=sys.stderr)
        (out / "done").write_text("")
        print(f"[scale] corpus of {rows:,} rows made in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    train, test = out / "train.csv", out / "test.csv"
    return Corpus(rows, train, test, train.stat().st_size + test.stat().st_size)


def tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (or of the file ``path``); files vanishing meanwhile count 0."""
    if not path.is_dir():
        return path.stat().st_size if path.is_file() else 0
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


class DiskPeak:
    """The most bytes under ``root``, and in its datasets' staging directories (``data.partial-*``: prepare's
    scratch and shards in the making), while the ``with`` block runs, sampled every ``every`` s by a thread."""

    def __init__(self, root: Path, every: float = 0.5) -> None:
        self.root, self.every, self.peak, self.staging_peak = root, every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, tree_bytes(self.root))
            staging = sum(tree_bytes(p) for p in self.root.glob("data.partial-*"))
            self.staging_peak = max(self.staging_peak, staging)
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> DiskPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def outputs_bytes(tool: str, work: Path) -> int:
    """What ``tool`` leaves on purpose in ``work`` (OUTPUTS), and the logs."""
    logs = sum(tree_bytes(p) for pattern in LOGS for p in work.glob(pattern))
    return logs + sum(tree_bytes(work / name) for name in OUTPUTS.get(tool, ()))


def keep_logs_only(work: Path) -> None:
    """Remove all but the logs from ``work``: an 8 M-row dataset is gigabytes."""
    for p in work.iterdir():
        if not any(p.match(pattern) for pattern in LOGS):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


# ---------------------------------------------------------------- running the tools
def child(tool: str, train: str, test: str, work: str) -> dict:
    """A peer in this (child) process, with its PEERS settings."""
    run = {"vw": bench_peers.run_vw, "fasttext": bench_peers.run_fasttext}[tool]
    return run(train, test, Path(work), LABELS, **PEERS[tool]) | {"settings": PEERS[tool]}


def run_peer(tool: str, c: Corpus, work: Path, timeout: float) -> dict:
    argv = [sys.executable, __file__, "--child", tool, str(c.train), str(c.test), str(work)]
    log = work / "child"
    m = bench_peers.measured(argv, log, timeout)
    if m["rc"] != 0:
        return bench_peers._failed(tool, m, log)
    res = benchlib.result_in(m["stdout"]) or {"error": f"{tool}: no result"}
    return res | {k: m[k] for k in ("wall_s", "cpu_s", "peak_rss_mib", *benchlib.IO_KEYS)} | {"total_s": m["wall_s"]}


def passes(log: Path) -> dict[str, float]:
    """Prepare's passes and their seconds, from its ``[prepare] pass i/n: ...: done: ... in X s`` lines."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    return {m.group(1): float(m.group(2)) for m in PASS.finditer(text)}


def run_tool(tool: str, c: Corpus, work: Path, timeout: float, extra: tuple[str, str] = ("", "")) -> dict:
    """One tool from the CSV files to a test accuracy; streamtrain's phases flattened to ``prepare_*``/``fit_*``.

    ``extra``: flags added to streamtrain's prepare and fit (one string each; ``train`` takes both).
    """
    if tool in ("vw", "fasttext"):
        return run_peer(tool, c, work, timeout)
    if tool == "st-train":
        res = bench_peers.run_streamtrain_train(c.train, c.test, work, *extra, timeout)
        return res | {"passes": passes(work / "train.err")}
    res = bench_peers.run_streamtrain(c.train, c.test, work, *extra, timeout)
    if "error" in res:
        return res
    steps = res.pop("steps")
    for phase, step in steps.items():
        res |= {f"{phase}_rss_mib": step["peak_rss_mib"], f"{phase}_written": step["write_bytes"]}
    for key in benchlib.IO_KEYS:
        values = [step[key] for step in steps.values()]
        res[key] = None if None in values else sum(values)
    return res | {"passes": passes(work / "prepare.err")}


def disk_figures(tool: str, res: dict, c: Corpus, work: Path, disk: DiskPeak) -> dict:
    """Bytes on disk at the end, scratch (written - outputs; sampled peaks where write_bytes is not accounted), MB/s."""
    streamtrain = tool in ("st-train", "streamtrain")
    out = {"data_bytes": tree_bytes(work / "data") if streamtrain else None, "outputs_bytes": outputs_bytes(tool, work)}
    out |= {"peak_disk_bytes": disk.peak, "peak_staging_bytes": disk.staging_peak if streamtrain else None}
    written = res.get("write_bytes")
    accounted = bool(written) or (written == 0 and not res.get("wchar"))  # 0 beside wchar > 0: not accounted
    if accounted:
        out["scratch_how"], out["scratch_bytes"] = "written - outputs", max(0, written - out["outputs_bytes"])
    else:
        out["scratch_how"] = "peak on disk - outputs (write_bytes unavailable)"
        out["scratch_bytes"] = max(0, disk.peak - out["outputs_bytes"])
    if tool == "streamtrain" and accounted:
        prepare_logs = sum(tree_bytes(work / f"prepare{s}") for s in (".out", ".err"))
        out["prepare_scratch_bytes"] = max(0, res["prepare_written"] - out["data_bytes"] - prepare_logs)
    elif tool == "streamtrain":
        out["prepare_scratch_bytes"] = max(0, disk.staging_peak - out["data_bytes"])
        out["prepare_scratch_how"] = "peak staging on disk - dataset (write_bytes unavailable)"
    if res.get("prepare_s"):
        out["prepare_mb_s"] = c.input_bytes / MB / res["prepare_s"]
    if out.get("prepare_scratch_bytes") is not None:
        out["prepare_scratch_share"] = out["prepare_scratch_bytes"] / c.input_bytes
    return out


def measure(c: Corpus, root: Path, timeout: float, extra: tuple[str, str], tool: str, _round: int) -> dict:
    """``benchlib.run_rounds``' measure: one tool in a fresh work directory, left with its logs only."""
    work = root / "runs" / f"rows{c.rows}" / tool
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with DiskPeak(work) as disk:
        res = run_tool(tool, c, work, timeout, extra)
    if "error" not in res:
        res |= disk_figures(tool, res, c, work, disk)
    keep_logs_only(work)
    return res


def said(res: dict) -> str:
    """One round's line."""
    mb = "-" if res.get("scratch_bytes") is None else f"{res['scratch_bytes'] / MB:,.0f}"
    return (
        f"total {res['total_s']:7.1f} s  test acc {res['test_accuracy']:.4f}  peak {res['peak_rss_mib']:,.0f} MiB  "
        f"scratch {mb} MB  others {res['others_cores']:.2f}"
    )


# ---------------------------------------------------------------- tables
def mb(key: str, header: str) -> benchlib.Custom:
    """A column of ``key`` (bytes) in MB: the median over the arm's rounds."""
    return benchlib.Custom(
        header, lambda runs, arm: benchlib.fmt(benchlib.aggregate(runs, arm, key, lambda v: benchlib.median_of(v) / MB))
    )


def passes_cell(runs: Sequence[benchlib.Run[str]], arm: str) -> str:
    """Each prepare pass's median seconds: ``12.0 / 3.1 / 20.5``."""
    ok = [r.get("passes") or {} for r in benchlib.ok_runs(runs, arm)]
    keys = sorted({k for p in ok for k in p}, key=int)
    return " / ".join(benchlib.fmt(benchlib.median_of(p.get(k) for p in ok), 1) for k in keys) or "-"


def print_size(runs: Sequence[benchlib.Run[str]], c: Corpus, tools: Sequence[str]) -> None:
    """The table of one size, the per-round ratios to VW, failures, and how scratch was measured."""
    b = benchlib
    print(f"\n{c.rows:,} rows ({c.input_bytes / MB:,.0f} MB in): medians over {b.rounds_of(runs)} round(s)")
    columns: list[benchlib.Column] = [
        b.ArmName("tool"),
        b.Stat("total s", "total_s", 1),
        b.Ratio("x VW", "total_s", "vw"),
        b.Stat("test acc", "test_accuracy", 4),
        b.Stat("peak RSS MiB", "peak_rss_mib"),
        b.Stat("prepare s", "prepare_s", 1),
        b.Stat("prepare MB/s", "prepare_mb_s", 1),
        b.Stat("prepare RSS MiB", "prepare_rss_mib"),
        b.Stat("fit s", "train_s", 1),
        b.Stat("fit RSS MiB", "fit_rss_mib"),
        b.Custom("passes s", passes_cell),
        mb("write_bytes", "written MB"),
        mb("scratch_bytes", "scratch MB"),
        mb("prepare_scratch_bytes", "prepare scratch MB"),
        mb("data_bytes", "dataset MB"),
        b.OTHERS,
    ]
    b.print_ratio_table(runs, tools, columns)
    for mine in ("st-train", "streamtrain"):
        if vw := b.ratios(runs, mine, "vw", "total_s"):
            print(f"{mine} total / VW total per round: {b.ratio_line(vw)}")
    hows = {r.get(k) for r in runs if r.ok for k in ("scratch_how", "prepare_scratch_how")}
    hows -= {"written - outputs", None}
    for how in sorted(hows):
        print(f"scratch measured as: {how}")
    for r in runs:
        if not r.ok:
            print(f"round {r.round} {r.arm} FAILED: {r.values['error']}")


def summary(runs: Sequence[benchlib.Run[str]], c: Corpus, tools: Sequence[str]) -> list[dict]:
    """Per tool, the medians the table shows and the ratio to VW, for the JSON."""
    keys = ("total_s", "test_accuracy", "peak_rss_mib", "prepare_s", "prepare_mb_s", "prepare_rss_mib", "train_s")
    keys += ("fit_rss_mib", "write_bytes", "scratch_bytes", "prepare_scratch_bytes", "prepare_scratch_share")
    keys += ("data_bytes", "others_cores")
    rows = []
    for tool in tools:
        row = {"rows": c.rows, "tool": tool, "rounds": len(benchlib.ok_runs(runs, tool))}
        row |= {k: benchlib.aggregate(runs, tool, k) for k in keys}
        rows.append(row | {"vs_vw": benchlib.median_ratio(runs, tool, "vw", "total_s")})
    return rows


# ---------------------------------------------------------------- done when (issue 27)
@dataclass(frozen=True)
class Figure:
    figure: str
    target: str
    value: str  # as printed; "-" when not measured
    met: bool | None  # None: not measured at the size
    at_rows: int | None  # the size the value is from


def at_size(by_size: dict[int, list[dict]], rows: int, tool: str) -> tuple[int | None, dict]:
    """``tool``'s summary row at ``rows``, or (marked by its size) at the largest size run; {} without one."""
    size = rows if rows in by_size else max(by_size, default=None)
    return size, next((r for r in by_size.get(size, []) if r["tool"] == tool), {})


def arm_figure(by_size, rows: int, tool: str, key: str, name: str, target: str, ok, show: str) -> Figure:
    """``tool``'s median ``key`` at ``rows``, ``ok(value)`` its verdict."""
    size, row = at_size(by_size, rows, tool)
    if row.get(key) is None:
        return Figure(name, target, "-", None, None)
    return Figure(name, target, show.format(row[key]), ok(row[key]) if size == rows else None, size)


def speed_figure(by_size: dict[int, list[dict]], rows: int, bar: float) -> Figure:
    """``streamtrain train`` time / VW's at ``rows``, with its test accuracy no more than 0.2 points below VW's."""
    name, target = f"st-train time / VW at {rows:,} rows; test accuracy - VW's", f"<= {bar}x; >= -0.2 points"
    size, st = at_size(by_size, rows, "st-train")
    vw_acc = at_size(by_size, rows, "vw")[1].get("test_accuracy")
    if st.get("vs_vw") is None or st.get("test_accuracy") is None or vw_acc is None:
        return Figure(name, target, "-", None, None)
    gap = 100 * (st["test_accuracy"] - vw_acc)
    met = st["vs_vw"] <= bar and gap >= -0.2
    return Figure(name, target, f"{st['vs_vw']:.2f}x, {gap:+.2f} points", met if size == rows else None, size)


def rss_figure(by_size: dict[int, list[dict]], key: str, small: int, large: int) -> Figure:
    """Peak RSS of a streamtrain phase at ``large`` rows / at ``small`` rows (the streamtrain arm)."""
    peak = {n: at_size(by_size, n, "streamtrain")[1].get(key) for n in by_size}
    peak = {n: v for n, v in peak.items() if v}
    name = f"{key.split('_')[0]} peak RSS at {large:,} / at {small:,} rows"
    if len(peak) < 2:
        return Figure(name, "<= 1.1x", "-", None, None)
    lo, hi = (small, large) if small in peak and large in peak else (min(peak), max(peak))
    met = peak[hi] / peak[lo] <= 1.1 if (lo, hi) == (small, large) else None
    value = f"{peak[hi] / peak[lo]:.2f}x ({lo:,} rows {peak[lo]:,.0f} MiB, {hi:,} rows {peak[hi]:,.0f} MiB)"
    return Figure(name, "<= 1.1x", value, met, hi)


PREPARE_BARS = (  # issue 27's bars on prepare at 8 M rows: (key, figure, target, verdict, shown as)
    ("prepare_mb_s", "prepare MB/s", ">= 15", lambda v: v >= 15, "{:.1f}"),
    ("prepare_scratch_share", "prepare scratch / input", "<= 1.5x", lambda v: v <= 1.5, "{:.2f}x"),
)


def done_when(by_size: dict[int, list[dict]]) -> list[Figure]:
    """Issue 27's figures: speed against VW at 2 M and 8 M; prepare's speed and scratch at 8 M; flat peak RSS."""
    big = 8_000_000
    return [
        speed_figure(by_size, 2_000_000, 0.8),
        speed_figure(by_size, big, 0.7),
        *(arm_figure(by_size, big, "streamtrain", k, f"{n} at {big:,} rows", *rest) for k, n, *rest in PREPARE_BARS),
        *(rss_figure(by_size, k, 500_000, big) for k in ("prepare_rss_mib", "fit_rss_mib")),
    ]


def print_done_when(figures: Sequence[Figure]) -> None:
    print("\nDone-when (issue 27):")
    rows = []
    for f in figures:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[f.met]
        value = f.value
        if f.met is None and f.at_rows is not None and f"{f.at_rows:,} rows" not in value:
            value += f" (at {f.at_rows:,} rows)"
        rows.append([f.figure, f.target, value, verdict])
    benchlib.print_table(["figure", "target", "value", "verdict"], rows)


# ---------------------------------------------------------------- main
def row_count(text: str) -> int:
    """``500000``, ``500_000``, ``0.5M`` or ``50k``."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    n = round(float(text[:-1] if scale > 1 else text) * scale)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1 row")
    return n


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", default=",".join(map(str, ROWS)), help="training rows per size, comma-separated")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, of {','.join(TOOLS)}")
    benchlib.add_common_flags(p, rounds=3, json=True, streamtrain_args=True)
    p.add_argument("--timeout", type=float, default=4 * 3600, help="seconds allowed to one command")
    p.add_argument("--work", type=Path, default=WORK, help=f"corpora and runs (default {WORK})")
    p.add_argument("--keep-corpus", action="store_true", help="keep each size's corpus for the next run")
    p.add_argument("--test-rows", type=int, default=20_000, help="rows of the test file (default 20,000)")
    p.add_argument("--seed", type=int, default=0, help="gen_scale's seed")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        args.rows = [row_count(v) for v in args.rows.split(",") if v.strip()]
    except (ValueError, argparse.ArgumentTypeError) as e:
        p.error(f"--rows: {e}")
    args.tools = bench_peers.parse_list(args.tools, TOOLS, "tool")
    args.work = args.work.resolve()
    if args.work == benchlib.REPO or benchlib.REPO in args.work.parents:
        p.error(f"--work {args.work} is inside the repository; corpora and datasets go outside it")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        benchlib.emit(child(*args.child))
        return 0
    source = benchlib.source_state()
    print(f"streamtrain at {source}; {os.cpu_count()} cores; work {args.work}", flush=True)
    results: list[dict] = []
    by_size: dict[int, list[dict]] = {}
    corpora: dict[int, Corpus] = {}
    for rows in args.rows:
        c = corpora[rows] = make_corpus(args.work, rows, args.test_rows, args.seed)
        print(f"\n{rows:,} rows: {c.train} ({c.input_bytes / MB:,.0f} MB with the test file)", flush=True)
        extra = (args.streamtrain_prepare_args, args.streamtrain_fit_args)
        measure_one = partial(measure, c, args.work, args.timeout, extra)
        runs = benchlib.run_rounds(args.tools, args.rounds, measure_one, "scale", said)
        results += [r.record("tool", rows=rows) for r in runs]
        print_size(runs, c, args.tools)
        by_size[rows] = summary(runs, c, args.tools)
        if not args.keep_corpus:
            shutil.rmtree(c.train.parent)
    figures = done_when(by_size)
    print_done_when(figures)
    if args.json:
        doc = {"commit": source, "argv": sys.argv[1:], "cores": os.cpu_count(), "peer_settings": PEERS}
        doc |= {"corpora": {n: asdict(c) for n, c in corpora.items()}, "results": results}
        doc |= {"summary": by_size, "done_when": [asdict(f) for f in figures]}
        benchlib.write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
