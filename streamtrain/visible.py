r"""Free text (class labels, reasons) made safe to print: ``visible``.

Labels come from the user's data and may hold anything. Printed raw, an ANSI
escape recolours or rewrites the terminal, a ``\r`` or newline breaks a
table's row. ``inspect``'s text tables and ``report.md`` show such characters
as escapes instead (``\x1b``, ``\r``, ``\n``); the JSON outputs keep the
exact strings.
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control characters (Cc) and the Unicode line and paragraph separators (Zl, Zp: they split a line for
# str.splitlines and some terminals); of the format characters only the bidirectional controls, which reorder
# what a terminal shows (a zero-width joiner or non-joiner is part of a word in several scripts).
_HIDDEN = {"Cc", "Zl", "Zp"}
_BIDI = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


def visible(text: str) -> str:
    r"""``text`` with every control, line-separator or bidirectional-control character written as an escape.

    Escapes look like ``\x1b`` and ``\u202e``; ``\n``, ``\r`` and ``\t`` go by name. Other characters are
    unchanged.
    """
    if text.isprintable():
        return text
    return "".join(_escape(ch) if ch in _BIDI or unicodedata.category(ch) in _HIDDEN else ch for ch in text)


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
