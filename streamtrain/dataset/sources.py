"""A dataset's inputs as the manifest records them, and what an append reads of each (``plan``).

Every input of a prepare or an append is recorded in ``manifest.sources``
with its ``bytes`` and ``sha256`` (``digest``; a directory per class: a
digest over its documents, which its record also lists), when it was
ingested and by which night (0 for the first prepare, N for the N-th
append). The append rule (``plan``, ``new_sources``) counts no row twice:
an input whose content was ingested before is skipped; of a directory
recorded under the same path only its new documents are read; of a file
recorded under the same path only what follows its ingested prefix (a
plain file's prefix ends with a line break, a gzip file grows by new
members, a Parquet file cannot grow). An ingested part that changed is
edited history: ``DataError`` (exit 65), nothing appended; ``prepare
--refit`` reads every recorded input once, whole, as it is now. Also here:
``next_night`` and ``count_sources`` (a first pass's per-source counts).

Design (the digest, the rule case by case): docs/design/nightly.md
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from streamtrain.dataset.counts import Document, Source
from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.reject_log import RejectLog
from streamtrain.errors import DataError
from streamtrain.fs.checksums import sha256_file
from streamtrain.io.readers import WHOLE, Portion, detect_format

log = logging.getLogger(__name__)
_PIECE = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_REFIT = "prepare --refit rebuilds the dataset from its inputs as they are now"


def now() -> str:
    """The time recorded for an ingest: now, ISO 8601, UTC, to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def documents(root: Path) -> list[Document]:
    """The documents a directory-per-class reader reads (``io.readers.class_dirs.read_dir``'s selection), digested.

    Args:
        root: a directory of a sub-directory per class.

    Returns:
        Each document (path relative to ``root``, size, sha256, mtime), class by class in name order.
    """
    out = []
    for class_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for doc in class_dir.rglob("*"):
            if doc.is_file() and not any(p.startswith(".") for p in doc.relative_to(class_dir).parts):
                info = doc.stat()
                rel = doc.relative_to(root).as_posix()
                out.append(Document(rel, info.st_size, sha256_file(doc), info.st_mtime))
    return out


def _tree_digest(docs: list[Document]) -> tuple[int, str]:
    r"""(total bytes, sha256 over the sorted ``path\0size\0sha256\n`` lines) of a directory's documents."""
    lines = sorted(f"{d.path}\0{d.bytes}\0{d.sha256}\n" for d in docs)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8", "surrogateescape"))
    return sum(d.bytes for d in docs), h.hexdigest()


def digest(path: str | os.PathLike[str]) -> tuple[int, str]:
    r"""What the manifest records of an input's content.

    Args:
        path: an input file, or a directory of a sub-directory per class.

    Returns:
        (bytes, sha256) of the file; of a directory, the documents' total bytes and the sha256 of their sorted
        ``relative_path\0size\0sha256\n`` lines.
    """
    path = Path(path)
    if not path.is_dir():
        return os.stat(path).st_size, sha256_file(path)
    return _tree_digest(documents(path))


@dataclass(frozen=True)
class Provenance:
    """What a source's record says of the input itself, as opposed to the rows read of it.

    Its size and sha256 (and a directory's documents), when and by which night it was ingested. A refit
    carries it over to the rebuilt dataset's records.
    """

    bytes: int | None  # None: not recorded (an older release's record)
    sha256: str | None
    documents: list[Document] | None = None
    ingested_at: str | None = None
    night: int = 0

    @classmethod
    def of(cls, source: Source) -> Provenance:
        """The provenance a recorded ``source`` states."""
        return cls(source.bytes, source.sha256, source.documents, source.ingested_at, source.night)

    def source(self, role: str, path: str, format: str) -> Source:
        """The record of an input with this provenance, nothing read yet.

        Args:
            role: ``"train"`` or ``"test"``.
            path: the input's absolute path.
            format: its reader's format (``io.readers.detect_format``).

        Returns:
            A ``Source`` with no rows counted.
        """
        return Source(
            path,
            role,
            format,
            bytes=self.bytes,
            sha256=self.sha256,
            ingested_at=self.ingested_at,
            night=self.night,
            documents=self.documents,
        )


def record(path: str | os.PathLike[str]) -> Provenance:
    """What the manifest records of an input read whole, as it is now; not yet when or by which night.

    Args:
        path: an input file or a directory per class.

    Returns:
        Its bytes and sha256 (``digest``), and a directory's documents.
    """
    if not Path(path).is_dir():
        size, sha256 = digest(path)
        return Provenance(size, sha256)
    docs = documents(Path(path))
    size, sha256 = _tree_digest(docs)
    return Provenance(size, sha256, docs)


def ingested(sources: list[Source], size: int, sha256: str) -> Source | None:
    """The recorded source with this content, whatever its path.

    Args:
        sources: the recorded sources.
        size: the content's bytes.
        sha256: the content's sha256.

    Returns:
        The first source with the same size and sha256, or None.
    """
    for source in sources:
        if source.sha256 == sha256 and source.bytes == size:
            return source
    return None


@dataclass
class Plan:
    """What an append reads of one input (``portion``) and records of it (``record``)."""

    path: str  # absolute
    role: str
    size: int  # of the input now
    sha256: str
    portion: Portion = WHOLE
    docs: list[Document] | None = None  # a directory's documents read

    def record(self, night: int, at: str) -> Source:
        """The input's record for night ``night``; its rows not counted yet.

        Args:
            night: the append's night number.
            at: when it ingests (``now``).

        Returns:
            The ``Source`` the manifest will list, with ``start`` for a grown file and the documents read of a
            directory.
        """
        return Source(
            self.path,
            self.role,
            detect_format(self.path),
            bytes=self.size,
            sha256=self.sha256,
            ingested_at=at,
            night=night,
            start=self.portion.start or None,
            documents=None if self.docs is None else list(self.docs),
        )

    @property
    def reading(self) -> int:
        """Bytes on disk this plan reads (for progress)."""
        if self.docs is not None:
            return sum(d.bytes for d in self.docs)
        return self.size - self.portion.start


def plan(role: str, path: str, recorded: list[Source]) -> Plan | None:
    """What an append reads of one input, by the append rule (the module docstring).

    Args:
        role: ``"train"`` or ``"test"``.
        path: the input.
        recorded: the sources recorded so far (and those this append planned before).

    Returns:
        The plan, or None when the input is skipped: ingested before, or nothing new in it.

    Raises:
        DataError: the part of the input ingested before changed (edited history), or it cannot be told
            from the new part (a Parquet file that grew, a gzip tail that is no new member, an old record
            without a digest).
    """
    full = os.path.abspath(path)
    same = [s for s in recorded if s.path == full]
    if os.path.isdir(path):
        return _plan_directory(role, full, same, recorded)
    return _plan_file(role, full, same, recorded)


def new_sources(inputs: Iterable[tuple[str, str]], recorded: list[Source], night: int) -> list[Plan]:
    """What an append reads of each of its inputs (``plan``: never a row twice), without those it skips.

    Args:
        inputs: ``(role, path)`` of each input, training inputs first, as ``read_rows`` reads them.
        recorded: the dataset's recorded sources.
        night: the append's night number.

    Returns:
        One plan per input read, in order.

    Raises:
        DataError: as ``plan``.
    """
    out: list[Plan] = []
    planned: list[Source] = []
    for role, path in inputs:
        found = plan(role, path, recorded + planned)
        if found is not None:
            out.append(found)
            planned.append(found.record(night, ""))
    return out


def next_night(manifest: Manifest) -> int:
    """The number of the next ingest.

    Args:
        manifest: the dataset's manifest.

    Returns:
        One more than any night its sources and appends record (0 is the first prepare).
    """
    nights = [s.night for s in manifest.sources] + [a.night for a in manifest.appends]
    return 1 + max(nights, default=0)


def count_sources(records: list[Source], rejects: RejectLog, first_row_id: int) -> None:
    """Fill in each source's first row id and rejected and read counts; log them; estimate rows lost.

    Args:
        records: the sources, in input order, their ``rows`` counted by the pass.
        rejects: the pass's rejects (``per_source`` in the same order); its ``estimate_lost`` is called.
        first_row_id: the row id of the first source's first row.
    """
    start = first_row_id
    for i, source in enumerate(records):
        source.first_row_id, start = start, start + source.rows
        source.rejected = rejects.per_source[i]
        source.read = source.rows + source.rejected
        if not source.read:
            log.warning(f"{source.path}: no rows (a header and nothing else?)")
        log.info(f"read {source.rows} {source.role} rows from {source.path}, rejected {source.rejected}")
    rejects.estimate_lost([s.read for s in records])


def _skipped(path: str, seen: Source) -> None:
    """Warn that ``path`` is skipped: its content was ingested as ``seen``."""
    log.warning(f"{path}: already ingested as {seen.describe()}; skipped")


def _plan_directory(role: str, full: str, same: list[Source], recorded: list[Source]) -> Plan | None:
    """``plan`` for a directory per class: its documents not ingested before."""
    docs = documents(Path(full))
    size, sha256 = _tree_digest(docs)
    if (seen := ingested(recorded, size, sha256)) is not None:
        _skipped(full, seen)
        return None
    known: dict[str, Document] = {}
    for source in same:
        known |= {d.path: d for d in _ingested_documents(full, source, docs)}
    new = []
    for doc in docs:
        old = known.get(doc.path)
        if old is None:
            new.append(doc)
        elif (old.bytes, old.sha256) != (doc.bytes, doc.sha256):
            raise DataError(
                f"edited history: this document was ingested (night {_night_of(same, doc.path)}) and its bytes have "
                f"changed since ({old.bytes} bytes then, {doc.bytes} now), so its rows cannot be appended again "
                f"without counting them twice; nothing was appended. {_REFIT}",
                os.path.join(full, doc.path),
            )
    if not new:
        log.info(f"{full}: every document was already ingested; skipped")
        return None
    if same:
        log.info(f"{full}: {len(new)} new document(s) of {len(docs)}; those ingested before are not read again")
    return Plan(full, role, size, sha256, Portion(documents=frozenset(d.path for d in new)), new)


def _night_of(same: list[Source], rel: str) -> int:
    """The night that ingested document ``rel``, for messages."""
    for source in same:
        if any(d.path == rel for d in source.documents or []):
            return source.night
    return same[0].night if same else 0


def _ingested_documents(full: str, source: Source, docs: list[Document]) -> list[Document]:
    """The documents a recorded directory source ingested; for a record without them, reconstructed and checked."""
    if source.documents is not None:
        return source.documents
    if source.sha256 is not None and source.ingested_at:
        at = datetime.datetime.fromisoformat(source.ingested_at).timestamp() + 1
        before = [d for d in docs if d.mtime <= at]
        if _tree_digest(before) == (source.bytes, source.sha256):
            return before
    raise DataError(
        "was ingested as a whole by an older streamtrain, which did not record its documents, and it has changed "
        f"since, so its new documents cannot be told from those ingested; nothing was appended. {_REFIT}",
        full,
    )


def _plan_file(role: str, full: str, same: list[Source], recorded: list[Source]) -> Plan | None:
    """``plan`` for a file: all of it when new, what follows its ingested prefix when it grew."""
    # (bytes, sha256, night) of each ingested prefix of the file
    prefixes = [(s.bytes, s.sha256, s.night) for s in same if s.bytes is not None and s.sha256 is not None]
    if same and not prefixes:
        raise DataError(
            "was ingested by an older streamtrain that did not record its size and sha256, so its new rows cannot "
            f"be told from those ingested; nothing was appended. {_REFIT}",
            full,
        )
    last = max(prefixes, key=lambda p: p[0], default=None)
    size = os.stat(full).st_size
    whole, prefix = _hashes(full, last[0] if last is not None and size > last[0] else None)
    if (seen := ingested(recorded, size, whole)) is not None:
        _skipped(full, seen)
        return None
    if last is None:
        return Plan(full, role, size, whole, Portion(stop=size))
    start, sha256, night = last
    if detect_format(full) == "parquet":
        raise DataError(
            "a Parquet file cannot grow in place, and this one changed since it was ingested; write new rows to a "
            f"new file; nothing was appended. {_REFIT}",
            full,
        )
    if prefix != sha256:
        gz = " (for gzip, the compressed bytes: a file compressed again as a whole has changed)" if _gz(full) else ""
        raise DataError(
            f"edited history: its first {start} bytes, ingested by night {night} and before, "
            f"have changed{gz} (the file has {size} bytes now), so its rows cannot be appended again without counting "
            f"them twice; nothing was appended. {_REFIT}",
            full,
        )
    if start == 0:  # an empty file was ingested: all of it is new
        return Plan(full, role, size, whole, Portion(stop=size))
    _check_growth(full, start)
    log.info(f"{full}: grew from {start} to {size} bytes; reading only what follows the ingested {start} bytes")
    return Plan(full, role, size, whole, Portion(start=start, stop=size))


def _hashes(path: str, prefix: int | None) -> tuple[str, str | None]:
    """sha256 of the whole file and, when ``prefix`` is given, of its first ``prefix`` bytes: one read."""
    h = hashlib.sha256()
    head = None
    with open(path, "rb") as fh:
        if prefix is not None:
            left = prefix
            while left > 0 and (piece := fh.read(min(_PIECE, left))):
                h.update(piece)
                left -= len(piece)
            head = h.hexdigest()
        while piece := fh.read(_PIECE):
            h.update(piece)
    return h.hexdigest(), head


def _gz(path: str) -> bool:
    """Whether ``path`` is read as gzip (by its name)."""
    return path.lower().endswith(".gz")


def _check_growth(path: str, start: int) -> None:
    """Refuse growth the readers cannot take from ``start`` on (``DataError``).

    That is a gzip tail that is no new member, or a plain prefix whose last line had no line break (its rest
    and an edit of it look the same).
    """
    with open(path, "rb") as fh:
        if _gz(path):
            fh.seek(start)
            if fh.read(2) != _GZIP_MAGIC:
                raise DataError(
                    f"grew by bytes that do not start a new gzip member at byte {start} (the end of what was "
                    "ingested): append tonight's rows as a gzip member of their own (gzip -c new >> file.gz); "
                    f"nothing was appended. {_REFIT}",
                    path,
                )
            return
        fh.seek(start - 1)
        if fh.read(1) not in (b"\n", b"\r"):
            raise DataError(
                f"its last ingested line (ending at byte {start}) had no line break, so what follows may be its "
                f"rest or an edit: its rows cannot be appended without counting one twice; nothing was appended. "
                f"{_REFIT}",
                path,
            )
