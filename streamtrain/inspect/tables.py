"""inspect's plain-text cells and tables: how one value is shown, and aligned columns of them.

Who owns what:
- ``table``: fixed-width columns, numbers right-aligned, text left-aligned.
- ``cell``: one value as shown in a table (``-`` for none, ``yes``/``no``,
  floats to 4 places, control characters escaped by ``visible``).
- ``size``/``percent``: a byte count and a share, for people.
"""

from __future__ import annotations

from typing import Any

from streamtrain.visible import visible


def table(headers: list[str], rows: list[list[Any]], indent: str = "  ") -> list[str]:
    """Fixed-width columns: numbers right-aligned, text left-aligned; the last column is not padded.

    Args:
        headers: the column headers.
        rows: the rows' values, one per column (``cell`` shows each).
        indent: what each line starts with.

    Returns:
        The header line, then one line per row, trailing spaces stripped.
    """
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(_is_number(r[i]) or r[i] is None for r in rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        """One row's cells, aligned."""
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(headers)), *(line(r) for r in cells)]


def _is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool): right-aligned."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def cell(value: Any) -> str:
    """One value as a table shows it.

    Args:
        value: any value.

    Returns:
        ``-`` for None, ``yes``/``no`` for a bool, a float to 4 places, anything else as text with control
        characters escaped (``visible``).
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return visible(str(value))


def size(n: int) -> str:
    """A byte count for people.

    Args:
        n: bytes.

    Returns:
        ``n`` in B (whole), KiB, MiB or GiB (one decimal), the largest unit under 1024 of it (at most GiB).
    """
    amount = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{n} B"  # not reached


def percent(share: float | None) -> str:
    """A share as a percentage to one decimal (``0.1234`` -> ``12.3%``); ``-`` for None."""
    return "-" if share is None else f"{100 * share:.1f}%"
