"""Markdown for ``report.md`` (``train.report``): GitHub-flavoured tables, escaped text, numbers as people read them.

Who owns what: every value a report shows passes through here. Missing numbers (None, NaN, a bool where a
number belongs) read ``n/a`` (``NA``); free text is escaped (``esc``: a ``|`` or ``*`` cannot break a table
or turn into emphasis, and a control character shows as its escape, ``streamtrain.visible``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from streamtrain.visible import visible

NA = "n/a"
SPECIAL = set("\\`*_[]<>|~&#!")  # characters that could start Markdown or HTML inside a line of text


def table(header: list[str], body: list[list[str]], align: str = "") -> str:
    """A GFM table.

    Args:
        header: the header cells (already escaped).
        body: the rows' cells (already escaped).
        align: one of l/r/c per column; missing ones: left.

    Returns:
        The table's lines, ending with a newline.
    """
    rule = {"l": "---", "r": "---:", "c": ":---:"}
    aligns = [rule[a] for a in align.ljust(len(header), "l")]
    lines = [row(header), row(aligns)] + [row(r) for r in body]
    return "\n".join(lines) + "\n"


def row(cells: Sequence[str]) -> str:
    """One table row of ``cells`` (an empty cell as a space)."""
    return "| " + " | ".join(c if c else " " for c in cells) + " |"


def esc(value: object) -> str:
    """``value`` as text safe inside a line and a table cell.

    Control characters become escapes (``visible``), Markdown/HTML characters are backslash-escaped, runs of
    whitespace one space.
    """
    text = " ".join(visible(str(value)).split())
    return "".join("\\" + ch if ch in SPECIAL else ch for ch in text)


def code(value: object) -> str:
    """An inline code span (``|`` still escaped: GFM splits table cells before code spans)."""
    text = " ".join(visible(str(value)).split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def finite(value: object) -> bool:
    """Whether ``value`` is a finite int or float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def num(value: Any, digits: int = 4) -> str:
    """A number as people read it.

    Args:
        value: a number, or anything else (missing).
        digits: decimals shown.

    Returns:
        The number with ``digits`` decimals; n/a when missing or not finite.
    """
    return f"{value:.{digits}f}" if finite(value) else NA


def count(value: Any) -> str:
    """A count with thousands separators (a float is rounded); n/a when missing."""
    if isinstance(value, bool) or not finite(value):
        return NA
    return f"{round(value):,}"


def pct(value: Any) -> str:
    """A share as a percentage with 2 decimals; n/a when missing or not finite."""
    return f"{100 * value:.2f}%" if finite(value) else NA


def cell(value: object) -> str:
    """An option's value: none, a number, code for a string, else escaped text."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return code(value) if isinstance(value, str) else esc(value)


def at(values: Sequence, i: int) -> Any:
    """An element that may be missing.

    Args:
        values: a sequence.
        i: an index, at least 0.

    Returns:
        ``values[i]``, or None past its end.
    """
    return values[i] if i < len(values) else None
