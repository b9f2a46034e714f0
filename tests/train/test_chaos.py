"""The chaos test: the nightly ``train --append --warm-start`` killed with SIGKILL at every phase boundary of its
append and its fit (``streamtrain.faults``, not timing), then what the next night, and a person, find (issue 23)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

from conftest import DEMO_TRAIN
from helpers import BIN, streamtrain

from streamtrain import faults
from streamtrain.fs.versions import Versions
from streamtrain.train.predict import PredictOptions, predict
from streamtrain.train.promote import JOURNAL_NAME, pending, promotions
from streamtrain.verify import VerifyOptions, verify

FIRST_NIGHT = 1000  # rows of the demo corpus: small, so that the 17 runs take about two minutes on 2 cores
ROWS_A_NIGHT = 100


def _night(path: Path, start: int, rows: int) -> Path:
    with open(DEMO_TRAIN, newline="", encoding="utf-8") as fh:
        taken = list(csv.DictReader(fh))[start : start + rows]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=["text", "label"])
        out.writeheader()
        out.writerows(taken)
    return path


def _train(data: Path, model: Path, night: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    args = ["train", "--append", night, "--data", data, "--model-dir", model, "--epochs", "1", "--warm-start"]
    env = {k: v for k, v in os.environ.items() if k != faults.ENV}
    if fault:
        env[faults.ENV] = fault
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=600, env=env)


def _promoted_but_never_current(model: Path) -> list[str]:
    """Versions whose promotion.json says promoted that are not current, never were, and are not being promoted."""
    versions = Versions(model)
    were = {p.version for p in promotions(model)} | {versions.current()}
    intent = pending(model)
    if intent is not None and intent.promote:
        were.add(intent.version)
    said = [v for v in versions.complete() if json.loads((versions.dir / v / "promotion.json").read_text())["promoted"]]
    return [v for v in said if v not in were]


def _outside_checksums(model: Path) -> list[str]:
    """Files of complete versions that their checksums.json does not list."""
    out = []
    for version in Versions(model).complete():
        root = model / "versions" / version
        recorded = set(json.loads((root / "checksums.json").read_text())) | {"checksums.json"}
        files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        out += [f"{version}/{name}" for name in sorted(files - recorded)]
    return out


def _rows(data: Path) -> int:
    """Rows the dataset holds, kept and rejected (the demo corpus has no rejects, so every row read)."""
    stats = json.loads((data / "manifest.json").read_text())["stats"]
    return sum(stats["rows"].values()) + sum(stats.get("rejected", {}).get("by_reason", {}).values())


def _check(data: Path, model: Path, point: str) -> None:
    """verify passes on both directories and current predicts: in this process, the commands' own library calls
    (their CLI paths are tested elsewhere; a TensorFlow start per check would double the test's time)."""
    for directory in (data, model):
        assert verify(VerifyOptions(str(directory)))["problems"] == [], point
    texts = model.parent / "texts.txt"
    texts.write_text("my invoice is wrong\nthe app crashes on start\n")
    predicted = list(predict(PredictOptions(model_dir=str(model), input=str(texts))))
    assert len(predicted) == 2 and all("label" in p for p in predicted), point
    assert _promoted_but_never_current(model) == [], point
    assert _outside_checksums(model) == [], point


def test_a_nightly_train_killed_at_every_phase_boundary_is_completed_by_the_next_run(tmp_path):
    data, model = tmp_path / "data", tmp_path / "model"
    # Night 0 trains to early stopping: one epoch of 1,000 rows stays at the majority-class rate (not promoted).
    first = streamtrain("train", _night(tmp_path / "night0.csv", 0, FIRST_NIGHT), "--data", data, "--model-dir", model)
    assert first.returncode == 0, first.stderr
    for i, point in enumerate(faults.POINTS, 1):
        night = _night(tmp_path / f"night{i}.csv", FIRST_NIGHT + (i - 1) * ROWS_A_NIGHT, ROWS_A_NIGHT)
        killed = _train(data, model, night, f"kill:{point}")
        if point.startswith("append-"):  # train's prepare child is killed; train reports it and fit does not run
            assert killed.returncode == 1 and "prepare was killed by SIGKILL" in killed.stderr, killed.stderr
        else:
            assert killed.returncode == -9, f"{point}: not killed ({killed.returncode}): {killed.stderr}"
        _check(data, model, point)

        rerun = _train(data, model, night)
        assert rerun.returncode in (0, 3), f"{point}: {rerun.stderr}"  # 3: kept, not promoted (the guard)
        _check(data, model, point)
        assert pending(model) is None and not (model / JOURNAL_NAME).exists(), point
        assert _promoted_but_never_current(model) == [], point
        assert not Versions(model).training() and not list(model.rglob("checkpoint")), point
        assert not [p.name for p in tmp_path.rglob("*.partial-*")], point
        assert not list(model.rglob("resume.json")), point
        assert _rows(data) == FIRST_NIGHT + i * ROWS_A_NIGHT, point  # every night's rows once, none twice
