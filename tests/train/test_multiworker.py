"""Multi-worker fit: real worker processes on loopback, through the CLI (``--workers 2``) and through TF_CONFIG."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, checkpoint_state, prepare_csv, streamtrain

from streamtrain.cli.workers import free_ports
from streamtrain.dataset.manifest import Manifest
from streamtrain.fs.versions import Versions
from streamtrain.train.cluster import Cluster

# Fixed epochs (patience above them), one validation per epoch: a round is an epoch.
ARGS = ("--epochs", "3", "--patience", "9", "--validations", "1", "--seed", "5")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    # Small blocks and shards: each epoch's plan is many blocks, and the workers' cut falls inside one.
    out = tmp_path_factory.mktemp("multiworker") / "data"
    return prepare_csv(DEMO_TRAIN, out, DEMO_TEST, shard_rows=500, block_rows=50)


def test_two_workers_train_one_epoch_between_them_in_step(data, tmp_path):
    model = tmp_path / "model"
    proc = streamtrain("fit", "--data", data, "--model-dir", model, "--workers", "2", *ARGS)  # the chief exports
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # the chief's result, alone on stdout
    assert result["workers"] == 2 and result["epochs"] == 3
    # Each epoch: the two workers' rows are disjoint halves (the plan is cut by rows), adding up to every row.
    assert len(result["rows_per_worker"]) == 3
    for rows in result["rows_per_worker"]:
        assert sum(rows) == result["train_rows"] and max(rows) - min(rows) <= 1
    digests = result["weights_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # identical weights and optimizer state at the end
    assert result["test_accuracy"] >= 0.8
    # Both workers logged, tagged; only the chief trained a version and reported epochs.
    assert "[worker 1] [fit] worker 1 of 2:" in proc.stderr
    assert "[worker 0] [fit] epoch 3/3:" in proc.stderr and "[worker 1] [fit] epoch" not in proc.stderr
    versions = Versions(model)
    assert versions.current() == result["version"] and versions.training() == []


def test_a_sepcnn_worker_whose_share_ends_a_batch_early_pads_the_step_and_trains_in_step(tmp_path):
    """Uneven shares: one worker's last step of an epoch is a padding step (one blank row weighed 0). sepCNN's
    convolutions failed on the batch of no rows it used to be, and the chief reported a lost worker."""
    data = prepare_csv(DEMO_TRAIN, tmp_path / "data", DEMO_TEST, vectorizer="sequence", val_fraction=0.12)
    rows = Manifest.load(data).rows("train")
    small = next(d for d in range(2, rows // 2) if (rows // 2) % d == 0)  # a per-worker batch dividing the short share
    assert rows % 2 == 1 and -(-(rows // 2 + 1) // small) > (rows // 2) // small  # the long share takes one step more
    args = ("--batch-size", str(2 * small), "--epochs", "1", "--validations", "1", "--filters", "8")
    proc = streamtrain(
        "fit", "--no-export", "--data", data, "--model-dir", tmp_path / "m", "--workers", "2", *args, "--seed", "5"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert sorted(result["rows_per_worker"][0]) == [rows // 2, rows // 2 + 1]  # the padding row is not counted
    assert result["weights_digests"][0] == result["weights_digests"][1]
    assert result["test_accuracy"] > 0.3  # 5 balanced classes: chance is 0.2


def test_workers_started_by_hand_with_tf_config_and_only_the_chief_touches_the_model_dir(data, tmp_path):
    """What an operator runs on each machine: the same command, TF_CONFIG naming every worker and its own index."""
    hosts = tuple(f"127.0.0.1:{p}" for p in free_ports(2))
    procs = []
    for i in range(2):
        model = tmp_path / f"model-of-worker-{i}"  # the chief's is used; worker 1's must never be created
        env = {**os.environ, "TF_CONFIG": Cluster(hosts, i).tf_config()}
        cmd = [str(BIN), "fit", "--no-export", "--data", str(data), "--model-dir", str(model), *ARGS, "--epochs", "1"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1] + outs[1][1]
    assert json.loads(outs[0][0])["workers"] == 2 and outs[1][0] == ""  # results on the chief's stdout only
    assert Versions(tmp_path / "model-of-worker-0").current() is not None
    assert not (tmp_path / "model-of-worker-1").exists()


def test_workers_must_match_tf_config(data, tmp_path):
    hosts = tuple(f"127.0.0.1:{p}" for p in free_ports(3))
    env = {**os.environ, "TF_CONFIG": Cluster(hosts, 0).tf_config()}
    proc = subprocess.run(
        [str(BIN), "fit", "--no-export", "--data", str(data), "--model-dir", str(tmp_path / "m"), "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--workers 2: TF_CONFIG names 3" in proc.stderr


def _worker(launcher: psutil.Process, index: int) -> psutil.Process:
    for child in launcher.children(recursive=True):
        config = child.environ().get("TF_CONFIG")
        if config and json.loads(config)["task"]["index"] == index:
            return child
    raise AssertionError(f"no worker {index} under the launcher")


def test_killing_a_worker_stops_the_run_naming_it_and_a_rerun_resumes(data, tmp_path):
    model = tmp_path / "model"
    # Small batches: epochs long enough to kill worker 1 inside epoch 2.
    args = ("fit", "--data", str(data), "--model-dir", str(model), "--workers", "2", *ARGS, "--epochs", "4")
    args = (*args, "--batch-size", "16")
    launcher = subprocess.Popen([str(BIN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while checkpoint_state(model)["epochs_done"] < 1 and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.05)
    victim, chief = _worker(psutil.Process(launcher.pid), 1), _worker(psutil.Process(launcher.pid), 0)
    victim.send_signal(signal.SIGKILL)
    started = time.monotonic()
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 1, err
    assert time.monotonic() - started < 60  # the chief noticed, and the launcher stopped everything
    assert "worker 1 of 2 was killed by SIGKILL" in err and "Rerun the same command" in err
    assert out == ""  # no result: nothing was finished
    done = checkpoint_state(model)["epochs_done"]
    assert 1 <= done < 4 and Versions(model).current() is None and len(Versions(model).training()) == 1
    assert not chief.is_running() or chief.status() == psutil.STATUS_ZOMBIE  # no worker left behind

    rerun = streamtrain(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming version" in rerun.stderr and f"after epoch {done} of 4" in rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["epochs"] == 4 and result["workers"] == 2
    assert len(result["rows_per_worker"]) == 4 - done  # this run trained the remaining epochs only
    assert all(sum(rows) == result["train_rows"] for rows in result["rows_per_worker"])
    assert result["weights_digests"][0] == result["weights_digests"][1]


def test_a_worker_whose_peers_never_start_exits_1_instead_of_waiting(data, tmp_path):
    """An unattended run never hangs: TensorFlow waits for the cluster in C++, so a C watchdog ends it."""
    hosts = tuple(f"127.0.0.1:{p}" for p in free_ports(2))
    for index in (1, 0):  # a worker without its chief, and a chief without its worker
        env = {**os.environ, "TF_CONFIG": Cluster(hosts, index).tf_config()}
        cmd = [
            str(BIN),
            "fit",
            "--no-export",
            "--data",
            str(data),
            "--model-dir",
            str(tmp_path / "model"),
            "--join-timeout",
            "3",
        ]
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert f"worker {index}: waiting for the 2 workers of TF_CONFIG to start (at most 3 s" in proc.stderr
        assert "Timeout (0:00:03)!" in proc.stderr
        assert time.monotonic() - started < 60
    assert not Versions(tmp_path / "model").training()  # the chief began no version before its cluster was whole
