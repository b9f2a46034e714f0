"""The dataset manifest: ``manifest.json``, written last, the single source of truth.

It records how the rows were made (vectorizer files, label map, split rule
and its band-key index, input sources with their size and sha256), every
append, and for every shard its split, path, rows, bytes and sha256. Step
counts for ``fit`` come from here, never from opening shards; a directory
without a manifest is not a dataset (``is_dataset``). Every path it names is
relative to the dataset directory and stays inside it (``outside``, refused
by ``load``). Replacing it is an append's commit point: an append never
touches a file an older manifest lists.

Who owns what: ``Manifest`` holds the typed parts (``dataset.records``: how
the rows were made and the files besides the shards; ``dataset.counts``:
sources, appends, stats), writes format version ``FORMAT_VERSION``
(``to_json``), reads every older one through ``dataset.formats`` (``load``)
and checks the files against itself (``problems``, ``check_shard``).
``ModelInputs`` is what the rows are to a model.

The keys: docs/reference.md; the commit point: docs/design/nightly.md
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streamtrain.dataset import formats
from streamtrain.dataset.counts import Append, Source, Stats
from streamtrain.dataset.formats import FORMAT, FORMAT_VERSION
from streamtrain.dataset.records import (
    Choice,
    Created,
    FeatureNamesRecord,
    FileRecord,
    RowOrder,
    SplitRecord,
    ValSampleRecord,
    VectorizerRecord,
    part,
    part_json,
)
from streamtrain.dataset.shards import ShardInfo
from streamtrain.errors import DataError
from streamtrain.fs.checksums import check_once, file_problem, size_problem
from streamtrain.fs.jsondoc import write_json

MANIFEST_NAME = "manifest.json"


def is_dataset(directory: str | Path) -> bool:
    """Whether ``directory`` holds a streamtrain dataset's manifest (what ``prepare --overwrite`` may replace).

    Args:
        directory: any path.

    Returns:
        True when its ``manifest.json`` is a regular file (not a symlink) holding a JSON object of this format.
    """
    path = Path(directory) / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        return False
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


@dataclass(frozen=True)
class ModelInputs:
    """What a dataset's rows are to a model (fit builds its model from these and its own options).

    ``train`` hears them from its prepare child as soon as they are known
    (``prepare``'s ``announce``), before the shards are written, and builds
    the model meanwhile; fit then checks them against the manifest
    (``Manifest.model_inputs``).
    """

    encoding: str  # "ngram" or "sequence"
    n_features: int  # TF-IDF columns, or token ids including padding 0
    row_width: int  # columns of a stored row: n_features for TF-IDF, the sequence length for tokens
    n_classes: int

    def to_json(self) -> dict:
        """The four numbers as a JSON object (what ``train`` hears from its prepare child)."""
        return {
            "encoding": self.encoding,
            "n_features": self.n_features,
            "row_width": self.row_width,
            "n_classes": self.n_classes,
        }

    @classmethod
    def from_json(cls, doc: dict) -> ModelInputs:
        """The record ``to_json`` wrote."""
        return cls(str(doc["encoding"]), int(doc["n_features"]), int(doc["row_width"]), int(doc["n_classes"]))


@dataclass
class Manifest:
    """A dataset's manifest: how its rows were made, its files, inputs, appends and statistics.

    Its typed parts are ``dataset.records``' and ``dataset.counts``'; ``None`` for a part the dataset lacks.
    """

    shard_format: str
    encoding: str  # "ngram" (sparse TF-IDF rows) or "sequence" (fixed-width token ids)
    n_features: int  # TF-IDF columns, or token ids including padding 0
    labels: list[str]
    vectorizer: VectorizerRecord  # the vectorizer.json document
    shards: list[ShardInfo]
    split: SplitRecord = field(default_factory=SplitRecord.per_text)  # split rule and its parameters
    sources: list[Source] = field(default_factory=list)  # inputs and the row ids they got
    stats: Stats = field(default_factory=Stats)  # rows per split and class, samples / words
    created: Created = field(default_factory=Created)  # tool version, time, options
    sequence_length: int | None = None  # width of token rows (sequence encoding)
    choice: Choice | None = None  # the vectorizer choice and the S/W numbers behind it
    row_order: RowOrder | None = None  # how rows were ordered in the shards (seeded shuffle)
    val_sample: ValSampleRecord | None = None  # the validation sample's file record (None when none)
    appends: list[Append] = field(default_factory=list)  # one entry per ``prepare --append``, oldest first
    feature_names: FeatureNamesRecord | None = None  # the n-gram feature names file's record (None when none)
    read_from_version: int = field(default=FORMAT_VERSION, compare=False)  # the format ``load`` read; not written

    @property
    def row_width(self) -> int:
        """Columns of a stored row: features for TF-IDF, tokens for sequences."""
        if self.encoding == "sequence":
            assert self.sequence_length is not None, "a sequence manifest records its sequence length"
            return self.sequence_length
        return self.n_features

    @property
    def model_inputs(self) -> ModelInputs:
        """What the dataset's rows are to a model: encoding, features, row width, classes."""
        return ModelInputs(self.encoding, self.n_features, self.row_width, len(self.labels))

    def shards_for(self, split: str) -> list[ShardInfo]:
        """The shards of ``split`` (``"train"``, ``"val"`` or ``"test"``), in manifest order."""
        return [s for s in self.shards if s.split == split]

    def rows(self, split: str) -> int:
        """Rows of ``split``, summed over its shards."""
        return sum(s.rows for s in self.shards_for(split))

    def summary(self, directory: str | Path) -> dict:
        """What prepare prints: where the dataset is and what it holds.

        Args:
            directory: the dataset directory, as given.

        Returns:
            A JSON object: the directory, rows per split, encoding, choice, features, classes, shard format,
            shard and append counts.
        """
        return {
            "data": str(Path(directory)),
            "rows": self.stats.rows,
            "encoding": self.encoding,
            "choice": part_json(self.choice),
            "features": self.n_features,
            "classes": self.labels,
            "shard_format": self.shard_format,
            "shards": len(self.shards),
            "appends": len(self.appends),
        }

    def to_json(self) -> dict:
        """The document ``save`` writes: always format version ``FORMAT_VERSION``."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": self.created.to_json(),
            "shard_format": self.shard_format,
            "encoding": self.encoding,
            "n_features": self.n_features,
            "sequence_length": self.sequence_length,
            "labels": self.labels,
            "vectorizer": self.vectorizer.to_json(),
            "choice": part_json(self.choice),
            "split": self.split.to_json(),
            "row_order": part_json(self.row_order),
            "sources": [s.to_json() for s in self.sources],
            "stats": self.stats.to_json(),
            "val_sample": part_json(self.val_sample),
            "appends": [a.to_json() for a in self.appends],
            "feature_names": part_json(self.feature_names),
            "shards": [s.to_json() for s in self.shards],
        }

    @classmethod
    def from_json(cls, doc: dict, read_from_version: int = FORMAT_VERSION) -> Manifest:
        """The manifest of a version ``FORMAT_VERSION`` document (``formats.current`` upgrades an older one first).

        Args:
            doc: the parsed document.
            read_from_version: the version the file had, kept as ``read_from_version``.

        Returns:
            The manifest.

        Raises:
            KeyError: a key is missing (``load`` turns this and the like into ``DataError``).
        """
        return cls(
            shard_format=doc["shard_format"],
            encoding=doc["encoding"],
            n_features=int(doc["n_features"]),
            labels=list(doc["labels"]),
            vectorizer=VectorizerRecord.from_json(doc["vectorizer"]),
            shards=[ShardInfo.from_json(s) for s in doc["shards"]],
            split=SplitRecord.from_json(doc["split"]),
            sources=[Source.from_json(s) for s in doc["sources"]],
            stats=Stats.from_json(doc["stats"]),
            created=Created.from_json(doc["created"]),
            sequence_length=doc["sequence_length"],
            choice=part(doc["choice"], Choice.from_json),
            row_order=part(doc["row_order"], RowOrder.from_json),
            val_sample=part(doc["val_sample"], ValSampleRecord.from_json),
            appends=[Append.from_json(a) for a in doc["appends"]],
            feature_names=part(doc["feature_names"], FeatureNamesRecord.from_json),
            read_from_version=read_from_version,
        )

    def save(self, directory: str | Path) -> None:
        """Replace ``directory/manifest.json`` atomically (``fs.jsondoc.write_json``) with ``to_json()``."""
        write_json(Path(directory) / MANIFEST_NAME, self.to_json())

    @classmethod
    def load(cls, directory: str | Path, checked: bool = True) -> Manifest:
        """The manifest of ``directory``, of any format version ``formats`` reads.

        Args:
            directory: the dataset directory.
            checked: also refuse a path that is ``outside`` the directory and a missing shard (``verify``
                loads unchecked and lists every problem).

        Returns:
            The manifest, upgraded in memory to ``FORMAT_VERSION``.

        Raises:
            DataError: no manifest, a corrupt one, an unsupported format or version, or (``checked``) a path
                outside the directory or a missing shard.
        """
        path = Path(directory) / MANIFEST_NAME
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DataError("no manifest: not a prepared dataset (or prepare did not finish)", str(path)) from exc
        except json.JSONDecodeError as exc:
            raise DataError(f"corrupt manifest: {exc}", str(path)) from exc
        doc, version = formats.current(doc, str(path))
        try:
            manifest = cls.from_json(doc, version)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"corrupt manifest: a key is missing or malformed ({exc!r})", str(path)) from exc
        if not checked:
            return manifest
        if outside := manifest.outside(directory):
            raise DataError(f"the manifest names a file outside the dataset directory: {outside[0]}", str(path))
        for shard in manifest.shards:
            if not (Path(directory) / shard.path).is_file():
                raise DataError(f"shard listed in the manifest is missing: {shard.path}", str(path))
        return manifest

    def paths(self) -> list[str]:
        """Every file path the manifest names.

        Returns:
            The shards', the vectorizer arrays', the validation sample's, the feature names' and the split
            index files' paths, relative to the dataset directory as recorded.
        """
        records = [self.val_sample, self.feature_names, *self.split_index()]
        return [s.path for s in self.shards] + [self.vectorizer.arrays] + [r.path for r in records if r is not None]

    def outside(self, directory: str | Path) -> list[str]:
        """The ``paths`` that do not resolve inside ``directory``: none of them is ever read.

        Args:
            directory: the dataset directory.

        Returns:
            Each path that is absolute, climbs out (``../x.h5``) or leads out through a symlink.
        """
        root = os.path.realpath(directory)
        out = []
        for path in self.paths():
            relative = isinstance(path, str) and path and not os.path.isabs(path) and ".." not in Path(path).parts
            if not relative or not os.path.realpath(os.path.join(root, path)).startswith(root + os.sep):
                out.append(str(path))
        return out

    def problems(self, directory: str | Path) -> list[str]:
        """Every way the dataset on disk differs from this manifest (every file read in full, bounded memory).

        Args:
            directory: the dataset directory.

        Returns:
            One line each: first the ``outside`` paths (not read), then the shards, the ``state_problems`` and
            the feature names file (which only ``inspect`` reads: a damaged one does not stop an append).
        """
        root, outside = Path(directory), self.outside(directory)
        out = [f"{p}: outside the dataset directory (a manifest path must stay inside it)" for p in outside]
        shards = [s for s in self.shards if s.path not in outside]
        out += [f"{s.path}: {p}" for s in shards if (p := file_problem(root / s.path, s.bytes, s.sha256))]
        out += self.state_problems(directory, skip=outside)
        names = self.feature_names
        if names is not None and names.path not in outside and (problem := names.problem(root)):
            out.append(f"{names.path}: {problem}")
        return out

    def split_index(self) -> list[FileRecord]:
        """The file records of the split's band-key index (``[]`` for a per-text rule)."""
        return self.split.files()

    def state_problems(self, directory: str | Path, skip: Sequence[str] = ()) -> list[str]:
        """``problems`` of the files an append reads besides the shards.

        Args:
            directory: the dataset directory.
            skip: paths not to read.

        Returns:
            One line per problem of the vectorizer arrays, the validation sample and the split index files.
        """
        root, out = Path(directory), []
        arrays = self.vectorizer.arrays
        if arrays not in skip and (problem := file_problem(root / arrays, None, self.vectorizer.arrays_sha256)):
            out.append(f"{arrays}: {problem}")
        records = [r for r in [self.val_sample, *self.split_index()] if r is not None and r.path not in skip]
        out += [f"{r.path}: {p}" for r in records if (p := r.problem(root))]
        return out

    def verify(self, directory: str | Path) -> None:
        """Check every file against the manifest.

        Args:
            directory: the dataset directory.

        Raises:
            DataError: naming the first problem ``problems`` finds.
        """
        problems = self.problems(directory)
        if problems:
            raise DataError(f"dataset does not match its manifest: {problems[0]}", str(directory))

    def check_shards(self, directory: str | Path, splits: Sequence[str] = ("train", "val", "test")) -> None:
        """``check_shard`` for every shard of ``splits``: a damaged dataset fails before any work on it.

        Args:
            directory: the dataset directory.
            splits: the splits whose shards to check.

        Raises:
            DataError: a shard's size or sha256 differs from its record.
        """
        for split in splits:
            for shard in self.shards_for(split):
                self.check_shard(directory, shard)

    def check_sizes(self, directory: str | Path) -> None:
        """Every shard's size against its record (a ``stat`` each): a truncated or missing shard fails at once.

        ``check_shards`` hashes them too; this is what fit can tell before it imports TensorFlow.

        Args:
            directory: the dataset directory.

        Raises:
            DataError: a shard is missing or its size differs from its record, as ``check_shard`` says it.
        """
        for shard in self.shards:
            path = Path(directory) / shard.path
            if problem := size_problem(path, shard.bytes):
                raise _damaged(path, problem)

    def check_shard(self, directory: str | Path, shard: ShardInfo) -> None:
        """Check a shard's size and sha256 against the manifest before its first read in this process.

        A file that matched before in this process and has not changed since passes at once
        (``fs.checksums.check_once``).

        Args:
            directory: the dataset directory.
            shard: the shard's record.

        Raises:
            DataError: the file differs from its record or is missing.
        """
        path = Path(directory) / shard.path
        problem = check_once(path, shard.bytes, shard.sha256)
        if problem:
            raise _damaged(path, problem)


def _damaged(path: Path, problem: str) -> DataError:
    """The error for a shard that differs from its record, as ``check_sizes`` and ``check_shard`` raise it."""
    return DataError(f"shard {problem} (the dataset is damaged: prepare it again)", str(path))
