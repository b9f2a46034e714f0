"""``inspect.tables``: how inspect shows one value, a size and a share, and aligns columns of them."""

from __future__ import annotations

import pytest

from streamtrain.inspect.tables import cell, percent, size, table


@pytest.mark.parametrize(
    "value, shown",
    [(None, "-"), (True, "yes"), (False, "no"), (0.5, "0.5000"), (3, "3"), ("a\x1bb", "a\\x1bb"), ("é", "é")],
)
def test_cell(value, shown):
    assert cell(value) == shown


@pytest.mark.parametrize(
    "n, shown",
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536 << 10, "1.5 MiB"), (5 << 40, "5120.0 GiB")],
)
def test_size(n, shown):
    assert size(n) == shown


def test_percent():
    assert (percent(None), percent(0.1234), percent(1)) == ("-", "12.3%", "100.0%")


def test_table_aligns_numbers_right_text_left_and_leaves_the_last_column_unpadded():
    lines = table(["name", "rows", "note"], [["a", 5, "x"], ["long name", 1234, None], ["b", None, "yes"]])
    assert lines == [
        "  name       rows  note",
        "  a             5  x",
        "  long name  1234  -",
        "  b             -  yes",
    ]
