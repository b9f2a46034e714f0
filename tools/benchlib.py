"""Shared helpers for the benchmark scripts in tools/ (bench_fit, bench_prepare, bench_memory, capped_fit).

Not a benchmark itself. Each benchmark re-invokes its own script in a fresh
subprocess per measured step, so every peak RSS belongs to one step only;
the child prints one line ``BENCH_RESULT {json}`` on stdout and
``run_child`` returns that JSON as a dict.

Peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` of the child (the kernel's
high-water mark of resident memory, all threads included).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARK = "BENCH_RESULT "
DATASETS = Path(os.environ.get("STREAMTRAIN_DATASETS", "/work/shared/datasets"))
IMDB_ARCHIVE = DATASETS / "imdb" / "aclImdb_labeled.tar.gz"
# Raw text stays outside the repository; only derived shards go to runs/.
TEXT_CACHE = Path(os.environ.get("STREAMTRAIN_BENCH_TEXT", "/tmp/streamtrain-bench"))


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """Current resident set size, MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class CpuWatch:
    """Machine CPU use by everything but this process, over an interval: how noisy a timing was.

    ``others()`` returns the average number of cores busy with other processes
    since construction (from /proc/stat minus this process's own CPU time).
    """

    def __init__(self):
        self.t0, self.busy0, self.self0 = time.perf_counter(), self._busy(), self._self()

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:9]]
        return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait

    @staticmethod
    def _self() -> float:
        t = os.times()
        return t.user + t.system

    def cores(self) -> float:
        """Cores used by this process on average."""
        return (self._self() - self.self0) / (time.perf_counter() - self.t0)

    def others(self) -> float:
        wall = time.perf_counter() - self.t0
        return max(0.0, (self._busy() - self.busy0) - (self._self() - self.self0)) / wall


def source_state() -> str:
    """The commit benchmarked, and whether streamtrain/ had uncommitted changes: ``abc1234 (+ uncommitted ...)``."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "streamtrain")
    return git("rev-parse", "--short", "HEAD") + (" (+ uncommitted changes in streamtrain/)" if dirty else "")


def emit(result: dict) -> None:
    """Child side: hand ``result`` back to the parent."""
    print(MARK + json.dumps(result), flush=True)


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
    wall = time.perf_counter() - started
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            out = json.loads(line[len(MARK) :])
            out["wall_s"] = round(wall, 1)
            return out
    return {"error": f"exit {proc.returncode}, no result", "wall_s": round(wall, 1)}


def targets(labels, n_classes: int):
    """Label ids in the shape the model's loss expects (sigmoid head for 2 classes), for Keras' own inputs."""
    import numpy as np

    if n_classes == 2:
        return labels.astype(np.float32).reshape(-1, 1)
    return labels.astype(np.int32)


def imdb_dir(explicit: str | None = None) -> Path:
    """An extracted aclImdb directory (train/, test/): ``explicit``, /tmp/imdb/aclImdb, or extract the archive."""
    for cand in [explicit, os.environ.get("STREAMTRAIN_IMDB"), "/tmp/imdb/aclImdb", TEXT_CACHE / "aclImdb"]:
        if cand and (Path(cand) / "train").is_dir() and (Path(cand) / "test").is_dir():
            return Path(cand)
    if explicit:
        raise SystemExit(f"{explicit}: not an aclImdb directory (needs train/ and test/)")
    if not IMDB_ARCHIVE.is_file():
        raise SystemExit(f"no extracted IMDB and no archive at {IMDB_ARCHIVE}; pass --imdb DIR")
    TEXT_CACHE.mkdir(parents=True, exist_ok=True)
    print(f"[bench] extracting {IMDB_ARCHIVE} to {TEXT_CACHE}", file=sys.stderr, flush=True)
    with tarfile.open(IMDB_ARCHIVE, "r:gz") as tar:
        tar.extractall(TEXT_CACHE, filter="data")
    return TEXT_CACHE / "aclImdb"


def prepare_options(**kw):
    """``PrepareOptions(**kw)``, TF-IDF rows unless ``vectorizer`` is given.

    streamtrain's ``--vectorizer auto`` switches to token sequences (and fit to
    sepCNN) once samples / median words >= 1500, e.g. at 16 x IMDB; these
    benchmarks compare like with like, so they ask for n-grams explicitly.
    """
    from streamtrain.dataset.prepare import PrepareOptions

    kw.setdefault("vectorizer", "ngram")
    return PrepareOptions(**kw)


def _prepare_key(inputs: list[str], test_inputs: list[str], options: dict) -> str:
    """What a cached dataset depends on: the inputs, the options and streamtrain's source code."""
    h = hashlib.sha256(json.dumps([inputs, test_inputs, sorted(options.items())], default=str).encode())
    for src in sorted((REPO / "streamtrain").rglob("*.py")):
        h.update(src.read_bytes())
    return h.hexdigest()


def ensure_prepared(out: str | Path, inputs: list[str], test_inputs: list[str], **options) -> Path:
    """Prepare ``inputs`` into ``out`` with streamtrain, unless ``out`` holds this very preparation already."""
    out = Path(out)
    key, stamp = _prepare_key(inputs, test_inputs, options), out / ".bench-key"
    if (out / "manifest.json").is_file() and stamp.is_file() and stamp.read_text() == key:
        return out
    from streamtrain.dataset.prepare import prepare

    print(f"[bench] preparing {out} (cached for later runs with the same inputs and code)", file=sys.stderr, flush=True)
    prepare(prepare_options(inputs=list(inputs), data=out, test=list(test_inputs), overwrite=True, **options))
    stamp.write_text(key)
    return out


def load_split_csr(data: str | Path, split: str):
    """Every row of ``split`` in memory as (scipy CSR float32, int labels), read through ``SplitSource``."""
    import numpy as np
    import scipy.sparse as sp

    from streamtrain.dataset.manifest import Manifest
    from streamtrain.train.batches import SplitSource

    manifest = Manifest.load(data)
    src = SplitSource(data, manifest, split)
    parts = [src.read((s, b)) for s, n in enumerate(src.block_counts) for b in range(n)]
    src.close()
    indptr = [np.zeros(1, np.int64)]
    nnz = 0
    for p in parts:
        indptr.append(p.indptr[1:] + nnz)
        nnz += len(p.indices)
    x = sp.csr_matrix(
        (
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.indices for p in parts]),
            np.concatenate(indptr),
        ),
        shape=(sum(len(p) for p in parts), manifest.n_features),
    )
    return x, np.concatenate([p.labels for p in parts])


def epoch_timer():
    """A Keras callback recording wall seconds per epoch in ``.seconds``."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t)

    return EpochTimer()


def steady_rate(rows: int, seconds: list[float]) -> float | None:
    """Median samples/s over epochs 2..N (epoch 1 carries tracing and warm-up); epoch 1 if that is all."""
    later = seconds[1:] or seconds
    return rows / statistics.median(later) if later else None


def dir_bytes(path: str | Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in Path(path).glob(pattern) if p.is_file())


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
