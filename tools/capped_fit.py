"""Out-of-core proof: one epoch of ``streamtrain.train.fit`` under a kernel memory cap smaller than the shards.

    /tmp/venv/bin/python tools/capped_fit.py             # cap 640 MiB, train shards >= 4 x cap (about 8 minutes)
    /tmp/venv/bin/python tools/capped_fit.py --cap-mib 1024 --ratio 4 --batch-size 128
    /tmp/venv/bin/python tools/capped_fit.py --control   # also show the in-RAM load dies under the cap

Needs root (it creates a memory cgroup). Steps:

1. Dataset: the full-size train shards of ``--base`` (default: IMDB prepared by
   tools/bench_fit.py into runs/bench/imdb-hdf5, made if missing) copied as many
   times as needed for ``--ratio`` x the cap, into ``runs/bench/capped`` with a
   manifest listing every copy (real files, distinct inodes; val/test once).
   Row ids repeat across copies; fit does not look at them.
   Their page cache is dropped (posix_fadvise DONTNEED) so the capped run must
   read them from disk, charging the page cache to its own cgroup.
2. Cap, first that works of: ``systemd-run --scope -p MemoryMax=`` (needs systemd
   as PID 1); cgroup v2 (a child of this process's cgroup with ``memory.max``,
   needs the memory controller in the v2 hierarchy); cgroup v1 (a child of this
   process's memory cgroup with ``memory.limit_in_bytes``, swap also capped where
   ``memsw`` exists). Why a mechanism was skipped is printed.
3. Runs ``fit(FitOptions(data, epochs=1))`` in a subprocess inside the cgroup,
   then prints shard bytes, the cap, the cgroup's peak (``memory.peak`` in v2,
   ``memory.max_usage_in_bytes`` in v1: anonymous memory + page cache charged to
   the group; it reaches the cap once the page cache fills it), the sampled
   peak of its anonymous memory, OOM kills, the process's own peak RSS (which
   also counts pages of shared libraries charged to another cgroup, so it may
   exceed the cap) and the bytes it read from disk (/proc/self/io). (v1's
   memory.failcnt is not shown: on this kernel it stays 0 even when the group
   is OOM-killed at the limit.)

The cap has to hold fit's fixed footprint (about 450 MiB of anonymous memory:
the TensorFlow runtime, the model, the buffers). ``SplitSource`` keeps at most
8 shard files open (about 0.7 MiB each), so the number of shards no longer
adds to it (before that bound, 512 MiB was too little for 164 shard files).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchdata
import benchlib

MIB = 2**20


# ---------------------------------------------------------------- dataset
def replicated(base: Path, out: Path, min_train_bytes: int) -> Path:
    """``out``: ``base`` with its train shards copied until they total >= ``min_train_bytes``."""
    from streamtrain.dataset.manifest import Manifest

    m = Manifest.load(base)
    # Full-size shards only: a dataset this big would have those (and each open shard costs fit ~0.7 MiB).
    biggest = max(s.rows for s in m.shards_for("train"))
    train = [s for s in m.shards_for("train") if s.rows == biggest]
    per_copy = sum(s.bytes for s in train)
    copies = -(-min_train_bytes // per_copy)
    if (out / "manifest.json").is_file():
        have = Manifest.load(out)
        if sum(s.bytes for s in have.shards_for("train")) >= min_train_bytes and have.vectorizer == m.vectorizer:
            return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shards = []
    for k in range(copies):
        for s in train:
            name = f"train-r{k:04d}-{s.path}"
            shutil.copyfile(base / s.path, out / name)
            shards.append(dataclasses.replace(s, path=name))
    for s in m.shards:
        if s.split != "train":
            shutil.copyfile(base / s.path, out / s.path)
            shards.append(s)
    for f in base.iterdir():
        if f.name.startswith("vectorizer."):
            shutil.copyfile(f, out / f.name)
    rows = {**m.stats.rows, "train": sum(s.rows for s in shards if s.split == "train")}  # train shards x copies
    dataclasses.replace(m, shards=shards, stats=dataclasses.replace(m.stats, rows=rows)).save(out)
    return out


def drop_cache(directory: Path) -> None:
    for f in directory.iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- cgroups
def own_cgroup(v1_controller: str | None) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (v1_controller and v1_controller in controllers.split(",")) or (not v1_controller and controllers == ""):
            return path
    raise RuntimeError(f"no {'v1 ' + v1_controller if v1_controller else 'v2'} entry in /proc/self/cgroup")


class Cgroup:
    """A memory cgroup created for one run (v1 or v2), removed by ``close``."""

    def __init__(self, version: int, path: Path, cap: int):
        self.version, self.path = version, path
        path.mkdir()
        try:
            if version == 2:
                (path / "memory.max").write_text(str(cap))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
            else:
                (path / "memory.limit_in_bytes").write_text(str(cap))
                if (path / "memory.memsw.limit_in_bytes").exists():
                    (path / "memory.memsw.limit_in_bytes").write_text(str(cap))
        except OSError:
            path.rmdir()
            raise

    def enter(self) -> None:
        """preexec_fn: move the forked child in before it execs."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def read(self, name: str) -> str | None:
        try:
            return (self.path / name).read_text()
        except OSError:
            return None

    def stat(self) -> dict[str, int]:
        return {k: int(v) for k, v in (line.split() for line in (self.read("memory.stat") or "").splitlines())}

    def anon(self) -> int:
        s = self.stat()
        return s.get("anon", 0) if self.version == 2 else s.get("rss", 0)

    def report(self) -> dict:
        if self.version == 2:
            events = dict(line.split() for line in (self.read("memory.events") or "").splitlines())
            return {
                "peak_bytes": int(self.read("memory.peak") or 0),
                "limit_hits": int(events.get("max", 0)),
                "oom_kills": int(events.get("oom_kill", 0)),
            }
        oom = dict(line.split() for line in (self.read("memory.oom_control") or "").splitlines())
        return {
            "peak_bytes": int(self.read("memory.max_usage_in_bytes") or 0),
            "limit_hits": int(self.read("memory.failcnt") or 0),
            "oom_kills": int(oom.get("oom_kill", 0)),
        }

    def close(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def make_cgroup(cap: int, prefer: str) -> tuple[Cgroup | None, list[str]]:
    """The first working direct cgroup (v2, then v1) and why the others were skipped."""
    notes, name = [], f"streamtrain-capped-{os.getpid()}"
    for version in (2, 1) if prefer == "auto" else ((2,) if prefer == "v2" else (1,)):
        try:
            if version == 2:
                roots = [
                    r
                    for r in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
                    if (r / "cgroup.controllers").is_file()
                ]
                if not roots:
                    raise RuntimeError("no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified")
                root = roots[0]
                ctl = (root / "cgroup.controllers").read_text().split()
                if "memory" not in ctl:
                    raise RuntimeError(
                        f"{root}/cgroup.controllers is {ctl!r}: the memory controller is bound to the v1 hierarchy"
                    )
                return Cgroup(2, root / own_cgroup(None).lstrip("/") / name, cap), notes
            root = Path("/sys/fs/cgroup/memory")
            if not (root / "memory.limit_in_bytes").is_file():
                raise RuntimeError("no v1 memory controller at /sys/fs/cgroup/memory")
            return Cgroup(1, root / own_cgroup("memory").lstrip("/") / name, cap), notes
        except (OSError, RuntimeError) as exc:
            notes.append(f"cgroup v{version}: {exc}")
    return None, notes


def systemd_probe() -> str | None:
    """None if ``systemd-run --scope -p MemoryMax=`` works here, else why not."""
    if not shutil.which("systemd-run"):
        return "systemd-run not installed"
    p = subprocess.run(
        ["systemd-run", "--scope", "--quiet", "-p", "MemoryMax=64M", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if p.returncode == 0 else f"systemd-run --scope failed ({p.returncode}): {' '.join(p.stderr.split())}"


# ---------------------------------------------------------------- child
def child(args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.child == "control":
        x, _ = benchdata.load_split_csr(args.data, "train")
        return {
            "loaded_bytes": int(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes),
            "peak_rss_mib": benchlib.peak_rss_mib(),
        }
    from streamtrain.train.fit import FitOptions, fit

    model_dir = Path(args.data).parent / "capped-model"
    t0 = time.perf_counter()
    m = fit(FitOptions(data=args.data, model_dir=str(model_dir), epochs=1, batch_size=args.batch_size, overwrite=True))
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    out = {
        "seconds": time.perf_counter() - t0,
        "train_rows": m["train_rows"],
        "samples_per_s": m["train_samples_per_second"],
        "test_accuracy": m["test_accuracy"],
        "peak_rss_mib": benchlib.peak_rss_mib(),
        "disk_read_bytes": int(io["read_bytes"]),
    }
    # Self-report of the cgroup peak, for a systemd scope whose cgroup the parent cannot see.
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctl, path = line.split(":", 2)
        for f in (Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.peak",):
            if ctl == "" and f.is_file():
                out["cgroup_peak_bytes"] = int(f.read_text())
    shutil.rmtree(model_dir, ignore_errors=True)
    return out


def run_capped(cmd: list[str], cap: int, mechanism: str, notes: list[str]):
    """Run ``cmd`` under the cap; return (child result, cgroup report, sampled anon peak, mechanism used)."""
    if mechanism in ("auto", "systemd"):
        why = systemd_probe()
        notes.clear()
        if why is None:
            proc = subprocess.run(
                [
                    "systemd-run",
                    "--scope",
                    "--quiet",
                    "-p",
                    f"MemoryMax={cap}",
                    "-p",
                    "MemorySwapMax=0",
                    sys.executable,
                    *cmd,
                ],
                check=False,
                stdout=subprocess.PIPE,
                text=True,
            )
            res = benchlib.result_in(proc.stdout) or {"error": f"exit {proc.returncode}"}
            return res, {"peak_bytes": res.get("cgroup_peak_bytes")}, None, "systemd-run --scope"
        notes.append(why)
    cg, more = make_cgroup(cap, mechanism if mechanism in ("v1", "v2") else "auto")
    notes += more
    if cg is None:
        raise SystemExit("no way to cap memory here:\n  " + "\n  ".join(notes))
    anon_peak, done = 0, threading.Event()

    def sample():
        nonlocal anon_peak
        while not done.is_set():
            anon_peak = max(anon_peak, cg.anon())
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()
        proc = subprocess.run(
            [sys.executable, *cmd], check=False, stdout=subprocess.PIPE, text=True, preexec_fn=cg.enter
        )
        done.set()
        sampler.join()
        killed = " (SIGKILL: OOM killer)" if proc.returncode == -9 else ""
        res = benchlib.result_in(proc.stdout) or {"error": f"exit {proc.returncode}{killed}"}
        return res, cg.report(), anon_peak, f"cgroup v{cg.version} {cg.path}"
    finally:
        done.set()
        cg.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cap-mib", type=int, default=640, help="memory cap, MiB (default 640)")
    p.add_argument("--ratio", type=float, default=4.0, help="train shard bytes >= ratio x cap (default 4)")
    p.add_argument(
        "--base", help="prepared dataset whose train shards are replicated (default: IMDB, runs/bench/imdb-hdf5)"
    )
    p.add_argument("--out", default=str(benchlib.REPO / "runs" / "bench" / "capped"))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--mechanism", choices=("auto", "systemd", "v2", "v1"), default="auto")
    p.add_argument(
        "--control",
        action="store_true",
        help="also load every train row into RAM under the same cap (expected: killed)",
    )
    p.add_argument("--child", choices=("fit", "control"), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        benchlib.emit(child(args))
        return 0
    cap = args.cap_mib * MIB
    if args.base is None:
        args.base = str(benchdata.imdb_data())
    data = replicated(Path(args.base), Path(args.out), int(args.ratio * cap))
    drop_cache(data)
    from streamtrain.dataset.manifest import Manifest

    m = Manifest.load(data)
    train_bytes = sum(s.bytes for s in m.shards_for("train"))
    me = str(Path(__file__).resolve())
    notes: list[str] = []
    runs = [("fit 1 epoch", ["--child", "fit"])] + (
        [("control: all train rows in RAM", ["--child", "control"])] if args.control else []
    )
    rows = []
    for label, extra in runs:
        print(f"[capped_fit] {label} under {args.cap_mib} MiB", file=sys.stderr, flush=True)
        drop_cache(data)
        res, cg, anon, how = run_capped(
            [me, *extra, "--data", str(data), "--batch-size", str(args.batch_size)], cap, args.mechanism, notes
        )
        print(f"[capped_fit]   {how}: {res} {cg}", file=sys.stderr, flush=True)
        rows.append(
            [
                label,
                "FAILED: " + res["error"] if "error" in res else "completed",
                benchlib.fmt((cg.get("peak_bytes") or 0) / MIB),
                benchlib.fmt(anon / MIB if anon else None),
                benchlib.fmt(cg.get("oom_kills")),
                benchlib.fmt(res.get("peak_rss_mib")),
                benchlib.fmt(res["disk_read_bytes"] / MIB if "disk_read_bytes" in res else None),
                benchlib.fmt(res.get("seconds"), 1),
                benchlib.fmt(res.get("samples_per_s")),
                benchlib.fmt(res.get("test_accuracy"), 4),
            ]
        )
    print(f"\nskipped: {'; '.join(notes) or 'nothing'}\nmechanism: {how}")
    print(
        f"train shards: {len(m.shards_for('train'))} files, {train_bytes:,} bytes ({train_bytes / MIB:,.0f} MiB), "
        f"{m.rows('train'):,} rows; all shards {sum(s.bytes for s in m.shards) / MIB:,.0f} MiB; "
        f"cap {cap:,} bytes ({args.cap_mib} MiB): shards / cap = {train_bytes / cap:.2f}\n"
    )
    benchlib.print_table(
        [
            "run",
            "result",
            "cgroup peak MiB",
            "anon peak MiB (sampled)",
            "OOM kills",
            "process peak RSS MiB",
            "disk read MiB",
            "seconds",
            "samples/s",
            "test acc",
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
