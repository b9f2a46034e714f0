"""fit's model selection: which candidates a version trains (``choose``), and their trials in order (``Search``).

Who owns what: ``train.tune`` owns the candidates, the budget and the
selection record; this module decides what one fit trains, from the
options and the model directory (``choose``: ``current``'s searched
selection reused, a warm start's own candidate, the user's options, or the
prior's search), and runs those trials through ``trial.Trials``, keeping
the leader's model (``Search``). One candidate trains in ``checkpoint/`` as
every fit did; several train in ``checkpoint/trial-I/``, each finished
trial is recorded in ``checkpoint/trials.json`` (a resumed fit skips it),
and a loser's directory is removed as soon as it loses.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from streamtrain import faults
from streamtrain.dataset.manifest import Manifest
from streamtrain.errors import NonFiniteError
from streamtrain.fs.atomic import atomic_write_text
from streamtrain.fs.versions import Versions
from streamtrain.train import tune
from streamtrain.train.cluster import Cluster
from streamtrain.train.modeldir import CHECKPOINT_DIR, CONFIG_NAME, read_vectorizer_doc
from streamtrain.train.trial import Limits, Trained, Trials
from streamtrain.train.tune import Candidate

if TYPE_CHECKING:
    from streamtrain.train.fit import FitOptions

log = logging.getLogger(__name__)
TRIALS_NAME = "trials.json"  # finished trials of a search, in the version's checkpoint directory


@dataclass
class Choices:
    """What one fit trains: the candidates in order, and where they come from."""

    candidates: list[Candidate]
    reused_from: str | None  # the version whose selection they reuse (None: none)
    searched: bool  # a search of the prior's own candidates (``tune.Selection.searched``: what a later fit reuses)


def choose(opts: FitOptions, manifest: Manifest, versions: Versions, cluster: Cluster) -> Choices:
    """The candidates to train (see ``Choices``).

    Reused: ``current``'s searched selection when it was made for this dataset's vectorizer and neither
    ``--retune`` nor a model option asks otherwise; ``--warm-start`` trains current's own candidate;
    ``--tune-seconds 0`` and a cluster train the prior's first candidate alone (a cluster's search runs in one
    process: ``--workers 1 --retune``).

    Args:
        opts: fit's options.
        manifest: the dataset's manifest (its shape, for the prior).
        versions: the model directory's versions (``current``'s selection and candidate).
        cluster: the cluster (its size).

    Returns:
        The candidates in order, where they come from, and whether they are a search to record for reuse.
    """
    found = tune.candidates(opts, tune.Profile.of(manifest))
    warm = current_candidate(versions) if opts.warm_start else None
    if warm is not None:  # the shape of the weights it starts from
        return Choices([tune.with_user_options(warm, opts)], None, False)
    if tune.user_set(opts):
        return Choices(found, None, False)
    reused = None if opts.retune else _current_selection(versions, manifest)
    if reused is not None:
        return Choices([reused[1].chosen], reused[0], True)
    if opts.tune_seconds == 0:
        return Choices(found[:1], None, False)
    if cluster.size > 1 and len(found) > 1:
        log.info(
            f"a cluster trains the prior's first candidate ({found[0].name}); the model selection runs in one "
            "process (fit --workers 1 --retune), and later cluster fits reuse it"
        )
        return Choices(found[:1], None, False)
    return Choices(found, None, len(found) > 1)


def _current_selection(versions: Versions, manifest: Manifest) -> tuple[str, tune.Selection] | None:
    """``current``'s version and selection, when it has a searched one made for this dataset's vectorizer."""
    from streamtrain.train.promotion import same_vectorizer

    version = versions.current()
    if version is None:
        return None
    path = versions.path(version)
    try:
        doc = json.loads((path / tune.SELECTION_NAME).read_text(encoding="utf-8"))
        selection = tune.Selection.from_json(doc)
        same = same_vectorizer(read_vectorizer_doc(path), manifest)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (version, selection) if same and selection.searched else None


def current_candidate(versions: Versions) -> Candidate | None:
    """The candidate ``current`` was trained as, from its ``fit_config.json`` (for ``--warm-start``).

    Args:
        versions: the model directory's versions.

    Returns:
        The candidate; None without a current version or a readable record.
    """
    version = versions.current()
    if version is None:
        return None
    try:
        config = json.loads((versions.path(version) / CONFIG_NAME).read_text(encoding="utf-8"))
        model = config["model"]
        sizes = (config.get("units") or 0, config.get("layers") or 0) if model == "mlp" else (0, 0)
        return Candidate(model, *sizes, float(config["learning_rate"]), float(config["dropout"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Search:
    """The chief's trials of one fit, in order, within the budget (``train.tune``); keeps the leader's model.

    Args:
        trials: what the trials share, and the training of each.
    """

    def __init__(self, trials: Trials) -> None:
        self.trials = trials
        self.records: list[tune.Trial] = []
        self.leader: Trained | None = None
        self.budget: float | None = None  # seconds the trials after the first may train, once the first has

    def run(self, choices: Choices, resuming: bool) -> tuple[Trained, tune.Selection]:
        """Train the candidates in order, within the budget, keeping the leader.

        Args:
            choices: the candidates (``choose``).
            resuming: the version is an interrupted one: skip the trials recorded as finished.

        Returns:
            The leader's model and the selection's record.

        Raises:
            NonFiniteError: no trial ended with a finite loss (the version is removed).
        """
        candidates = choices.candidates
        several = len(candidates) > 1
        if several and not self.trials.plan.val.rows:
            log.info("no validation rows: no model selection, the prior's first candidate trains")
            candidates, several = candidates[:1], False
        record = self.trials.building / CHECKPOINT_DIR / TRIALS_NAME
        done = _read_trials(record) if resuming and several else []
        for i, candidate in enumerate(candidates):
            directory = self.trials.building / CHECKPOINT_DIR / (f"trial-{i}" if several else "")
            if i < len(done) and done[i].candidate == candidate:
                log.info(f"trial {i + 1} of {len(candidates)}: {candidate.name}, trained before the interruption")
                self._adopt(i, done[i], directory)
                continue
            if i > 0 and self._spent():
                self.records.append(tune.Trial(candidate, skipped=f"the budget of {self.budget:.0f} s was spent"))
                continue
            if several:
                log.info(f"trial {i + 1} of {len(candidates)}: {candidate.name}")
            elif choices.reused_from is None:  # a reused one is said once, with its version, below
                log.info(f"model: {candidate.name}")
            self._train(i, candidate, directory, several)
            if several:
                atomic_write_text(record, json.dumps([t.to_json() for t in self.records]))
                if i + 1 < len(candidates):
                    faults.point("after-trial")
        return self._outcome(choices, several)

    def _adopt(self, i: int, trial: tune.Trial, directory: Path) -> None:
        """Trial ``i``, finished before an interruption: its record, and its model when it leads."""
        self.records.append(trial)
        if tune.pick(self.records) == i and trial.val_accuracy is not None:
            self.leader = self.trials.rebuild(trial.candidate, directory, trial)

    def _spent(self) -> bool:
        """Whether the trials after the first have spent the budget (set from the first trial's seconds)."""
        if self.budget is None:
            self.budget = tune.budget(self.trials.opts, self.records[0].seconds)
        return self._seconds() >= self.budget

    def _seconds(self) -> float:
        """Seconds the trials after the first have trained."""
        return sum(t.seconds for t in self.records[1:])

    def _train(self, i: int, candidate: Candidate, directory: Path, several: bool) -> None:
        """Train trial ``i``; keep its model when it leads (removing the former leader's directory).

        A trial after the first stops where it trails the leader at equal rounds (``tune.horizon``). A trial that
        does not lead has its directory removed.
        """
        until = None if i == 0 or self.budget is None else time.monotonic() + self.budget - self._seconds()
        limits = Limits(until, tune.horizon(self.records) if several else None)
        run, trial = self.trials.train(candidate, directory, limits, first=i == 0, scored=several)
        self.records.append(trial)
        if run is not None and tune.pick(self.records) == i:
            if self.leader is not None:
                shutil.rmtree(self.leader.directory, ignore_errors=True)
            self.leader = run
        elif run is not None:
            shutil.rmtree(run.directory, ignore_errors=True)

    def _outcome(self, choices: Choices, several: bool) -> tuple[Trained, tune.Selection]:
        """The leader and the selection's record; ``NonFiniteError`` (the version removed) without a leader."""
        if self.leader is None:
            self.trials.discard()
            problems = "; ".join(f"{t.candidate.name}: {t.skipped}" for t in self.records if t.skipped)
            raise NonFiniteError(f"{problems}; no model was written (a lower --learning-rate may help)")
        records = self.records
        selection = tune.Selection(records, tune.pick(records), self.budget, choices.reused_from, choices.searched)
        if several or choices.reused_from is not None:
            log.info(tune.line(selection))
        return self.leader, selection


def _read_trials(path: Path) -> list[tune.Trial]:
    """The finished trials recorded in ``trials.json``; none when it is missing or unreadable."""
    try:
        return [tune.Trial.from_json(doc) for doc in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, KeyError, TypeError):
        return []
