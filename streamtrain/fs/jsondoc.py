"""Strict JSON for every document streamtrain writes or prints: no ``NaN``, no ``Infinity``.

JSON has no non-finite numbers, and Python's ``json`` writes them anyway
(``NaN``), which most parsers reject. ``dumps`` writes such a value as
``null`` and, where the document is an object, says why under
``"null_because"`` (``{"test_loss": "NaN is not a JSON number"}``).
``compact_rows`` puts each innermost list of numbers (a confusion-matrix
row) on one line. ``write_json`` writes a document atomically.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from streamtrain.fs.atomic import atomic_write_text


def finite(obj: Any, path: str = "", nulls: dict[str, str] | None = None) -> Any:
    """``obj`` with every non-finite float replaced by None.

    Args:
        obj: a JSON-ready document (dicts, lists, tuples, scalars).
        path: where ``obj`` sits in the whole document (``a.b[2]``); "" at its top.
        nulls: when given, collects each replaced value's path and why it was replaced.

    Returns:
        A copy of the dicts and lists (tuples become lists); other values as they are.
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        if nulls is not None:
            nulls[path or "."] = f"{obj!r} is not a JSON number"
        return None
    if isinstance(obj, dict):
        return {k: finite(v, f"{path}.{k}" if path else str(k), nulls) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v, f"{path}[{i}]", nulls) for i, v in enumerate(obj)]
    return obj


def dumps(obj: Any, indent: int | None = 2, compact_rows: bool = False) -> str:
    """``obj`` as strict JSON: a non-finite number is written as null, and a document object says why.

    Args:
        obj: a JSON-ready document.
        indent: as ``json.dumps``'s.
        compact_rows: put each innermost list of numbers on one line (with an ``indent`` only).

    Returns:
        The JSON text, without a final newline; an object with nulls made gets ``"null_because"``: path -> why.
    """
    try:  # the common case, a document without non-finite numbers, in one C pass (large ones: feature_names.json)
        text = json.dumps(obj, indent=indent, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere: walk the document, write null and say why
        nulls: dict[str, str] = {}
        clean = finite(obj, nulls=nulls)
        if nulls and isinstance(clean, dict):
            clean["null_because"] = nulls
        text = json.dumps(clean, indent=indent, allow_nan=False)
    if compact_rows and indent is not None:
        text = re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return text


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``dumps(obj)`` and a newline to ``path`` atomically (``fs.atomic.atomic_write_text``)."""
    atomic_write_text(path, dumps(obj) + "\n")
