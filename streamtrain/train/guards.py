"""Guards against training on, or writing, numbers that are not numbers.

``FiniteLoss`` is a Keras callback that stops training at the first NaN or
infinite loss and records where (epoch and step); ``fit`` then raises
``NonFiniteError`` instead of writing a model. ``require_finite`` refuses
metrics or probabilities that hold a non-finite value, so no code path
writes or reports one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import keras
import numpy as np

from streamtrain.errors import NonFiniteError


class FiniteLoss(keras.callbacks.Callback):
    # Its batch-end check only reads the logs and asks training to stop: safe for Keras to run in a worker
    # thread, so the training loop never waits for each step's loss (a sync per batch).
    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.problem: str | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.problem = f"the training loss became {loss} at epoch {self.epoch + 1}, step {batch + 1}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("val_loss", 0.0))
        if self.problem is None and not math.isfinite(loss):
            self.problem = f"the validation loss became {loss} after epoch {epoch + 1}"
            self.model.stop_training = True


def require_finite(what: str, values: Iterable[tuple[str, float | None]]) -> None:
    """Raise ``NonFiniteError`` naming the first of ``values`` (name, number) that is NaN or infinite."""
    for name, value in values:
        if value is not None and not np.isfinite(value):
            raise NonFiniteError(f"{what}: {name} is {value}")
