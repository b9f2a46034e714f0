"""``io.readers.values``: typed cells (JSONL, Parquet) to a record's text and label."""

from __future__ import annotations

import pytest

from streamtrain.io.readers.values import label_of, text_of


@pytest.mark.parametrize(
    "values, expected",
    [
        (["a"], ("a", None)),
        (["a", None, "b"], ("a b", None)),
        ([None, None], ("", "empty_text")),
        ([" ", "\n"], ("  \n", "empty_text")),
        (["a", 1], ("", "text_not_a_string")),
        ([b"bytes"], ("", "text_not_a_string")),
    ],
)
def test_text_of(values, expected):
    assert text_of(values) == expected


@pytest.mark.parametrize(
    "value, label",
    [(None, ""), (" pos ", "pos"), (2, "2"), (2.0, "2"), (2.5, "2.5"), (-0.0, "0"), ("", "")],
)
def test_label_of(value, label):
    assert label_of(value) == label
