"""``dataset.reject_log``: every rejected row listed in ``rejected.jsonl`` as it comes, counted per reason and
input, the rows an unreadable remainder probably held estimated, and the run failed (exit 65) when the bad share
passes ``--max-bad-fraction``."""

from __future__ import annotations

import json
import logging

import pytest

from streamtrain.cli.exit_codes import exit_code
from streamtrain.dataset.reject_log import REJECTS_NAME, RejectLog
from streamtrain.errors import DataError
from streamtrain.io.rejects import REJECT_REASON_TEXT, Reject


@pytest.fixture
def log(tmp_path):
    rejects = RejectLog(tmp_path, n_sources=3)
    yield rejects
    rejects.close()


def listed(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / REJECTS_NAME).read_text(encoding="utf-8").splitlines()]


def test_each_reject_is_listed_with_its_input_and_counted(tmp_path, log):
    rejects = [
        (0, Reject("a.csv", 3, "empty_text", "")),
        (2, Reject("c.jsonl", 7, "invalid_json", "{oops")),
        (0, Reject("a.csv", 9, "empty_text", ",x")),
        (2, Reject("c.jsonl", 8, "unknown_label", '{"label": "zz"}')),
    ]
    for source, reject in rejects:
        log.add(source, reject)
    log.close()
    assert listed(tmp_path) == [{**r.to_json(), "input": s} for s, r in rejects]
    assert log.rows == 4 and log.per_source == [2, 0, 2]
    assert dict(log.by_reason) == {"empty_text": 2, "invalid_json": 1, "unknown_label": 1}
    assert log.summary().to_json() == {
        "rows": 4,
        "by_reason": {"empty_text": 2, "invalid_json": 1, "unknown_label": 1},  # sorted by reason
        "lost_bytes": 0,
        "estimated_lost_rows": 0,
        "file": REJECTS_NAME,
    }


def test_unknown_labels_are_counted_under_their_first_twenty_names(log):
    for i in range(25):
        log.unknown_label(f"label-{i}")
    log.unknown_label("label-3")  # a named label keeps counting
    log.unknown_label("label-24")  # one past the twenty is not named
    log.unknown_label("x" * 200)
    assert len(log.unknown_labels) == 20
    assert log.unknown_labels["label-3"] == 2 and "label-24" not in log.unknown_labels
    assert "x" * 80 not in log.unknown_labels  # it came after twenty others: not named either


def test_a_long_unknown_label_is_named_by_its_first_80_characters(tmp_path):
    log = RejectLog(tmp_path, 1)
    log.unknown_label("y" * 200)
    log.unknown_label("y" * 81)
    log.close()
    assert dict(log.unknown_labels) == {"y" * 80: 2}


def test_the_rows_past_a_break_are_estimated_from_the_bytes_lost(tmp_path, log):
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"x" * 1000)
    log.add(1, Reject(str(broken), 41, "unreadable_remainder", "EOFError", lost_bytes=250))
    log.add(0, Reject(str(tmp_path / "docs" / "a.txt"), None, "unreadable_remainder", "bad", lost_bytes=80))
    log.estimate_lost([500, 60, 0])
    # input 1 read 60 rows from 750 bytes and lost 250 more: about 20 rows; the document (row None) is itself the
    # one row lost, already counted
    assert log.lost_rows == pytest.approx(60 * 250 / 750)
    assert log.lost_bytes == 330
    assert log.summary().estimated_lost_rows == 20
    assert [source for source, _ in log.broken] == [1, 0]


def test_a_bad_share_at_most_the_limit_warns_and_above_it_fails_with_the_first_rejects(tmp_path, log, caplog):
    for row in range(2, 14):
        log.add(0, Reject("in.csv", row, "wrong_column_count", f"line {row}"))
    # 12 rejected of 100 read: 12%
    with caplog.at_level(logging.WARNING, logger="streamtrain"):
        log.check(100, 0.12)
    assert "rejected 12 of 100 rows read (12.00%): wrong_column_count 12; each is listed in rejected.jsonl" in (
        caplog.text
    )
    with pytest.raises(DataError) as caught:
        log.check(100, 0.11)
    message = str(caught.value)
    assert message.startswith("rejected 12 of 100 rows read (12.00%): wrong_column_count 12, more than ")
    assert "--max-bad-fraction 0.11; the first:" in message
    text = REJECT_REASON_TEXT["wrong_column_count"]
    shown = [line.strip() for line in message.splitlines()[1:]]
    assert shown == [f"in.csv, row {r}: wrong_column_count ({text}): 'line {r}'" for r in range(2, 12)]  # ten
    assert exit_code(caught.value) == 65


def test_the_rows_lost_past_a_break_count_as_bad_rows(tmp_path, log):
    broken = tmp_path / "big.csv"
    broken.write_bytes(b"x" * 2000)
    log.add(0, Reject(str(broken), 101, "unreadable_remainder", "error", lost_bytes=1000))
    log.estimate_lost([100])  # 100 rows in the first 1,000 bytes: about 100 more lost
    # bad: 1 reject + 100 lost; of 100 read + 100 lost: 50.5%
    log.check(100, 0.51)
    with pytest.raises(DataError, match=r"\(50\.50%\).*about 100 rows lost in 1000 unreadable bytes"):
        log.check(100, 0.5)


def test_no_rejects_pass_any_limit(log):
    log.check(0, 0.0)
    log.check(100, 0.0)


def test_a_reject_names_a_known_reason():
    with pytest.raises(ValueError, match="unknown reject reason"):
        Reject("a.csv", 1, "no_such_reason", "")
