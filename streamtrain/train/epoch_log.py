"""fit's own line per validation round, through ``logging`` (``EpochLog``), instead of Keras' printed lines.

Keras' ``verbose=2`` prints to stdout in its own format, which neither
``--log-format json`` nor a log collector can read. ``EpochLog`` logs one
``INFO`` line per validation round (``--validations`` per epoch, ``epoch
0.75/20 (validation 3/80): ...``; with one per epoch ``epoch 3/20: loss 0.1210, accuracy 0.9563,
val_loss 0.2368, val_accuracy 0.9114 (4.1 s)``, with the numbers as record
attributes (``epoch``, ``epochs``, ``seconds`` and every metric) for
structured logs. Keras' live per-step bar is kept where prepare would draw
its bar (``streamtrain.progress.display``: a terminal, text logs).
"""

from __future__ import annotations

import logging
import time

import keras

log = logging.getLogger("streamtrain.train.fit")


class EpochLog(keras.callbacks.Callback):
    """One line per validation round (Keras epoch); ``per_epoch`` rounds make one pass over the data."""

    def __init__(self, epochs: int, per_epoch: int = 1):
        super().__init__()
        self.epochs, self.per_epoch = epochs, per_epoch
        self._started = time.monotonic()

    def on_epoch_begin(self, round_: int, logs: dict | None = None) -> None:
        self._started = time.monotonic()

    def on_epoch_end(self, round_: int, logs: dict | None = None) -> None:
        metrics = {k: float(v) for k, v in (logs or {}).items()}
        seconds = round(time.monotonic() - self._started, 3)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        done = round((round_ + 1) / self.per_epoch, 3)  # epochs: passes over the training rows
        where = f"epoch {done:g}/{self.epochs}"
        if self.per_epoch > 1:
            where += f" (validation {round_ + 1}/{self.epochs * self.per_epoch})"
        log.info(
            f"{where}: {shown} ({seconds:.1f} s)",
            extra={"epoch": done, "epochs": self.epochs, "validation": round_ + 1, "seconds": seconds, **metrics},
        )
