"""Resume: a fit killed with SIGKILL, after an epoch or inside one, continues when rerun and ends as if never killed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, checkpoint_state, prepare_csv, streamtrain

from streamtrain.fs.versions import Versions

# Small batches make an epoch long enough to be killed inside; patience 1 lets early stopping decide the count.
# One validation per epoch: a checkpoint (the commit a resume starts from) after every round.
ARGS = ("--epochs", "8", "--patience", "1", "--batch-size", "16", "--learning-rate", "2e-4", "--seed", "3")
ARGS = (*ARGS, "--validations", "1", "--tune-seconds", "0")  # one model: its resume (a search's: test_selection)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return prepare_csv(DEMO_TRAIN, tmp_path_factory.mktemp("resume") / "data", DEMO_TEST)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> dict:
    proc = streamtrain(
        "fit", "--no-export", "--data", data, "--model-dir", tmp_path_factory.mktemp("whole") / "model", *ARGS
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _killable_fit(data: Path, model: Path, *extra: str) -> tuple[subprocess.Popen, float]:
    """``streamtrain fit`` with ``ARGS`` in the background, once it has committed epoch 1; and a deadline."""
    cmd = [str(BIN), "fit", "--no-export", "--data", str(data), "--model-dir", str(model), *ARGS, *extra]
    victim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while checkpoint_state(model)["epochs_done"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    return victim, deadline


@pytest.mark.parametrize("moment", ["after-epoch-1", "mid-epoch-2", "mid-epoch-2-at-a-step"])
def test_a_killed_fit_resumes_and_ends_like_an_uninterrupted_one(data, uninterrupted, tmp_path, moment):
    """Killed after epoch 1, or inside epoch 2: resumed from epoch 1's end, or from its last step checkpoint."""
    assert uninterrupted["epochs"] >= 3  # early stopping, not the first epochs, ends it
    model = tmp_path / "model"
    # Step checkpoints change nothing else: the uninterrupted run had none (default every 300 s). Every 0.05 s,
    # so that one lands early in epoch 2 however short an epoch is (16 units made it ~0.5 s; at 0.3 s the first
    # step commit came after epoch 3 once in a loaded run).
    steps = ("--checkpoint-seconds", "0.05") if moment.endswith("step") else ()
    victim, deadline = _killable_fit(data, model, *steps)
    if moment == "mid-epoch-2":
        per_epoch = uninterrupted["train_seconds"] / uninterrupted["epochs"]
        time.sleep(per_epoch / 4)  # a quarter into epoch 2 (the mean includes epoch 1's tracing)
    while moment.endswith("step") and not checkpoint_state(model).get("step") and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    state = checkpoint_state(model)
    done, step = state["epochs_done"], state.get("step", 0)
    assert done == 1, f"killed after {done} epochs, not during epoch {done + 1}"
    assert Versions(model).current() is None and len(Versions(model).training()) == 1

    rerun = streamtrain("fit", "--no-export", "--data", data, "--model-dir", model, *ARGS)
    assert rerun.returncode == 0, rerun.stderr
    if moment.endswith("step"):
        version = json.loads(rerun.stdout)["version"]
        assert step > 0 and f"resuming version {version} inside epoch 2 of 8, at step {step} of " in rerun.stderr
    else:
        assert "resuming version" in rerun.stderr and f"after epoch {done} of 8" in rerun.stderr
    assert f"; best validation loss {state['best']:.4f} at epoch 1" in rerun.stderr  # epoch 1's, from the checkpoint
    metrics = json.loads(rerun.stdout)
    assert metrics["epochs"] == uninterrupted["epochs"]
    assert metrics["best_epoch"] == uninterrupted["best_epoch"]
    assert abs(metrics["test_accuracy"] - uninterrupted["test_accuracy"]) <= 0.003
    history = json.loads((model / "current" / "history.json").read_text())
    assert len(history["loss"]) == uninterrupted["epochs"]  # the history spans both processes
    assert not Versions(model).training() and not (model / "current" / "checkpoint").exists()


def test_a_rerun_with_other_options_does_not_resume_an_interrupted_version(data, tmp_path):
    model = tmp_path / "model"
    victim, _ = _killable_fit(data, model)
    victim.kill()
    victim.wait()
    interrupted = Versions(model).training()[0].name
    proc = streamtrain("fit", "--no-export", "--data", data, "--model-dir", model, "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    assert f"removing the interrupted version {interrupted}: its options or dataset differ" in proc.stderr
    assert "resuming" not in proc.stderr and not Versions(model).training()
