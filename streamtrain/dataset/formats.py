"""Every manifest format this release reads, upgraded in memory to the one it writes (``FORMAT_VERSION``).

Who owns what: ``current`` takes a parsed ``manifest.json`` and returns it
as a version 2 document (what ``dataset.records`` and ``dataset.counts``
read) with the version it was read from; ``Manifest.load`` keeps that as
``read_from_version`` and ``inspect`` shows it. Nothing is written back:
the next prepare or append writes version 2.

- Version 2 (written from the release after 0.12 on): the same keys, every
  one present (``{}`` for a part a dataset lacks), optional keys within a
  part left out when absent.
- Version 1 (every release from 0.1 to 0.12): the same keys, each added by
  some release, so an older 1.x manifest lacks some. ``_v1`` fills in what
  the readers of 1.x documents assumed for a missing key: the encoding and
  vectorizer names of 0.1 (``LEGACY_NAMES``: ``tfidf`` reads as ``ngram``);
  a split without a name is ``blake2b``, the exact text's hash; a source
  without ``night`` is night 0, without counts 0 rows; rejects without
  counts are none; without ``next_row_id`` the next row id is one past
  every source's rows; ``choice``, ``row_order``, ``val_sample``,
  ``feature_names`` and ``appends`` were not recorded (``{}``, ``[]``);
  ``created`` without a tool, time or options says None and ``{}``.

A document of another format, or of a version newer than this release
knows, is a ``DataError`` (exit 65) naming the file.
"""

from __future__ import annotations

from typing import Any

from streamtrain.errors import DataError
from streamtrain.vectorize.choice import LEGACY_NAMES
from streamtrain.vectorize.split import SPLIT_RULES

FORMAT = "streamtrain-dataset"
FORMAT_VERSION = 2
ARRAYS_NAME = "vectorizer.npz"  # the vectorizer arrays of a document that does not name them


def current(doc: Any, path: str) -> tuple[dict, int]:
    """A parsed manifest as a version ``FORMAT_VERSION`` document.

    Args:
        doc: the parsed ``manifest.json``.
        path: its path, for messages.

    Returns:
        The document as version ``FORMAT_VERSION`` (a version 1 one filled in by ``_v1``), and its own version.

    Raises:
        DataError: another format, or a version this release does not read.
    """
    version = doc.get("format_version") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(version, int) or version < 1:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise DataError(f"unsupported manifest {found!r} version {version!r}", path)
    if version > FORMAT_VERSION:
        raise DataError(
            f"unsupported manifest {FORMAT!r} version {version}: newer than this streamtrain reads "
            f"(versions 1 to {FORMAT_VERSION}); upgrade streamtrain",
            path,
        )
    return (_v1(doc) if version == 1 else doc), version


def _v1(doc: dict) -> dict:
    """A version 1 document as version 2 (see the module docstring)."""
    sources = [_source(s) for s in doc.get("sources", [])]
    created = _created(doc.get("created", {}))
    return {
        **doc,
        "format_version": 2,
        "encoding": LEGACY_NAMES.get(doc["encoding"], doc["encoding"]),
        "sequence_length": doc.get("sequence_length"),
        "vectorizer": {"arrays": ARRAYS_NAME, "arrays_sha256": None, **doc["vectorizer"]},
        "choice": _choice(doc.get("choice", {})),
        "split": _split(doc.get("split", {}), created["options"]),
        "row_order": doc.get("row_order", {}),
        "sources": sources,
        "stats": _stats(doc.get("stats", {}), sources),
        "created": created,
        "val_sample": doc.get("val_sample", {}),
        "appends": [{**a, "rejected": _rejects(a.get("rejected", {}))} for a in doc.get("appends", [])],
        "feature_names": doc.get("feature_names", {}),
    }


def _choice(choice: dict) -> dict:
    """Before 0.2 the choice had no ``rule`` and ``why``."""
    return {"rule": None, "why": None, **choice} if choice else {}


def _split(split: dict, options: dict) -> dict:
    """A split without a name split by the exact text's hash (``blake2b``)."""
    if not split:
        val_fraction = options.get("val_fraction", 0.1)
        return {"val_fraction": val_fraction, "name": "blake2b", "rule": SPLIT_RULES["blake2b"]}
    return {"name": "blake2b", **split}


def _source(source: dict) -> dict:
    """Sources before 0.3 had no night and no counts of rejected and read rows."""
    counts = {"night": 0, "first_row_id": 0, "rows": 0, "rejected": 0}
    counted = {**counts, **source}
    return {"read": counted["rows"] + counted["rejected"], **counted}


def _rejects(rejected: dict) -> dict:
    """Rejects without counts are none."""
    return {"rows": 0, "by_reason": {}, "lost_bytes": 0, "estimated_lost_rows": 0, **rejected}


def _stats(stats: dict, sources: list[dict]) -> dict:
    """Stats before 0.3 had no ``next_row_id`` (one past every source's rows) and no rejects or coverage."""
    next_row_id = max((s["first_row_id"] + s["rows"] for s in sources), default=0)
    words = {"samples": 0, "median_words_per_sample": 0.0, "next_row_id": next_row_id}
    return {"rows": {}, "rows_per_class": {}, **words, **stats, "rejected": _rejects(stats.get("rejected", {}))}


def _created(created: dict) -> dict:
    """0.1 recorded the command line (``argv``) and ``columns`` instead of the effective options."""
    return {"tool": None, "at": None, "options": {}, **created}
