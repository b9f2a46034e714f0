"""Model selection: which model a version trains, chosen by training candidates on the dataset's own split.

Owns the candidates (``Candidate``, ``candidates``: their order is the prior), the schedule rules that make an
unset ``--epochs``/``--patience`` follow the data (``schedule``), the time budget (``budget``), the winner
(``pick``) and the selection record a version keeps in ``selection.json`` (``Selection``). An option the user
set (``--model``, ``--units``, ``--layers``, ``--learning-rate``, ``--dropout``) is kept in every candidate;
``--model`` other than ``auto`` leaves one. The first candidate trains to its own early stopping; the others
start only while the budget lasts, and one running when it runs out stops at the end of its round (``cut``).
A later candidate also stops where it trails the leader so far at equal rounds (``horizon``, ``Lead``,
``behind``): at half the leader's rounds (not before the schedule's ``min_rounds``) when its best validation loss
by then is not below the leader's by then, and at all of them when its best is not below the leader's best: the
same training the leader had, not more.
The winner has the lowest validation loss (its best round's weights on the whole validation split: the
criterion early stopping already uses, and less noisy than accuracy on a few hundred rows); a tie keeps the
earlier candidate. Only a search of the prior's own candidates (none of those options set, a
budget above 0, one process) is ``searched``, and the next fit of the same vectorizer reuses its choice
instead of searching again: a night forced with other options does not become every later night's model.
fit runs the trials (``train.selection``) and keeps the winner's weights: the selection costs the losers'
training, never a retraining of the winner.

Rationale and measurements: docs/design/selection.md
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamtrain.dataset.manifest import Manifest
    from streamtrain.train.fit import FitOptions

SELECTION_NAME = "selection.json"
# Unset --patience: validation rounds covering at least this many training steps without a better validation
# loss (and at least 2 rounds): on a small corpus a round is a few steps, and a fixed count of rounds stopped it
# on its initial plateau (docs/design/selection.md).
PATIENCE_STEPS = 64
MIN_PATIENCE = 2
# Unset --epochs: enough epochs for this many steps, at least MIN_EPOCHS: a small corpus trains as long as it
# needs (early stopping ends it), a large one stops on its own long before the cap. Early stopping never ends a
# trial on its initial plateau: not before one epoch, or before MIN_STEPS steps where an epoch is longer (a corpus
# of more than MIN_STEPS batches: at millions of rows the validation loss settles within a fraction of an epoch,
# and a full epoch per candidate was most of fit's time; docs/design/selection.md).
MIN_STEPS = 6_000
MIN_EPOCHS = 20
MAX_EPOCHS = 1_000
# Unset --tune-seconds: the candidates after the first may train for this multiple of the first's seconds,
# at least MIN_BUDGET seconds.
BUDGET_FACTOR = 2.0
MIN_BUDGET = 120.0
LEARNING_RATE = {"linear": 3e-2, "mlp": 1e-3, "sepcnn": 1e-3}
DROPOUT = {"linear": 0.0, "mlp": 0.2, "sepcnn": 0.5}
MIN_UNITS, MAX_UNITS = 16, 1024
MODELS = ("linear", "mlp", "sepcnn")
LAYERS = 2  # hidden layers of the MLP candidates (the guide's)


@dataclass(frozen=True)
class Profile:
    """What the candidates and schedules are derived from: the dataset's shape, as its manifest records it."""

    encoding: str
    train_rows: int
    classes: int
    features: int

    @classmethod
    def of(cls, manifest: Manifest) -> Profile:
        """The profile of the dataset ``manifest`` describes."""
        return cls(manifest.encoding, manifest.rows("train"), len(manifest.labels), manifest.n_features)


@dataclass(frozen=True)
class Candidate:
    """One model configuration a trial trains."""

    model: str  # "linear", "mlp" or "sepcnn"
    units: int = 0  # mlp only
    layers: int = 0  # mlp only
    learning_rate: float = 1e-3
    dropout: float = 0.0

    @property
    def name(self) -> str:
        """The candidate in words: ``mlp 2 x 64``, ``linear``, ``sepcnn``."""
        if self.model == "mlp":
            return f"mlp {self.layers} x {self.units}"
        return self.model

    @property
    def slug(self) -> str:
        """The name as a file name: ``mlp-2x64``."""
        return self.name.replace(" x ", "x").replace(" ", "-")

    def options(self, opts: FitOptions) -> FitOptions:
        """``opts`` with this candidate's model, sizes, learning rate and dropout.

        Args:
            opts: fit's options.

        Returns:
            A copy of them; a size the candidate leaves at 0 keeps the option's value.
        """
        return dataclasses.replace(
            opts,
            model=self.model,
            units=self.units or opts.units,
            layers=self.layers if self.model == "mlp" else opts.layers,
            learning_rate=self.learning_rate,
            dropout=self.dropout,
        )

    def to_json(self) -> dict:
        """The candidate as ``selection.json`` records it: its ``name`` and fields."""
        return {"name": self.name, **dataclasses.asdict(self)}

    def encode(self) -> list[float]:
        """As numbers, for ``loop.Channel.broadcast`` (the chief tells the other workers what to build)."""
        return [1.0, float(MODELS.index(self.model)), self.units, self.layers, self.learning_rate, self.dropout]

    @staticmethod
    def blank() -> list[float]:
        """What a worker other than the chief offers to ``broadcast`` (zeros: only the chief's count)."""
        return [0.0] * 6

    @classmethod
    def decode(cls, values: list[float]) -> Candidate:
        """The candidate ``encode`` gave as numbers (what a worker received from the chief)."""
        return cls(MODELS[int(values[1])], int(values[2]), int(values[3]), values[4], values[5])

    @classmethod
    def from_json(cls, doc: dict) -> Candidate:
        """The candidate ``to_json`` recorded (fields it lacks take their defaults)."""
        return cls(**{f.name: doc[f.name] for f in dataclasses.fields(cls) if f.name in doc})


def prior_units(profile: Profile) -> int:
    """The MLP's width the prior starts from: a power of two of at least four units per class, 16 to 1,024.

    A hidden layer not much wider than the classes is a bottleneck (docs/design/selection.md); two to four
    classes keep 0.6's 16.

    Args:
        profile: the dataset's shape (its classes).

    Returns:
        The units per hidden layer.
    """
    wanted = max(MIN_UNITS, 4 * profile.classes)
    return min(MAX_UNITS, 1 << math.ceil(math.log2(wanted)))


def candidates(opts: FitOptions, profile: Profile) -> list[Candidate]:
    """The candidates in the prior's order, the user's explicit options applied to each, without repeats.

    n-gram rows: the MLP at ``prior_units``, a linear model, the MLP four times wider (up to 1,024 units).
    Token sequences: the sepCNN. ``--model NAME``: that model alone.

    Args:
        opts: fit's options (``--model`` and the options the user set).
        profile: the dataset's shape.

    Returns:
        The candidates, first to train first.
    """
    if profile.encoding == "sequence":
        found = [Candidate("sepcnn", learning_rate=LEARNING_RATE["sepcnn"], dropout=DROPOUT["sepcnn"])]
    else:
        units = prior_units(profile)
        found = [
            Candidate("mlp", units, LAYERS, LEARNING_RATE["mlp"], DROPOUT["mlp"]),
            Candidate("linear", learning_rate=LEARNING_RATE["linear"], dropout=DROPOUT["linear"]),
            Candidate("mlp", min(MAX_UNITS, units * 4), LAYERS, LEARNING_RATE["mlp"], DROPOUT["mlp"]),
        ]
    if opts.model != "auto":
        found = [c for c in found if c.model == opts.model] or [_default(opts.model, profile)]
        found = found[:1]
    found = [with_user_options(c, opts) for c in found]
    return list(dict.fromkeys(found))


def _default(model: str, profile: Profile) -> Candidate:
    """The prior's candidate of the family ``model``."""
    units, layers = (prior_units(profile), LAYERS) if model == "mlp" else (0, 0)
    return Candidate(model, units, layers, LEARNING_RATE[model], DROPOUT[model])


def user_set(opts: FitOptions) -> bool:
    """Whether the user set an option that shapes the candidates (``with_user_options``)."""
    fixed = (opts.units, opts.layers, opts.learning_rate, opts.dropout)
    return opts.model != "auto" or any(v is not None for v in fixed)


def with_user_options(candidate: Candidate, opts: FitOptions) -> Candidate:
    """``candidate`` with whatever the user set explicitly.

    Args:
        candidate: a candidate.
        opts: fit's options (None: unset); units and layers apply to an MLP only.

    Returns:
        The candidate with those options.
    """
    changes: dict = {}
    if opts.learning_rate is not None:
        changes["learning_rate"] = opts.learning_rate
    if opts.dropout is not None:
        changes["dropout"] = opts.dropout
    if candidate.model == "mlp":
        if opts.units is not None:
            changes["units"] = opts.units
        if opts.layers is not None:
            changes["layers"] = opts.layers
    return dataclasses.replace(candidate, **changes)


@dataclass(frozen=True)
class Schedule:
    """How long a trial may train and how patient its early stopping is, in fit's units."""

    epochs: int
    patience: int  # validation rounds
    min_rounds: int  # validation rounds before early stopping may end a trial


def schedule(opts: FitOptions, steps_per_epoch: int, round_steps: int, per_epoch: int) -> Schedule:
    """``--epochs`` and ``--patience``, or when unset the rules above (``MIN_STEPS``, ``PATIENCE_STEPS``).

    Args:
        opts: fit's options.
        steps_per_epoch: training steps per epoch.
        round_steps: training steps per validation round.
        per_epoch: validation rounds per epoch.

    Returns:
        Unset epochs: enough for ``MIN_STEPS`` steps, ``MIN_EPOCHS`` to ``MAX_EPOCHS``; unset patience: the
        rounds covering ``PATIENCE_STEPS`` steps, at least ``MIN_PATIENCE``; the rounds before early stopping
        may end a trial: one epoch's, or those covering ``MIN_STEPS`` steps where an epoch has more.
    """
    epochs = opts.epochs
    if epochs is None:
        epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / max(1, steps_per_epoch))))
    patience = opts.patience if opts.patience is not None else patience_rounds(round_steps)
    min_rounds = per_epoch if steps_per_epoch <= MIN_STEPS else math.ceil(MIN_STEPS / max(1, round_steps))
    return Schedule(epochs, patience, min(per_epoch, min_rounds))


def patience_rounds(round_steps: int) -> int:
    """Unset ``--patience``: the rounds covering ``PATIENCE_STEPS`` training steps, at least ``MIN_PATIENCE``.

    Args:
        round_steps: training steps per validation round.

    Returns:
        The rounds without a better validation loss before early stopping ends a trial.
    """
    return max(MIN_PATIENCE, math.ceil(PATIENCE_STEPS / max(1, round_steps)))


def budget(opts: FitOptions, first_seconds: float) -> float:
    """Seconds the candidates after the first may train.

    Args:
        opts: fit's options (``--tune-seconds``).
        first_seconds: the first candidate's training time.

    Returns:
        ``--tune-seconds``, or when unset ``BUDGET_FACTOR`` x ``first_seconds``, at least ``MIN_BUDGET``.
    """
    if opts.tune_seconds is not None:
        return opts.tune_seconds
    return max(MIN_BUDGET, BUDGET_FACTOR * first_seconds)


@dataclass
class Trial:
    """One candidate's training and score."""

    candidate: Candidate
    val_accuracy: float | None = None  # best round's weights on the whole validation split
    val_loss: float | None = None
    rounds: int = 0
    best_round: int = 0
    seconds: float = 0.0
    cut: bool = False  # stopped by the budget, not by its own early stopping
    skipped: str | None = None  # why it did not train
    behind: bool = False  # stopped where it trailed the leader at equal rounds (``guards.Horizon``)
    history: dict = field(default_factory=dict)  # val_accuracy and val_loss per round

    def to_json(self) -> dict:
        """The trial as ``selection.json`` and ``trials.json`` record it."""
        doc = dataclasses.asdict(self)
        doc["candidate"] = self.candidate.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Trial:
        """The trial ``to_json`` recorded."""
        return cls(**{**doc, "candidate": Candidate.from_json(doc["candidate"])})

    @property
    def ended_by(self) -> str:
        """What ended the trial, in words: why it was skipped, the budget, the leader's rounds or early stopping."""
        if self.skipped:
            return self.skipped
        if self.cut:
            return "cut by the budget"
        return "behind the leader at equal rounds" if self.behind else "early stopping"


@dataclass(frozen=True)
class Lead:
    """The leader a later trial is measured against (``horizon``): its rounds and their validation losses."""

    rounds: int
    losses: tuple[float, ...]  # one a round, on the validation sample the rounds measure

    @property
    def loss(self) -> float:
        """The lowest validation loss its rounds measured."""
        return min(self.losses)

    def loss_by(self, rounds: int) -> float:
        """The lowest validation loss of its first ``rounds`` rounds."""
        return min(self.losses[:rounds])

    def halfway(self, min_rounds: int) -> int | None:
        """Where a later trial is first compared with it: half its rounds, not before ``min_rounds``.

        None where that is not before its last round (the only comparison is at its rounds).
        """
        rounds = max(math.ceil(self.rounds / 2), min_rounds)
        return rounds if rounds < self.rounds else None


def horizon(trials: list[Trial]) -> Lead | None:
    """How far a later candidate trains without beating the leader: the leader's rounds and their losses.

    Args:
        trials: the trials so far, in order.

    Returns:
        The leader (``pick``) as its rounds measured it (not the whole split's loss: the measure a running trial's
        rounds have); None without a leader that has both rounds and losses.
    """
    if not trials:
        return None
    leader = trials[pick(trials)]
    losses = leader.history.get("val_loss") or []
    if leader.val_loss is None or not leader.rounds or not losses:
        return None
    return Lead(leader.rounds, tuple(losses))


@dataclass
class Selection:
    """What a version's ``selection.json`` records: the trials, the winner, and where a reused one came from."""

    trials: list[Trial]
    winner: int  # index into trials
    budget_seconds: float | None
    reused_from: str | None = None  # the version whose selection this fit reused (no search ran)
    searched: bool = False  # the prior's own candidates compared (or reused from such a search): a later fit reuses it

    @property
    def chosen(self) -> Candidate:
        """The winner's candidate."""
        return self.trials[self.winner].candidate

    def to_json(self) -> dict:
        """``selection.json``'s document."""
        return {
            "chosen": self.chosen.to_json(),
            "budget_seconds": self.budget_seconds,
            "reused_from": self.reused_from,
            "searched": self.searched,
            "winner": self.winner,
            "trials": [t.to_json() for t in self.trials],
        }

    @classmethod
    def from_json(cls, doc: dict) -> Selection:
        """The selection ``selection.json`` records."""
        return cls(
            [Trial.from_json(t) for t in doc["trials"]],
            int(doc["winner"]),
            doc.get("budget_seconds"),
            doc.get("reused_from"),
            bool(doc.get("searched", False)),
        )


def pick(trials: list[Trial]) -> int:
    """The winner among ``trials``: the lowest validation loss; ties keep the earlier (the prior's order).

    Args:
        trials: the trials so far, in order; one without a score never wins over one with.

    Returns:
        Its index.
    """
    scored = [(t.val_loss if t.val_loss is not None else math.inf, i) for i, t in enumerate(trials)]
    return min(scored)[1]


def line(selection: Selection) -> str:
    """The selection in one log line: each trial's loss and accuracy (the winner starred), or where it was reused from.

    Args:
        selection: the selection.

    Returns:
        The line.
    """
    if selection.reused_from is not None:
        reused = f"the selection of version {selection.reused_from}"
        return f"model: {selection.chosen.name}, {reused} (--retune searches again)"
    parts = []
    for i, t in enumerate(selection.trials):
        if t.skipped:
            parts.append(f"{t.candidate.name} not trained ({t.skipped})")
        else:
            mark = " *" if i == selection.winner else ""
            ended = f", {t.ended_by}" if t.cut or t.behind else ""
            parts.append(f"{t.candidate.name} {_score(t.val_loss)} {_score(t.val_accuracy)}{ended}{mark}")
    return "model selection (validation loss, accuracy): " + "; ".join(parts)


def _score(value: float | None) -> str:
    """A trial's loss or accuracy in four decimals; ``-`` for none."""
    return "-" if value is None else f"{value:.4f}"
