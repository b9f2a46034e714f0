"""prepare --scheduler on a real Dask cluster: the same dataset as --jobs 1, engine failures, no partial dataset.

One ``distributed.LocalCluster`` per module (a scheduler and 2 worker processes on loopback, each worker
restarted by its nanny when it dies, a task retried after 1 death instead of Dask's default 3 to keep the
tests short); every prepare is the real command in a subprocess. Faults are injected on the workers only,
by a worker plugin that wraps streamtrain's ``analyze_chunk`` in the worker processes (the tasks name it by
reference), so the command's own process and Dask itself run unchanged.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN, REPO
from helpers import BIN, files_of, sigint_as_a_terminal_sends_it, streamtrain, without_keys

from streamtrain.cli.workers import free_ports

distributed = pytest.importorskip(
    "distributed", reason="Dask's distributed is not installed: pip install -e '.[cluster]' (make test does)"
)
import cloudpickle  # noqa: E402 - a dependency of distributed
from distributed.diagnostics.plugin import WorkerPlugin  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fault plugin below travels to the workers

VOLATILE = ("at", "ingested_at", "data", "jobs", "scheduler")  # when and where it ran, and on what: not the data
COPIES = 5  # the demo's train rows 5 times (4 variants): 20,000 rows, 5 chunks of 4,096


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"allowed_failures": 1, "dashboard_address": "127.0.0.1:0"},  # its HTTP server: any port
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        yield local.scheduler_address, client


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """A train CSV of several chunks, the demo's test CSV, and a small CSV holding the poison word."""
    root = tmp_path_factory.mktemp("corpus")
    with DEMO_TRAIN.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with (root / "train.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for copy in range(COPIES):
            for row in rows:
                out.writerow([row["text"] + (f" variant{copy}" if copy else ""), row["label"]])
    with (root / "poison.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for i, row in enumerate(rows[:50]):
            out.writerow([row["text"] + (" POISONWORD" if i == 20 else ""), row["label"]])
    return {"train": root / "train.csv", "test": DEMO_TEST, "poison": root / "poison.csv"}


def prepare(corpus, data: Path, *args, extra_inputs=(), **kw):
    return streamtrain(
        "prepare",
        corpus["train"],
        *extra_inputs,
        "--test",
        corpus["test"],
        "--data",
        data,
        "--shard-rows",
        "3000",
        "--block-rows",
        "256",
        *args,
        **kw,
    )


@pytest.fixture(scope="module")
def inline(corpus, tmp_path_factory):
    """``inline(format, vectorizer)``: the corpus prepared with --jobs 1 (once per module)."""
    root = tmp_path_factory.mktemp("inline")

    @functools.cache
    def made(fmt: str, vectorizer: str) -> Path:
        data = root / f"{fmt}-{vectorizer}"
        proc = prepare(corpus, data, "--jobs", "1", "--format", fmt, "--vectorizer", vectorizer, "--quiet")
        assert proc.returncode == 0, proc.stderr
        return data

    return made


def assert_same_dataset(got: Path, want: Path, appended: bool = False) -> None:
    """Every file the same bytes; manifests the same but for when, where and on what each ran."""
    mine, theirs = files_of(got), files_of(want)
    assert set(mine) == set(theirs)
    for name in mine:
        if name != "manifest.json":
            assert mine[name] == theirs[name], name
    a, b = (json.loads(files["manifest.json"]) for files in (mine, theirs))
    assert [(s["path"], s["rows"], s["sha256"]) for s in a["shards"]] == [
        (s["path"], s["rows"], s["sha256"]) for s in b["shards"]
    ]
    assert len(a["shards"]) >= 3
    assert a["vectorizer"]["arrays_sha256"] == b["vectorizer"]["arrays_sha256"]
    assert without_keys(a, VOLATILE) == without_keys(b, VOLATILE)
    if appended:
        assert len(a["appends"]) == 1 and a["appends"][0]["shards"] >= 1
    else:
        assert a["created"]["options"]["scheduler"] and not b["created"]["options"]["scheduler"]


def no_dataset_left(data: Path) -> None:
    assert not data.exists(), sorted(p.name for p in data.iterdir())
    assert not [p.name for p in data.parent.iterdir() if p.name.startswith(data.name + ".")]


def _faulty(kind: str, arg: str, analyze, texts, *args):
    """``analyze_chunk`` on a worker with a fault: die once (the first call to create the file ``arg``), or on
    the chunk that holds the word POISONWORD die, raise, or block: create ``arg``.started and wait for
    ``arg``.release (a running task cannot be stopped)."""
    if kind == "die-once":
        try:
            os.close(os.open(arg, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return analyze(texts, *args)
        os._exit(1)
    if any("POISONWORD" in text for text in texts):
        if kind == "die":
            os._exit(1)
        if kind == "block":
            Path(arg + ".started").touch()
            deadline = time.monotonic() + 120
            while not Path(arg + ".release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            Path(arg + ".left").touch()
        else:
            raise ValueError(f"injected on worker pid {os.getpid()}")
    return analyze(texts, *args)


class Fault(WorkerPlugin):
    """Wraps ``analyze_chunk`` in each worker process (those restarted after a death too) while registered."""

    def __init__(self, kind: str, arg: str):
        self.kind, self.arg = kind, arg

    def setup(self, worker):
        import streamtrain.dataset.passes as module

        self.original = module.analyze_chunk
        module.analyze_chunk = functools.partial(_faulty, self.kind, self.arg, self.original)

    def teardown(self, worker):
        import streamtrain.dataset.passes as module

        module.analyze_chunk = self.original


class fault:
    """``with fault(client, kind, arg):`` the workers run ``_faulty`` instead of ``analyze_chunk``."""

    def __init__(self, client, kind: str, arg: str):
        self.client, self.plugin, self.name = client, Fault(kind, arg), f"fault-{kind}"

    def __enter__(self):
        self.client.register_plugin(self.plugin, name=self.name)

    def __exit__(self, *exc):
        self.client.unregister_worker_plugin(self.name)
        self.client.wait_for_workers(2, timeout=60)  # dead workers restarted: the next test has both


@pytest.mark.parametrize(("fmt", "vectorizer"), [("hdf5", "ngram"), ("parquet", "sequence")], ids=["hdf5", "parquet"])
def test_the_cluster_prepares_the_same_bytes_as_one_job(cluster, corpus, inline, tmp_path, fmt, vectorizer):
    address, client = cluster
    data = tmp_path / "data"
    proc = prepare(corpus, data, "--scheduler", address, "--format", fmt, "--vectorizer", vectorizer)
    assert proc.returncode == 0, proc.stderr
    assert_same_dataset(data, inline(fmt, vectorizer))
    # the work ran on the cluster's workers: the scheduler saw its tasks
    prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "analyze_chunk" in prefixes


def test_a_worker_that_dies_is_replaced_and_its_task_retried(cluster, corpus, inline, tmp_path):
    address, client = cluster
    marker = tmp_path / "died"
    with fault(client, "die-once", str(marker)):
        proc = prepare(corpus, tmp_path / "data", "--scheduler", address, "--format", "hdf5", "--vectorizer", "ngram")
    assert marker.exists(), "a worker died"
    assert proc.returncode == 0, proc.stderr
    assert_same_dataset(tmp_path / "data", inline("hdf5", "ngram"))


def test_a_task_that_kills_every_worker_it_runs_on_fails_the_run(cluster, corpus, tmp_path):
    address, client = cluster
    data = tmp_path / "data"
    with fault(client, "die", ""):
        proc = prepare(corpus, data, "--scheduler", address, extra_inputs=[corpus["poison"]])
    assert proc.returncode == 1, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("streamtrain prepare: error: the work on ")
    # No traceback of streamtrain's (a bug's). Dask's own log lines may come before the error: a result lost with
    # a dead worker is "rescheduled", and when the failing run then cancels it, Dask's ClientExecutor can log its
    # FutureCancelledError with a traceback of Dask's and tornado's frames.
    assert f'File "{REPO / "streamtrain"}' not in proc.stderr
    assert f"{corpus['poison']}, rows 2-51 failed on {address}, so the run stopped and wrote nothing" in error
    assert "KilledWorker: " in error and "workers died while running it" in error
    no_dataset_left(data)


def test_an_exception_on_the_workers_fails_the_run_and_keeps_the_old_dataset(cluster, corpus, inline, tmp_path):
    address, client = cluster
    data = tmp_path / "data"
    shutil.copytree(inline("hdf5", "ngram"), data)
    before = files_of(data)
    with fault(client, "raise", ""):
        proc = prepare(corpus, data, "--scheduler", address, "--overwrite", extra_inputs=[corpus["poison"]])
    assert proc.returncode == 1, proc.stderr
    assert "ValueError: injected on worker pid" in proc.stderr  # the worker's exception, with its traceback
    assert f"streamtrain: raised by the work on {corpus['poison']}, rows 2-51" in proc.stderr
    assert files_of(data) == before  # --overwrite replaced nothing
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("data.")]


def test_append_on_the_cluster_adds_the_same_shards(cluster, corpus, inline, tmp_path):
    address, _ = cluster
    for name, how in (("cluster", ["--scheduler", address]), ("inline", ["--jobs", "1"])):
        shutil.copytree(inline("hdf5", "ngram"), tmp_path / name)
        proc = streamtrain("prepare", "--append", corpus["poison"], "--data", tmp_path / name, *how, "--quiet")
        assert proc.returncode == 0, proc.stderr
    assert_same_dataset(tmp_path / "cluster", tmp_path / "inline", appended=True)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_stops_a_run_on_the_cluster_at_once(cluster, corpus, tmp_path, signum, code):
    address, client = cluster
    data, block = tmp_path / "data", tmp_path / "block"
    command = [BIN, "prepare", corpus["train"], corpus["poison"], "--data", data, "--scheduler", address]
    with fault(client, "block", str(block)):
        try:
            child = subprocess.Popen(
                list(map(str, command)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=sigint_as_a_terminal_sends_it,
            )
            deadline = time.monotonic() + 120
            while not Path(f"{block}.started").exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if not Path(f"{block}.started").exists():
                child.kill()
                pytest.fail(f"the poisoned chunk never started on a worker: {child.communicate()}")
            child.send_signal(signum)
            _, stderr = child.communicate(timeout=30)  # while a worker still runs the poisoned chunk
        finally:
            Path(f"{block}.release").touch()
            # The worker outlives this test: it must leave the block before pytest removes tmp_path (and the
            # release file with it), or it holds its worker until its own deadline and the next test waits on it.
            deadline = time.monotonic() + 60
            while Path(f"{block}.started").exists() and not Path(f"{block}.left").exists():
                assert time.monotonic() < deadline, "the blocked worker never left the block"
                time.sleep(0.05)
    how = "interrupted by SIGINT" if signum == signal.SIGINT else "terminated by SIGTERM"
    assert child.returncode == code and stderr.strip().splitlines()[-1] == f"streamtrain prepare: {how}"
    assert "Traceback" not in stderr
    no_dataset_left(data)


def test_an_unreachable_scheduler_fails_fast_and_clearly(corpus, tmp_path):
    address = f"tcp://127.0.0.1:{free_ports(1)[0]}"  # a loopback port that nothing listens on
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}  # Dask's own setting; 30 s by default
    command = [BIN, "prepare", corpus["train"], "--data", tmp_path / "data", "--scheduler", address]
    start = time.monotonic()
    proc = subprocess.run(list(map(str, command)), capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - start < 20
    assert proc.stderr.startswith(
        f"streamtrain prepare: error: --scheduler {address}: no Dask scheduler answered within 2 s ("
    )
    assert proc.stderr.strip().endswith("is `dask scheduler` running there?")
    no_dataset_left(tmp_path / "data")


def test_scheduler_and_jobs_together_are_a_usage_error(corpus, tmp_path):
    proc = streamtrain("prepare", corpus["train"], "--data", tmp_path / "d", "--scheduler", "tcp://h:1", "--jobs", "2")
    assert proc.returncode == 2 and "--jobs sets this machine's threads" in proc.stderr
    proc = streamtrain("prepare", corpus["train"], "--data", tmp_path / "d", "--scheduler", "http://h:1")
    assert proc.returncode == 2 and "is not a Dask scheduler's address" in proc.stderr
    no_dataset_left(tmp_path / "d")
