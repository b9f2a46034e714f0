"""The model selection end to end: recorded in the version, shown by report.md and inspect, reused by the next
night's fit of the same vectorizer, searched again with ``--retune``."""

from __future__ import annotations

import csv
import json
import os
import subprocess

from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, streamtrain, write_csv

from streamtrain import faults
from streamtrain.dataset.prepare import PrepareOptions
from streamtrain.fs.versions import Versions
from streamtrain.prepare import prepare
from streamtrain.train import tune
from streamtrain.train.fit import FitOptions, fit


def _selection(model_dir) -> dict:
    return json.loads((model_dir / "current" / tune.SELECTION_NAME).read_text(encoding="utf-8"))


def test_the_selection_is_recorded_reused_on_append_and_redone_with_retune(tmp_path):
    with open(DEMO_TRAIN, newline="", encoding="utf-8") as fh:
        _, *rows = list(csv.reader(fh))
    night1 = write_csv(tmp_path / "night1.csv", rows[:3000])
    night2 = write_csv(tmp_path / "night2.csv", rows[3000:])
    data, models = tmp_path / "data", tmp_path / "models"
    prepare(PrepareOptions(inputs=[str(night1)], test=[str(DEMO_TEST)], data=str(data), vectorizer="ngram"))

    first = fit(FitOptions(export=False, data=str(data), model_dir=str(models), tune_seconds=600))
    searched = _selection(models)
    names = [t["candidate"]["name"] for t in searched["trials"]]
    assert names == ["mlp 2 x 32", "linear", "mlp 2 x 128"]  # the demo's 5 classes: the prior's order
    assert searched["reused_from"] is None and not any(t["skipped"] for t in searched["trials"])
    losses = [t["val_loss"] for t in searched["trials"]]
    assert searched["winner"] == losses.index(min(losses))
    assert first["candidate"] == searched["chosen"]["name"] == names[searched["winner"]]
    assert abs(first["val_loss"] - min(losses)) < 1e-9  # the winner's weights are the version's model
    config = json.loads((models / "current" / "fit_config.json").read_text(encoding="utf-8"))
    assert config["candidate"] == first["candidate"] and config["epochs"] >= tune.MIN_EPOCHS
    report = (models / "current" / "report.md").read_text(encoding="utf-8")
    assert "## Model selection" in report and all(name in report for name in names)
    assert not (models / "current" / "checkpoint").exists()  # the trials' checkpoints went with the version's
    shown = streamtrain("inspect", models)
    assert f"{first['candidate']} chosen by validation loss (and accuracy) of: " in shown.stdout, shown.stdout

    # Night 2: the append keeps the vectorizer, so fit reuses the choice and trains it alone.
    appended = streamtrain("prepare", "--append", night2, "--data", data)
    assert appended.returncode == 0, appended.stderr
    second = fit(FitOptions(export=False, data=str(data), model_dir=str(models), tune_seconds=600, force=True))
    reused = _selection(models)
    assert reused["reused_from"] == first["version"] and len(reused["trials"]) == 1
    assert reused["chosen"] == searched["chosen"] and second["candidate"] == first["candidate"]
    assert "the selection of version" in streamtrain("inspect", models).stdout

    # --retune: every candidate again.
    third = fit(
        FitOptions(export=False, data=str(data), model_dir=str(models), tune_seconds=600, retune=True, force=True)
    )
    again = _selection(models)
    assert again["reused_from"] is None and [t["candidate"]["name"] for t in again["trials"]] == names
    assert third["version"] != second["version"]


def test_a_zero_budget_trains_the_priors_first_candidate_alone(tmp_path):
    data = tmp_path / "data"
    prepare(PrepareOptions(inputs=[str(DEMO_TRAIN)], test=[str(DEMO_TEST)], data=str(data), vectorizer="ngram"))
    result = fit(FitOptions(export=False, data=str(data), model_dir=str(tmp_path / "m"), tune_seconds=0))
    selection = _selection(tmp_path / "m")
    assert [t["candidate"]["name"] for t in selection["trials"]] == ["mlp 2 x 32"]
    assert result["candidate"] == "mlp 2 x 32" and selection["trials"][0]["val_accuracy"] == result["val_accuracy"]


def test_a_search_killed_after_a_trial_resumes_without_training_it_again(tmp_path):
    """``kill -9`` once the first trial is recorded: the rerun keeps that trial and ends as an uninterrupted run."""
    data = tmp_path / "data"
    prepare(PrepareOptions(inputs=[str(DEMO_TRAIN)], test=[str(DEMO_TEST)], data=str(data), vectorizer="ngram"))
    args = ("fit", "--data", data, "--tune-seconds", "600")
    whole = streamtrain(*args, "--model-dir", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    model = tmp_path / "model"
    killed = subprocess.run(
        [str(BIN), *map(str, args), "--model-dir", str(model)],
        env={**os.environ, faults.ENV: "kill:after-trial"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr
    (building,) = Versions(model).training()
    recorded = json.loads((building / "checkpoint" / "trials.json").read_text(encoding="utf-8"))
    assert [t["candidate"]["name"] for t in recorded] == ["mlp 2 x 32"]
    rerun = streamtrain(*args, "--model-dir", model)
    assert rerun.returncode == 0, rerun.stderr
    assert "trial 1 of 3: mlp 2 x 32, trained before the interruption" in rerun.stderr
    assert "trial 2 of 3: linear" in rerun.stderr
    ours, theirs = (json.loads((m / "current" / tune.SELECTION_NAME).read_text()) for m in (model, tmp_path / "whole"))
    assert [t["val_accuracy"] for t in ours["trials"]] == [t["val_accuracy"] for t in theirs["trials"]]
    assert ours["chosen"] == theirs["chosen"]
    assert json.loads(rerun.stdout)["test_accuracy"] == json.loads(whole.stdout)["test_accuracy"]
