"""Guards against training on, or writing, numbers that are not numbers; and the selection's two stops.

``FiniteLoss`` is a Keras callback that stops a trial after the first validation round whose training or
validation loss is NaN or infinite, and records which (``problem``); nothing built on it is checkpointed,
and fit then drops the trial (in a model selection) or raises ``NonFiniteError`` instead of writing a
model (its only trial). ``Deadline`` stops a trial at the end of the round that reaches the selection's
budget; ``Horizon`` stops a later trial where it trails the leader at equal rounds (half the leader's rounds, and
all of them). ``require_finite`` refuses metrics or probabilities that hold a non-finite value, so no code path
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
    from streamtrain.train.tune import Lead


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
    """Stop a later trial where it trails the leader at equal rounds; ``behind`` says whether it stopped the training.

    Two comparisons, each of the trial's best validation loss with the leader's over the same number of rounds:
    at half the leader's rounds (``tune.Lead.halfway``: successive halving's comparison at an equal budget) and
    at all of them. A trial not below the leader there stops at the end of that round.

    Args:
        lead: ``tune.horizon``'s leader; None: no limit (the first trial).
        state: the trial's ``TrainingState``, whose ``best`` and ``history`` the checkpoint updates before this
            runs (a resumed trial's rounds before the interruption included, so a resumed trial stops where an
            uninterrupted one does).
        min_rounds: the schedule's rounds before early stopping may end a trial: no comparison before them.
    """

    def __init__(self, lead: Lead | None, state: TrainingState, min_rounds: int = 0) -> None:
        super().__init__()
        self.lead, self.state = lead, state
        self.halfway = lead.halfway(min_rounds) if lead is not None else None
        self.behind = False

    def on_epoch_end(self, round_: int, logs: dict | None = None) -> None:
        """Stop training where the trial's best loss is not below the leader's over as many rounds.

        Args:
            round_: the 0-based round that ended.
            logs: its metrics (unused: the state holds the losses).
        """
        if self.lead is None or self.model.stop_training:
            return
        done, lead = round_ + 1, self.lead
        if self.halfway is not None and done >= self.halfway:
            mine = self.state.history.get("val_loss", [])[: self.halfway]
            if mine and not min(mine) < lead.loss_by(self.halfway):  # no losses recorded: nothing to compare
                self._stop()
                return
        if done >= lead.rounds:
            best = self.state.best
            if best is None or not best < lead.loss:
                self._stop()

    def _stop(self) -> None:
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
