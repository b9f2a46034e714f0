"""``streamtrain train``: prepare (a child process) then fit, like the two commands; options, config, failures."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, streamtrain

from streamtrain.cli import _all_options
from streamtrain.cli.arguments import parse, to_argv
from streamtrain.cli.train import Announcer, _heard, split, train_options
from streamtrain.dataset.manifest import Manifest, ModelInputs
from streamtrain.dataset.prepare import PrepareOptions, prepare
from streamtrain.errors import UsageError
from streamtrain.train.fit import FitOptions


def _parse(cls: type, argv: list[str], command: str = "x", borrow: tuple[str, ...] = ()):
    return parse(command, command, "", cls, argv, _all_options, borrow)[0]


def test_to_argv_gives_back_the_options():
    """What train hands its child prepare: flags that parse to the same options, defaults left out."""
    prepare = PrepareOptions(
        inputs=["a.csv", "b dir"],
        data="out dir",
        test=["t1.csv", "t2.csv"],
        text_column=["title", 2],
        label_column=0,
        header=False,
        top_k=5000,
        val_fraction=0.25,
        append=True,
        jobs=3,
    )
    argv = to_argv(prepare)
    assert _parse(PrepareOptions, argv) == prepare
    assert "--max-length" not in argv and "--overwrite" not in argv  # defaults are not repeated
    fit = FitOptions(data="d", model_dir="m", learning_rate=0.002, dropout=0.1, warm_start=True, validation_rows=0)
    assert _parse(FitOptions, to_argv(fit)) == fit
    assert to_argv(FitOptions(data="d", model_dir="m")) == ["--data", "d", "--model-dir", "m"]


def test_train_options_are_prepares_and_fits(tmp_path):
    cls = train_options()
    opts = _parse(cls, ["in.csv", "--data", "D", "--model-dir", "M", "--seed", "4", "--top-k", "9", "--units", "8"])
    prepare, fit = split(opts)
    assert (prepare.inputs, prepare.data, prepare.seed, prepare.top_k) == (["in.csv"], "D", 4, 9)
    assert (fit.data, fit.model_dir, fit.seed, fit.units, fit.overwrite) == ("D", "M", 4, 8, False)


def test_a_config_files_prepare_and_fit_tables_apply_to_train(tmp_path):
    config = tmp_path / "night.toml"
    config.write_text("seed = 2\n[prepare]\ntop_k = 7000\nwait = 5\n[fit]\nunits = 8\nwait = 5\n[train]\nepochs = 3\n")
    argv = ["in.csv", "--data", "D", "--model-dir", "M", "--config", str(config)]
    prepare, fit = split(_parse(train_options(), argv, "train", ("prepare", "fit")))
    assert (prepare.seed, prepare.top_k, prepare.wait) == (2, 7000, 5.0)
    assert (fit.seed, fit.units, fit.epochs, fit.wait) == (2, 8, 3, 5.0)
    config.write_text("[prepare]\nseed = 1\n[fit]\nseed = 2\n")
    with pytest.raises(UsageError, match=r"\[prepare\] and \[fit\] set seed differently.*set it in \[train\]"):
        _parse(train_options(), argv, "train", ("prepare", "fit"))
    config.write_text("[prepare]\nseed = 1\n[fit]\nseed = 2\n[train]\nseed = 3\n")  # train's own table settles it
    prepare, fit = split(_parse(train_options(), argv, "train", ("prepare", "fit")))
    assert prepare.seed == fit.seed == 3


def test_train_is_prepare_then_fit(tmp_path):
    """The same dataset, byte for byte, as ``streamtrain prepare`` with those options, then a promoted version."""
    options = ["--test", DEMO_TEST, "--top-k", "3000", "--seed", "3", "--block-rows", "256"]
    data, model = tmp_path / "data", tmp_path / "model"
    proc = streamtrain(
        "train", "--no-export", DEMO_TRAIN, *options, "--data", data, "--model-dir", model, "--units", "8", "-q"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["prepare"]["rows"] == {s: Manifest.load(data).rows(s) for s in ("train", "val", "test")}
    assert doc["fit"]["promoted"] and doc["fit"]["test_rows"] == 1000 and doc["fit"]["test_accuracy"] > 0.8
    alone = tmp_path / "alone"
    assert streamtrain("prepare", DEMO_TRAIN, *options, "--data", alone, "-q").returncode == 0
    assert [s.sha256 for s in Manifest.load(data).shards] == [s.sha256 for s in Manifest.load(alone).shards]
    config = json.loads((model / "current" / "fit_config.json").read_text())
    assert (config["units"], config["seed"], config["data"]) == (8, 3, str(data.resolve()))
    assert proc.stderr == ""  # -q reached the child prepare too
    again = ["--data", data, "--overwrite", "--model-dir", model, "--units", "8", "-v"]
    verbose = streamtrain("train", "--no-export", DEMO_TRAIN, *options, *again)
    assert verbose.returncode == 0, verbose.stderr
    assert "[fit] training the model built while the dataset was prepared" in verbose.stderr


@pytest.mark.parametrize("vectorizer", ["ngram", "sequence"])
def test_prepare_announces_the_model_inputs_once_before_writing_shards(tmp_path, vectorizer):
    """What train builds its model from while prepare writes: the manifest's ModelInputs, over a real pipe."""
    data = tmp_path / "data"
    heard, told = os.pipe()
    announcer = Announcer(told)
    seen: list[tuple[ModelInputs, list[str]]] = []

    def announce(inputs: ModelInputs) -> None:
        staged = [p.name for p in tmp_path.rglob("*") if p.suffix in (".h5", ".parquet")]
        seen.append((inputs, staged))
        announcer(inputs)

    opts = PrepareOptions(inputs=[str(DEMO_TRAIN)], test=[str(DEMO_TEST)], data=str(data), vectorizer=vectorizer)
    prepare(opts, announce=announce)
    announcer.close()
    assert len(seen) == 1 and seen[0][1] == []  # once, before any shard
    assert seen[0][0] == _heard(heard) == Manifest.load(data).model_inputs
    assert _heard(heard) is None  # then the end of the pipe
    os.close(heard)
    # An append announces the frozen vectorizer's, before it reads anything.
    seen.clear()
    prepare(dataclasses.replace(opts, inputs=[str(DEMO_TEST)], test=[], append=True), announce=announce)
    assert [inputs for inputs, _ in seen] == [Manifest.load(data).model_inputs]


def test_train_hears_each_announcement_in_turn_then_the_end_of_the_pipe():
    """prepare announces twice when the bake-off chose sequences after n-grams ran ahead: both lines may be in
    the pipe at once, and train builds a model for each in turn."""
    heard, told = os.pipe()
    announcer = Announcer(told)
    first, second = ModelInputs("ngram", 200, 200, 2), ModelInputs("sequence", 20000, 63, 2)
    announcer(first)
    announcer(second)
    announcer.close()
    try:
        assert (_heard(heard), _heard(heard), _heard(heard)) == (first, second, None)
    finally:
        os.close(heard)


def test_a_failed_prepare_ends_train_with_its_exit_code(tmp_path):
    data, model = tmp_path / "data", tmp_path / "model"
    missing = tmp_path / "nothing.csv"
    alone = streamtrain("prepare", missing, "--data", data)
    proc = streamtrain("train", "--no-export", missing, "--data", data, "--model-dir", model)
    assert proc.returncode == alone.returncode != 0
    assert f"streamtrain prepare: error: {alone.stderr.split('error: ', 1)[1]}" in proc.stderr  # prepare's own line
    assert f"streamtrain train: error: prepare failed (exit {alone.returncode}); fit was not run" in proc.stderr
    assert not data.exists() and not model.exists() and proc.stdout == ""
    workers = streamtrain("train", "--no-export", DEMO_TRAIN, "--data", data, "--model-dir", model, "--workers", "2")
    assert workers.returncode == 2 and "run prepare once, then fit on each" in workers.stderr
    assert not data.exists()


def test_kill_9_of_train_stops_its_prepare(tmp_path):
    """The child prepare gets SIGTERM when train dies, however it dies: it removes its staging directory and exits."""
    big = tmp_path / "big.csv"
    header, *rows = DEMO_TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)
    big.write_text(header + "".join(rows) * 12, encoding="utf-8")  # 48k rows: prepare runs for seconds
    data = tmp_path / "data"
    train = subprocess.Popen(
        [str(BIN), "train", "--no-export", str(big), "--data", str(data), "--model-dir", str(tmp_path / "model"), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _staging(data) and time.monotonic() < deadline:  # the child prepare is at work
            time.sleep(0.02)
        children = _children(train.pid)
        assert _staging(data) and len(children) == 1, "no prepare at work"
        train.send_signal(signal.SIGKILL)
        train.wait()
        deadline = time.monotonic() + 30
        while _alive(children[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(children[0]), "prepare outlived train"
        assert not data.exists() and not _staging(data)  # caught SIGTERM: nothing half-written is left
    finally:
        for pid in _children(train.pid) if train.poll() is None else []:
            os.kill(pid, signal.SIGKILL)
        train.kill()


def _staging(target: Path) -> list[Path]:
    return [p for p in target.parent.iterdir() if p.name.startswith(f"{target.name}.partial-")]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
        return [int(c) for c in fh.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"  # a zombie has exited (init reaps it soon)
    except FileNotFoundError:
        return False


def test_a_nightly_train_killed_in_fit_resumes_on_the_rerun(tmp_path):
    """``train --append`` killed by ``kill -9`` once fit has a checkpoint: the rerun skips the input, prepare
    leaves the dataset as it is, and fit resumes the same version."""
    data, model = tmp_path / "data", tmp_path / "model"
    assert streamtrain("prepare", DEMO_TRAIN, "--test", DEMO_TEST, "--data", data, "-q").returncode == 0
    header, *rows = DEMO_TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)
    night = tmp_path / "night.csv"
    night.write_text(header + "".join(r.replace("Hi there", "Hello there") for r in rows[-400:]), encoding="utf-8")
    argv = [
        str(BIN),
        "train",
        "--no-export",
        "--append",
        str(night),
        "--data",
        str(data),
        "--model-dir",
        str(model),
        "-q",
    ]
    first = subprocess.Popen([*argv, "--checkpoint-seconds", "0.05"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(model.glob("versions/*.training/checkpoint/**/state.json")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, "fit ended before its first checkpoint"
        (building,) = model.glob("versions/*.training")
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    rows_after_night = Manifest.load(data).rows("train")
    rerun = subprocess.run(argv[:-1], capture_output=True, text=True, timeout=600)  # without -q: its info lines
    assert rerun.returncode == 0, rerun.stderr
    assert (
        "already ingested" in rerun.stderr and f"resuming version {building.name[: -len('.training')]}" in rerun.stderr
    )
    assert Manifest.load(data).rows("train") == rows_after_night  # the night's rows were added once
    assert json.loads(rerun.stdout)["fit"]["version"] == building.name[: -len(".training")]


HOLD = """
import sys
from streamtrain.fs.locks import writer_lock
with writer_lock(sys.argv[1], "model directory"):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it
"""


def test_train_exit_75_says_the_dataset_was_appended_to_when_fit_finds_the_model_directory_busy(tmp_path):
    """0.9 said "nothing was changed" after its prepare had appended; the message now says what did change."""
    data, model = tmp_path / "data", tmp_path / "model"
    prepare(PrepareOptions(inputs=[str(DEMO_TRAIN)], data=str(data)))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(model)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        proc = streamtrain("train", "--no-export", DEMO_TEST, "--append", "--data", data, "--model-dir", model)
    finally:
        holder.communicate("")
    assert proc.returncode == 75, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"the dataset {data} was appended to; fit did not run: model directory {model} is locked by" in last
    assert "nothing was changed" not in proc.stderr
    assert len(Manifest.load(data).appends) == 1  # it was
