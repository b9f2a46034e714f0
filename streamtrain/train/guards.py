"""Guards against training on, or writing, numbers that are not numbers; and the selection's two stops.

``FiniteLoss`` is a Keras callback that stops a trial after the first validation round whose training or
validation loss is NaN or infinite, and records which (``problem``); nothing built on it is checkpointed,
and fit then drops the trial (in a model selection) or raises ``NonFiniteError`` instead of writing a
model (its only trial). ``Deadline`` stops a trial at the end of the round that reaches the selection's
budget; ``Horizon`` stops a later trial at the end of the leader's rounds unless its validation loss has beaten
the leader's by then. ``require_finite`` refuses metrics or probabilities that hold a non-finite value, so no code path
writes or reports one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import keras
import numpy as np

from streamtrain.errors import NonFiniteError

if TYPE_CHECKING:
    from streamtrain.train.checkpoint import TrainingState


class FiniteLoss(keras.callbacks.Callback):
    """Stop training after a round whose loss is not finite; checked once a round (never waiting for a step's loss).

    Args:
        per_epoch: validation rounds per epoch (the message says where, in epochs).
    """

    def __init__(self, per_epoch: int = 1) -> None:
        super().__init__()
        self.problem: str | None = None
        self.per_epoch = per_epoch

    def on_epoch_end(self, round_: int, logs: dict | None = None) -> None:
        """Record the first non-finite ``loss`` or ``val_loss`` of the round in ``problem``, and stop.

        Args:
            round_: the 0-based round that ended.
            logs: its metrics.
        """
        where = f"epoch {(round_ + 1) / self.per_epoch:g}"
        for key, what in (("loss", "training"), ("val_loss", "validation")):
            loss = float((logs or {}).get(key, 0.0))
            if self.problem is None and not math.isfinite(loss):
                self.problem = f"the {what} loss became {loss} in the round ending at {where}"
                self.model.stop_training = True


class Deadline(keras.callbacks.Callback):
    """Stop at the end of the first round that ends at or after ``until``; ``cut`` says whether it did.

    Args:
        until: a ``time.monotonic()`` time; None: never.
    """

    def __init__(self, until: float | None) -> None:
        super().__init__()
        self.until = until
        self.cut = False  # whether it stopped the training

    def on_epoch_end(self, round_: int, logs: dict | None = None) -> None:
        """Stop training if the time is up (and nothing else stopped it).

        Args:
            round_: the 0-based round that ended.
            logs: its metrics (unused).
        """
        if self.until is not None and not self.model.stop_training and time.monotonic() >= self.until:
            self.cut = True
            self.model.stop_training = True


class Horizon(keras.callbacks.Callback):
    """Stop a later trial at the end of the leader's rounds unless it has beaten the leader's validation loss.

    ``behind`` says whether it stopped the training.

    Args:
        horizon: ``tune.horizon``'s (rounds, loss); None: no limit (the first trial).
        state: the trial's ``TrainingState``, whose ``best`` the checkpoint updates before this runs (a resumed
            trial's rounds before the interruption included).
    """

    def __init__(self, horizon: tuple[int, float] | None, state: TrainingState) -> None:
        super().__init__()
        self.horizon, self.state = horizon, state
        self.behind = False

    def on_epoch_end(self, round_: int, logs: dict | None = None) -> None:
        """Stop training at the leader's rounds when the trial's best loss is not below the leader's.

        Args:
            round_: the 0-based round that ended.
            logs: its metrics (unused: the state holds the best loss).
        """
        if self.horizon is None or self.model.stop_training or round_ + 1 < self.horizon[0]:
            return
        best = self.state.best
        if best is None or not best < self.horizon[1]:
            self.behind = True
            self.model.stop_training = True


def require_finite(what: str, values: Iterable[tuple[str, float | None]]) -> None:
    """Refuse non-finite numbers.

    Args:
        what: the error message's start: what is refused.
        values: (name, number or None) pairs; None is not checked.

    Raises:
        NonFiniteError: naming the first of ``values`` that is NaN or infinite.
    """
    for name, value in values:
        if value is not None and not np.isfinite(value):
            raise NonFiniteError(f"{what}: {name} is {value}")
