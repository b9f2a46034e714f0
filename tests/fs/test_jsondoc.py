"""``fs.jsondoc``: strict JSON. A non-finite number is written as null (a strict parser reads every document
back), and a document object says why under ``null_because``; confusion-matrix rows on one line; atomic writes."""

from __future__ import annotations

import json
import math

import pytest

from streamtrain.fs.jsondoc import dumps, finite, write_json


def strict(text: str):
    """``text`` parsed by a parser that refuses NaN and Infinity, as most outside Python do."""

    def refuse(token: str):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_finite_document_is_plain_json():
    doc = {"name": "run", "metrics": {"loss": 0.25, "epochs": 3, "ok": True, "none": None}, "rows": [1, 2]}
    assert dumps(doc) == json.dumps(doc, indent=2)
    assert dumps(doc, indent=None) == json.dumps(doc)
    assert "null_because" not in dumps(doc)


def test_non_finite_numbers_become_null_and_the_document_says_where_and_why():
    doc = {"test_loss": math.nan, "history": {"loss": [0.5, math.inf, 0.4]}, "best": -math.inf, "ok": 1.0}
    text = dumps(doc)
    back = strict(text)  # would raise on NaN or Infinity
    assert back == {
        "test_loss": None,
        "history": {"loss": [0.5, None, 0.4]},
        "best": None,
        "ok": 1.0,
        "null_because": {
            "test_loss": "nan is not a JSON number",
            "history.loss[1]": "inf is not a JSON number",
            "best": "-inf is not a JSON number",
        },
    }
    assert doc["test_loss"] is not None and math.isnan(doc["test_loss"])  # the caller's document is unchanged


def test_a_document_that_is_not_an_object_gets_nulls_without_reasons():
    assert strict(dumps([1.0, math.nan, (math.inf, 2)])) == [1.0, None, [None, 2]]
    assert dumps(math.nan) == "null"


def test_finite_collects_each_replaced_value_s_path():
    nulls: dict[str, str] = {}
    clean = finite({"a": [{"b": math.nan}], "c": (1, math.inf)}, nulls=nulls)
    assert clean == {"a": [{"b": None}], "c": [1, None]}  # tuples become lists
    assert nulls == {"a[0].b": "nan is not a JSON number", "c[1]": "inf is not a JSON number"}
    top: dict[str, str] = {}
    assert finite(math.nan, nulls=top) is None and top == {".": "nan is not a JSON number"}
    assert finite(3) == 3 and finite("nan") == "nan"  # only floats are numbers that can be non-finite


def test_compact_rows_put_each_innermost_list_of_numbers_on_one_line():
    doc = {"labels": ["a", "b", "c"], "confusion": [[10, 0, 2], [1, 7, 0], [0, -1, 3.5e-05]], "loss": 0.1}
    text = dumps(doc, compact_rows=True)
    assert strict(text) == doc
    lines = text.splitlines()
    assert "[10, 0, 2]," in [line.strip() for line in lines]
    assert "[0, -1, 3.5e-05]" in [line.strip() for line in lines]
    assert '"a",' in [line.strip() for line in lines]  # lists of strings keep one item a line
    assert dumps(doc, indent=None, compact_rows=True) == json.dumps(doc)


def test_a_written_document_is_the_dump_and_a_newline_with_nothing_left_beside_it(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    doc = {"accuracy": 0.9, "loss": math.nan}
    write_json(path, doc)
    assert path.read_text(encoding="utf-8") == dumps(doc) + "\n"
    assert strict(path.read_text(encoding="utf-8"))["null_because"] == {"loss": "nan is not a JSON number"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_python_s_own_json_would_have_written_an_invalid_token(value):
    """Why the module exists: what it refuses to write is what Python's ``json`` writes by default."""
    with pytest.raises(ValueError):
        strict(json.dumps({"x": value}))
    assert strict(dumps({"x": value}))["x"] is None
