"""fit's own log line per validation round, through ``logging`` (``EpochLog``), instead of Keras' printed lines.

``EpochLog`` is a Keras callback the training loop drives (``train.rounds``): at the end of every round it
logs one ``INFO`` line on the ``streamtrain.train.fit`` logger, ``epoch 0.75/20 (validation 3/80): loss
0.1210, accuracy 0.9563, val_loss 0.2368, val_accuracy 0.9114 (4.1 s)`` (``epoch 3/20: ...`` with one
validation an epoch). Epochs count passes over the training rows, so a round that ends inside one is a
fraction. The numbers are also record attributes (``epoch``, ``epochs``, ``validation``, ``seconds`` and
every metric), fields of ``--log-format json``. Nothing goes to stdout, and there is no per-step bar.
"""

from __future__ import annotations

import logging
import time

import keras

log = logging.getLogger("streamtrain.train.fit")


class EpochLog(keras.callbacks.Callback):
    """One line per validation round (Keras epoch).

    Args:
        epochs: the most epochs the trial may train (the line's ``/20``).
        per_epoch: validation rounds per epoch.
    """

    def __init__(self, epochs: int, per_epoch: int = 1) -> None:
        super().__init__()
        self.epochs, self.per_epoch = epochs, per_epoch
        self._started = time.monotonic()

    def on_epoch_begin(self, round_: int, logs: dict | None = None) -> None:
        """Start the round's clock.

        Args:
            round_: the 0-based round.
            logs: Keras' logs (unused).
        """
        self._started = time.monotonic()

    def on_epoch_end(self, round_: int, logs: dict | None = None) -> None:
        """Log the round's line.

        Args:
            round_: the 0-based round that ended.
            logs: its metrics (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
        """
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
