"""What a prepare is asked to do: ``PrepareOptions``, and the hooks a caller passes to ``prepare``.

``PrepareOptions`` holds the command line's options and the library-only
knobs, and derives the small records the stages take from them
(``read_spec`` for the passes, ``layout`` for the shard writers, ``ngram``
and ``sequence`` for the vectorizers). ``recorded_options`` gives an append
or a refit the options its dataset was prepared with (``RECORDED``);
``existing`` loads that dataset's manifest. ``Announce`` and ``Bakeoff``
are the hooks; ``Bakeoff`` is the family bake-off's signature: the
application layer (``streamtrain.prepare``, the CLI) passes
``train.bakeoff.bakeoff``; ``dataset/`` never imports ``train/``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamtrain.dataset.bucket_shuffle import BUCKET_ROWS
from streamtrain.dataset.manifest import MANIFEST_NAME, Manifest, ModelInputs
from streamtrain.dataset.parallel import CLUSTER_EXTRA
from streamtrain.dataset.passes import ReadSpec
from streamtrain.dataset.shards import FORMATS
from streamtrain.dataset.shuffled import ShardLayout
from streamtrain.dataset.val_sample import ValSample
from streamtrain.errors import UsageError
from streamtrain.io.readers import Column, ColumnSpec, Portion
from streamtrain.io.rejects import MAX_FIELD_BYTES
from streamtrain.options import FRACTION, POSITIVE, SECONDS, SHARE, option
from streamtrain.vectorize.choice import VECTORIZERS, ChoiceSample
from streamtrain.vectorize.defaults import HASH_BUCKETS, MAX_LENGTH, MIN_DF, NGRAM_TOP_K, SW_THRESHOLD, TOP_K
from streamtrain.vectorize.ngrams import HASHER
from streamtrain.vectorize.sequence import CODEPOINT, SequenceConfig
from streamtrain.vectorize.split import DEFAULT_RULE
from streamtrain.vectorize.tfidf import DocFreq, NgramConfig, auto_min_df

log = logging.getLogger(__name__)
# ``prepare``'s ``announce``: told the dataset's model inputs before its shards are written; told again, with the
# sequences', when the bake-off chose them after the n-gram stage ran ahead (``dataset.choosing``): the last
# call is the dataset's.
Announce = Callable[[ModelInputs], None]


@dataclass(frozen=True)
class BakeoffRequest:
    """What a bake-off measures when the guide's rule says sequences under ``--vectorizer auto``.

    Attributes:
        choice: ``vectorize.choice.choose_vectorizer``'s record.
        sample: the first pass's labelled training rows (``ChoiceSample``).
        val_sample: the first pass's validation sample.
        label_names: the final label names.
        remap: the first pass's provisional label id -> final id (``LabelIndex.finalize``).
        ngram: the n-gram family's configuration.
        sequence: the sequence family's configuration.
        seed: the run's seed.
    """

    choice: dict
    sample: ChoiceSample
    val_sample: ValSample
    label_names: list[str]
    remap: np.ndarray
    ngram: NgramConfig
    sequence: SequenceConfig
    seed: int


# A bake-off (``train.bakeoff.bakeoff``, passed in by the application layer), started by the call: a context whose
# future answers the request's choice decided by measuring both families (``vectorize.choice.decide``'s record);
# leaving it ends a bake-off that still runs. prepare writes n-grams meanwhile (``dataset.choosing``).
Bakeoff = Callable[[BakeoffRequest], AbstractContextManager[Future]]


def column(value: str) -> Column:
    """A column given on the command line.

    Args:
        value: the option's text.

    Returns:
        A 0-based index if ``value`` is all digits, else ``value`` itself, a header name.
    """
    return int(value) if value.isdigit() else value


@dataclass(kw_only=True)
class PrepareOptions:
    """The options of ``streamtrain prepare`` (each field's ``help`` is its ``--help`` line) and library knobs."""

    inputs: list[str] = option(
        factory=list,
        positional=True,
        metavar="INPUT",
        path=True,
        help="training inputs: CSV/TSV/JSONL/Parquet files (.gz allowed), or directories of a sub-directory per class",
    )
    data: str = option(path=True, metavar="DIR", deprecated="--out", help="the dataset directory to write")
    test: list[str] = option(
        factory=list, nargs="+", metavar="INPUT", path=True, help="held-out test inputs (same formats)"
    )
    format: str = option("hdf5", choices=FORMATS, help="shard file format")
    vectorizer: str = option(
        "auto",
        choices=VECTORIZERS,
        help="ngram (TF-IDF of word 1-2-grams), sequence (token ids), or auto: the guide's rule, "
        f"sequence when samples / median words per sample >= {SW_THRESHOLD:g}",
    )
    max_length: int = option(MAX_LENGTH, **POSITIVE, help="sequence: longest token sequence kept")
    val_fraction: float = option(
        0.1,
        **FRACTION,
        help=f"share of the training rows held out for validation, by the split rule ({DEFAULT_RULE}: a row that "
        "nearly copies an earlier one gets its split, so near-copies stay on one side)",
    )
    shard_rows: int = option(20_000, **POSITIVE, help="rows per shard file")
    block_rows: int = option(1024, **POSITIVE, help="rows per block, the unit of shuffled reads")
    seed: int = option(0, help="seed of the shards' random row order")
    text_column: list[Column] = option(
        factory=lambda: ["text"],
        parse=column,
        metavar="NAME|INDEX",
        help="text column, by header name or 0-based index; repeat to join several",
    )
    label_column: Column = option("label", parse=column, metavar="NAME|INDEX", help="label column")
    header: bool | None = option(
        None, help="CSV/TSV files have a header row (when unset: yes, unless every column is given by index)"
    )
    top_k: int | None = option(
        None,
        **POSITIVE,
        help=f"n-gram features kept (by F-value), or tokens kept (by frequency); unset: {NGRAM_TOP_K:,} n-grams, "
        f"{TOP_K:,} tokens",
    )
    min_df: int | None = option(
        None,
        **POSITIVE,
        help=f"n-grams: minimum document frequency; unset: 1 when the n-grams seen in training fit in --top-k, "
        f"else {MIN_DF}",
    )
    hash_buckets: int = option(
        HASH_BUCKETS, **POSITIVE, help="hash space of n-gram and token statistics; fixes prepare's memory"
    )
    max_field_bytes: int = option(
        MAX_FIELD_BYTES, **POSITIVE, help="a longer record, line or document is rejected (bounds prepare's memory)"
    )
    max_bad_fraction: float = option(
        0.01,
        **SHARE,
        help="fail (exit 65, the previous dataset untouched) when a larger share of the rows read is rejected",
    )
    overwrite: bool = option(False, help="replace --data if it exists")
    append: bool = option(
        False,
        help="add the INPUTs (and --test inputs) to the existing dataset --data as new shards, vectorized with its "
        "frozen vectorizer and label map and read with its recorded column, split and shard options; an input "
        "already ingested (same size and sha256) is skipped, of a directory ingested before only its new files are "
        "read, of a file that grew only what follows its ingested part; an ingested part that changed: exit 65",
    )
    refit: bool = option(
        False,
        help="rebuild --data from every input it recorded (each once, as it is now) plus any new INPUTs and --test "
        "inputs, fitting a new vectorizer and label map with its recorded options; replaces --data",
    )
    wait: float = option(
        0.0,
        **SECONDS,
        help="seconds to wait for another run holding the dataset's lock (or, when replacing it, for its readers) "
        "before exiting 75",
    )
    jobs: int | None = option(
        None,
        **POSITIVE,
        help="worker threads that tokenize and hash; unset: one per core. The dataset is the same bytes for any number",
    )
    scheduler: str | None = option(
        None,
        metavar="ADDRESS",
        help="tokenize and hash on the workers of the Dask scheduler at ADDRESS (tcp://HOST:8786) instead of local "
        "threads (not with --jobs); this process still reads the inputs and writes the dataset, the same bytes. "
        "Needs " + CLUSTER_EXTRA,
    )
    # Library-only knobs: not on the command line.
    chunk_rows: int = 4096  # raw rows read at a time
    bucket_rows: int = BUCKET_ROWS  # rows per shuffle bucket
    split_rule: str = DEFAULT_RULE  # ``vectorize.split.SPLIT_RULES``; an append or refit keeps its dataset's
    portions: dict[str, Portion] = field(default_factory=dict)  # by input path: the part read (an append's)

    def columns(self) -> ColumnSpec:
        """The text and label columns and the header setting, as the readers take them."""
        return ColumnSpec(tuple(self.text_column), self.label_column, self.header)

    def every_input(self) -> list[tuple[str, str]]:
        """``(role, path)`` of every input, training inputs (``"train"``) first, then ``"test"``."""
        return [("train", str(p)) for p in self.inputs] + [("test", str(p)) for p in self.test]

    def read_spec(self) -> ReadSpec:
        """What the passes over the raw inputs read, and how (the same for every pass of a run)."""
        return ReadSpec(
            tuple(self.every_input()),
            self.columns(),
            self.chunk_rows,
            self.max_field_bytes,
            self.val_fraction,
            self.portions,
        )

    def layout(self) -> ShardLayout:
        """How the shards are laid out: format, rows per shard, per block and per shuffle bucket."""
        return ShardLayout(self.format, self.shard_rows, self.block_rows, self.bucket_rows)

    def ngram(self, doc_freq: DocFreq | None = None) -> NgramConfig:
        """The n-gram vectorizer's configuration.

        Args:
            doc_freq: the training rows' document frequencies, which decide an unset ``min_df``
                (``tfidf.auto_min_df``); None (the first pass, which only hashes): ``MIN_DF`` stands in.

        Returns:
            The configuration (``top_k`` unset: ``NGRAM_TOP_K``).
        """
        top_k = self.top_k or NGRAM_TOP_K
        min_df = self.min_df or (MIN_DF if doc_freq is None else auto_min_df(doc_freq, top_k))
        return NgramConfig(
            top_k=top_k,
            min_df=min_df,
            hash_buckets=self.hash_buckets,
            hasher=HASHER,
            sublinear_tf=True,
        )

    def sequence(self) -> SequenceConfig:
        """The sequence vectorizer's configuration (``top_k`` unset: ``TOP_K``)."""
        return SequenceConfig(
            top_k=self.top_k or TOP_K,
            max_length=self.max_length,
            hash_buckets=self.hash_buckets,
            lowercase=CODEPOINT,  # the tokenizer a serving graph repeats (serve.graph); old datasets: their own
        )


# Options that shape the rows of a dataset: an append or a refit takes them from the manifest, never from its own
# command line, which sets only the inputs and the run's policy (--max-bad-fraction, --wait, --jobs, --scheduler).
RECORDED = (
    "format",
    "vectorizer",
    "max_length",
    "val_fraction",
    "shard_rows",
    "block_rows",
    "seed",
    "text_column",
    "label_column",
    "header",
    "top_k",
    "min_df",
    "hash_buckets",
    "max_field_bytes",
)


def existing(data: str | Path, mode: str) -> Manifest:
    """The manifest of the dataset that ``--append``/``--refit`` works on.

    Args:
        data: the dataset directory.
        mode: ``"--append"`` or ``"--refit"``, for the message.

    Returns:
        Its manifest.

    Raises:
        UsageError: ``data`` holds no manifest.
        DataError: the manifest is unreadable or names a missing shard (``Manifest.load``).
    """
    if not (Path(data) / MANIFEST_NAME).is_file():
        raise UsageError(
            f"{mode} needs an existing dataset, and {data} is not one (no {MANIFEST_NAME}): prepare it first"
        )
    return Manifest.load(data)


def recorded_options(manifest: Manifest, opts: PrepareOptions, **changes: Any) -> PrepareOptions:
    """``opts`` with the dataset's recorded ``RECORDED`` options and its split rule.

    A value of ``opts`` that differs from the recorded one and from the default is warned about, and ignored.

    Args:
        manifest: the dataset's manifest (``created.options``, ``shard_format``, ``split.name``).
        opts: this run's options.
        **changes: further fields to replace (an append's inputs and portions, a refit's ``overwrite``).

    Returns:
        A copy of ``opts``; ``split_rule`` is the dataset's (``blake2b`` for one made before rules had names).
    """
    recorded = manifest.created.options
    defaults = PrepareOptions(data=opts.data)
    values = {}
    for name in RECORDED:
        given = getattr(opts, name)
        value = recorded.get(name, given)
        if name == "format":
            value = manifest.shard_format
        if given != value and given != getattr(defaults, name):
            log.warning(
                f"--{name.replace('_', '-')} {given!r} is ignored: {opts.data} was prepared with {value!r}, "
                "and an append or a refit keeps the dataset's options"
            )
        values[name] = value
    # Datasets made before the rule had a name split by the exact text's hash (``formats``); their appends still do.
    values["split_rule"] = manifest.split.name
    return dataclasses.replace(opts, **values, **changes)
