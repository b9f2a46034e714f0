"""The vectorizer bake-off: both model families measured on a bounded sample, before prepare commits to one.

prepare calls ``bakeoff`` under ``--vectorizer auto`` when the guide's S/W rule says sequences
(``choice.needs_bakeoff``); it returns the settled choice (``choice.decide``) with the evidence in it.
TensorFlow is imported only when it runs. ``measure`` works in memory, on the first pass's labelled training
sample (``choice.ChoiceSample``) and the validation sample (``dataset.val_sample``), both cut evenly to
``POSITIONS`` / sequence length rows (``bound_rows``): n-grams by prepare's steps over the sample's
vocabulary only (``bakeoff_rows``), scored as the best of fit's first ``NGRAM_CANDIDATES`` candidates (the
MLP at the prior's width, the linear model); sequences by ``SequenceState.fit``, then the sepCNN. Every
model is built as fit builds it (``models.build_model``), from the same seed, and trains on fit's own loop
(``train.loop.Trainer``; an epoch is one pass over the sample, then one validation) until Keras'
``EarlyStopping`` on the validation loss, at most ``EPOCHS``, with fit's patience for a round of an epoch's
steps (``tune.patience_rounds``: at least 2 epochs, and at least 64 steps). Its score is its
validation accuracy and loss at its best-loss epoch, the weights fit would keep. Where the corpus has more
training rows than the sample trained on, each family's model (the n-grams' best candidate) is measured again
on every other training row: the second point of its learning curve (``curve``), from which ``choice.decide``
projects it to the corpus's rows. A SIGINT or SIGTERM during training stops it before the next batch, then
runs its own handler.

History and costs: docs/design/selection.md
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from streamtrain.train.bakeoff_rows import ngram_rows, sequence_rows
from streamtrain.vectorize.choice import FAMILIES, decide, score_text
from streamtrain.vectorize.rows import SparseRows, TokenRows
from streamtrain.vectorize.sequence import SequenceConfig, TokenCounts
from streamtrain.vectorize.tfidf import NgramConfig

if TYPE_CHECKING:
    from streamtrain.dataset.options import BakeoffRequest

log = logging.getLogger(__name__)
EPOCHS = 40  # most epochs per model: each trains until its own early stopping, within this
NGRAM_CANDIDATES = 2  # the n-gram family's score: the best of the prior's first candidates (the MLP, linear)
VAL_BATCH = 1024  # validation rows scored at a time
# Most rows x sequence length trained on (and, apart, validated on): bounds the sepCNN's time. 20,000 rows
# of up to 100 tokens fit; at the longest, 500 tokens, 4,000 rows (an epoch's time: docs/design/selection.md).
POSITIONS = 2_000_000


def bakeoff(request: BakeoffRequest) -> dict:
    """``request``'s choice settled by measuring both families on its samples (``choice.decide``).

    Args:
        request: the rule's choice (sequences under ``--vectorizer auto``), the first pass's samples, the final
            class names and label map, both families' configurations and the seed.

    Returns:
        The settled choice, with the evidence under ``bakeoff``.
    """
    sample, label_names = request.sample, request.label_names
    texts, labels = sample.rows(request.remap)
    index = {name: i for i, name in enumerate(label_names)}
    val = request.val_sample.rows()
    val_texts = [text for _, text, _ in val]
    val_labels = np.fromiter((index[label] for _, _, label in val), np.int32, count=len(val))
    log.info(
        f"the guide's rule says sequences: measuring n-grams + MLP and sequences + sepCNN on a sample of "
        f"{len(texts)} training rows (of {sample.seen}) and {len(val_texts)} validation rows"
    )
    if not texts:
        evidence: dict = {"skipped": "no training rows in the sample"}
    elif not val_texts:
        evidence = {"skipped": "no validation rows"}
    else:
        evidence = measure(
            texts,
            labels,
            val_texts,
            val_labels,
            len(label_names),
            request.ngram,
            request.sequence,
            request.seed,
            corpus_rows=sample.seen,
        )
    evidence["sample"] = {k: v for k, v in sample.record().items() if k != "rule"}
    evidence["val_sample_rows"] = len(val_texts)
    settled = decide(request.choice, evidence)
    log.info(f"bake-off: {settled['bakeoff']['why']} -> {settled['chosen']}")
    return settled


def measure(
    texts: list[str],
    labels: np.ndarray,
    val_texts: list[str],
    val_labels: np.ndarray,
    n_classes: int,
    ngram: NgramConfig,
    sequence: SequenceConfig,
    seed: int,
    epochs: int = EPOCHS,
    patience: int | None = None,
    corpus_rows: int = 0,
) -> dict:
    """Both families trained and scored on the samples (cut by ``bound_rows``), imports TensorFlow.

    Where ``corpus_rows`` (the corpus's training rows) exceeds the rows trained on, each family's learning curve
    is measured too (``curve``). ``patience``: epochs without a better validation loss before a model stops;
    None: fit's rule for the model's steps per epoch (``tune.patience_rounds``).

    Returns:
        The evidence: per family (``ngram``, ``sequence``) its best-epoch validation accuracy and loss, how it
        trained and its seconds; the rows, bounds and rule it was measured by; and ``curve`` where measured:
        ``rows``, ``corpus_rows``, ``seconds`` and each family's score on ``rows`` (every other) training rows.
    """
    from streamtrain.train.fit import FitOptions
    from streamtrain.train.runtime import import_tensorflow

    started = time.perf_counter()
    import_tensorflow()
    setting = _Setting(FitOptions(data="", model_dir=""), n_classes, seed, epochs, patience)
    offered = len(texts), len(val_texts)
    texts, labels, val_texts, val_labels = bound_rows(sequence, texts, labels, val_texts, val_labels)
    out: dict = {
        "train_rows": len(texts),
        "val_rows": len(val_texts),
        "rows_offered": {"train": offered[0], "val": offered[1]},
        "positions": POSITIONS,
        "epochs": epochs,
        "patience": patience if patience is not None else "fit's rule",
        "batch_size": setting.opts.batch_size,
        "seed": seed,
        "rule": "each family's validation accuracy and loss at its lowest validation loss, "
        f"training at most {epochs} epochs, stopping after {_patience_text(patience)} without improvement",
    }
    out["ngram"] = _measure_ngrams(setting, ngram, texts, labels, val_texts, val_labels)
    out["sequence"] = _measure_sequences(setting, sequence, texts, labels, val_texts, val_labels)
    if corpus_rows > len(texts) > 1 and all(out[f].get("val_accuracy") is not None for f in FAMILIES):
        out["curve"] = _curve(setting, (ngram, sequence), texts, labels, val_texts, val_labels, out, corpus_rows)
    out["seconds"] = round(time.perf_counter() - started, 2)
    _log_scores(out)
    return out


@dataclass(frozen=True)
class _Setting:
    """How every bake-off model is built and trained: fit's options (batch size, candidates), seed and bounds."""

    opts: Any  # FitOptions' defaults
    n_classes: int
    seed: int
    epochs: int
    patience: int | None  # None: fit's rule (``tune.patience_rounds``)

    def build(self, candidate: Any, n_features: int, width: int) -> Any:
        """``candidate``'s model as fit builds it, from ``seed``."""
        import keras

        from streamtrain.train.models import build_model

        keras.utils.set_random_seed(self.seed)
        return build_model(candidate, n_features, width, self.n_classes, self.opts)

    def score(self, model: Any, train: Any, val: Any, dataset: Callable[..., Any], width: int) -> dict:
        """``model`` trained on ``train`` with early stopping on ``val`` (``_train``)."""
        batch = self.opts.batch_size
        return _train(model, train, val, dataset, width, self.n_classes, batch, self.seed, self.epochs, self.patience)


def _measure_ngrams(
    setting: _Setting,
    config: NgramConfig,
    texts: list[str],
    labels: np.ndarray,
    val_texts: list[str],
    val_labels: np.ndarray,
    only: str | None = None,
) -> dict:
    """The n-gram family: the best of fit's first ``NGRAM_CANDIDATES`` candidates (or the one named ``only``)."""
    from streamtrain.train import tune
    from streamtrain.train.tfdata import sparse_dataset

    begun = time.perf_counter()
    train_rows, val_rows = ngram_rows(config, texts, labels, val_texts, val_labels)
    if train_rows.n_cols:
        width = train_rows.n_cols
        profile = tune.Profile("ngram", len(texts), setting.n_classes, width)
        tried = []
        for candidate in tune.candidates(setting.opts, profile)[:NGRAM_CANDIDATES]:
            if only is not None and candidate.name != only:
                continue
            model = setting.build(candidate, width, width)
            tried.append({"model": candidate.name, **setting.score(model, train_rows, val_rows, sparse_dataset, width)})
        best = max(tried, key=lambda t: t["val_accuracy"])  # the first of equals: the prior's order
        got = {**best, "n_features": width, "candidates": tried}
    else:
        got = {"model": FAMILIES["ngram"], "val_accuracy": None, "skipped": "no n-gram in min_df sample rows"}
    got["seconds"] = round(time.perf_counter() - begun, 2)
    return got


def _measure_sequences(
    setting: _Setting,
    config: SequenceConfig,
    texts: list[str],
    labels: np.ndarray,
    val_texts: list[str],
    val_labels: np.ndarray,
) -> dict:
    """The sequence family: fit's sepCNN on token rows."""
    from streamtrain.train import tune
    from streamtrain.train.tfdata import token_dataset

    begun = time.perf_counter()
    state, train_tokens, val_tokens = sequence_rows(config, texts, labels, val_texts, val_labels)
    profile = tune.Profile("sequence", len(texts), setting.n_classes, state.n_features)
    sepcnn = setting.build(tune.candidates(setting.opts, profile)[0], state.n_features, state.length)
    score = setting.score(sepcnn, train_tokens, val_tokens, token_dataset, state.length)
    return {
        "model": FAMILIES["sequence"],
        **score,
        "vocabulary": len(state.vocab),
        "length": state.length,
        "seconds": round(time.perf_counter() - begun, 2),
    }


def _curve(
    setting: _Setting,
    configs: tuple[NgramConfig, SequenceConfig],
    texts: list[str],
    labels: np.ndarray,
    val_texts: list[str],
    val_labels: np.ndarray,
    whole: dict,
    corpus_rows: int,
) -> dict:
    """Each family's model of ``whole`` measured again on every other training row, on the same validation rows."""
    begun = time.perf_counter()
    half, half_labels = texts[::2], labels[::2]
    only = whole["ngram"]["model"]
    got = {
        "rows": len(half),
        "corpus_rows": corpus_rows,
        "ngram": _measure_ngrams(setting, configs[0], half, half_labels, val_texts, val_labels, only=only),
        "sequence": _measure_sequences(setting, configs[1], half, half_labels, val_texts, val_labels),
    }
    got["seconds"] = round(time.perf_counter() - begun, 2)
    return got


def _patience_text(patience: int | None) -> str:
    """The patience in the evidence's rule: epochs, or fit's rule in words."""
    if patience is not None:
        return f"{patience} epochs"
    from streamtrain.train import tune

    return f"fit's patience (epochs covering {tune.PATIENCE_STEPS} steps, at least {tune.MIN_PATIENCE})"


def _log_scores(out: dict) -> None:
    """Log each family's score in one line, and its score on half the rows where a curve was measured."""
    for family in FAMILIES:
        got = out[family]
        if got.get("val_accuracy") is not None:
            log.info(
                f"bake-off: {family} + {got['model']}: validation accuracy {got['val_accuracy']:.4f}, "
                f"loss {got['val_loss']:.4f} (best of {got['epochs_run']} epochs: {got['best_epoch']}; "
                f"{got['seconds']:.1f} s)"
            )
    curve = out.get("curve")
    if curve:
        scores = ", ".join(f"{f} {score_text(curve[f].get('val_accuracy'))}" for f in FAMILIES)
        to = f"the curve to {curve['corpus_rows']}; {curve['seconds']:.1f} s"
        log.info(f"bake-off on {curve['rows']} of the rows ({to}): {scores}")


def bound_rows(
    config: SequenceConfig, texts: list[str], labels: np.ndarray, val_texts: list[str], val_labels: np.ndarray
) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Both samples cut to at most ``POSITIONS`` / sequence length rows each, evenly spaced in their order.

    The sequence length is the one ``SequenceState.fit`` gives the training sample: its longest text in
    tokens, at most ``max_length``.
    """
    counts = TokenCounts(1, lowercase=config.lowercase)
    counts.update(texts)
    most = max(1, POSITIONS // max(1, min(counts.longest, config.max_length)))
    return (*_every(texts, labels, most), *_every(val_texts, val_labels, most))


def _every(texts: list[str], labels: np.ndarray, most: int) -> tuple[list[str], np.ndarray]:
    """At most ``most`` (>= 1) of the rows, evenly spaced in their order."""
    if len(texts) <= most:
        return texts, labels
    picked = np.arange(most) * len(texts) // most
    return [texts[i] for i in picked], labels[picked]


class _Interrupted(Exception):
    """A SIGINT or SIGTERM arrived during the bake-off's training (``_deferred_interrupt``)."""


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[Any]:
    """SIGINT and SIGTERM during the bake-off's training, raised by their own handlers after it stops.

    A handler that raises (Python's ``KeyboardInterrupt``, the CLI's ``Terminated``) raises wherever the main
    thread is, which during training may be inside TensorFlow's input iterator (what went wrong there:
    docs/design/selection.md). Here each signal with a Python handler is only recorded; the yielded callback
    stops training before the next batch (raising ``_Interrupted`` there, in Python, which ``_epochs`` takes
    as the end), and on the way out the first recorded signal's own handler runs, in Python (prepare's usual
    exit 130 or 143, its staging directory removed). Outside the main thread (no handler can be set there),
    and for a signal that is ignored or at its default action, nothing changes.
    """
    import keras

    caught: list[int] = []

    class Stop(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            if caught:
                raise _Interrupted()

    if threading.current_thread() is not threading.main_thread():
        yield Stop()
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    deferred = {s: h for s, h in previous.items() if callable(h)}
    for signum in deferred:
        signal.signal(signum, lambda got, frame: caught.append(got))
    try:
        yield Stop()
    finally:
        for signum, handler in deferred.items():
            signal.signal(signum, handler)
    if caught:
        first = signal.Signals(caught[0])
        deferred[first](first, None)


def _train(
    model: Any,
    train: SparseRows | TokenRows,
    val: SparseRows | TokenRows,
    dataset: Callable[..., Any],
    width: int,
    n_classes: int,
    batch_size: int,
    seed: int,
    epochs: int,
    patience: int | None,
) -> dict:
    """Train with early stopping on ``val``; the validation accuracy and loss at the lowest validation loss.

    ``patience`` None: fit's rule for a round of an epoch's steps (``tune.patience_rounds``).
    """
    import keras

    from streamtrain.train import tune
    from streamtrain.train.cluster import Cluster
    from streamtrain.train.loop import Trainer

    rng = np.random.default_rng(seed)

    def shuffled() -> Iterator[SparseRows | TokenRows]:  # one chunk per epoch: the training rows, reshuffled
        while True:
            yield train.take(rng.permutation(len(train)))

    def same() -> Iterator[SparseRows | TokenRows]:
        while True:
            yield val

    one = Cluster()
    trainer = Trainer(one.strategy(), model, one, n_classes)
    training = trainer.distribute(lambda: dataset(shuffled, batch_size, width, n_classes))
    validating = trainer.distribute(lambda: dataset(same, VAL_BATCH, width, n_classes))
    steps = -(-len(train) // batch_size), -(-len(val) // VAL_BATCH)
    patience = tune.patience_rounds(steps[0]) if patience is None else patience
    with _deferred_interrupt() as interrupted:
        stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience)
        history = _epochs(trainer, training, validating, steps, epochs, [stopping, interrupted])
    return {**_best(history), "patience": patience}


def _epochs(trainer: Any, training: Any, validating: Any, steps: tuple[int, int], epochs: int, callbacks: list) -> dict:
    """Keras ``fit``'s epochs on the ``Trainer``: the validation losses and accuracies of each.

    Each epoch trains ``steps[0]`` batches, then validates ``steps[1]``, until ``epochs`` or a callback stops it.
    """
    import keras

    model = trainer.model
    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    history: dict[str, list[float]] = {"val_loss": [], "val_accuracy": []}
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(epochs):
        hooks.on_epoch_begin(epoch)
        try:
            logs, _ = trainer.train_round(training, steps[0], hooks)
        except _Interrupted:  # validated as Keras would, then stopped
            logs, model.stop_training = {}, True
        logs.update(trainer.validate(validating, steps[1]))
        hooks.on_epoch_end(epoch, logs)
        for key, values in history.items():
            values.append(float(logs[key]))
        if model.stop_training:
            break
    hooks.on_train_end()
    return history


def _best(history: dict) -> dict:
    """The score at the lowest validation loss (the weights fit would keep), and the history."""
    losses, accuracies = history["val_loss"], history["val_accuracy"]
    best = int(np.nanargmin(losses)) if not np.isnan(losses).all() else len(losses) - 1
    return {
        "val_accuracy": round(accuracies[best], 6),
        "val_loss": round(losses[best], 6),
        "best_epoch": best + 1,
        "epochs_run": len(losses),
        "history": {"val_accuracy": [round(v, 6) for v in accuracies], "val_loss": [round(v, 6) for v in losses]},
    }
