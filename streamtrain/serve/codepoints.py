"""Per-code-point Unicode tables of the serving graph, built from Python's own ``unicodedata`` and ``str.lower``.

A table says what each code point 0..0x10FFFF becomes, as a sequence of code
points in which ``SEPARATOR`` (a space) stands for "ends a token":

- ``ngram_table``: ``words._folded`` (lowercase, NFKD, combining marks
  dropped, non-word characters a separator), the word tokens of n-grams.
- ``sequence_table``: ``sequence.codepoint_lowered`` (``chr(cp).lower()``,
  Keras' filters and Python's whitespace a separator), the tokens of the
  ``CODEPOINT`` sequence tokenizer.

Either is stored as sorted ranges of code points with one rule each
(``CodepointTable``). Both are exact for the Unicode of the Python that builds
them (``UNIDATA_VERSION``); the tables of Python 3.11's Unicode ship built in
``tables/`` (``tools/unicode_tables.py`` writes them), another Unicode builds
its own on first use.

Sizes and build times: docs/design/serving-graph.md
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

import numpy as np

from streamtrain.vectorize import words
from streamtrain.vectorize.sequence import codepoint_lowered

UNIDATA_VERSION = unicodedata.unidata_version  # the Unicode the tables (and so the graph) reproduce
SEPARATOR = 0x20  # the code a separator becomes; never part of a token in either table
LAST = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)  # not in any UTF-8 text (a decoder gives U+FFFD): separators
DROP, SINGLE, SEPARATE, EXPAND = 0, 1, 2, 3  # the rule of a range (``CodepointTable.kinds``)


@dataclass(frozen=True)
class CodepointTable:
    """Sorted ranges of code points, each with one rule, and the expansions ``EXPAND`` ranges point into.

    Range ``r`` covers ``starts[r]`` up to the next start (``starts[0] == 0``). A code point ``cp`` in it
    becomes: ``DROP`` nothing; ``SINGLE`` the code point ``cp + values[r]``; ``SEPARATE`` one ``SEPARATOR``;
    ``EXPAND`` the codes ``expansion_codes[expansion_splits[e]:expansion_splits[e + 1]]`` with
    ``e = cp + values[r]``. All int32.
    """

    starts: np.ndarray
    kinds: np.ndarray
    values: np.ndarray
    expansion_splits: np.ndarray
    expansion_codes: np.ndarray

    def codes(self, cp: int) -> list[int]:
        """What code point ``cp`` becomes, as a list of codes (the rule above, in Python: for tests)."""
        r = int(np.searchsorted(self.starts, cp, side="right")) - 1
        kind, value = int(self.kinds[r]), int(self.values[r])
        if kind == EXPAND:
            e = cp + value
            return self.expansion_codes[self.expansion_splits[e] : self.expansion_splits[e + 1]].tolist()
        return {DROP: [], SINGLE: [cp + value], SEPARATE: [SEPARATOR]}[kind]


def build_table(mapping: Callable[[int], Sequence[int]]) -> CodepointTable:
    """The table of ``mapping`` over every code point 0..0x10FFFF; surrogates are separators.

    Args:
        mapping: code point -> the codes it becomes, ``SEPARATOR`` for a separator.

    Returns:
        Its ranges and expansions.
    """
    kinds = np.empty(LAST + 1, np.int32)
    values = np.zeros(LAST + 1, np.int64)
    expansions: list[Sequence[int]] = []
    for cp in range(LAST + 1):
        codes = (SEPARATOR,) if cp in _SURROGATES else mapping(cp)
        if not codes:
            kinds[cp] = DROP
        elif len(codes) > 1:
            kinds[cp], values[cp] = EXPAND, len(expansions) - cp
            expansions.append(codes)
        elif codes[0] == SEPARATOR:
            kinds[cp] = SEPARATE
        else:
            kinds[cp], values[cp] = SINGLE, codes[0] - cp
    change = np.flatnonzero((kinds[1:] != kinds[:-1]) | (values[1:] != values[:-1])) + 1
    starts = np.concatenate([[0], change])
    splits = np.zeros(len(expansions) + 1, np.int64)
    np.cumsum([len(e) for e in expansions], out=splits[1:])
    flat = [c for e in expansions for c in e]
    return CodepointTable(
        starts.astype(np.int32),
        kinds[starts],
        values[starts].astype(np.int32),
        splits.astype(np.int32),
        np.array(flat, np.int32),
    )


def _folded_codes(cp: int) -> list[int]:
    """``words._folded(cp)`` as code points, without filling its cache with a million entries."""
    return [ord(c) for c in words._folded.__wrapped__(cp).decode("utf-8")]


def _lowered_codes(cp: int) -> list[int]:
    """``sequence.codepoint_lowered(cp)`` as code points, each of Python's whitespace a ``SEPARATOR``."""
    return [SEPARATOR if c.isspace() else ord(c) for c in codepoint_lowered(cp)]


MAPPINGS: dict[str, Callable[[int], Sequence[int]]] = {"ngram": _folded_codes, "sequence": _lowered_codes}
SHIPPED = Path(__file__).with_name("tables")  # ``NAME-UNIDATA_VERSION.npz``: the tables built ahead (``write``)


@cache
def ngram_table() -> CodepointTable:
    """The word-token folding of ``vectorize.words``, for every code point (once per process)."""
    return table("ngram")


@cache
def sequence_table() -> CodepointTable:
    """The ``CODEPOINT`` sequence tokenizer's lowering and separators, for every code point (once per process)."""
    return table("sequence")


def table(name: str) -> CodepointTable:
    """The table of ``MAPPINGS[name]``, read from ``SHIPPED`` or built now.

    Args:
        name: "ngram" or "sequence".

    Returns:
        The table built ahead for this Python's Unicode when one ships (``tests/serve/test_codepoints.py`` checks
        it equals a fresh build), else a fresh build.
    """
    path = SHIPPED / f"{name}-{UNIDATA_VERSION}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as arrays:
            return CodepointTable(**{f.name: arrays[f.name] for f in fields(CodepointTable)})
    return build_table(MAPPINGS[name])


def write(folder: Path) -> list[Path]:
    """Build every table and write it to ``folder`` as ``NAME-UNIDATA_VERSION.npz`` (``tools/unicode_tables.py``).

    Args:
        folder: created when missing.

    Returns:
        The files written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, mapping in MAPPINGS.items():
        built = build_table(mapping)
        path = folder / f"{name}-{UNIDATA_VERSION}.npz"
        np.savez_compressed(path, **{f.name: getattr(built, f.name) for f in fields(CodepointTable)})
        written.append(path)
    return written
