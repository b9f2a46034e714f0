"""``train.guards``: the callbacks that stop a fit (a non-finite loss, a deadline) and the refusal of non-finite
numbers, driven as the training loop drives them (``on_epoch_end`` once a round, ``model.stop_training``)."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest

from streamtrain.cli.exit_codes import exit_code
from streamtrain.errors import NonFiniteError
from streamtrain.train.runtime import import_tensorflow

import_tensorflow()  # quietly, before guards imports Keras

from streamtrain.train.checkpoint import TrainingState  # noqa: E402
from streamtrain.train.guards import Deadline, FiniteLoss, Horizon, require_finite  # noqa: E402
from streamtrain.train.tune import Lead  # noqa: E402


def attached(callback):
    """``callback`` on a model that is training (the loop reads ``stop_training`` after each round)."""
    model = SimpleNamespace(stop_training=False)
    callback.set_model(model)
    return callback, model


def test_finite_losses_never_stop_the_training():
    guard, model = attached(FiniteLoss(per_epoch=4))
    for round_ in range(8):
        guard.on_epoch_end(round_, {"loss": 0.5 / (round_ + 1), "val_loss": 0.7, "accuracy": 0.9})
    guard.on_epoch_end(8, None)  # a round without logs is no problem either
    assert guard.problem is None and model.stop_training is False


@pytest.mark.parametrize(
    ("logs", "what", "value"),
    [
        ({"loss": math.nan, "val_loss": 0.5}, "training", "nan"),
        ({"loss": 0.5, "val_loss": math.inf}, "validation", "inf"),
        ({"loss": -math.inf, "val_loss": math.nan}, "training", "-inf"),  # the training loss is named first
    ],
)
def test_the_first_non_finite_loss_stops_the_training_and_is_named(logs, what, value):
    guard, model = attached(FiniteLoss(per_epoch=2))
    guard.on_epoch_end(0, {"loss": 0.6, "val_loss": 0.6})
    guard.on_epoch_end(2, logs)  # the third round of two an epoch ends at epoch 1.5
    assert model.stop_training is True
    assert guard.problem == f"the {what} loss became {value} in the round ending at epoch 1.5"
    guard.on_epoch_end(3, {"loss": math.nan, "val_loss": math.nan})
    assert guard.problem.endswith("epoch 1.5")  # the first problem is the one kept


def test_a_deadline_stops_at_the_end_of_the_first_round_past_it():
    never, model = attached(Deadline(None))
    never.on_epoch_end(0, {})
    assert not never.cut and not model.stop_training

    later, model = attached(Deadline(time.monotonic() + 3600))
    later.on_epoch_end(0, {})
    assert not later.cut and not model.stop_training

    past, model = attached(Deadline(time.monotonic() - 1))
    past.on_epoch_end(0, {})
    assert past.cut and model.stop_training


def test_a_deadline_does_not_claim_a_stop_another_guard_made():
    deadline, model = attached(Deadline(time.monotonic() - 1))
    model.stop_training = True  # early stopping or the loss guard stopped it this round
    deadline.on_epoch_end(0, {})
    assert not deadline.cut and model.stop_training


def _rounds(lead, losses, state=None, min_rounds=0):
    """A trial's rounds through ``Horizon``, its losses kept as the checkpoint keeps them; the rounds it ran."""
    state = state or TrainingState()
    guard, model = attached(Horizon(lead, state, min_rounds))
    ran = 0
    for round_, loss in enumerate(losses, start=state.rounds_done):
        if model.stop_training:
            break
        state.history.setdefault("val_loss", []).append(loss)
        state.best = loss if state.best is None else min(state.best, loss)
        guard.on_epoch_end(round_, {"val_loss": loss})
        ran += 1
    return guard, ran


# A leader that trained 12 rounds to a best validation loss of 0.2071 (IMDB's mlp 2 x 16), 0.42 by round 6.
LEADER = Lead(12, (0.7, 0.6, 0.55, 0.5, 0.45, 0.42, 0.35, 0.3, 0.25, 0.22, 0.21, 0.2071))


def test_a_later_trial_stops_at_the_leaders_rounds_unless_it_beat_the_leader():
    falling = [0.5 - 0.02 * i for i in range(25)]  # 0.40 by round 6; 0.2800 at round 12, below the leader at 16
    behind, ran = _rounds(LEADER, falling)
    assert behind.behind and ran == 12  # ahead at half the leader's rounds, stopped at the end of round 12
    ahead, ran = _rounds(LEADER, [0.3, 0.2, *falling[8:]])  # beat the leader at round 2
    assert not ahead.behind and ran == 2 + len(falling[8:])  # then trains to its own end
    tied, _ = _rounds(Lead(4, (0.5, 0.3, 0.25, 0.2)), [0.5, 0.3, 0.2, 0.1])
    assert tied.behind  # equal is not below: the earlier candidate keeps the lead, as ``tune.pick`` does
    free, ran = _rounds(None, falling)  # the first trial: no leader
    assert not free.behind and ran == len(falling)


def test_a_later_trial_trailing_at_half_the_leaders_rounds_stops_there_not_before_the_schedules_rounds():
    slow = [0.8, 0.7, 0.6, 0.55, 0.5, 0.45, 0.3, 0.2, 0.1, 0.05]  # 0.45 by round 6 (the leader: 0.42), then below
    trailing, ran = _rounds(LEADER, slow)
    assert trailing.behind and ran == 6  # half of 12: successive halving's comparison at an equal budget
    later, ran = _rounds(LEADER, slow, min_rounds=8)  # the initial plateau's rounds come first
    assert not later.behind and ran == len(slow)  # by round 8: 0.2 against the leader's 0.3
    whole, ran = _rounds(LEADER, [0.9] * 20, min_rounds=12)  # half the rounds would be the last: compared once
    assert whole.behind and ran == 12
    assert Lead(12, LEADER.losses).halfway(0) == 6 and Lead(12, LEADER.losses).halfway(12) is None
    assert Lead(13, (*LEADER.losses, 0.2)).halfway(4) == 7 and LEADER.loss_by(6) == 0.42 and LEADER.loss == 0.2071


def test_a_resumed_trial_counts_the_rounds_and_the_losses_it_had():
    before = [0.5, 0.4, 0.35, 0.3, 0.28, 0.26, 0.24, 0.22, 0.2, 0.19]  # ahead by round 6, then below the leader
    resumed = TrainingState(rounds_done=10, best=0.19, history={"val_loss": list(before)})
    guard, ran = _rounds(LEADER, [0.25, 0.25, 0.25, 0.25], resumed)
    assert not guard.behind and ran == 4
    trailing = TrainingState(rounds_done=10, best=0.3, history={"val_loss": [0.6, 0.5, *[0.41] * 6, 0.3, 0.3]})
    guard, ran = _rounds(LEADER, [0.25, 0.25, 0.25, 0.25], trailing)
    assert guard.behind and ran == 2  # its first 6 rounds (0.41) beat the leader's (0.42); rounds 11 and 12
    late = TrainingState(rounds_done=10, best=0.43, history={"val_loss": [0.9, *[0.43] * 9]})
    guard, ran = _rounds(LEADER, [0.1], late)
    assert guard.behind and ran == 1  # behind at half the rounds before the interruption: stops at once


def test_the_horizon_does_not_claim_a_stop_another_guard_made():
    guard, model = attached(Horizon(Lead(1, (0.1,)), TrainingState(best=0.5)))
    model.stop_training = True
    guard.on_epoch_end(0, {})
    assert not guard.behind


def test_finite_numbers_and_missing_ones_pass():
    require_finite("metrics", [("loss", 0.3), ("accuracy", 1.0), ("test_loss", None), ("big", 1e308)])
    require_finite("metrics", [])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_the_first_non_finite_number_is_refused_by_name_with_exit_code_1(bad):
    with pytest.raises(NonFiniteError) as caught:
        require_finite("refusing to write", [("val_loss", 0.2), ("test_loss", bad), ("loss", math.nan)])
    assert str(caught.value) == f"refusing to write: test_loss is {bad}"
    assert exit_code(caught.value) == 1
