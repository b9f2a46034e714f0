"""Versioned model directories with real ``streamtrain fit`` processes: the promotion guard, --keep, locks, readers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, prepare_csv, streamtrain

from streamtrain.fs.locks import lock_path
from streamtrain.fs.versions import Versions
from streamtrain.train.promote import promotions


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return prepare_csv(DEMO_TRAIN, tmp_path_factory.mktemp("versions") / "data", DEMO_TEST)


def fit(data: Path, model: Path, *args) -> tuple[subprocess.CompletedProcess, dict]:
    # One model a fit (--tune-seconds 0) and no SavedModel (--no-export): these tests are about versions and
    # promotion, not the selection or serving (test_serving.py promotes and rolls back exported versions).
    proc = streamtrain(
        "fit", "--data", data, "--model-dir", model, "--seed", "0", "--tune-seconds", "0", "--no-export", *args
    )
    return proc, json.loads(proc.stdout) if proc.stdout.strip() else {}


READER = """
import json, sys, time
from pathlib import Path
from streamtrain.train.modeldir import check, resolve
root, stop = Path(sys.argv[1]), Path(sys.argv[2])
seen, reads = set(), 0
while not stop.exists():
    path = resolve(root)  # what evaluate and predict do: current, once
    check(path)  # every file's size and sha256 against checksums.json
    json.loads((path / "metrics.json").read_text())
    seen.add(path.name)
    reads += 1
print(json.dumps({"reads": reads, "versions": sorted(seen)}))
"""


def test_the_guard_keeps_a_worse_version_promotes_better_ones_and_readers_never_fail(data, tmp_path):
    model = tmp_path / "model"
    versions = Versions(model)
    first, metrics = fit(data, model, "--epochs", "2")
    assert first.returncode == 0, first.stderr
    v1 = metrics["version"]
    assert metrics["promoted"] and versions.current() == v1 and "first model" in metrics["promotion"]["reason"]

    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(model), str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        # A deliberately worse candidate: one epoch (0.54 at seed 0: above the majority-class floor, 0.28, below
        # the current 0.80; at a tiny learning rate it would be chance-level, which the floor rejects first).
        worse, metrics = fit(data, model, "--epochs", "1")
        assert worse.returncode == 3, worse.stderr
        v2 = metrics["version"]
        assert not metrics["promoted"] and versions.current() == v1
        decision = json.loads((model / "versions" / v2 / "promotion.json").read_text())
        assert decision["promoted"] is False and decision["reason"].startswith("worse than current")
        assert decision["current_version"] == v1 and decision["rows"] == metrics["val_rows"] > 0
        assert decision["candidate_accuracy"] < decision["current_accuracy"] - 0.005
        assert f"version {v2} kept but NOT promoted" in worse.stderr
        scored = json.loads(streamtrain("evaluate", "--data", data, "--model-dir", model, "--version", v2).stdout)
        assert scored["version"] == v2
        assert scored["val_accuracy"] == pytest.approx(decision["candidate_accuracy"], abs=1e-6)  # it keeps 6 digits

        forced, metrics = fit(data, model, "--epochs", "1", "--learning-rate", "1e-6", "--force")
        assert forced.returncode == 0, forced.stderr
        v3 = metrics["version"]
        assert versions.current() == v3 and metrics["promotion"]["reason"].startswith("forced (--force) despite")
        assert "does not beat the majority-class rate" in metrics["promotion"]["reason"]  # chance-level, forced

        better, metrics = fit(data, model, "--epochs", "2", "--keep", "2")
        assert better.returncode == 0, better.stderr
        v4 = metrics["version"]
        assert metrics["promoted"] and versions.current() == v4
        assert metrics["promotion"]["current_accuracy"] < metrics["promotion"]["candidate_accuracy"]
        assert versions.complete() == [v3, v4]  # --keep 2: v1 and v2 pruned; the replaced current (v3) is kept
        assert not versions.training() and not list(model.rglob("checkpoint"))  # checkpoints left with the training
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0, "a reader of current failed while versions were promoted"
    seen = json.loads(out)
    assert seen["reads"] > 10 and {v1, v3, v4} <= set(seen["versions"]) and v2 not in seen["versions"]
    assert streamtrain("verify", model).returncode == 0


def test_a_second_fit_of_a_model_directory_exits_75_at_once_naming_the_holder(data, tmp_path):
    model = tmp_path / "model"
    holder = subprocess.Popen(
        [str(BIN), "fit", "--data", str(data), "--model-dir", str(model), "--epochs", "200", "--patience", "200"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        record = lock_path(model, "write")
        deadline = time.monotonic() + 60
        while not (record.exists() and record.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        while not Versions(model).training() and time.monotonic() < deadline:  # the holder has begun its version
            time.sleep(0.1)
        assert json.loads(record.read_text())["pid"] == holder.pid
        second = streamtrain("fit", "--data", data, "--model-dir", model, "--epochs", "1")
        assert second.returncode == 75, second.stderr
        assert "training version" not in second.stderr  # at once: it began no version and trained nothing
        assert len(Versions(model).training()) == 1  # the holder's only
        assert f"model directory {model} is locked by PID {holder.pid} on " in second.stderr
        assert "running since" in second.stderr and "--wait" in second.stderr
        waited = streamtrain("fit", "--data", data, "--model-dir", model, "--epochs", "1", "--wait", "1")
        assert waited.returncode == 75 and "after waiting 1 s" in waited.stderr
        assert holder.poll() is None  # the holder was not disturbed
    finally:
        holder.kill()
        holder.wait()
    assert Versions(model).complete() == []


def test_warm_start_needs_a_current_model_with_the_datasets_vectorizer(data, tmp_path):
    model = tmp_path / "model"
    proc, _ = fit(data, model, "--warm-start", "--epochs", "1")
    assert proc.returncode == 2 and "has no current model to start from" in proc.stderr
    assert fit(data, model, "--epochs", "1")[0].returncode == 0
    other = prepare_csv(DEMO_TRAIN, tmp_path / "other", DEMO_TEST, top_k=500)
    proc, _ = fit(other, model, "--warm-start", "--epochs", "1")
    assert proc.returncode == 2 and "was trained with another vectorizer or label map" in proc.stderr
    trained = json.loads((model / "current" / "fit_config.json").read_text())  # what the selection chose
    units = 64 if trained["units"] != 64 else 32
    proc, _ = fit(data, model, "--warm-start", "--epochs", "1", "--model", "mlp", "--units", str(units))
    assert proc.returncode == 2, proc.stderr
    assert f"--units {trained['units']} -> {units}" in proc.stderr or f"model {trained['model']} -> mlp" in proc.stderr
    proc, metrics = fit(data, model, "--warm-start", "--epochs", "1", "--force")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((model / "versions" / metrics["version"] / "fit_config.json").read_text())
    assert config["warm_start_from"] == metrics["promotion"]["current_version"]


def test_a_model_directory_written_by_0_2_is_read_as_it_is_and_adopted_by_the_next_fit(data, tmp_path):
    trained = tmp_path / "trained"
    assert fit(data, trained, "--epochs", "1")[0].returncode == 0
    flat = tmp_path / "flat"  # the 0.2 layout: one model's files directly in the directory
    shutil.copytree(trained / "current", flat)
    (flat / "notes.txt").write_text("a user's notes beside the model\n")  # not streamtrain's: never moved
    before = json.loads(streamtrain("evaluate", "--data", data, "--model-dir", flat).stdout)
    assert before["version"] is None and before["val_accuracy"] > 0.5
    proc, metrics = fit(data, flat, "--epochs", "1", "--force")
    assert proc.returncode == 0, proc.stderr
    versions = Versions(flat)
    adopted = metrics["promotion"]["current_version"]
    assert "adopted the unversioned model written by streamtrain 0.2 as version" in proc.stderr
    assert versions.complete() == sorted([adopted, metrics["version"]]) and versions.current() == metrics["version"]
    assert not (flat / "model.keras").exists()  # the adopted files moved into their version
    assert (flat / "notes.txt").read_text() == "a user's notes beside the model\n"
    assert not (flat / "versions" / adopted / "notes.txt").exists()
    logged = [(p.version, p.previous) for p in promotions(flat)]
    assert logged == [(adopted, None), (metrics["version"], adopted)]  # the adopted version was current too
    old = json.loads(streamtrain("evaluate", "--data", data, "--model-dir", flat, "--version", adopted).stdout)
    assert old["val_accuracy"] == before["val_accuracy"]
    assert streamtrain("verify", flat).returncode == 0


def _rewrite_checksum(version: Path, name: str) -> None:
    """Record ``name``'s present bytes in ``checksums.json``: the file then passes the checksum check."""
    from streamtrain.fs.checksums import sha256_file

    record = json.loads((version / "checksums.json").read_text())
    record[name] = {"bytes": (version / name).stat().st_size, "sha256": sha256_file(version / name)}
    (version / "checksums.json").write_text(json.dumps(record))


def _lambda_model(path: Path) -> None:
    """A Keras file holding a Lambda layer (Python bytecode), which ``safe_mode`` refuses to load."""
    import keras

    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)


def test_a_current_that_cannot_be_loaded_stops_fit_before_training_and_promote_repoints_it(data, tmp_path):
    model = tmp_path / "model"
    versions = Versions(model)
    v1 = fit(data, model, "--epochs", "1")[1]["version"]
    v2 = fit(data, model, "--epochs", "1", "--force")[1]["version"]
    assert versions.current() == v2
    damaged = model / "versions" / v2
    _lambda_model(damaged / "model.keras")  # what safe_mode refuses, with checksums that match
    _rewrite_checksum(damaged, "model.keras")
    refused, _ = fit(data, model, "--epochs", "1")
    assert refused.returncode == 65, refused.stderr
    assert "training version" not in refused.stderr and not versions.training()  # at once: nothing begun
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith(f"streamtrain fit: error: the current model ({v2}) cannot be loaded")
    assert "safe_mode" in error and f"streamtrain promote {model} VERSION" in error and "--force" in error

    with open(damaged / "model.keras", "r+b") as fh:  # truncated: its checksum no longer matches
        fh.truncate(100)
    refused, _ = fit(data, model, "--epochs", "1")
    assert refused.returncode == 65 and "training version" not in refused.stderr and not versions.training()
    assert "model.keras" in refused.stderr.strip().splitlines()[-1]

    back = streamtrain("promote", model, v1)  # the rollback
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["previous"] == v2 and versions.current() == v1
    logged = [json.loads(line) for line in (model / "promotions.jsonl").read_text().splitlines()]
    assert logged[-1]["version"] == v1 and logged[-1]["previous"] == v2 and logged[-1]["by"] == "promote"
    again = streamtrain("promote", model, v2)  # a damaged version is never made current
    assert again.returncode == 65 and "model.keras" in again.stderr and versions.current() == v1
    assert streamtrain("promote", model, "20990101T000000Z-0000").returncode == 65

    versions.promote(v2)  # current damaged again: --force trains and promotes without loading it
    warm, _ = fit(data, model, "--epochs", "1", "--force", "--warm-start")  # but cannot start from its weights
    assert warm.returncode == 65 and "--warm-start" in warm.stderr and not versions.training()
    forced, metrics = fit(data, model, "--epochs", "1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert versions.current() == metrics["version"] and "current model was not loaded" in metrics["promotion"]["reason"]
    assert not versions.training()


KILLED_AT_SWITCH = """
import os, signal, sys
from streamtrain.fs.versions import Versions
Versions.promote = lambda self, version: os.kill(os.getpid(), signal.SIGKILL)  # as issue 23 reproduced it
from streamtrain.cli import entry
sys.exit(entry())
"""


def test_a_kill_between_a_versions_completion_and_the_switch_is_completed_by_the_next_run(data, tmp_path):
    model = tmp_path / "model"
    versions = Versions(model)
    v1 = fit(data, model, "--epochs", "1")[1]["version"]
    command = ["fit", "--data", str(data), "--model-dir", str(model), "--epochs", "1", "--no-export"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_SWITCH, *command],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr
    (v2,) = set(versions.complete()) - {v1}
    assert json.loads((model / "versions" / v2 / "promotion.json").read_text())["promoted"]
    assert versions.current() == v1  # killed before the switch
    # Nothing outside checksums.json in the complete version (checkpoint/ and resume.json went before the rename).
    recorded = set(json.loads((model / "versions" / v2 / "checksums.json").read_text()))
    on_disk = {p.relative_to(model / "versions" / v2).as_posix() for p in (model / "versions" / v2).rglob("*")}
    assert {p for p in on_disk if not any(r == p or r.startswith(p + "/") for r in recorded)} == {"checksums.json"}
    assert streamtrain("verify", model).returncode == 0
    shown = streamtrain("inspect", model)  # says the promotion is pending, and who completes it
    assert f"interrupted promotion step: version {v2} was being finished and made current" in shown.stdout

    rerun, metrics = fit(data, model, "--epochs", "1", "--force")
    assert rerun.returncode == 0, rerun.stderr
    assert f"completed the interrupted promotion step of version {v2}" in rerun.stderr
    assert metrics["promotion"]["current_version"] == v2  # the next night compared against the repaired current
    logged = [json.loads(line)["version"] for line in (model / "promotions.jsonl").read_text().splitlines()]
    assert logged == [v1, v2, metrics["version"]]
    assert not (model / ".promoting.json").exists() and not list(model.rglob("checkpoint"))


def _built(versions: Versions, version: str) -> Path:
    """A version being built as fit leaves it before ``complete``: its files, checksums.json, and the
    checkpoint and resume key that checksums.json does not list (no model: nothing here loads one)."""
    from streamtrain.fs.checksums import sha256_file

    building = versions.begin(version)
    for name in ("model.keras", "vectorizer.json", "vectorizer.npz", "promotion.json", "tensorboard/events"):
        (building / name).parent.mkdir(exist_ok=True)
        (building / name).write_text(name)
    (building / "checkpoint").mkdir()
    (building / "checkpoint" / "weights.npz").write_bytes(b"x" * 1000)
    (building / "resume.json").write_text("{}")
    record = {
        n: {"bytes": (building / n).stat().st_size, "sha256": sha256_file(building / n)}
        for n in ("model.keras", "vectorizer.json", "vectorizer.npz", "promotion.json", "tensorboard/events")
    }
    (building / "checksums.json").write_text(json.dumps(record))
    return building


class _Killed(Exception):
    pass


@pytest.mark.parametrize("point", ["after-journal", "after-finish", "after-switch"])
def test_every_prefix_of_the_promotion_step_is_completed_by_recover(point, tmp_path, monkeypatch):
    from streamtrain import faults
    from streamtrain.train.promote import JOURNAL_NAME, complete, promotions, recover

    versions = Versions(tmp_path / "model")
    old, new = "20261201T000000Z-0001", "20261202T000000Z-0002"
    complete(versions, _built(versions, old), True, "first model")

    def kill(name: str) -> None:
        if name == point:
            raise _Killed(name)

    monkeypatch.setattr(faults, "point", kill)
    with pytest.raises(_Killed):
        complete(versions, _built(versions, new), True, "better")
    assert (versions.root / JOURNAL_NAME).exists()
    assert recover(versions) == new
    assert recover(versions) is None  # done once
    assert versions.current() == new and versions.complete() == [old, new] and not versions.training()
    assert [(p.version, p.previous) for p in promotions(versions.root)] == [(old, None), (new, old)]
    assert sorted(p.name for p in (versions.dir / new).iterdir()) == [
        "checksums.json",
        "model.keras",
        "promotion.json",
        "tensorboard",
        "vectorizer.json",
        "vectorizer.npz",
    ]


def test_promote_completes_a_pending_step_first_and_refuses_what_is_not_a_version(tmp_path):
    from streamtrain.train.promote import JOURNAL_NAME, complete, promotions

    versions = Versions(tmp_path / "model")
    old, new = "20261201T000000Z-0001", "20261202T000000Z-0002"
    complete(versions, _built(versions, old), True, "first model")
    building = _built(versions, new)
    (versions.root / JOURNAL_NAME).write_text(json.dumps({"version": new, "promote": True, "by": "fit", "reason": "r"}))
    proc = streamtrain("promote", versions.root, old)  # the killed fit's step first, then the rollback
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["current"], result["previous"], result["recovered"]) == (old, new, new)
    assert not building.exists() and not (versions.root / JOURNAL_NAME).exists()
    assert [p.version for p in promotions(versions.root)] == [old, new, old]
    assert not list(versions.root.rglob("checkpoint")) and not list(versions.root.rglob("resume.json"))
    assert streamtrain("promote", tmp_path, old).returncode == 2  # not a model directory
    (tmp_path / "model" / "versions" / new / "model.keras").write_text("changed")
    damaged = streamtrain("promote", versions.root, new)
    assert damaged.returncode == 65 and "model.keras" in damaged.stderr and versions.current() == old


def test_fit_refuses_a_directory_with_a_users_own_model_keras_and_leaves_it_untouched(data, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.keras").write_bytes(b"PK\x03\x04 a model the user trained elsewhere")
    (mine / "notes.txt").write_text("how I trained it\n")
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    for command in (["fit", "--data", data], ["train", DEMO_TEST, "--data", tmp_path / "data"]):
        proc = streamtrain(*command, "--model-dir", mine, "--epochs", "1", "--quiet")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "not a model directory streamtrain wrote" in lines[0]
        assert str(mine) in lines[0] and proc.stdout == "", proc.stderr
        assert {p.name: p.read_bytes() for p in mine.iterdir()} == before  # nothing adopted, moved or added
    proc = streamtrain("evaluate", "--data", data, "--model-dir", mine)
    assert proc.returncode == 65 and "not a model directory" in proc.stderr
