"""The vectorizer family of a new dataset, decided while the n-gram stage runs ahead (``choosing``).

Who owns what: ``choosing`` applies the guide's rule (``vectorize.choice``) and, when it says sequences
under ``--vectorizer auto``, starts the bake-off the caller passed (``dataset.options.Bakeoff``: the
application layer's runs in a forked child). While it measures, ``build`` writes the n-gram dataset ahead
(``Pending.ahead``): the first pass spilled the n-gram counts anyway, and the bake-off keeps n-grams on every
large corpus measured (docs/design/prepare.md, "N-grams ahead of the bake-off"). ``Pending.choice`` waits for
the decision; when it is sequences, ``build`` discards what was written ahead (``discard``), and the sequence
stage announces its model inputs after the n-gram stage's (``train`` then builds its model again). Leaving
``choosing`` ends a bake-off that still runs (an error, a signal).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from streamtrain.dataset.families import Classes, Vectorized
from streamtrain.dataset.first_pass import FirstPass
from streamtrain.dataset.options import Bakeoff, BakeoffRequest, PrepareOptions
from streamtrain.dataset.records import Choice
from streamtrain.vectorize.choice import choose_vectorizer, decide, needs_bakeoff

log = logging.getLogger(__name__)
# Why a library call that passed no bake-off keeps the rule's pick (``vectorize.choice.decide``'s "skipped").
NO_BAKEOFF = "none given to this library call of streamtrain.dataset.prepare"


@dataclass(frozen=True)
class Pending:
    """The family choice of ``choosing``: the rule's, and the bake-off's answer while it runs.

    Attributes:
        rule: ``choose_vectorizer``'s record (settled already when no bake-off runs).
        answer: the bake-off's settled choice; None: no bake-off runs.
    """

    rule: dict
    answer: Future | None = None

    @property
    def ahead(self) -> bool:
        """Whether the n-gram stage runs ahead of the decision: a bake-off runs and has not answered yet.

        The first pass spilled n-grams wherever a bake-off runs; one run in this process answers before
        ``choosing`` yields.
        """
        return self.answer is not None and not self.answer.done()

    def choice(self) -> Choice:
        """The manifest's ``choice``: the rule's, or the bake-off's once it answers (waiting for it).

        Raises:
            ChildError: the bake-off failed, or its child died.
        """
        chosen = Choice.from_json(self.rule if self.answer is None else self.answer.result())
        log.info(chosen.line())
        return chosen


@contextlib.contextmanager
def choosing(opts: PrepareOptions, first: FirstPass, classes: Classes, bakeoff: Bakeoff | None) -> Iterator[Pending]:
    """The guide's rule, and the bake-off started when it says sequences under ``auto`` (the first pass's samples).

    Without a ``bakeoff`` the rule's pick stands, and the manifest says why. Either way the bake-off's sample
    is cleared here (a forked bake-off has its own copy).

    Args:
        opts: the run's options (``--vectorizer``, the families' configurations, the seed).
        first: the first pass (S and W, the samples, the document frequencies).
        classes: the final label map.
        bakeoff: ``prepare``'s; None: none.

    Yields:
        The pending choice; leaving the block ends a bake-off that still runs.
    """
    rule = choose_vectorizer(opts.vectorizer, first.words.samples, first.words.median())
    with contextlib.ExitStack() as stack:
        answer = None
        if needs_bakeoff(rule):  # auto, and the rule says sequences: both families measured on a sample
            if bakeoff is None:
                rule = decide(rule, {"skipped": NO_BAKEOFF})
                log.warning(f"the guide's rule says sequences and no bake-off was given ({NO_BAKEOFF}): they stand")
            else:
                request = BakeoffRequest(
                    rule, first.choice_sample, first.val_sample, classes.names, classes.remap,
                    opts.ngram(first.doc_freq), opts.sequence(), opts.seed,
                )  # fmt: skip
                answer = stack.enter_context(bakeoff(request))
        first.choice_sample.clear()
        yield Pending(rule, answer)


def discard(stage: Path, made: Vectorized) -> None:
    """Remove the files the n-gram stage wrote ahead into ``stage`` (its shards and feature names): sequences won."""
    paths = [shard.path for shard in made.shards]
    if made.feature_names is not None:
        paths.append(made.feature_names.path)
    for path in paths:
        (stage / path).unlink(missing_ok=True)
    log.info(f"the bake-off chose sequences: the {len(made.shards)} n-gram shards written ahead are discarded")
