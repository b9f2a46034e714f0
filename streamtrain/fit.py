"""``python -m streamtrain.fit``: stream a prepared dataset into Keras ``fit`` and write a model directory.

Training rows reach the model through ``BatchStream.forever`` (reshuffled
every epoch, every row exactly once per epoch); ``steps_per_epoch`` and
``validation_steps`` come from the manifest. Early stopping watches the
validation loss and restores the best weights. Final metrics are computed
by the same streaming scorer that ``evaluate`` uses. The model follows the
dataset's encoding unless ``--model`` says otherwise: the MLP for TF-IDF
rows, sepCNN for token sequences.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from streamtrain.atomic import check_target  # noqa: E402
from streamtrain.errors import DataError, UsageError, run_cli  # noqa: E402
from streamtrain.manifest import Manifest  # noqa: E402


@dataclass
class FitOptions:
    data: str
    model_dir: str
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    patience: int = 2
    seed: int = 0
    units: int = 64
    layers: int = 2
    dropout: float | None = None  # None: DEFAULT_DROPOUT of the model
    model: str = "auto"
    blocks: int = 2
    filters: int = 64
    embedding_dim: int = 200
    buffer_blocks: int = 8
    overwrite: bool = False
    verbose: int = 2


def log(msg: str) -> None:
    print(f"[fit] {msg}", file=sys.stderr, flush=True)


def fit(opts: FitOptions) -> dict:
    import keras

    from streamtrain.batches import BatchStream, SplitSource
    from streamtrain.keras_input import keras_dataset
    from streamtrain.modeldir import write_model_dir
    from streamtrain.scoring import score_split

    check_target(opts.model_dir, opts.overwrite)
    manifest = Manifest.load(opts.data)
    n_classes = len(manifest.labels)
    if manifest.rows("train") == 0:
        raise DataError("dataset has no training rows", opts.data)
    model_name = choose_model(opts.model, manifest.encoding)
    keras.utils.set_random_seed(opts.seed)

    def dataset(stream: BatchStream):
        return keras_dataset(stream, n_classes)

    def stream(split: str, shuffle: bool) -> BatchStream:
        return BatchStream(SplitSource(opts.data, manifest, split), opts.batch_size, shuffle, opts.seed, opts.buffer_blocks)

    train = stream("train", shuffle=True)
    val = stream("val", shuffle=False)
    fit_kwargs: dict = {}
    callbacks = []
    if val.rows:
        fit_kwargs = {
            "validation_data": dataset(val),
            "validation_steps": val.steps,
        }
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=opts.patience, restore_best_weights=True)
        )
    else:
        log("no validation rows: training all epochs without early stopping")

    dropout = DEFAULT_DROPOUT[model_name] if opts.dropout is None else opts.dropout
    model = build_model(model_name, manifest, opts, dropout)
    log(
        f"training on {train.rows} rows ({train.steps} steps/epoch of {opts.batch_size}), "
        f"validating on {val.rows} rows ({val.steps} steps)"
    )
    started = time.perf_counter()
    history = model.fit(
        dataset(train),
        epochs=opts.epochs,
        steps_per_epoch=train.steps,
        callbacks=callbacks,
        verbose=opts.verbose,
        shuffle=False,  # BatchStream shuffles; Keras cannot shuffle a stream
        **fit_kwargs,
    )
    seconds = time.perf_counter() - started

    results = {split: score_split(model, opts.data, manifest, split) for split in ("val", "test")}
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    epochs_run = len(hist.get("loss", []))
    best_epoch = int(min(range(epochs_run), key=lambda i: hist["val_loss"][i])) + 1 if "val_loss" in hist else epochs_run
    metrics = {
        "test_accuracy": results["test"]["accuracy"],
        "test_loss": results["test"]["loss"],
        "val_accuracy": results["val"]["accuracy"],
        "val_loss": results["val"]["loss"],
        "epochs": epochs_run,
        "best_epoch": best_epoch,
        "train_rows": train.rows,
        "val_rows": val.rows,
        "test_rows": results["test"]["rows"],
        "classes": manifest.labels,
        "model": model_name,
        "test_confusion": results["test"]["confusion"],
        "train_seconds": round(seconds, 3),
        "train_samples_per_second": round(train.rows * epochs_run / seconds, 1) if seconds else None,
    }
    config = {
        **asdict(opts),
        "data": str(Path(opts.data).resolve()),
        "model_dir": str(Path(opts.model_dir).resolve()),
        "steps_per_epoch": train.steps,
        "validation_steps": val.steps,
        "dataset_vectorizer_sha256": manifest.vectorizer["arrays_sha256"],
        "model": model_name,
        "dropout": dropout,
        "encoding": manifest.encoding,
    }
    write_model_dir(opts.model_dir, model, opts.data, metrics, hist, config, overwrite=opts.overwrite)
    return metrics


# Measured on IMDB, seed 0: the MLP reaches 0.900 test accuracy at the guide's 0.2;
# sepCNN overfits by epoch 2 at 0.2 (0.862) and reaches 0.886 at 0.5.
DEFAULT_DROPOUT = {"mlp": 0.2, "sepcnn": 0.5}


def choose_model(requested: str, encoding: str) -> str:
    from streamtrain.models import MODEL_FOR_ENCODING

    fitting = MODEL_FOR_ENCODING[encoding]
    if requested not in ("auto", fitting):
        raise UsageError(f"--model {requested} cannot read {encoding} rows; use --model {fitting} or auto")
    return fitting


def build_model(name: str, manifest: Manifest, opts: FitOptions, dropout: float):
    from streamtrain.models import build_mlp, build_sepcnn

    n_classes = len(manifest.labels)
    if name == "sepcnn":
        return build_sepcnn(
            manifest.n_features,
            manifest.row_width,
            n_classes,
            blocks=opts.blocks,
            filters=opts.filters,
            embedding_dim=opts.embedding_dim,
            dropout=dropout,
            learning_rate=opts.learning_rate,
        )
    return build_mlp(manifest.n_features, n_classes, opts.units, opts.layers, dropout, opts.learning_rate)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m streamtrain.fit", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="prepared dataset directory (with manifest.json)")
    p.add_argument("--model-dir", required=True, help="output model directory")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs (default 20; early stopping usually ends sooner)")
    p.add_argument("--batch-size", type=int, default=128, help="rows per batch (default 128)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--patience", type=int, default=2, help="epochs without val-loss improvement before stopping (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of shuffling, initialisation and dropout (default 0)")
    p.add_argument("--model", choices=("auto", "mlp", "sepcnn"), default="auto", help="model family (default: mlp for TF-IDF data, sepcnn for sequences)")
    p.add_argument("--units", type=int, default=64, help="MLP: units per hidden layer (default 64)")
    p.add_argument("--layers", type=int, default=2, help="MLP: hidden layers (default 2)")
    p.add_argument("--blocks", type=int, default=2, help="sepCNN: convolution blocks (default 2)")
    p.add_argument("--filters", type=int, default=64, help="sepCNN: filters of the first blocks (default 64)")
    p.add_argument("--embedding-dim", type=int, default=200, help="sepCNN: embedding size (default 200)")
    p.add_argument("--dropout", type=float, default=None, help="dropout rate (default 0.2 for mlp, 0.5 for sepcnn)")
    p.add_argument("--overwrite", action="store_true", help="replace --model-dir if it exists")
    p.add_argument("--quiet", action="store_true", help="no per-epoch log lines")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.epochs, args.batch_size, args.layers, args.units, args.blocks, args.filters, args.embedding_dim) < 1 or args.patience < 0:
        raise UsageError("--epochs, --batch-size, --layers, --units, --blocks, --filters and --embedding-dim must be positive; --patience >= 0")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        raise UsageError("--dropout must be in [0, 1)")
    opts = FitOptions(
        data=args.data,
        model_dir=args.model_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        seed=args.seed,
        units=args.units,
        layers=args.layers,
        dropout=args.dropout,
        model=args.model,
        blocks=args.blocks,
        filters=args.filters,
        embedding_dim=args.embedding_dim,
        overwrite=args.overwrite,
        verbose=0 if args.quiet else 2,
    )
    metrics = fit(opts)
    print(json.dumps({k: v for k, v in metrics.items() if k != "test_confusion"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
