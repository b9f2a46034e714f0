"""``cli.logs``: where a command's lines go (stderr only), at which verbosity, as ``[command] message`` text or one
JSON object a line with the record's fields; the command line's own lines; and ``--log-format`` read early."""

from __future__ import annotations

import datetime
import json
import logging
import sys
from pathlib import Path

import pytest

from streamtrain.cli.logs import FORMATS, JsonFormatter, format_in, json_line, line, setup


@pytest.fixture
def restored():
    """The ``streamtrain`` logger as it was before ``setup`` changed it (other tests rely on its propagation)."""
    logger = logging.getLogger("streamtrain")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


def parse_time(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text)
    assert moment.tzinfo is not None  # local time with its offset
    return moment


def test_a_json_line_has_time_level_command_message_then_the_fields():
    text = json_line("fit", "warning", "naïve → ok", created=0.5, rows=3, path=Path("/d/x"))
    assert "\n" not in text and "naïve → ok" in text  # UTF-8 as it is, not \u escapes
    doc = json.loads(text)
    assert list(doc) == ["time", "level", "command", "message", "rows", "path"]
    assert doc["level"] == "warning" and doc["command"] == "fit" and doc["rows"] == 3
    assert doc["path"] == "/d/x"  # what JSON cannot hold: its str
    moment = parse_time(doc["time"])
    assert moment.timestamp() == 0.5 and doc["time"].split("T")[1][8:12] == ".500"  # milliseconds
    assert json.loads(json_line(None, "info", "x"))["command"] is None


def test_the_json_formatter_writes_a_record_s_extra_fields_and_its_traceback():
    formatter = JsonFormatter("prepare")
    assert formatter.structured is True and "json" in FORMATS
    record = logging.makeLogRecord(
        {"name": "streamtrain.x", "levelname": "INFO", "msg": "pass %s: %d rows", "args": ("1/3", 7), "created": 10.0}
    )
    record.__dict__.update({"pass": "1/3", "bytes": 1024, "_private": "hidden"})
    doc = json.loads(formatter.format(record))
    assert doc["message"] == "pass 1/3: 7 rows" and doc["level"] == "info" and doc["command"] == "prepare"
    assert doc["pass"] == "1/3" and doc["bytes"] == 1024
    assert "_private" not in doc and "args" not in doc and "msg" not in doc  # the record's own attributes stay out
    assert parse_time(doc["time"]).timestamp() == 10.0
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.makeLogRecord({"levelname": "ERROR", "msg": "failed", "exc_info": sys.exc_info()})
    tb = json.loads(formatter.format(failed))["traceback"]
    assert tb.startswith("Traceback") and "ValueError: boom" in tb


@pytest.mark.parametrize(("verbosity", "shown"), [(0, ["w"]), (1, ["i", "w"]), (2, ["d", "i", "w"])])
def test_setup_sends_the_chosen_levels_to_stderr_only(restored, capsys, verbosity, shown):
    setup("fit", verbosity)
    child = logging.getLogger("streamtrain.train.fit")
    child.debug("d")
    child.info("i")
    child.warning("w")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"[fit] {m}" for m in shown]
    assert restored.propagate is False and len(restored.handlers) == 1


def test_setup_in_json_writes_one_object_a_line(restored, capsys):
    setup("evaluate", 1, "json")
    logging.getLogger("streamtrain.x").info("scored %d rows", 12, extra={"rows": 12})
    doc = json.loads(capsys.readouterr().err)
    assert (doc["command"], doc["message"], doc["rows"]) == ("evaluate", "scored 12 rows", 12)
    setup("evaluate", 1, "text")  # a second setup replaces the handler, never adds one
    assert len(restored.handlers) == 1


def test_the_command_line_s_own_lines(capsys):
    line("streamtrain fit", "warning", "--out is deprecated")
    line("streamtrain fit", "error", "interrupted by SIGINT", tag=False)
    line("streamtrain fit", "error", "bad data", "json", exit_code=65)
    line("streamtrain", "error", "no command", "json")
    out, err = capsys.readouterr()
    assert out == ""
    first, second, third, fourth = err.splitlines()
    assert first == "streamtrain fit: warning: --out is deprecated"
    assert second == "streamtrain fit: interrupted by SIGINT"
    doc = json.loads(third)
    assert (doc["command"], doc["level"], doc["message"], doc["exit_code"]) == ("fit", "error", "bad data", 65)
    assert json.loads(fourth)["command"] is None


@pytest.mark.parametrize(
    ("argv", "chosen"),
    [
        ([], "text"),
        (["--log-format", "json"], "json"),
        (["--log-format=json", "x"], "json"),
        (["--log-format", "json", "--log-format", "text"], "text"),  # the last one given
        (["--log-format", "json", "--log-format", "xml"], "json"),  # an unknown one is not a choice
        (["--log-format"], "text"),  # no value
        (["--", "--log-format", "json"], "text"),  # after --: an argument, not a flag
        (["--log-formatjson"], "text"),
    ],
)
def test_the_log_format_is_read_before_parsing(argv, chosen):
    assert format_in(argv) == chosen
