"""``train.tune``: the candidates, the schedule rules, the pick and the selection record, as pure functions."""

from __future__ import annotations

import json

from streamtrain.train import tune
from streamtrain.train.fit import FitOptions
from streamtrain.train.tune import Candidate, Profile, Selection, Trial


def opts(**kw) -> FitOptions:
    return FitOptions(data="d", model_dir="m", **kw)


def test_the_prior_width_grows_with_the_classes_within_bounds():
    widths = {k: tune.prior_units(Profile("ngram", 1000, k, 5000)) for k in (2, 4, 5, 8, 23, 77, 150, 300, 5000)}
    assert widths == {2: 16, 4: 16, 5: 32, 8: 32, 23: 128, 77: 512, 150: 1024, 300: 1024, 5000: 1024}


def test_ngram_candidates_in_the_prior_order_without_repeats():
    few = tune.candidates(opts(), Profile("ngram", 20_000, 2, 100_000))
    assert [c.name for c in few] == ["mlp 2 x 16", "linear", "mlp 2 x 64"]
    assert few[1].learning_rate == tune.LEARNING_RATE["linear"] and few[1].dropout == 0.0
    many = tune.candidates(opts(), Profile("ngram", 3_000, 300, 20_000))
    assert [c.name for c in many] == ["mlp 2 x 1024", "linear"]  # the wide MLP would be the same one
    assert [c.name for c in tune.candidates(opts(), Profile("sequence", 60_000, 2, 20_000))] == ["sepcnn"]


def test_explicit_options_apply_to_every_candidate_and_a_model_leaves_one():
    profile = Profile("ngram", 20_000, 4, 100_000)
    fixed = tune.candidates(opts(units=32, learning_rate=0.003), profile)
    assert [c.name for c in fixed] == ["mlp 2 x 32", "linear"]  # both MLPs are now 32 wide: one of them
    assert {c.learning_rate for c in fixed} == {0.003}
    assert [c.name for c in tune.candidates(opts(model="linear"), profile)] == ["linear"]
    assert [c.name for c in tune.candidates(opts(model="mlp", layers=1), profile)] == ["mlp 1 x 16"]


def test_unset_epochs_and_patience_follow_the_steps():
    # IMDB-like: 176 steps an epoch, 44 a round: 2 rounds of patience, 35 epochs at most.
    assert tune.schedule(opts(), 176, 44, 4) == tune.Schedule(35, 2, 4)
    # 300 classes x 10 rows: 22 steps an epoch, 6 a round: 11 rounds (about 3 epochs) of patience.
    assert tune.schedule(opts(), 22, 6, 4) == tune.Schedule(273, 11, 4)
    assert tune.schedule(opts(), 1_000_000, 100, 10_000) == tune.Schedule(tune.MIN_EPOCHS, tune.MIN_PATIENCE, 60)
    assert tune.schedule(opts(epochs=3, patience=0), 22, 6, 4) == tune.Schedule(3, 0, 4)
    assert tune.schedule(opts(), 1, 1, 1).epochs == tune.MAX_EPOCHS


def test_early_stopping_waits_one_epoch_or_min_steps_where_an_epoch_is_longer():
    # Every corpus of the suite has fewer than MIN_STEPS steps an epoch: one full epoch, as before.
    assert tune.schedule(opts(), tune.MIN_STEPS, 200, 30).min_rounds == 30
    # 8 M rows of the scale corpus: 56,469 steps an epoch, 32 rounds of 1,765: 4 rounds (7,060 steps).
    assert tune.schedule(opts(), 56_469, 1_765, 32).min_rounds == 4
    assert tune.schedule(opts(), 6_001, 6_001, 1).min_rounds == 1


def test_the_budget_is_the_first_trials_time_at_least_the_minimum_unless_given():
    assert tune.budget(opts(), 10.0) == tune.MIN_BUDGET
    assert tune.budget(opts(), 500.0) == 500.0 * tune.BUDGET_FACTOR
    assert tune.budget(opts(tune_seconds=0), 500.0) == 0


def test_pick_takes_the_lowest_validation_loss_and_the_prior_on_ties():
    a, b, c = (Candidate("mlp", 16, 2), Candidate("linear"), Candidate("mlp", 64, 2))
    assert tune.pick([Trial(a, 0.80, 0.40), Trial(b, 0.85, 0.30), Trial(c, 0.84, 0.35)]) == 1
    # The loss decides, not the accuracy: R8's mlp 2 x 32 led by accuracy (0.9803 against 0.9779), not by loss.
    assert tune.pick([Trial(a, 0.9803, 0.0909), Trial(c, 0.9779, 0.0792)]) == 1
    assert tune.pick([Trial(a, 0.85, 0.3), Trial(b, 0.85, 0.3)]) == 0
    assert tune.pick([Trial(a, 0.70, 0.6), Trial(b, skipped="the loss became nan")]) == 0
    assert tune.pick([Trial(a, skipped="the budget was spent"), Trial(b, 0.5, 0.9)]) == 1


def test_the_horizon_is_the_leaders_rounds_and_its_best_loss_as_its_rounds_measured_it():
    a, b = Candidate("mlp", 16, 2), Candidate("linear")
    assert tune.horizon([]) is None
    first = Trial(a, 0.914, 0.2090, 14, 12, history={"val_loss": [0.6, 0.2071, 0.21]})
    assert tune.horizon([first]) == tune.Lead(14, (0.6, 0.2071, 0.21))  # the rounds' losses (a sample's)
    assert tune.horizon([first]).loss == 0.2071  # not the whole split's 0.2090
    better = Trial(b, 0.92, 0.2000, 30, 28, history={"val_loss": [0.5, 0.199]})
    assert tune.horizon([first, better]) == tune.Lead(30, (0.5, 0.199))  # the leader now
    assert tune.horizon([Trial(a, skipped="the loss became nan")]) is None
    assert tune.horizon([Trial(a, 0.9, 0.2, 14, 12)]) is None  # no rounds recorded (an old trials.json)


def test_a_trial_says_what_ended_it():
    a = Candidate("linear")
    assert Trial(a, 0.9, 0.2, 10, 8).ended_by == "early stopping"
    assert Trial(a, 0.9, 0.2, 10, 8, cut=True).ended_by == "cut by the budget"
    assert Trial(a, 0.9, 0.2, 10, 8, behind=True).ended_by == "behind the leader at equal rounds"
    assert Trial(a, skipped="the budget of 60 s was spent").ended_by == "the budget of 60 s was spent"
    got = tune.line(Selection([Trial(Candidate("mlp", 16, 2), 0.914, 0.209), Trial(a, 0.9, 0.22, behind=True)], 0, 9))
    assert got.endswith("; linear 0.2200 0.9000, behind the leader at equal rounds")


def test_the_selection_line_shows_each_trials_loss_and_accuracy_and_stars_the_winner():
    a, b = Candidate("mlp", 16, 2), Candidate("linear")
    got = tune.line(Selection([Trial(a, 0.9140, 0.2090), Trial(b, 0.9186, 0.2099)], 0, 120.0))
    assert got == "model selection (validation loss, accuracy): mlp 2 x 16 0.2090 0.9140 *; linear 0.2099 0.9186"


def test_a_selection_survives_json_and_a_candidate_survives_a_broadcast():
    trials = [
        Trial(Candidate("mlp", 64, 2, 1e-3, 0.2), 0.8, 0.5, 12, 10, 3.5, history={"val_accuracy": [0.5, 0.8]}),
        Trial(Candidate("linear", learning_rate=1e-2), 0.81, 0.6, 40, 38, 4.0, cut=True),
        Trial(Candidate("mlp", 256, 2, 1e-3, 0.2), skipped="the budget of 60 s was spent"),
    ]
    selection = Selection(trials, 1, 60.0)
    back = Selection.from_json(json.loads(json.dumps(selection.to_json())))
    assert back == selection and back.chosen.name == "linear"
    assert "linear 0.6000 0.8100, cut by the budget *" in tune.line(back)
    assert "mlp 2 x 256 not trained (the budget of 60 s was spent)" in tune.line(back)
    for candidate in (c.candidate for c in trials):
        assert Candidate.decode(candidate.encode()) == candidate
    reused = Selection([Trial(trials[0].candidate, 0.8)], 0, None, reused_from="20261205T000000Z-abcd")
    assert tune.line(reused).startswith("model: mlp 2 x 64, the selection of version 20261205T000000Z-abcd")
