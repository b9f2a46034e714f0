"""``train.markdown``: what every value of ``report.md`` passes through. Tables keep their columns whatever the
text holds, missing numbers read ``n/a``, and numbers read as people read them."""

from __future__ import annotations

import math

import pytest

from streamtrain.train.markdown import NA, SPECIAL, at, cell, code, count, esc, finite, num, pct, row, table


def cells_of(line: str) -> list[str]:
    """The cells of a GFM table row, split as GitHub splits them: at every ``|`` not escaped by a backslash."""
    assert line.startswith("| ") and line.endswith(" |")
    out, current, i, body = [], "", 0, line[2:-2]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            current += body[i : i + 2]
            i += 2
            continue
        if body.startswith(" | ", i):
            out.append(current)
            current, i = "", i + 3
            continue
        current += body[i]
        i += 1
    return [*out, current]


def test_a_table_has_a_header_a_rule_of_alignments_and_one_line_per_row():
    text = table(["class", "rows", "share"], [["a", "1", "50%"], ["b", "", "50%"]], align="lrc")
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines == [
        "| class | rows | share |",
        "| --- | ---: | :---: |",
        "| a | 1 | 50% |",
        "| b |   | 50% |",  # an empty cell stays a cell
    ]
    assert table(["x", "y"], [])[:-1].splitlines()[1] == "| --- | --- |"  # left by default


def unescape(text: str) -> str:
    """Markdown's reading of backslash escapes; fails on a markup character left unescaped."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            assert text[i + 1] in SPECIAL, text
            out.append(text[i + 1])
            i += 2
            continue
        assert text[i] not in MARKUP, f"{text[i]!r} unescaped in {text!r}"
        out.append(text[i])
        i += 1
    return "".join(out)


MARKUP = set("|*_`[]<>\\")  # a table's pipe, emphasis, code, links, HTML, and the escape itself


def test_escaped_text_cannot_break_a_table_or_start_markup():
    nasty = "a|b *bold* _it_ [link](x) <b>&amp; `code` #h ~s! \\ end"
    escaped = esc(nasty)
    assert unescape(escaped) == nasty  # every markup character escaped, nothing else changed
    assert cells_of(row(["x", escaped, "y"])) == ["x", escaped, "y"]  # the pipe does not split the cell
    assert esc("plain words 1.5") == "plain words 1.5"


def test_escaped_text_is_one_line_with_control_characters_shown():
    assert esc("two\nlines\there") == "two\\\\nlines\\\\there"  # "\n" shown as the escape, its backslash escaped
    assert esc("  many   spaces \r\n") == "many spaces \\\\r\\\\n"
    assert "\x1b" not in esc("\x1b[31mred")
    assert esc(42) == "42" and esc(None) == "None"


def test_a_code_span_keeps_backticks_and_pipes_from_ending_it():
    assert code("x_1") == "`x_1`"  # nothing escaped inside a code span but the pipe
    assert code("a|b") == "`a\\|b`"
    assert code("a`b") == "`` a`b ``"  # a backtick inside: a longer fence, padded
    assert code("  spread \n out ") == "`spread \\n out`"
    assert len(cells_of(row([code("p|q|r"), "z"]))) == 2


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, True, False, "0.5", [1]])
def test_a_missing_number_reads_n_a(value):
    assert not finite(value)
    assert num(value) == count(value) == pct(value) == NA


def test_numbers_read_as_people_read_them():
    assert finite(0) and finite(-2.5) and finite(10**20)
    assert num(0.123456) == "0.1235" and num(2, digits=1) == "2.0"
    assert count(1234567) == "1,234,567" and count(2.6) == "3" and count(0) == "0"
    assert pct(0.5) == "50.00%" and pct(1) == "100.00%" and pct(0.123456) == "12.35%"


def test_an_option_s_value_shows_as_its_kind():
    assert cell(None) == "none"
    assert cell(0.001) == "0.001" and cell(1e-7) == "1e-07" and cell(2.0) == "2"
    assert cell("adam") == "`adam`"  # a string is code
    assert cell(3) == "3" and cell(True) == "True"
    assert cell(["a|b"]) == esc(["a|b"]) == "\\['a\\|b'\\]"


def test_at_is_none_past_the_end():
    values = [1, 2]
    assert at(values, 0) == 1 and at(values, 1) == 2 and at(values, 2) is None and at([], 0) is None
