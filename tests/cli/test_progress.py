"""What users look at while prepare runs: lines in cron, a bar at a terminal, JSON lines, nothing at --quiet."""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import pty
import re
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import BIN, prepare_csv, streamtrain

from streamtrain import progress
from streamtrain.cli.logs import JsonFormatter

ROWS = 120_000
PASSES = ["pass 1/3: reading and counting", "pass 2/3: selecting n-grams", "pass 3/3: writing shards"]
PASS = r"^\[prepare\] (pass \d/\d: [a-z -]+): "
ETA = r"ETA (\d+ s|\d+ min \d+ s)$"
RUNNING = re.compile(PASS + r"(\d+) rows, ([\d.]+) of ([\d.]+) MB \((\d+)%\), ([\d.]+) MB/s, " + ETA)
DONE = re.compile(PASS + r"done: (\d+) rows, ([\d.]+) MB in ([\d.]+) s \(([\d.]+) MB/s\)$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(*args, seconds: float = 0.1, **kw) -> subprocess.CompletedProcess:
    """``streamtrain ARGS`` with stderr a pipe (not a terminal), progress lines every ``seconds``."""
    env = {**os.environ, "STREAMTRAIN_PROGRESS_SECONDS": str(seconds)}
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=env, timeout=600, **kw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A CSV of ROWS short rows (a few MB): big enough that the first pass takes a few progress intervals."""
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(2000)])
    labels = rng.integers(0, 3, ROWS)
    picks = rng.integers(0, len(words), (ROWS, 8))
    path = tmp_path_factory.mktemp("progress") / "corpus.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("text,label\n")
        for row, label in zip(words[picks], labels):
            fh.write(f"{' '.join(row)} c{label},c{label}\n")
    return path


def test_cron_gets_periodic_lines_and_one_line_per_pass(corpus, tmp_path):
    proc = run("prepare", corpus, "--data", tmp_path / "data", "--vectorizer", "ngram")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["rows"]["train"] > 0  # stdout: the result only
    lines = proc.stderr.splitlines()
    running = [m for line in lines if (m := RUNNING.match(line))]
    done = [m for line in lines if (m := DONE.match(line))]
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr  # no bar drawn into a log file
    assert [m[1] for m in done] == PASSES, proc.stderr  # one end-of-pass line per pass, in order
    train = json.loads(proc.stdout)["rows"]["train"]
    assert [int(m[2]) for m in done] == [ROWS, train, ROWS]  # selecting n-grams reads the training rows only
    assert float(done[0][3]) == pytest.approx(corpus.stat().st_size / 1e6, abs=0.05)  # all of the input's bytes
    first = [m for m in running if m[1] == PASSES[0]]
    assert len(first) >= 3, proc.stderr  # a several-second pass says where it is, several times
    rows = [int(m[2]) for m in first]
    assert rows == sorted(rows) and rows[-1] <= ROWS
    for m in running:
        assert float(m[3]) <= float(m[4]) and 0 <= int(m[5]) <= 100 and float(m[6]) > 0
        assert m[1] in PASSES and float(m[4]) > 0
    # each pass's progress lines come before its end line, and passes do not interleave
    order = [PASSES.index(m[1]) for line in lines if (m := RUNNING.match(line) or DONE.match(line))]
    assert order == sorted(order)


def test_json_logs_carry_progress_fields(corpus, tmp_path):
    proc = run("prepare", corpus, "--data", tmp_path / "data", "--vectorizer", "ngram", "--log-format", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    json.loads(proc.stdout)
    records = [json.loads(line) for line in proc.stderr.splitlines()]  # every stderr line is a JSON object
    assert records
    for record in records:
        assert {"time", "level", "command", "message"} <= record.keys()
        assert record["command"] == "prepare" and record["level"] == "info"
        assert datetime.datetime.fromisoformat(record["time"]).tzinfo is not None
    passes = [r for r in records if "pass" in r]
    for r in passes:
        assert {"rows", "bytes", "total_bytes", "mb_per_s", "seconds"} <= r.keys()
        assert r["message"].startswith(r["pass"] + ": ")
    done = [r for r in passes if r.get("done")]
    assert [r["pass"] for r in done] == PASSES
    assert done[0]["bytes"] == done[0]["total_bytes"] == corpus.stat().st_size and done[0]["rows"] == ROWS
    running = [r for r in passes if not r.get("done")]
    assert len(running) >= 3
    assert all(
        isinstance(r["eta_s"], float) and r["eta_s"] >= 0 and 0 < r["bytes"] <= r["total_bytes"] for r in running
    )
    assert any(r["message"].startswith("read 120000 train rows") for r in records)  # ordinary lines too


def test_json_errors_are_one_json_line(tmp_path):
    proc = run("prepare", tmp_path / "missing.csv", "--data", tmp_path / "d", "--log-format", "json")
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "error" and record["command"] == "prepare" and record["exit_code"] == 2
    assert record["message"] == f"input not found: {tmp_path / 'missing.csv'}"
    proc = run("prepare", DEMO_TRAIN, "--data", tmp_path / "d", "--log-format=json", "--nope")  # argparse's own
    [line] = proc.stderr.splitlines()
    assert proc.returncode == 2 and json.loads(line)["message"] == "unrecognized arguments: --nope"
    proc = run("prepare", DEMO_TRAIN, "--data", tmp_path / "d", "--log-format", "yaml")
    assert proc.returncode == 2 and "invalid choice: 'yaml'" in proc.stderr


def test_quiet_prints_no_progress(tmp_path):
    proc = run("prepare", DEMO_TRAIN, "--test", DEMO_TEST, "--data", tmp_path / "data", "--quiet", seconds=0)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    json.loads(proc.stdout)


def test_append_reports_its_two_passes(tmp_path):
    data = prepare_csv(DEMO_TRAIN, tmp_path / "data")
    night = shutil.copy(DEMO_TEST, tmp_path / "night1.csv")
    proc = run("prepare", "--append", night, "--data", data, seconds=0)
    assert proc.returncode == 0, proc.stderr
    done = [m[1] for line in proc.stderr.splitlines() if (m := DONE.match(line))]
    assert done == ["pass 1/2: reading and checking", "pass 2/2: vectorizing and writing shards"]
    assert any(RUNNING.match(line) for line in proc.stderr.splitlines())  # interval 0: a line per chunk


def test_a_terminal_gets_a_bar_and_stdout_stays_json(tmp_path):
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "150", "STREAMTRAIN_PROGRESS_SECONDS": "0"}
    env.pop("NO_COLOR", None)
    cmd = [str(BIN), "prepare", DEMO_TRAIN, "--test", DEMO_TEST, "--data", tmp_path / "data"]
    child = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    drawn = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            drawn.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = child.communicate(timeout=600)
    reader.join(timeout=60)
    os.close(master)
    assert child.returncode == 0, drawn.decode(errors="replace")[-3000:]
    assert json.loads(out)["rows"]["test"] == 1000  # stdout: pure JSON, no bar
    screen = ANSI.sub("", drawn.decode("utf-8", errors="replace"))
    assert "pass 1/3: reading and counting" in screen
    assert re.search(r"reading and counting .*\d+% \d+ rows [\d.]+/[\d.]+ [kMG]?B", screen), screen[:2000]
    assert "━" in screen  # the bar itself
    assert "[prepare] pass 1/3: reading and counting: done: " in screen  # the end-of-pass line stays
    assert not any(RUNNING.match(line.strip()) for line in screen.splitlines())  # a bar, not periodic lines


# --------------------------------------------------------------------------- how progress is shown, in-process


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _logger() -> logging.Logger:
    """A logger of its own, made inside the test (pytest attaches its capture to non-propagating loggers that
    exist when a test phase starts)."""
    log = logging.getLogger(f"streamtrain.test_progress.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def _handler(stream, formatter: logging.Formatter | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter or logging.Formatter("%(message)s"))
    return handler


def test_display_follows_the_logging_configuration():
    logger = _logger()
    assert progress.display(logger) == progress.OFF  # no handler shows INFO
    logger.addHandler(_handler(io.StringIO()))
    assert progress.display(logger) == progress.LINES  # a file or a pipe
    logger.handlers[:] = [_handler(_Tty())]
    assert progress.display(logger) == progress.BAR
    logger.handlers[:] = [_handler(_Tty(), JsonFormatter("prepare"))]
    assert progress.display(logger) == progress.LINES  # JSON lines, even at a terminal
    logger.setLevel(logging.WARNING)
    assert progress.display(logger) == progress.OFF  # --quiet


def test_lines_and_their_fields(monkeypatch):
    logger = _logger()
    stream = io.StringIO()
    records: list[logging.LogRecord] = []
    logger.addHandler(_handler(stream))
    logger.addFilter(lambda r: records.append(r) or True)
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    with progress.Progress("pass 1/1: testing", 4_000_000, logger) as p:
        p.advance(10, 1_000_000)
        p.advance(10, 1_000_000)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("pass 1/1: testing: 10 rows, 1.0 of 4.0 MB (25%), ")
    assert lines[1].startswith("pass 1/1: testing: 20 rows, 2.0 of 4.0 MB (50%), ") and "ETA" in lines[1]
    assert lines[2].startswith("pass 1/1: testing: done: 20 rows, 2.0 MB in ")
    assert vars(records[0])["pass"] == "pass 1/1: testing" and vars(records[0])["total_bytes"] == 4_000_000
    assert vars(records[-1])["done"] is True and vars(records[-1])["rows"] == 20


def test_a_failed_pass_has_no_end_line_and_close_all_ends_open_passes():
    logger = _logger()
    stream = io.StringIO()
    logger.addHandler(_handler(stream))
    with pytest.raises(RuntimeError), progress.Progress("pass 1/1: failing", None, logger):
        raise RuntimeError("boom")
    opened = progress.Progress("pass 1/1: left open", None, logger).__enter__()
    progress.close_all()
    assert opened.mode == progress.OFF and stream.getvalue() == ""


def test_a_bar_prints_log_lines_above_it_and_leaves_only_the_end_line():
    logger = _logger()
    stream = _Tty()
    logger.addHandler(_handler(stream))
    with progress.Progress("pass 1/1: drawing", 100, logger) as p:
        assert p.mode == progress.BAR
        logger.warning("a warning during the pass")
        p.advance(5, 50)
    handler = logger.handlers[0]
    assert isinstance(handler, logging.StreamHandler) and handler.stream is stream  # given back
    text = ANSI.sub("", stream.getvalue())
    assert "a warning during the pass" in text and "drawing" in text.split("a warning during the pass")[1]
    assert text.splitlines()[-1].startswith("pass 1/1: drawing: done: 5 rows, 0.0 MB in ")


def test_fit_logs_one_json_line_per_epoch(tmp_path):
    """fit's epoch lines are log records too: with --log-format json every stderr line parses."""
    data = prepare_csv(DEMO_TRAIN, tmp_path / "data", DEMO_TEST)
    proc = streamtrain(
        "fit",
        "--no-export",
        "--data",
        data,
        "--model-dir",
        tmp_path / "m",
        "--epochs",
        "2",
        "--tune-seconds",
        "0",
        "--log-format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]
    epochs = [r for r in lines if "epoch" in r]
    assert [r["validation"] for r in epochs] == list(range(1, 9)) and all(r["command"] == "fit" for r in lines)
    assert [r["epoch"] for r in epochs] == [v / 4 for v in range(1, 9)]  # 4 validations per epoch
    assert all({"loss", "val_loss", "accuracy", "val_accuracy", "seconds"} <= r.keys() for r in epochs)
