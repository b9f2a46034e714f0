"""The typed parts of a dataset manifest that say how its rows were made, each with one ``to_json`` and ``from_json``.

Who owns what: ``dataset.manifest.Manifest`` holds these records and
``dataset.counts``' (its inputs, appends and statistics); together they are
manifest format version 2, and ``from_json`` reads what ``to_json`` writes.
``dataset.formats`` upgrades an older document to version 2 before any of
them reads it, so the defaults for what an older release did not record are
there, not here. Conventions:

- an optional key (``split.params``, ``choice.bakeoff``, ``created.refit_of``
  and the like) is left out of the JSON when its field is None (``present``);
- a part a dataset may lack (``val_sample`` without validation rows,
  ``feature_names`` of a sequence dataset, ``choice`` and ``row_order`` of a
  dataset prepared before they were recorded) is None in the ``Manifest``
  and ``{}`` in the file (``part_json``, ``part``);
- a sub-document another module owns and nothing here reads field by field
  stays a ``dict``, its owner named beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from streamtrain.fs.checksums import file_problem, file_record
from streamtrain.vectorize.split import SPLIT_RULES

T = TypeVar("T")


class Record(Protocol):
    """A manifest part: it has a ``to_json``."""

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        ...


def present(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without its None values: the optional keys a record leaves out.

    Args:
        doc: a JSON object.

    Returns:
        A copy without the keys whose value is None.
    """
    return {k: v for k, v in doc.items() if v is not None}


def part_json(record: Record | None) -> dict:
    """A manifest part's JSON.

    Args:
        record: the part; None for a part the dataset lacks.

    Returns:
        ``record.to_json()``, or ``{}`` for None.
    """
    return {} if record is None else record.to_json()


def part(doc: dict, read: Callable[[dict], T]) -> T | None:
    """A manifest part from its JSON.

    Args:
        doc: the part's JSON; ``{}`` for a part the dataset lacks.
        read: the part's ``from_json``.

    Returns:
        ``read(doc)``, or None for ``{}``.
    """
    return read(doc) if doc else None


@dataclass(frozen=True)
class FileRecord:
    """A file the manifest names besides the shards: its path inside the dataset directory, size and sha256."""

    path: str
    bytes: int
    sha256: str

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}

    @classmethod
    def from_json(cls, doc: dict) -> FileRecord:
        """The record ``to_json`` wrote."""
        return cls(doc["path"], int(doc["bytes"]), doc["sha256"])

    @classmethod
    def of(cls, directory: str | Path, relative: str) -> FileRecord:
        """The record of a file as it is on disk.

        Args:
            directory: the dataset (or staging) directory.
            relative: the file's path inside it.

        Returns:
            Its path, size and sha256.
        """
        return cls.from_json(file_record(directory, relative))

    def problem(self, directory: str | Path) -> str | None:
        """What is wrong with the file against this record (``fs.checksums.file_problem``).

        Args:
            directory: the dataset directory the path is relative to.

        Returns:
            The problem in a few words (missing, truncated, grown, damaged, unreadable); None when it matches.
        """
        return file_problem(Path(directory) / self.path, self.bytes, self.sha256)


@dataclass(frozen=True)
class ValSampleRecord(FileRecord):
    """``val_sample``: the validation sample's file (``dataset.val_sample``), its rows and its rule's bounds."""

    rows: int
    text_bytes: int
    below_key: int | None  # rows with keys >= this were never kept; None: every validation row fitted
    max_rows: int
    max_bytes: int
    rule: str

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        bounds = {"below_key": self.below_key, "max_rows": self.max_rows, "max_bytes": self.max_bytes}
        return {**super().to_json(), "rows": self.rows, "text_bytes": self.text_bytes, **bounds, "rule": self.rule}

    @classmethod
    def from_json(cls, doc: dict) -> ValSampleRecord:
        """The record ``to_json`` wrote."""
        return cls(
            **FileRecord.from_json(doc).__dict__,
            rows=int(doc["rows"]),
            text_bytes=int(doc["text_bytes"]),
            below_key=doc["below_key"],
            max_rows=int(doc["max_rows"]),
            max_bytes=int(doc["max_bytes"]),
            rule=doc["rule"],
        )


@dataclass(frozen=True)
class NameSampleRecord:
    """The training texts the feature names come from (``vectorize.ngram_names.NameSample.record``, less its rule)."""

    texts: int
    text_bytes: int
    training_texts: int
    stride: int
    max_texts: int
    max_bytes: int
    max_text_chars: int

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, doc: dict) -> NameSampleRecord:
        """The record ``to_json`` wrote."""
        return cls(**{name: int(doc[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class FeatureNamesRecord(FileRecord):
    """``feature_names``: the n-gram names file (``vectorize.ngram_names``): columns named, collisions, sample."""

    columns: int
    named: int
    collided: int
    sample: NameSampleRecord

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        names = {"columns": self.columns, "named": self.named, "collided": self.collided}
        return {**super().to_json(), **names, "sample": self.sample.to_json()}

    @classmethod
    def from_json(cls, doc: dict) -> FeatureNamesRecord:
        """The record ``to_json`` wrote."""
        return cls(
            **FileRecord.from_json(doc).__dict__,
            columns=int(doc["columns"]),
            named=int(doc["named"]),
            collided=int(doc["collided"]),
            sample=NameSampleRecord.from_json(doc["sample"]),
        )


@dataclass(frozen=True)
class SplitRecord:
    """``split``: the split rule (``vectorize.split``) and, for an indexed rule, its band-key index files."""

    val_fraction: float
    name: str  # a key of ``vectorize.split.SPLIT_RULES``
    rule: str  # the rule in one line, as recorded when the dataset was prepared
    params: dict[str, Any] | None = None  # owner: ``vectorize.split.rule_params``; None for a rule without any
    index: list[FileRecord] | None = None  # an indexed rule's: prepare's file, then one per append that added keys

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        index = None if self.index is None else [r.to_json() for r in self.index]
        rule = {"val_fraction": self.val_fraction, "name": self.name, "rule": self.rule}
        return rule | present({"params": self.params, "index": index})

    @classmethod
    def from_json(cls, doc: dict) -> SplitRecord:
        """The record ``to_json`` wrote."""
        index = doc.get("index")
        return cls(
            val_fraction=doc["val_fraction"],
            name=doc["name"],
            rule=doc["rule"],
            params=doc.get("params"),
            index=None if index is None else [FileRecord.from_json(r) for r in index],
        )

    @classmethod
    def per_text(cls, val_fraction: float = 0.1) -> SplitRecord:
        """The split by the exact text's hash (``blake2b``): datasets from before the rule had a name.

        Args:
            val_fraction: the validation share.

        Returns:
            The record, without params or index.
        """
        return cls(val_fraction, "blake2b", SPLIT_RULES["blake2b"])

    def files(self) -> list[FileRecord]:
        """The band-key index files (``[]`` for a per-text rule)."""
        return list(self.index or [])


@dataclass(frozen=True)
class RowOrder:
    """``row_order``: how the rows sit in the shards (a seeded shuffle, ``dataset.shuffle``).

    A split's buckets are sized by rows (``bucket_rows``: sequences) or by the input bytes its rows come from
    (``bucket_bytes``: n-grams since 0.17, whose spill is in shuffle buckets); ``rule`` says which.
    """

    order: str
    seed: int
    bucket_rows: int | None
    rule: str
    bucket_bytes: int | None = None

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        doc = {"order": self.order, "seed": self.seed, "bucket_rows": self.bucket_rows, "rule": self.rule}
        return doc if self.bucket_bytes is None else {**doc, "bucket_bytes": self.bucket_bytes}

    @classmethod
    def from_json(cls, doc: dict) -> RowOrder:
        """The record ``to_json`` wrote."""
        rows, size = doc.get("bucket_rows"), doc.get("bucket_bytes")
        return cls(
            doc["order"],
            int(doc["seed"]),
            None if rows is None else int(rows),
            doc["rule"],
            None if size is None else int(size),
        )


@dataclass(frozen=True)
class Choice:
    """``choice``: the vectorizer family chosen (``vectorize.choice``) and the S and W numbers behind it."""

    requested: str
    chosen: str
    samples: int
    median_words_per_sample: float
    samples_per_word: float | None  # None: infinite (no words)
    threshold: float
    rule: str | None = None  # the guide's rule's pick; None in a choice recorded before it was
    why: str | None = None
    bakeoff: dict[str, Any] | None = None  # owner: ``vectorize.choice.decide`` (``train.bakeoff``'s evidence)

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        numbers: dict[str, Any] = {"samples": self.samples, "median_words_per_sample": self.median_words_per_sample}
        numbers |= {"samples_per_word": self.samples_per_word, "threshold": self.threshold}
        picks = {"requested": self.requested, "chosen": self.chosen, **numbers, "rule": self.rule, "why": self.why}
        return picks | present({"bakeoff": self.bakeoff})

    def reason(self) -> str:
        """Why this family, in the one wording prepare's log line, ``inspect`` and ``report.md`` share."""
        if self.requested != "auto":
            return f"forced by --vectorizer {self.requested}"
        if self.bakeoff:
            rows = self.bakeoff.get("train_rows")
            sample = f" on {rows} sample rows" if rows is not None else ""
            return f"the rule said {self.rule}; a bake-off{sample} decided: {self.bakeoff.get('why')}"
        return f"the guide's rule: sequence when S/W >= {self.threshold:g}"

    def numbers(self) -> str:
        """S, W and S/W in one phrase (S/W ``inf`` when the samples had no words)."""
        sw = "inf" if self.samples_per_word is None else f"{self.samples_per_word:.1f}"
        return f"S = {self.samples} samples, W = {self.median_words_per_sample:g} median words per sample, S/W = {sw}"

    def line(self) -> str:
        """The choice in one log line: the numbers, the family and why."""
        return f"{self.numbers()} -> {self.chosen} ({self.reason()})"

    @classmethod
    def from_json(cls, doc: dict) -> Choice:
        """From the manifest, or from ``vectorize.choice``'s record of the choice (the same keys)."""
        return cls(
            requested=doc["requested"],
            chosen=doc["chosen"],
            samples=doc["samples"],
            median_words_per_sample=doc["median_words_per_sample"],
            samples_per_word=doc["samples_per_word"],
            threshold=doc["threshold"],
            rule=doc["rule"],
            why=doc["why"],
            bakeoff=doc.get("bakeoff"),
        )


@dataclass(frozen=True)
class VectorizerRecord:
    """``vectorizer``: a copy of the dataset's ``vectorizer.json`` document (``vectorize.vectorizer``)."""

    format_version: int
    kind: str  # as the file says it (0.1 wrote "ngram_tfidf")
    config: dict[str, Any]  # owner: ``vectorize.tfidf.NgramConfig`` / ``vectorize.sequence.SequenceConfig``
    encoding: str | None  # None: not in the file (0.1)
    n_features: int
    labels: list[str]
    arrays: str  # the arrays file beside it
    arrays_sha256: str | None

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        kind = {"format_version": self.format_version, "kind": self.kind, "config": self.config}
        rows = present({"encoding": self.encoding}) | {"n_features": self.n_features, "labels": self.labels}
        return kind | rows | {"arrays": self.arrays, "arrays_sha256": self.arrays_sha256}

    @classmethod
    def from_json(cls, doc: dict) -> VectorizerRecord:
        """From the manifest, or from ``Vectorizer.save``'s document."""
        return cls(
            format_version=doc["format_version"],
            kind=doc["kind"],
            config=doc["config"],
            encoding=doc.get("encoding"),
            n_features=int(doc["n_features"]),
            labels=list(doc["labels"]),
            arrays=doc["arrays"],
            arrays_sha256=doc["arrays_sha256"],
        )


@dataclass(frozen=True)
class RefitOf:
    """``created.refit_of``: what a ``prepare --refit`` replaced."""

    created_at: str | None
    appends: int
    rows: dict[str, int]
    n_features: int
    new_inputs: list[str]

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        replaced = {"created_at": self.created_at, "appends": self.appends, "rows": self.rows}
        return replaced | {"n_features": self.n_features, "new_inputs": self.new_inputs}

    @classmethod
    def from_json(cls, doc: dict) -> RefitOf:
        """The record ``to_json`` wrote."""
        rows = {split: int(n) for split, n in doc["rows"].items()}
        return cls(doc["created_at"], int(doc["appends"]), rows, int(doc["n_features"]), list(doc["new_inputs"]))


@dataclass(frozen=True)
class Created:
    """``created``: the tool and time that made the dataset, and the effective prepare options."""

    tool: str | None = None  # None: not recorded
    at: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # owner: ``dataset.options`` (``options.effective``)
    refit_of: RefitOf | None = None
    legacy: dict[str, Any] = field(default_factory=dict)  # keys only an older release wrote (0.1: argv, columns)

    def to_json(self) -> dict:
        """This record as the manifest's JSON."""
        refit_of = None if self.refit_of is None else self.refit_of.to_json()
        made = {"tool": self.tool, "at": self.at, "options": self.options}
        return made | present({"refit_of": refit_of}) | self.legacy

    @classmethod
    def from_json(cls, doc: dict) -> Created:
        """The record ``to_json`` wrote."""
        known = {"tool", "at", "options", "refit_of"}
        refit_of = doc.get("refit_of")
        return cls(
            tool=doc["tool"],
            at=doc["at"],
            options=dict(doc["options"]),
            refit_of=None if refit_of is None else RefitOf.from_json(refit_of),
            legacy={k: v for k, v in doc.items() if k not in known},
        )
