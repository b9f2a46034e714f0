"""The ``streamtrain`` command: config files and flags, effective options on disk, clean streams, help, aliases."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, streamtrain

from streamtrain.vectorize.split import VAL, assign_splits

CONFIG = """
# shared by every command that has the option; relative paths are relative to this file
seed = 3
data = "run/data"
model_dir = "run/model"

[prepare]
format = "parquet"
val_fraction = 0.2
top_k = 500

[fit]
epochs = 7
batch_size = 64
learning_rate = 0.002

[evaluate]
split = ["val"]

[predict]
input_format = "lines"
text_field = "body"
"""


def ok(*args, **kw) -> subprocess.CompletedProcess:
    proc = streamtrain(*args, **kw)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The demo corpus prepared and trained through ``streamtrain`` with a config file, from another directory."""
    root = tmp_path_factory.mktemp("configured")
    config = root / "etc" / "nightly.toml"
    config.parent.mkdir()
    config.write_text(CONFIG)
    elsewhere = tmp_path_factory.mktemp("cwd")  # relative paths in the config must not depend on the cwd
    prep = ok("prepare", DEMO_TRAIN, "--test", DEMO_TEST, "--config", config, "--top-k", "300", cwd=elsewhere)
    fit = ok("fit", "--no-export", "--config", config, "--epochs", "2", cwd=elsewhere)
    return {
        "root": root,
        "config": config,
        "data": config.parent / "run" / "data",
        "model": config.parent / "run/model",
        "prepare": prep,
        "fit": fit,
    }


def test_prepare_takes_the_config_and_the_flag_wins(run):
    manifest = json.loads((run["data"] / "manifest.json").read_text())
    options = manifest["created"]["options"]
    assert options["top_k"] == 300  # the flag over the config's 500
    assert manifest["n_features"] == 300
    assert (options["format"], options["val_fraction"], options["seed"]) == ("parquet", 0.2, 3)
    assert manifest["shard_format"] == "parquet" and manifest["row_order"]["seed"] == 3
    assert options["data"] == str(run["data"]) and options["inputs"] == [str(DEMO_TRAIN)]
    texts = [r[0] for r in csv.reader(DEMO_TRAIN.open(encoding="utf-8"))][1:]
    rule = manifest["split"]["name"]
    val = int((assign_splits(texts, 0.2, False, rule) == VAL).sum())
    assert manifest["stats"]["rows"]["val"] == val > int((assign_splits(texts, 0.1, False, rule) == VAL).sum())


def test_fit_takes_the_config_and_the_flag_wins(run):
    config = json.loads((run["model"] / "current" / "fit_config.json").read_text())
    assert config["epochs"] == 2  # the flag over the config's 7
    assert (config["batch_size"], config["learning_rate"], config["seed"]) == (64, 0.002, 3)
    assert config["data"] == str(run["data"].resolve())
    metrics = json.loads((run["model"] / "current" / "metrics.json").read_text())
    assert metrics["epochs"] <= 2


def test_prepare_and_fit_print_only_their_result_on_stdout(run):
    summary = json.loads(run["prepare"].stdout)  # the whole of stdout is one JSON document
    assert summary["shards"] >= 3 and summary["features"] == 300 and summary["rows"]["test"] == 1000
    metrics = json.loads(run["fit"].stdout)
    assert metrics["train_rows"] == summary["rows"]["train"] and 0.0 <= metrics["test_accuracy"] <= 1.0
    # A line per validation (4 per epoch), on stderr
    assert re.search(r"\[fit\] epoch 0.25/\d+ \(validation 1/\d+\): .*val_loss \d", run["fit"].stderr)


def test_evaluate_takes_the_config_and_the_flag_wins(run, tmp_path):
    out = tmp_path / "out.json"
    with open(out, "w") as fh:  # `streamtrain evaluate ... > out.json`
        proc = subprocess.run([str(BIN), "evaluate", "--config", str(run["config"])], stdout=fh, stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    from_config = json.loads(out.read_text())
    splits = {k.split("_")[0] for k in from_config if k not in ("classes", "version")}
    assert splits == {"val"}  # split = ["val"] from the file
    flagged = json.loads(ok("evaluate", "--config", run["config"], "--split", "test").stdout)
    assert {k.split("_")[0] for k in flagged if k not in ("classes", "version")} == {"test"}
    assert flagged["test_rows"] == 1000
    effective = json.loads(ok("evaluate", "--config", run["config"], "--split", "test", "--print-config").stdout)
    assert effective == {
        "data": str(run["data"]),
        "model_dir": str(run["model"]),
        "version": None,
        "split": ["test"],
        "score_batch_size": None,
    }


def test_predict_takes_the_config_and_the_flag_wins(run, tmp_path):
    texts = ["my invoice was charged twice this month", "the app crashes when I open settings", "", "{not json"]
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps({"body": t, "id": i}) + "\n" for i, t in enumerate(texts)))
    # input_format = "lines" in the file, --input-format jsonl on the command line; text_field = "body" from the file
    proc = ok("predict", "--config", run["config"], "--input-format", "jsonl", lines)
    out = [json.loads(line) for line in proc.stdout.splitlines()]  # every stdout line is one JSON object
    plain = ok("predict", "--model-dir", run["model"], "--input-format", "lines", stdin="\n".join(texts) + "\n")
    from_lines = [json.loads(line) for line in plain.stdout.splitlines()]
    assert [{k: v for k, v in o.items() if k != "id"} for o in out] == from_lines  # the texts came from "body"
    assert [o["id"] for o in out] == [0, 1, 2, 3]  # JSONL ids are echoed, on error lines too
    assert out[2] == {"id": 2, "line": 3, "error": "empty_text", "message": "empty or whitespace-only text"}
    classes = json.loads((run["model"] / "current" / "metrics.json").read_text())["classes"]
    assert len(out) == len(texts) and all(set(o["probabilities"]) == set(classes) for o in out if "error" not in o)
    effective = json.loads(ok("predict", "--config", run["config"], "--print-config").stdout)
    assert (effective["input_format"], effective["text_field"]) == ("lines", "body")
    effective = json.loads(ok("predict", "--config", run["config"], "--input-format", "jsonl", "--print-config").stdout)
    assert (effective["input_format"], effective["model_dir"]) == ("jsonl", str(run["model"]))


def test_a_clean_predict_prints_nothing_on_stderr(run):
    proc = ok("predict", "--model-dir", run["model"], stdin="the app crashes when I open settings\nrefund please\n")
    assert proc.stderr == ""
    assert [sorted(json.loads(line)) for line in proc.stdout.splitlines()] == [["label", "probabilities"]] * 2


def test_predict_into_a_reader_that_stops_early_exits_141_quietly(run, tmp_path):
    """``streamtrain predict ... | head -1``: the reader closes the pipe after one line; predict stops there with
    the shell's code for SIGPIPE (141) and no traceback, not exit 1 as a bug."""
    texts = tmp_path / "many.txt"
    texts.write_text("my invoice is wrong, please refund me\n" * 100_000)  # far more than a pipe buffers
    proc = subprocess.Popen(
        [str(BIN), "predict", "--model-dir", str(run["model"]), str(texts)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    proc.stdout.close()  # as head -1 does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert "label" in first and "Traceback" not in err and "BrokenPipe" not in err, err


def test_fit_stdout_is_json_when_redirected(run, tmp_path):
    out = tmp_path / "metrics.json"
    with open(out, "w") as fh:  # `streamtrain fit ... > out.json`, default verbosity
        proc = subprocess.run(
            [
                str(BIN),
                "fit",
                "--no-export",
                "--data",
                str(run["data"]),
                "--model-dir",
                str(tmp_path / "m"),
                "--epochs",
                "1",
            ],
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["epochs"] == 1
    assert "cuInit" not in proc.stderr and "oneDNN" not in proc.stderr  # TensorFlow's start-up lines are gone


def test_config_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, expected in [
        ("epoch = 3\n", "epoch: no command has such an option"),
        ("[fit]\nmin_df = 3\n", "[fit] min_df: fit has no such option"),
        ("[training]\nepochs = 3\n", "[training] is not a command"),
        ("[fit]\nepochs = 'many'\n", "epochs = 'many' is not an integer"),
        ("[fit]\nepochs = 0\n", "--epochs must be a positive integer"),
        ("epochs = [\n", "not a readable TOML file"),
    ]:
        bad.write_text(text)
        proc = streamtrain("fit", "--no-export", "--config", bad, "--data", tmp_path, "--model-dir", tmp_path / "m")
        assert proc.returncode == 2, (text, proc.stderr)
        assert proc.stderr.startswith("streamtrain fit: error: ") and expected in proc.stderr, proc.stderr
        assert proc.stdout == ""


def test_help_is_plain_text_with_every_default_and_the_exit_codes():
    top = ok("--help").stdout
    for command in ("prepare", "fit", "evaluate", "predict"):
        assert command in top
    assert "65" in top and "exit codes:" in top
    for command in ("prepare", "fit", "evaluate", "predict"):
        text = ok(command, "--help").stdout
        assert text.startswith(f"usage: streamtrain {command} ")
        assert "``" not in text and "--config FILE.toml" in text and "--quiet" in text and "--verbose" in text
        assert text.rstrip().splitlines()[-1].strip().startswith("143")  # ends with the exit-code table
    fit = " ".join(ok("fit", "--no-export", "--help").stdout.split())  # help lines wrap anywhere
    assert "unset: enough for 6,000 steps" in fit and "(default: 128)" in fit and "(required)" in fit
    predict = " ".join(ok("predict", "--help").stdout.split())
    assert "--input-format {auto,lines,jsonl}" in predict and "(default: auto)" in predict
    via_module = subprocess.run(
        [sys.executable, "-m", "streamtrain", "evaluate", "--help"], capture_output=True, text=True
    )
    assert via_module.returncode == 0 and via_module.stdout.startswith("usage: streamtrain evaluate ")


def test_old_entry_points_and_spellings_still_work(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "streamtrain.prepare", DEMO_TRAIN, "--out", data],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "deprecated" in line]
    assert notices == ["streamtrain prepare: warning: --out is deprecated; use --data"]
    assert json.loads(proc.stdout)["data"] == str(data)
    for module in ("streamtrain.fit", "streamtrain.evaluate", "streamtrain.predict"):
        help_proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
        assert help_proc.returncode == 0 and help_proc.stdout.startswith(f"usage: streamtrain {module.split('.')[1]} ")
    both = streamtrain("prepare", DEMO_TRAIN, "--out", data, "--data", data)
    assert both.returncode == 2 and "not both" in both.stderr


def test_errors_name_the_command(tmp_path):
    proc = streamtrain("fit", "--no-export", "--data", tmp_path, "--model-dir", tmp_path / "m")
    assert proc.returncode == 65 and proc.stderr.startswith("streamtrain fit: error: ")
    proc = streamtrain("fit", "--no-export", "--model-dir", tmp_path / "m")
    assert proc.returncode == 2 and "missing --data" in proc.stderr
    proc = streamtrain("frobnicate")
    assert proc.returncode == 2 and "unknown command 'frobnicate'" in proc.stderr
    proc = streamtrain("prepare", DEMO_TRAIN, "--data", tmp_path / "x", "--nope")
    assert (
        proc.returncode == 2
        and proc.stderr.splitlines()[-1] == "streamtrain prepare: error: unrecognized arguments: --nope"
    )
    assert os.listdir(tmp_path) == []  # nothing written by any of them


def test_predict_answers_every_line_and_never_scores_a_bad_one(run, tmp_path):
    lines = tmp_path / "mixed.txt"
    huge = b"x" * 2000
    lines.write_bytes(
        b"my invoice was charged twice this month\n"
        b"\n"  # empty
        b"   \n"  # whitespace only
        b"caf\xe9 au lait machine broken\n"  # latin-1, not UTF-8
        b'{"a": 1}\n'  # a JSON object without the text field (auto mode)
        b'{"text": "the app crashes when I open settings", "id": "t-7"}\n'
        b"{not json, so plain text\n" + huge + b"\n"  # over --max-field-bytes 1000
        b"refund please\n"
    )
    proc = ok("predict", "--model-dir", run["model"], "--max-field-bytes", "1000", lines)
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 9  # one output line per input line, aligned
    errors = {o["line"]: o["error"] for o in out if "error" in o}
    assert errors == {2: "empty_text", 3: "empty_text", 4: "invalid_utf8", 5: "missing_field", 8: "field_too_large"}
    assert [bool("label" in o) for o in out] == [True, False, False, False, False, True, True, False, True]
    assert out[5]["id"] == "t-7"
    assert "5 of 9 input lines could not be scored" in proc.stderr  # said, not silent


def test_predict_keeps_what_it_wrote_when_the_input_breaks(run, tmp_path):
    import gzip

    body = "".join(f"the app crashes when I open settings number {i}\n" for i in range(3000)).encode()
    packed = gzip.compress(body)
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(packed[: len(packed) // 2])
    proc = streamtrain("predict", "--model-dir", run["model"], broken)
    assert proc.returncode == 65 and "the rest of the input is lost" in proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) > 100 and all("label" in o for o in out[:-1])
    assert out[-1]["error"] == "unreadable_remainder"
