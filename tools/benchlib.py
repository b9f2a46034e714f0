"""The benchmark harness of tools/: rounds, medians, ratios, the others' load, flags. Not a benchmark itself.

Who owns what:

- The harness (every ``bench_*.py`` uses it): ``add_common_flags`` spells the
  shared flags once (``--rounds``, the old ``--repeats`` as a hidden alias;
  ``--json``, ``--imdb``, ``--data`` where a benchmark has them).
  ``run_rounds`` runs the arms of a comparison in interleaved rounds (round r
  runs every arm once, the order rotated by r - 1: ``schedule``) and records
  each measurement as a ``Run``, with the others' load: ``others_cores``, the
  cores busy with other processes meanwhile (``CpuWatch``; above ~0.2 a timing
  is suspect). ``median_of``, ``aggregate`` and ``ratios`` (an arm against a
  base arm, per round, paired: the median of those ratios is what the tables
  show, not the ratio of two medians); ``print_ratio_table`` prints a table of
  ``Column`` s (``ArmName``, ``Stat``, ``Ratio``, ``Custom``, ``OTHERS``).
- The child protocol: a benchmark re-invokes its own script in a fresh
  subprocess per measured step, so every peak RSS belongs to one step; the
  child ``emit`` s one line ``BENCH_RESULT {json}``, ``run_child`` returns it
  (``result_in`` finds it in any stdout). Peak RSS is the child's
  ``getrusage(RUSAGE_SELF).ru_maxrss`` (the kernel's high-water mark, all
  threads included). ``io_counters`` / ``io_delta``: what a process tree wrote
  (/proc/self/io read around ``os.wait4``: the kernel adds a reaped child's
  counters, its own reaped children's included, to its parent's).
- Output: ``fmt``, ``print_table`` (Markdown that reads as plain text),
  ``write_json``, ``source_state`` (the commit measured).

What the benchmarks measure on (IMDB, datasets prepared once) is ``benchdata``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

REPO = Path(__file__).resolve().parent.parent
MARK = "BENCH_RESULT "

A = TypeVar("A", bound=Hashable)


# ---------------------------------------------------------------- the harness: flags
def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def add_common_flags(
    p: argparse.ArgumentParser,
    *,
    rounds: int = 3,
    json: bool = False,
    imdb: bool = False,
    data: bool = False,
    streamtrain_args: bool = False,
) -> None:
    """The flags every benchmark spells the same way; ``json``, ``imdb``, ``data``, ``streamtrain_args`` (extra
    flags for streamtrain's prepare and fit): add those too."""
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=rounds,
        help=f"interleaved rounds: each runs every arm once, the order rotated; tables show medians (default {rounds})",
    )
    p.add_argument("--repeats", dest="rounds", type=positive_int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    if json:
        p.add_argument("--json", metavar="FILE", help="also write every measurement here")
    if imdb:
        p.add_argument("--imdb", metavar="DIR", help="an extracted aclImdb directory (default: extract the archive)")
    if data:
        p.add_argument("--data", metavar="DIR", help="a prepared dataset (default: IMDB, prepared once)")
    if streamtrain_args:
        for step in ("prepare", "fit"):
            p.add_argument(
                f"--streamtrain-{step}-args", default="", help=f"extra flags for streamtrain {step} (one string)"
            )


# ---------------------------------------------------------------- the harness: rounds
class CpuWatch:
    """CPU use over an interval: ours (this process and the children it has waited for) and everyone else's.

    ``others()``: the average number of cores busy with other processes since
    construction (/proc/stat's busy time minus ours): how noisy a timing was.
    """

    def __init__(self) -> None:
        self.t0, self.busy0, self.ours0 = time.perf_counter(), self._busy(), self._ours()

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:9]]
        return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait

    @staticmethod
    def _ours() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def cores(self) -> float:
        """Cores used by this process and its reaped children on average."""
        return (self._ours() - self.ours0) / (time.perf_counter() - self.t0)

    def others(self) -> float:
        wall = time.perf_counter() - self.t0
        return max(0.0, (self._busy() - self.busy0) - (self._ours() - self.ours0)) / wall


@dataclass(frozen=True)
class Run(Generic[A]):
    """One arm measured once: its round (from 1) and what it measured (``error`` when it failed)."""

    arm: A
    round: int
    values: dict[str, Any]

    @property
    def ok(self) -> bool:
        return "error" not in self.values

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def record(self, arm_key: str = "arm", **context: Any) -> dict[str, Any]:
        """The run as one flat JSON object: ``context``, the arm under ``arm_key``, the round, the values."""
        return {**context, arm_key: self.arm, "round": self.round, **self.values}


def rotated(items: Sequence[A], r: int) -> list[A]:
    """``items`` rotated left by ``r``: over len(items) rounds every arm runs in every position once."""
    k = r % len(items) if items else 0
    return list(items[k:]) + list(items[:k])


def schedule(arms: Sequence[A], rounds: int) -> list[tuple[int, A]]:
    """(round, arm) in the order they run: round r (from 1) runs every arm once, ``rotated(arms, r - 1)``."""
    return [(r + 1, arm) for r in range(rounds) for arm in rotated(arms, r)]


def run_rounds(
    arms: Sequence[A],
    rounds: int,
    measure: Callable[[A, int], dict[str, Any]],
    name: str = "bench",
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> list[Run[A]]:
    """``measure(arm, round)`` for every arm in every round, in ``schedule`` order.

    Each result gets ``others_cores`` over its call, unless the arm measured its
    own over a narrower span (bench_fit's child: fit alone). ``describe``: a line
    for each result on stdout (``round R ARM: ...``); without it the result goes
    to stderr.
    """
    runs: list[Run[A]] = []
    width = max((len(str(arm)) for arm in arms), default=0) + 1
    for rnd, arm in schedule(arms, rounds):
        print(f"[{name}] round {rnd}/{rounds}: {arm}", file=sys.stderr, flush=True)
        watch = CpuWatch()
        values = measure(arm, rnd)
        values.setdefault("others_cores", watch.others())
        runs.append(Run(arm, rnd, values))
        if describe is None:
            print(f"[{name}]   {values}", file=sys.stderr, flush=True)
        else:
            said = describe(values) if "error" not in values else f"FAILED: {values['error']}"
            print(f"round {rnd} {f'{arm}:':{width}} {said}", flush=True)
    return runs


# ---------------------------------------------------------------- the harness: medians and ratios
def median_of(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None; None when none is."""
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def ok_runs(runs: Iterable[Run[A]], arm: A) -> list[Run[A]]:
    return [r for r in runs if r.arm == arm and r.ok]


def aggregate(runs: Iterable[Run[A]], arm: A, key: str, how: Callable[[list[Any]], Any] = statistics.median) -> Any:
    """``how`` (the median unless told) of ``key`` over the arm's successful runs; None without a value."""
    vals = [r.get(key) for r in ok_runs(runs, arm) if r.get(key) is not None]
    return how(vals) if vals else None


def ratios(runs: Iterable[Run[A]], arm: A, base: A, key: str) -> list[float]:
    """Per round where both succeeded: ``arm``'s ``key`` / ``base``'s ``key`` in that round, in round order."""
    by = {(r.arm, r.round): r.get(key) for r in runs if r.ok and r.get(key) is not None}
    rounds = sorted({rnd for _, rnd in by})
    return [by[(arm, rnd)] / by[(base, rnd)] for rnd in rounds if (arm, rnd) in by and by.get((base, rnd))]


def median_ratio(runs: Iterable[Run[A]], arm: A, base: A, key: str) -> float | None:
    """The median of ``ratios``: how the tables compare two arms (not the ratio of their medians)."""
    return median_of(ratios(runs, arm, base, key))


def ratio_line(values: Sequence[float]) -> str:
    """``a, b, c; median Mx``: per-round ratios and their median."""
    return f"{', '.join(f'{v:.2f}' for v in values)}; median {statistics.median(values):.2f}x"


def rounds_of(runs: Iterable[Run[Any]]) -> int:
    return max((r.round for r in runs), default=0)


class Column(Protocol):
    """A column of ``print_ratio_table``: a header, and a cell per arm from all the runs."""

    @property
    def header(self) -> str: ...

    def cell(self, runs: Sequence[Run[Any]], arm: Any) -> str: ...


@dataclass(frozen=True)
class ArmName:
    """The arm, with ``(k/n ok)`` when some of its rounds failed."""

    header: str

    def cell(self, runs: Sequence[Run[Any]], arm: Any) -> str:
        n, total = len(ok_runs(runs, arm)), rounds_of(runs)
        return str(arm) + ("" if n == total else f" ({n}/{total} ok)")


@dataclass(frozen=True)
class Stat:
    """``how`` (the median unless told) of one measured quantity over the arm's successful rounds."""

    header: str
    key: str
    digits: int = 0
    how: Callable[[list[Any]], Any] = statistics.median

    def cell(self, runs: Sequence[Run[Any]], arm: Any) -> str:
        return fmt(aggregate(runs, arm, self.key, self.how), self.digits)


@dataclass(frozen=True)
class Ratio:
    """The median over rounds of the arm's ``key`` / the ``base`` arm's ``key`` in the same round."""

    header: str
    key: str
    base: Any
    digits: int = 2

    def cell(self, runs: Sequence[Run[Any]], arm: Any) -> str:
        value = median_ratio(runs, arm, self.base, self.key)
        return "-" if value is None else f"{value:.{self.digits}f}x"


@dataclass(frozen=True)
class Custom:
    """Any other cell, from the runs and the arm."""

    header: str
    make: Callable[[Sequence[Run[Any]], Any], str]

    def cell(self, runs: Sequence[Run[Any]], arm: Any) -> str:
        return self.make(runs, arm)


OTHERS = Stat("others", "others_cores", 2)  # the others' load column: cores busy with other processes


def table_rows(runs: Sequence[Run[Any]], arms: Sequence[Any], columns: Sequence[Column]) -> list[list[str]]:
    """One row per arm, one cell per column."""
    return [[c.cell(runs, arm) for c in columns] for arm in arms]


def print_ratio_table(runs: Sequence[Run[Any]], arms: Sequence[Any], columns: Sequence[Column], file=None) -> None:
    print_table([c.header for c in columns], table_rows(runs, arms, columns), file=file)


# ---------------------------------------------------------------- the child protocol
def emit(result: dict) -> None:
    """Child side: hand ``result`` back to the parent."""
    print(MARK + json.dumps(result), flush=True)


def result_in(stdout: str) -> dict | None:
    """The last BENCH_RESULT a child printed on ``stdout``; None when it printed none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    return None


def run_child(argv: Sequence[str], timeout: float | None = None, env: dict | None = None) -> dict:
    """Run ``python argv...`` in a subprocess; return its BENCH_RESULT (or an ``error`` dict).

    The child's stderr passes through (logs, Keras progress); its stdout is
    scanned for the result line. ``wall_s`` is added: the child's whole life.
    """
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, *argv], check=False, stdout=subprocess.PIPE, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    wall = round(time.perf_counter() - started, 1)
    out = result_in(proc.stdout)
    return {"error": f"exit {proc.returncode}, no result", "wall_s": wall} if out is None else out | {"wall_s": wall}


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Current resident set size, MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


IO_KEYS = ("write_bytes", "cancelled_write_bytes", "wchar")  # of /proc/<pid>/io, what ``io_delta`` reports


def io_counters() -> dict[str, int] | None:
    """This process's /proc/self/io (its threads, and the children it has reaped with theirs); None without it."""
    try:
        with open("/proc/self/io") as fh:
            return {k: int(v) for k, v in (line.split(":") for line in fh if ":" in line)}
    except OSError:
        return None


def io_delta(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int | None]:
    """``IO_KEYS`` of ``after`` minus ``before`` (``io_counters`` around a child's life), None where unknown.

    ``write_bytes``: bytes of pages the tree dirtied on a file system that accounts them (ext4, xfs; not
    tmpfs), including those deleted before they reached the disk, which ``cancelled_write_bytes`` counts
    again; ``wchar``: bytes handed to write(2) and friends, pipes and terminals included.
    """
    if before is None or after is None:
        return dict.fromkeys(IO_KEYS)
    return {k: after.get(k, 0) - before.get(k, 0) for k in IO_KEYS}


# ---------------------------------------------------------------- output
def source_state() -> str:
    """The commit benchmarked, and whether streamtrain/ had uncommitted changes: ``abc1234 (+ uncommitted ...)``."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "streamtrain")
    return git("rev-parse", "--short", "HEAD") + (" (+ uncommitted changes in streamtrain/)" if dirty else "")


def write_json(path: str | Path, doc: Any) -> None:
    """``doc`` as indented JSON at ``path`` (its directory made); numpy scalars as numbers, other objects as text."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence], file=None) -> None:
    """A Markdown table, columns padded so it also reads as plain text."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    print(line(cells[0]), file=file)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=file)
    for r in cells[1:]:
        print(line(r), file=file)
