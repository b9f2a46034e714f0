"""The typed parts of a dataset manifest that say what went in and what came out, each with ``to_json``/``from_json``.

Who owns what: ``sources`` (a ``Source`` per input and night: its digest,
``Document`` list and row counts; ``dataset.sources`` plans appends from
them), ``appends`` (an ``Append`` per ``prepare --append``, with its
``RejectStats`` and ``Drift``) and ``stats`` (``Stats``: rows per split and
class, rejects, S and W, the next row id, the ``CoverageRecord`` appends
measure drift against). Manifest format version 2, as ``dataset.records``
describes it (optional keys left out when None); ``dataset.formats``
upgrades older documents first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamtrain.dataset.records import present


@dataclass(frozen=True)
class Document:
    """One document of a directory per class: its path relative to the directory, size and sha256."""

    path: str
    bytes: int
    sha256: str
    mtime: float = field(default=0.0, compare=False)  # on disk now (``sources.documents``); not recorded

    def to_json(self) -> list:
        """This record as the manifest's JSON."""
        return [self.path, self.bytes, self.sha256]

    @classmethod
    def from_json(cls, doc: list) -> Document:
        """The record ``to_json`` wrote."""
        path, size, sha256 = doc
        return cls(path, int(size), sha256)


@dataclass
class Source:
    """One input as one night read it (``dataset.sources``): where, its digest, when, and its rows.

    ``bytes`` and ``sha256`` are of the file (or of its prefix ingested so far, or a directory's digest); None
    when an older release did not record them, and then left out of the JSON, as ``ingested_at``, ``start``
    (the byte a grown file's read began at) and ``documents`` (a directory's, read that night) are.
    """

    path: str  # absolute
    role: str  # "train" or "test"
    format: str  # the reader's (``io.readers.detect_format``)
    bytes: int | None = None
    sha256: str | None = None
    ingested_at: str | None = None
    night: int = 0  # 0: the first prepare; N: the N-th append
    start: int | None = None
    documents: list[Document] | None = None
    first_row_id: int = 0
    rows: int = 0  # kept
    rejected: int = 0
    read: int = 0  # kept + rejected

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        documents = None if self.documents is None else [d.to_json() for d in self.documents]
        where = {"path": self.path, "role": self.role, "format": self.format}
        digest = present({"bytes": self.bytes, "sha256": self.sha256, "ingested_at": self.ingested_at})
        read = present({"night": self.night, "start": self.start, "documents": documents})
        counts = {"first_row_id": self.first_row_id, "rows": self.rows, "rejected": self.rejected, "read": self.read}
        return where | digest | read | counts

    @classmethod
    def from_json(cls, doc: dict) -> Source:
        """The record ``to_json`` wrote."""
        documents = doc.get("documents")
        return cls(
            path=doc["path"],
            role=doc["role"],
            format=doc["format"],
            bytes=None if doc.get("bytes") is None else int(doc["bytes"]),
            sha256=doc.get("sha256"),
            ingested_at=doc.get("ingested_at"),
            night=int(doc["night"]),
            start=doc.get("start"),
            documents=None if documents is None else [Document.from_json(d) for d in documents],
            first_row_id=int(doc["first_row_id"]),
            rows=int(doc["rows"]),
            rejected=int(doc["rejected"]),
            read=int(doc["read"]),
        )

    def describe(self) -> str:
        """``PATH (night N)``, for messages."""
        return f"{self.path} (night {self.night})"


@dataclass
class RejectStats:
    """``stats.rejected`` and an append's ``rejected``: rows not kept, by reason, and where they are listed."""

    rows: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    lost_bytes: int = 0  # in files not readable to their end
    estimated_lost_rows: int = 0
    file: str | None = None  # the run's ``rejected.jsonl``; None: not recorded
    files: list[str] | None = None  # once appended to: every run's, oldest first

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        counts = {"rows": self.rows, "by_reason": self.by_reason, "lost_bytes": self.lost_bytes}
        counts["estimated_lost_rows"] = self.estimated_lost_rows
        return counts | present({"file": self.file, "files": self.files})

    @classmethod
    def from_json(cls, doc: dict) -> RejectStats:
        """The record ``to_json`` wrote."""
        files = doc.get("files")
        return cls(
            rows=int(doc["rows"]),
            by_reason={reason: int(n) for reason, n in doc["by_reason"].items()},
            lost_bytes=int(doc["lost_bytes"]),
            estimated_lost_rows=int(doc["estimated_lost_rows"]),
            file=doc.get("file"),
            files=None if files is None else list(files),
        )


@dataclass(frozen=True)
class CoverageRecord:
    """How much training text the vectorizer represents (``dataset.drift.Coverage``): ``stats.coverage``."""

    measure: str  # in words
    outside_share: float | None  # None: no training rows measured
    outside: int
    total: int
    rows: int

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        share = {"measure": self.measure, "outside_share": self.outside_share}
        return share | {"outside": self.outside, "total": self.total, "rows": self.rows}

    @classmethod
    def from_json(cls, doc: dict) -> CoverageRecord:
        """The record ``to_json`` wrote."""
        share = doc["outside_share"]
        return cls(doc["measure"], share, int(doc["outside"]), int(doc["total"]), int(doc["rows"]))


@dataclass(frozen=True)
class Drift(CoverageRecord):
    """An append's ``drift``: its new training rows' coverage beside the dataset's (``baseline``)."""

    baseline: float | None  # ``stats.coverage.outside_share`` when the append ran

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        return {**super().to_json(), "baseline": self.baseline}

    @classmethod
    def from_json(cls, doc: dict) -> Drift:
        """The record ``to_json`` wrote."""
        return cls(**CoverageRecord.from_json(doc).__dict__, baseline=doc["baseline"])


@dataclass(frozen=True)
class Append:
    """An entry of ``appends``: one ``prepare --append`` (``dataset.append``)."""

    night: int
    at: str
    directory: str  # ``append-NNNN``: its shards, rejects and (when it changed) validation sample
    inputs: list[str]  # the inputs it read
    skipped: int  # inputs already ingested
    rows: dict[str, int]  # new rows per split
    first_row_id: int
    rejected: RejectStats
    drift: Drift
    seed: int  # its shuffle's
    shards: int

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        night = {"night": self.night, "at": self.at, "directory": self.directory, "inputs": self.inputs}
        rows = {"skipped": self.skipped, "rows": self.rows, "first_row_id": self.first_row_id}
        made = {"rejected": self.rejected.to_json(), "drift": self.drift.to_json()}
        return night | rows | made | {"seed": self.seed, "shards": self.shards}

    @classmethod
    def from_json(cls, doc: dict) -> Append:
        """The record ``to_json`` wrote."""
        return cls(
            night=int(doc["night"]),
            at=doc["at"],
            directory=doc["directory"],
            inputs=list(doc["inputs"]),
            skipped=int(doc["skipped"]),
            rows={split: int(n) for split, n in doc["rows"].items()},
            first_row_id=int(doc["first_row_id"]),
            rejected=RejectStats.from_json(doc["rejected"]),
            drift=Drift.from_json(doc["drift"]),
            seed=int(doc["seed"]),
            shards=int(doc["shards"]),
        )


@dataclass
class Stats:
    """``stats``: rows per split and class, rejects, samples S and median words W, the next row id, coverage."""

    rows: dict[str, int] = field(default_factory=dict)  # per split
    rows_per_class: dict[str, list[int]] = field(default_factory=dict)  # per split, in label order
    rejected: RejectStats = field(default_factory=RejectStats)
    samples: int = 0
    median_words_per_sample: float = 0.0
    next_row_id: int = 0  # the first row id an append gives
    coverage: CoverageRecord | None = None  # the drift baseline; None: not measured
    vocabulary_buckets: int | None = None  # n-grams: hash buckets in at least min_df training rows

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        rows = {"rows": self.rows, "rows_per_class": self.rows_per_class, "rejected": self.rejected.to_json()}
        words = {"samples": self.samples, "median_words_per_sample": self.median_words_per_sample}
        coverage = None if self.coverage is None else self.coverage.to_json()
        later = present({"coverage": coverage, "vocabulary_buckets": self.vocabulary_buckets})
        return rows | words | {"next_row_id": self.next_row_id} | later

    @classmethod
    def from_json(cls, doc: dict) -> Stats:
        """The record ``to_json`` wrote."""
        coverage = doc.get("coverage")
        return cls(
            rows={split: int(n) for split, n in doc["rows"].items()},
            rows_per_class={split: [int(n) for n in counts] for split, counts in doc["rows_per_class"].items()},
            rejected=RejectStats.from_json(doc["rejected"]),
            samples=int(doc["samples"]),
            median_words_per_sample=doc["median_words_per_sample"],
            next_row_id=int(doc["next_row_id"]),
            coverage=None if coverage is None else CoverageRecord.from_json(coverage),
            vocabulary_buckets=doc.get("vocabulary_buckets"),
        )
