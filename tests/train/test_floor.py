"""The promotion floor (a model must beat the validation split's majority-class rate) and early stopping that
does not end a run on the initial plateau (issue 23, observation 8)."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from helpers import prepare_csv, streamtrain, write_csv

from streamtrain.dataset.manifest import Manifest
from streamtrain.fs.versions import Versions


def marker_corpus(path: Path, classes: int = 300, per_class: int = 10, seed: int = 0) -> Path:
    """``per_class`` rows of each of ``classes`` classes: 12 filler words drawn from 2,000 shared ones, and the
    class's own marker word (``marker017``) at a random place. Learnable (the marker names the class), but a
    model starts on a long plateau at chance level."""
    rng = random.Random(seed)
    rows = []
    for c in range(classes):
        for _ in range(per_class):
            words = [f"w{rng.randrange(2000):04d}" for _ in range(12)]
            words.insert(rng.randrange(len(words) + 1), f"marker{c:03d}")
            rows.append((" ".join(words), f"c{c:03d}"))
    rng.shuffle(rows)
    return write_csv(path, rows)


def test_300_classes_of_10_rows_learn_past_the_plateau(tmp_path):
    """Observation 8 and issue 25: 0.9 stopped 300 classes x 10 rows after 0.75 epoch at chance level; the
    defaults now train past the plateau (patience in steps, epochs enough for 6,000 steps) to >= 0.9 on held-out
    rows. ``--tune-seconds 0``: the selection's first candidate alone, which is also what the full search keeps
    here (the linear model runs out of its budget far below it); ``--epochs 12`` bounds the test's time: the
    validation accuracy passes 0.99 by epoch 10, while the loss creeps down for 180 epochs under the default cap."""
    train = marker_corpus(tmp_path / "markers.csv")
    test = marker_corpus(tmp_path / "test.csv", per_class=2, seed=1)  # the same markers, other fillers
    model = tmp_path / "model"
    proc = streamtrain(
        "train",
        "--no-export",
        train,
        "--test",
        test,
        "--data",
        tmp_path / "data",
        "--model-dir",
        model,
        "--tune-seconds",
        "0",
        "--epochs",
        "12",
    )
    assert proc.returncode == 0, proc.stderr
    fit = json.loads(proc.stdout)["fit"]
    assert fit["promoted"] and fit["test_accuracy"] >= 0.9 and fit["epochs"] > 1, fit


def test_a_chance_level_first_model_is_not_promoted(tmp_path):
    """A model that has not left the plateau when ``--epochs`` ends (1 epoch at a tiny learning rate) is kept but
    not promoted: the floor applies to the first model too (exit 3)."""
    source = marker_corpus(tmp_path / "markers.csv")
    model = tmp_path / "model"
    args = ("--epochs", "1", "--learning-rate", "1e-5", "--tune-seconds", "0")
    proc = streamtrain("train", "--no-export", source, "--data", tmp_path / "data", "--model-dir", model, *args)
    assert proc.returncode == 3, proc.stderr
    fit = json.loads(proc.stdout)["fit"]
    assert fit["epochs"] == 1 and not fit["promoted"]  # 0.9: 0.75 epoch, promoted
    assert Versions(model).current() is None
    decision = json.loads((model / "versions" / fit["version"] / "promotion.json").read_text())
    floor = decision["floor"]
    assert decision["promoted"] is False and decision["reason"].startswith("not better than chance")
    assert floor["beaten"] is False and floor["candidate_accuracy"] <= floor["majority_class_rate"]
    assert floor["val_rows"] == fit["val_rows"] and floor["majority_class"] in fit["classes"]
    assert "does not beat the majority-class rate" in proc.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def markers(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("floor")
    return prepare_csv(marker_corpus(root / "markers.csv", classes=20), root / "data", val_fraction=0.3)


def test_the_floor_is_the_majority_class_rate_of_the_validation_split_also_without_recorded_counts(markers):
    from streamtrain.train.promotion import majority_floor

    manifest = Manifest.load(markers)
    counts = manifest.stats.rows_per_class["val"]
    floor = majority_floor(str(markers), manifest)
    assert floor is not None and floor.rate == max(counts) / sum(counts) and floor.rows == manifest.rows("val")
    assert floor.label == manifest.labels[counts.index(max(counts))]
    older = dataclasses.replace(manifest, stats=dataclasses.replace(manifest.stats, rows_per_class={}))  # none: read
    assert majority_floor(str(markers), older) == floor


@pytest.mark.parametrize("force", [False, True])
def test_the_floor_applies_to_every_candidate_and_force_overrides_it(markers, force):
    """The floor is checked before the comparison with current: a first model too, and --force promotes."""
    from streamtrain.train.promotion import decide, majority_floor

    manifest = Manifest.load(markers)
    floor = majority_floor(str(markers), manifest)
    assert floor is not None
    at_floor = decide(None, floor.rate, str(markers), manifest, None, floor, 0.005, force)  # no current model
    assert at_floor.promoted is force and at_floor.floor is not None and at_floor.floor["beaten"] is False
    assert at_floor.reason.startswith("forced (--force) despite" if force else "not better than chance")
    above = decide(None, floor.rate + 0.01, str(markers), manifest, None, floor, 0.005, force)
    assert above.promoted and above.floor is not None and above.floor["beaten"] and "first model" in above.reason
