"""fit's stages on their own, without TensorFlow: which candidates a fit trains (``selection.choose``), the
search over them (``selection.Search``: the leader kept, the budget, the record a resumed fit skips), the
promotion guard's verdict, and the metrics' units (``version_run.fit_metrics``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from streamtrain.errors import NonFiniteError
from streamtrain.fs.versions import Versions
from streamtrain.train import tune
from streamtrain.train.cluster import Cluster
from streamtrain.train.fit import FitOptions
from streamtrain.train.promotion import Comparison, Decision, _verdict
from streamtrain.train.selection import TRIALS_NAME, Choices, Search, choose
from streamtrain.train.trial import Trained
from streamtrain.train.version_run import fit_metrics

MANIFEST = SimpleNamespace(encoding="ngram", rows=lambda split: 3000, labels=["a", "b", "c"], n_features=500)


def _choose(tmp_path, cluster: Cluster | None = None, **options) -> Choices:
    opts = FitOptions("d", str(tmp_path), **options)
    return choose(opts, MANIFEST, Versions(tmp_path), cluster or Cluster())  # type: ignore[arg-type]


def test_a_first_fit_searches_the_prior_unless_told_otherwise(tmp_path):
    prior = tune.candidates(FitOptions("d", "m"), tune.Profile.of(MANIFEST))  # type: ignore[arg-type]
    assert len(prior) == 3
    assert _choose(tmp_path) == Choices(prior, None, True)
    assert _choose(tmp_path, tune_seconds=0) == Choices(prior[:1], None, False)
    assert _choose(tmp_path, Cluster(("a:1", "b:2"))) == Choices(prior[:1], None, False)  # a cluster: the first
    chosen = _choose(tmp_path, model="linear")  # the user's option: one candidate, not a search a later fit reuses
    assert [c.model for c in chosen.candidates] == ["linear"] and not chosen.searched


class FakeTrials:
    """``trial.Trials`` without TensorFlow: each candidate scores ``scores[name]`` (None: its loss became NaN)
    after ``seconds[name]``."""

    def __init__(self, building: Path, scores: dict, seconds: dict, tune_seconds: float | None = None):
        self.opts = FitOptions("d", "m", tune_seconds=tune_seconds)
        self.plan = SimpleNamespace(val=SimpleNamespace(rows=100))
        self.building, self.scores, self.seconds = building, scores, seconds
        self.trained: list[tuple[str, bool]] = []  # (candidate, with a deadline)
        self.rebuilt: list[str] = []
        self.horizons: list = []  # the horizon each trial was given
        self.discarded = False

    def train(self, candidate, directory, limits, first, scored):
        assert scored
        directory.mkdir(parents=True)
        self.trained.append((candidate.name, limits.until is not None))
        self.horizons.append(limits.horizon)
        trial = tune.Trial(candidate, rounds=4, best_round=3, seconds=self.seconds[candidate.name])
        if self.scores[candidate.name] is None:
            trial.skipped = "the training loss became nan"
            return None, trial
        trial.val_accuracy = self.scores[candidate.name]
        trial.val_loss = 1.0 - trial.val_accuracy  # the pick takes the lowest loss: here the highest accuracy
        trial.history = {"val_loss": [0.9, trial.val_loss + 0.01, trial.val_loss, trial.val_loss + 0.02]}
        return Trained(candidate, None, None, None, directory, [], [], trial.seconds, {}), trial

    def rebuild(self, candidate, directory, trial):
        self.rebuilt.append(candidate.name)
        return Trained(candidate, None, None, None, directory, [], [], trial.seconds, {})

    def discard(self):
        self.discarded = True


LINEAR = tune.Candidate("linear", learning_rate=0.03)
SMALL, LARGE = tune.Candidate("mlp", 16, 2), tune.Candidate("mlp", 64, 2)
SEARCH = Choices([SMALL, LINEAR, LARGE], None, True)


def test_the_search_keeps_the_leader_and_removes_the_losers(tmp_path):
    trials = FakeTrials(
        tmp_path,
        {SMALL.name: 0.80, LINEAR.name: 0.85, LARGE.name: 0.85},
        dict.fromkeys((SMALL.name, LINEAR.name, LARGE.name), 1.0),
    )
    leader, selection = Search(trials).run(SEARCH, resuming=False)  # type: ignore[arg-type]
    assert leader.candidate == LINEAR and selection.winner == 1  # a tie keeps the earlier candidate
    assert selection.budget_seconds == tune.MIN_BUDGET and selection.searched
    assert trials.trained == [(SMALL.name, False), (LINEAR.name, True), (LARGE.name, True)]
    # Each later trial gets the leader so far's rounds and best loss as its rounds measured it.
    assert [(h.rounds, h.loss) if h else None for h in trials.horizons] == [
        None,
        (4, pytest.approx(0.20)),
        (4, pytest.approx(0.15)),
    ]
    checkpoint = tmp_path / "checkpoint"
    assert sorted(p.name for p in checkpoint.iterdir()) == ["trial-1", TRIALS_NAME]
    recorded = json.loads((checkpoint / TRIALS_NAME).read_text())
    assert [t["val_accuracy"] for t in recorded] == [0.80, 0.85, 0.85]


def test_the_budget_skips_the_candidates_after_it_is_spent(tmp_path):
    trials = FakeTrials(tmp_path, {SMALL.name: 0.80, LINEAR.name: 0.70}, {SMALL.name: 10.0, LINEAR.name: 6.0}, 5.0)
    leader, selection = Search(trials).run(SEARCH, resuming=False)  # type: ignore[arg-type]
    assert leader.candidate == SMALL and [name for name, _ in trials.trained] == [SMALL.name, LINEAR.name]
    assert selection.trials[2].skipped == "the budget of 5 s was spent" and selection.budget_seconds == 5.0
    assert len(json.loads((tmp_path / "checkpoint" / TRIALS_NAME).read_text())) == 2  # a skipped one: not recorded


def test_a_resumed_search_skips_the_finished_trials_and_rebuilds_their_leader(tmp_path):
    finished = [tune.Trial(SMALL, 0.80, 0.20, 4, 3, 2.0), tune.Trial(LINEAR, 0.90, 0.10, 4, 3, 2.0)]
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / TRIALS_NAME).write_text(json.dumps([t.to_json() for t in finished]))
    trials = FakeTrials(tmp_path, {LARGE.name: 0.85}, {LARGE.name: 1.0})
    leader, selection = Search(trials).run(SEARCH, resuming=True)  # type: ignore[arg-type]
    assert trials.rebuilt == [SMALL.name, LINEAR.name]  # each finished trial that led when it was read
    assert trials.trained == [(LARGE.name, True)]
    assert leader.candidate == LINEAR and selection.winner == 1
    assert not (tmp_path / "checkpoint" / "trial-2").exists()  # the loser's directory is gone


def test_a_search_without_a_finite_trial_writes_no_version(tmp_path):
    trials = FakeTrials(
        tmp_path,
        dict.fromkeys((SMALL.name, LINEAR.name, LARGE.name)),
        dict.fromkeys((SMALL.name, LINEAR.name, LARGE.name), 1.0),
    )
    with pytest.raises(NonFiniteError, match="mlp 2 x 16: the training loss became nan; linear: the training"):
        Search(trials).run(SEARCH, resuming=False)  # type: ignore[arg-type]
    assert trials.discarded


@pytest.mark.parametrize(
    ("ours", "theirs", "force", "promoted", "reason"),
    [
        (0.900, 0.903, False, True, "validation accuracy 0.9000 against the current 0.9030"),
        (0.890, 0.903, False, False, "worse than current: validation accuracy 0.8900"),
        (0.890, 0.903, True, True, "forced (--force) despite validation accuracy 0.8900"),
        (None, None, False, False, "no validation rows to compare the two models on"),
    ],
)
def test_the_guard_promotes_unless_worse_than_current_by_more_than_allowed(ours, theirs, force, promoted, reason):
    compared = Comparison("the rows", 0 if ours is None else 100, ours, theirs)
    decision = _verdict(Decision("2026-01-01T00:00:00+00:00", "v1", 0.005, force), compared, 0.005, force)
    assert decision.promoted == promoted and decision.reason.startswith(reason)
    if ours is not None:
        assert (decision.candidate_accuracy, decision.current_accuracy) == (ours, theirs)
    assert Decision.from_json(decision.to_json()) == decision
    assert decision.line("v2").startswith("version v2 promoted" if promoted else "version v2 kept but NOT promoted")


def test_metrics_count_epochs_as_passes_and_validations_as_rounds():
    state = SimpleNamespace(rounds_done=10, best=0.3, best_round=6)  # checkpoint.TrainingState's counts
    winner = Trained(SMALL, SimpleNamespace(cluster=Cluster()), state, None, Path("x"), [[100]] * 10, [], 2.0, {})
    plan = SimpleNamespace(
        per_epoch=4, train=SimpleNamespace(rows=1000), val=SimpleNamespace(rows=200), manifest=MANIFEST
    )
    split = {"accuracy": 0.9, "loss": 0.3, "rows": 200, "confusion": [[1]]}
    metrics = fit_metrics(plan, winner, {"val": split, "test": split})  # type: ignore[arg-type]
    assert (metrics.epochs, metrics.best_epoch) == (2.5, 1.5)
    assert (metrics.validations, metrics.best_validation, metrics.validations_per_epoch) == (10, 6, 4)
    assert metrics.train_samples_per_second == 1250.0  # 2.5 epochs of 1,000 rows in 2 s
