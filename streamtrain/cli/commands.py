"""The table of commands (``COMMANDS``): for each, its options class, the library call it makes, and what it prints.

stdout carries only a command's result: one JSON document, but one JSON line per input line for predict and
aligned text for ``inspect`` without ``--json``. Options classes are imported lazily, so ``--help`` never
loads TensorFlow, and ``prepare``, ``verify``, ``promote`` and ``inspect`` load it only when their work needs
it (prepare's vectorizer bake-off, promote's export of an old version to ``--serving-dir``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamtrain.fs.jsondoc import dumps


@dataclass(frozen=True)
class Command:
    """One command of ``COMMANDS``: its help texts, its options class and what it runs."""

    summary: str  # one line, for ``streamtrain --help``
    description: str  # plain text, for ``streamtrain CMD --help``
    options: Callable[[], type]
    run: Callable[..., None]  # prints the result of the library call on an options object (and ``Common``)
    with_common: bool = False  # ``run`` also takes the common flags (verbosity, log format)
    borrow: tuple[str, ...] = ()  # other commands whose config-file tables apply to this one


def _options(module: str, name: str) -> Callable[[], type]:
    """The options class ``module.name``, imported only when asked for (``--help`` never loads TensorFlow)."""
    return lambda: getattr(importlib.import_module(module), name)


def _prepare(opts: Any) -> None:
    from streamtrain.cli.train import Announcer
    from streamtrain.prepare import prepare  # the dataset's prepare, with the family bake-off

    announcer = Announcer.from_env()  # run by ``train``: it builds the model meanwhile
    try:
        manifest = prepare(opts, announce=announcer)
    finally:
        if announcer is not None:
            announcer.close()  # before the result: train reads the pipe first
    print(dumps(manifest.summary(opts.data)))


def _fit(opts: Any) -> None:
    from streamtrain.errors import NotPromoted
    from streamtrain.train.fit import fit

    refused: NotPromoted | None = None
    try:
        result = fit(opts)
    except NotPromoted as exc:  # a version was made and kept: print it like any other, then exit 3
        result, refused = exc.result, exc
    if "worker" in result:  # a worker other than the chief of a multi-worker fit: the chief prints the result
        return
    print(dumps({k: v for k, v in result.items() if k != "test_confusion"}))
    if refused is not None:
        raise refused


def _train(opts: Any, common: Any) -> None:
    from streamtrain.cli.train import run
    from streamtrain.errors import NotPromoted

    refused: NotPromoted | None = None
    try:
        result = run(opts, common)
    except NotPromoted as exc:  # fit kept a version but did not promote it: print both results, then exit 3
        result, refused = exc.result, exc
    result["fit"] = {k: v for k, v in result["fit"].items() if k != "test_confusion"}
    print(dumps(result))
    if refused is not None:
        raise refused


def _train_options() -> type:
    from streamtrain.cli.train import train_options

    return train_options()


def _evaluate(opts: Any) -> None:
    from streamtrain.train.evaluate import evaluate

    print(dumps(evaluate(opts), compact_rows=True))


def _predict(opts: Any) -> None:
    from streamtrain.train.predict import predict

    out = sys.stdout
    for result in predict(opts):
        out.write(dumps(result, indent=None) + "\n")


def _verify(opts: Any) -> None:
    from streamtrain.verify import verify

    print(dumps(verify(opts)))


def _promote(opts: Any) -> None:
    from streamtrain.train.promote import promote

    print(dumps(promote(opts)))


def _export(opts: Any) -> None:
    from streamtrain.train.export import export

    print(dumps(export(opts)))


def _inspect(opts: Any) -> None:
    from streamtrain.inspect import inspect, render_text

    result = inspect(opts)
    if opts.json:
        print(dumps(result))
    else:
        sys.stdout.write(render_text(result))


COMMANDS: dict[str, Command] = {
    "prepare": Command(
        "raw labelled text -> vectorized shards + manifest.json (a dataset directory)",
        "Read raw labelled text (CSV/TSV, JSONL, Parquet, a directory per class; plain or gzip) in chunks,\n"
        "vectorize it (TF-IDF word n-grams or token-id sequences) and write HDF5 or Parquet shards and a\n"
        "manifest into --data. Prints a JSON summary of the dataset.",
        _options("streamtrain.dataset.prepare", "PrepareOptions"),
        _prepare,
    ),
    "fit": Command(
        "dataset directory -> trained model directory",
        "Stream a prepared dataset's shards into Keras and write a new version of the model directory\n"
        "(--model-dir/versions/ID: the model, its vectorizer, metrics, history, options and the promotion\n"
        "decision). The promotion guard makes it --model-dir/current unless its validation accuracy is\n"
        "worse than current's by more than --max-regression (then exit 3). A killed fit rerun with the same\n"
        "options resumes from its last checkpoint: the end of an epoch, or inside one the step it had reached\n"
        "at its last --checkpoint-seconds checkpoint. Prints the metrics and the decision as JSON.",
        _options("streamtrain.train.fit", "FitOptions"),
        _fit,
    ),
    "train": Command(
        "prepare, then fit: raw text -> dataset -> new model version, one command (the nightly job)",
        "prepare --data from the INPUTs (or --append them), then fit a new version of --model-dir on it: the\n"
        "options of both commands, one --data, --seed and --wait for both. prepare runs as a child process\n"
        "while TensorFlow loads for fit, so this is faster than the two commands. A failed prepare exits\n"
        "with its code and fit does not run. Prints one JSON document: the results of prepare and of fit.",
        _train_options,
        _train,
        with_common=True,
        borrow=("prepare", "fit"),
    ),
    "evaluate": Command(
        "score a model directory on a dataset's splits",
        "Score a model directory on splits of a prepared dataset vectorized like the model. Prints JSON:\n"
        "SPLIT_accuracy, SPLIT_loss, SPLIT_rows and SPLIT_confusion (rows: true class, columns: predicted).",
        _options("streamtrain.train.evaluate", "EvaluateOptions"),
        _evaluate,
    ),
    "predict": Command(
        "raw text in, one JSON line of label and probabilities per input line out",
        "Classify raw text with a model directory: one text per line, or JSON lines with the text in\n"
        "--text-field; a file (.gz allowed) or - for standard input. Prints one JSON line per input line,\n"
        'in order: {"label": ..., "probabilities": {label: p}}.',
        _options("streamtrain.train.predict", "PredictOptions"),
        _predict,
    ),
    "verify": Command(
        "check a dataset or model directory completely against its checksums",
        "Check every file of a dataset directory (against manifest.json) or a model directory (against\n"
        "checksums.json): size and sha256. Exit 0 and a JSON summary when all match; exit 65 and one line\n"
        "per problem otherwise.",
        _options("streamtrain.verify", "VerifyOptions"),
        _verify,
    ),
    "promote": Command(
        "point a model directory's current at a version (also the rollback)",
        "Point MODEL_DIR/current at VERSION, a complete version under MODEL_DIR/versions/ (streamtrain inspect\n"
        "lists them), atomically and under the model directory's lock, after checking the version's checksums.\n"
        "Use it to roll back, or to replace a current that fit cannot load. The switch is appended to\n"
        "MODEL_DIR/promotions.jsonl; no version's files change; with --serving-dir the version's SavedModel is\n"
        "also written there as the next N. Prints JSON: current, previous.",
        _options("streamtrain.train.promote", "PromoteOptions"),
        _promote,
    ),
    "export": Command(
        "write a version's SavedModel (raw text in, probabilities out) to a new directory",
        "Write the TensorFlow SavedModel of MODEL_DIR's current version (or --version) to --out: the vectorizer\n"
        "runs inside its graph, so it takes raw text (serving_default: text string [None] -> probabilities,\n"
        "label, classes) and loads with tf.saved_model.load or TensorFlow Serving alone. Versions made by fit\n"
        "since 0.12 hold one (saved_model/); an older version is exported from its model and vectorizer.\n"
        "Prints JSON: the version and where it was written.",
        _options("streamtrain.train.export", "ExportOptions"),
        _export,
    ),
    "inspect": Command(
        "show what a dataset or model directory holds (--json for scripts)",
        "Show a dataset directory (splits: rows, shards, bytes; class balance; the vectorizer choice and its\n"
        "numbers; rejected rows by reason; appends and their drift; the validation sample; for n-grams the top\n"
        "features of each class as n-gram strings) or a model directory (versions oldest first, current, each\n"
        "one's metrics, promotion decision and warm start; versions still being trained). Reads only JSON\n"
        "records, never shards or models. Prints aligned text, or one JSON document with --json.",
        _options("streamtrain.inspect", "InspectOptions"),
        _inspect,
    ),
}
