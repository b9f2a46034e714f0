"""Rows that prepare did not keep: ``rejected.jsonl`` in the dataset directory, and the counts behind its verdict.

Every record a reader read is either kept or rejected with a reason
(``io.readers.Reject``; prepare adds ``unknown_label`` for a test row whose
label training never saw, and for any row of an append whose label the
dataset's frozen label map lacks: ``unknown_labels`` names a few of them).
``RejectLog`` appends each reject to ``rejected.jsonl`` as it comes
(bounded memory), counts them per reason and per input, and ``check`` fails
the run (``DataError``, exit 65) when the rejected share of the rows read
exceeds ``--max-bad-fraction``. A file that
could not be read to its end (``unreadable_remainder``) counts the rows it
probably lost: its rows read so far scaled by the bytes it did not read.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path

from streamtrain.dataset.counts import RejectStats
from streamtrain.errors import DataError
from streamtrain.io.rejects import REJECT_REASON_TEXT, Reject

log = logging.getLogger(__name__)
REJECTS_NAME = "rejected.jsonl"
_SHOWN = 10  # rejects quoted in a failure message
_NAMED = 20  # distinct unknown labels named


class RejectLog:
    """``rejected.jsonl`` being written, and the counts of what went into it.

    Args:
        directory: where ``rejected.jsonl`` goes (created or truncated now; ``close`` closes it).
        n_sources: how many inputs the run reads, for the per-input counts.
    """

    def __init__(self, directory: Path, n_sources: int) -> None:
        self.path = Path(directory) / REJECTS_NAME
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.by_reason: Counter[str] = Counter()
        self.per_source = [0] * n_sources
        self.lost_bytes = 0
        self.lost_rows = 0.0  # estimated rows behind unreadable remainders (``estimate_lost``)
        self.first: list[Reject] = []
        self.broken: list[tuple[int, Reject]] = []  # (input, reject) of files not readable to their end
        self.unknown_labels: Counter[str] = Counter()  # rows per unknown label, for the first ``_NAMED`` labels

    def unknown_label(self, label: str) -> None:
        """Count a row rejected as ``unknown_label`` under its label (``add`` lists the row itself)."""
        label = label[:80]
        if label in self.unknown_labels or len(self.unknown_labels) < _NAMED:
            self.unknown_labels[label] += 1

    def add(self, source: int, reject: Reject) -> None:
        """Write one reject to the file and count it.

        Args:
            source: the input's index.
            reject: the reader's (or the label map's) reject.
        """
        self._fh.write(json.dumps({**reject.to_json(), "input": source}) + "\n")
        self.by_reason[reject.reason] += 1
        self.per_source[source] += 1
        if reject.reason == "unreadable_remainder":
            self.broken.append((source, reject))
            self.lost_bytes += reject.lost_bytes or 0
        if len(self.first) < _SHOWN:
            self.first.append(reject)

    def estimate_lost(self, rows_read: list[int]) -> None:
        """Estimate the rows the broken files probably held past their breaks (``lost_rows``).

        A file's estimate is its rows read scaled by its bytes lost over its bytes read. An
        unreadable document of a directory per class (row None) is the one row already rejected.

        Args:
            rows_read: per input, the rows read (kept and rejected).
        """
        self.lost_rows = 0.0
        for source, reject in self.broken:
            if reject.row is None or not reject.lost_bytes:
                continue
            size = os.stat(reject.path).st_size if os.path.isfile(reject.path) else 0
            self.lost_rows += rows_read[source] * reject.lost_bytes / max(size - reject.lost_bytes, 1)

    @property
    def rows(self) -> int:
        """Rows rejected, over every input."""
        return sum(self.per_source)

    def close(self) -> None:
        """Close the file."""
        self._fh.close()

    def summary(self) -> RejectStats:
        """What the manifest records under ``stats.rejected`` (an append: under its own ``rejected``)."""
        by_reason = dict(sorted(self.by_reason.items()))
        return RejectStats(self.rows, by_reason, self.lost_bytes, round(self.lost_rows), file=REJECTS_NAME)

    def check(self, rows_read: int, max_bad_fraction: float) -> None:
        """Log the per-reason summary, or fail when the bad share is too large.

        The bad share counts the estimated lost rows (``estimate_lost``) both as bad and as read.

        Args:
            rows_read: rows read, kept and rejected, over every input.
            max_bad_fraction: ``--max-bad-fraction``.

        Raises:
            DataError: the bad share exceeds ``max_bad_fraction``; the message quotes the first rejects.
        """
        bad = self.rows + self.lost_rows
        total = rows_read + self.lost_rows
        if not bad:
            return
        share = bad / total if total else 1.0
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.by_reason.items()))
        lost = (
            f"; about {round(self.lost_rows)} rows lost in {self.lost_bytes} unreadable bytes"
            if (self.lost_bytes)
            else ""
        )
        summary = f"rejected {self.rows} of {rows_read} rows read ({share:.2%}): {reasons}{lost}"
        if share > max_bad_fraction:
            shown = "\n".join(
                f"  {_where(r)}: {r.reason} ({REJECT_REASON_TEXT[r.reason]}): {r.excerpt!r}" for r in self.first
            )
            raise DataError(f"{summary}, more than --max-bad-fraction {max_bad_fraction:g}; the first:\n{shown}")
        log.warning(f"{summary}; each is listed in {REJECTS_NAME}")


def _where(reject: Reject) -> str:
    """Where a reject is, for messages: the file, and its row when it has one."""
    return reject.path if reject.row is None else f"{reject.path}, row {reject.row}"
