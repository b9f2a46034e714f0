"""Which vectorizer a corpus gets: the guide's S/W rule, settled by a bake-off when it says sequences.

``choose_vectorizer`` applies the rule: token sequences (for the sepCNN) when
samples / median words per sample (S/W) >= ``SW_THRESHOLD``, TF-IDF n-grams
(for the MLP) otherwise. Under ``--vectorizer auto``, and only when the rule
says sequences (``needs_bakeoff``), prepare trains both families on a bounded
sample (``train.bakeoff``) and ``decide`` settles: the other family wins only
when its validation accuracy beats the rule's pick by more than ``MARGIN``;
with nothing to measure, the rule's pick stands. Where the corpus holds more
training rows than the sample trained on, each family was also measured on
half the sample, and its accuracy is projected to the corpus's rows
(``project``) before the margin applies; within it, the family that gains
more from the extra rows wins. ``ChoiceSample``
keeps the bake-off's labelled training rows. The manifest records the result
under ``choice`` (``choose_vectorizer``'s keys, plus ``bakeoff`` when one ran);
``dataset.records.Choice`` records it and says it (log line, inspect, report.md).

Rationale and measurements: docs/design/vectorizer-choice.md
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamtrain.vectorize.defaults import SW_THRESHOLD
from streamtrain.vectorize.sampling import SystematicSample

VECTORIZERS = ("auto", "ngram", "sequence")
# Names written by streamtrain 0.1.0 (encoding "tfidf", vectorizer kind "ngram_tfidf"), read as today's.
LEGACY_NAMES = {"ngram_tfidf": "ngram", "tfidf": "ngram"}
FAMILIES = {"ngram": "mlp", "sequence": "sepcnn"}  # each vectorizer's model
MARGIN = 0.01  # validation accuracy by which the other family must beat the rule's pick on the sample
SAMPLE_ROWS = 20_000  # labelled training rows kept for the bake-off, at most
SAMPLE_BYTES = 16 << 20  # bytes of UTF-8 text kept for the bake-off, at most
MAX_TEXT_CHARS = 1 << 16  # a longer text is cut


def choose_vectorizer(requested: str, samples: int, median_words: float) -> dict:
    """The guide's rule and the numbers behind it: sequences when S/W >= ``SW_THRESHOLD``.

    Args:
        requested: ``--vectorizer``: "auto", "ngram" or "sequence"; anything but "auto" is the choice.
        samples: S, the number of training samples.
        median_words: W, the median words per sample (0: S/W is infinite).

    Returns:
        The manifest's ``choice`` record: ``requested``, ``chosen``, ``samples``, ``median_words_per_sample``,
        ``samples_per_word`` (None when infinite), ``threshold``, ``rule`` (the rule's pick) and ``why``.
    """
    ratio = samples / median_words if median_words else float("inf")
    rule = "sequence" if ratio >= SW_THRESHOLD else "ngram"
    chosen = requested if requested != "auto" else rule
    if requested != "auto":
        why = f"forced by --vectorizer {requested}"
    else:
        why = f"the guide's rule: S/W {'>=' if rule == 'sequence' else '<'} {SW_THRESHOLD:g}"
    return {
        "requested": requested,
        "chosen": chosen,
        "samples": samples,
        "median_words_per_sample": median_words,
        "samples_per_word": ratio if ratio != float("inf") else None,
        "threshold": SW_THRESHOLD,
        "rule": rule,
        "why": why,
    }


def needs_bakeoff(choice: dict) -> bool:
    """Whether to measure both families before committing: ``auto`` was requested and the rule said sequences.

    Args:
        choice: a record of ``choose_vectorizer``.

    Returns:
        True when prepare runs the bake-off.
    """
    return choice["requested"] == "auto" and choice["rule"] == "sequence"


@dataclass(frozen=True)
class Projection:
    """A family's validation accuracy on the sample, and projected to the corpus's training rows (``project``)."""

    measured: float | None  # None: not measured (the family could not be built), which loses
    projected: float | None

    @property
    def gain(self) -> float:
        """How much the projection adds to the measurement (0 when nothing is measured)."""
        return 0.0 if self.measured is None or self.projected is None else self.projected - self.measured


def project(whole: float | None, half: float | None, rows: tuple[int, int], corpus_rows: int) -> Projection:
    """A family's accuracy at ``corpus_rows`` from its learning curve's two points on the sample.

    The error is taken as a power of the training rows (``error ~ rows ** -b``, the usual form of a learning
    curve), the power the one that joins the curve's two points. A half that scored at least as well as the
    whole projects no gain.

    Args:
        whole: validation accuracy after training on the sample's ``rows[0]`` rows (None: not measured).
        half: the same after training on ``rows[1]`` of them, every other one (None: not measured).
        rows: the rows each point trained on.
        corpus_rows: the corpus's training rows; at most ``rows[0]``: the measurement is the projection.

    Returns:
        The measurement and its projection.
    """
    if whole is None or half is None or corpus_rows <= rows[0] or not rows[1] < rows[0] or not half < whole < 1.0:
        return Projection(whole, whole)
    power = math.log((1.0 - whole) / (1.0 - half)) / math.log(rows[0] / rows[1])
    return Projection(whole, 1.0 - (1.0 - whole) * (corpus_rows / rows[0]) ** power)


def projections(evidence: dict) -> dict[str, Projection]:
    """Each family's ``project``-ion from the bake-off's evidence; with no ``curve`` in it, the measurements."""
    curve = evidence.get("curve") or {}
    rows, corpus_rows = (evidence.get("train_rows", 0), curve.get("rows", 0)), curve.get("corpus_rows", 0)
    return {
        f: project(evidence[f].get("val_accuracy"), (curve.get(f) or {}).get("val_accuracy"), rows, corpus_rows)
        for f in FAMILIES
    }


def decide(choice: dict, evidence: dict, margin: float = MARGIN) -> dict:
    """``choice`` settled by the bake-off's ``evidence``, the evidence recorded in it.

    The other family wins when its accuracy beats the rule's pick by more than ``margin``: the sample's
    validation accuracy, or with a ``curve`` in the evidence, that accuracy projected to the corpus's training
    rows (``projections``). Within the margin the rule's pick stands, unless a curve says the other family gains
    more from the corpus's rows (the guide's premise, that sequences gain more, measured instead of assumed).

    Args:
        choice: a record of ``choose_vectorizer`` whose rule said sequences.
        evidence: ``train.bakeoff.measure``'s result: ``evidence[family]["val_accuracy"]`` for each family of
            ``FAMILIES`` (None: not measured, which loses) and ``train_rows``, optionally ``curve`` (each
            family's score on half the rows, and ``corpus_rows``); or ``evidence["skipped"]``: why nothing was
            measured (then the rule's pick stands).
        margin: validation accuracy by which the other family must beat the rule's pick.

    Returns:
        ``choice`` with ``chosen`` and ``why`` settled and ``bakeoff``: the evidence plus ``margin``,
        ``decision`` and ``why``.
    """
    rule = choice["rule"]
    if evidence.get("skipped"):
        decision, why = rule, f"no bake-off ({evidence['skipped']}): the rule's pick stands"
    else:
        decision, why = _settle(rule, evidence, margin)
    return {
        **choice,
        "chosen": decision,
        "why": f"the guide's rule said {rule} (S/W >= {choice['threshold']:g}); the bake-off chose {decision}",
        "bakeoff": {**evidence, "margin": margin, "decision": decision, "why": why},
    }


def _settle(rule: str, evidence: dict, margin: float) -> tuple[str, str]:
    """``decide``'s family and its reason in words, from measured evidence."""
    other = "ngram" if rule == "sequence" else "sequence"
    seen = projections(evidence)
    names = {f: evidence[f].get("model") or FAMILIES[f] for f in (rule, other)}
    scores = f"sample validation accuracy {other} + {names[other]} {score_text(seen[other].measured)}, "
    scores += f"{rule} + {names[rule]} {score_text(seen[rule].measured)}"
    curve = evidence.get("curve")
    if curve:
        scores += f"; projected to {curve['corpus_rows']} training rows from {curve['rows']} and "
        scores += f"{evidence['train_rows']}: {other} {score_text(seen[other].projected)}, "
        scores += f"{rule} {score_text(seen[rule].projected)}"
    ours, theirs = (-1.0 if p.projected is None else p.projected for p in (seen[rule], seen[other]))
    if theirs > ours + margin:
        return other, f"{scores}: {other} wins by more than the margin {margin:g}"
    if curve and ours <= theirs + margin:  # within the margin: the family that gains more from the rows
        steeper = other if seen[other].gain > seen[rule].gain else rule
        gains = "more" if steeper == other else "at least as much"
        return steeper, f"{scores}: within the margin {margin:g}, {steeper} gains {gains} from the corpus's rows"
    if theirs > ours:
        return rule, f"{scores}: {other} leads by no more than the margin {margin:g}, the rule's pick stands"
    return rule, f"{scores}: {rule} scores at least as high, the rule's pick stands"


def score_text(accuracy: float | None) -> str:
    """An accuracy as the logs and the choice's reason quote it: ``0.9174``, or ``not measured``."""
    return "not measured" if accuracy is None else f"{accuracy:.4f}"


class ChoiceSample(SystematicSample):
    """The bake-off's sample: labelled training rows in input order, bounded in rows and bytes.

    Every ``stride``-th training row, as ``sampling.SystematicSample`` keeps it; each text cut to
    ``MAX_TEXT_CHARS``.

    Args:
        max_rows: most rows kept.
        max_bytes: most bytes of UTF-8 text kept.
    """

    def __init__(self, max_rows: int = SAMPLE_ROWS, max_bytes: int = SAMPLE_BYTES):
        super().__init__(max_rows, max_bytes, MAX_TEXT_CHARS)

    @property
    def max_rows(self) -> int:
        """The most rows kept."""
        return self.max_items

    def offer(self, texts: Sequence[str], labels: np.ndarray, train: np.ndarray) -> None:  # type: ignore[override]
        """Offer a chunk's rows and their label ids; only the training rows are sampled.

        Args:
            texts: the chunk's texts.
            labels: their provisional label ids (``LabelIndex.encode``).
            train: true for the training rows.
        """
        super().offer(texts, train, labels)

    def rows(self, remap: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
        """The kept rows, in input order.

        Args:
            remap: provisional id -> final id (``LabelIndex.finalize``); None keeps the ids as offered.

        Returns:
            (texts, int32 label ids).
        """
        labels = np.fromiter((kept[2] for kept in self._kept), np.int32, count=len(self._kept))
        return [kept[1] for kept in self._kept], (labels if remap is None else remap[labels].astype(np.int32))

    def record(self) -> dict:
        """The sample's size, stride and bounds, and its rule in words (the bake-off's evidence keeps all but it)."""
        return {
            "rows": len(self._kept),
            "text_bytes": self.text_bytes,
            "training_rows": self.seen,
            "stride": self.stride,
            "max_rows": self.max_rows,
            "max_bytes": self.max_bytes,
            "rule": "every stride-th training row in input order, the stride doubling while the sample exceeds "
            "max_rows rows or max_bytes bytes of UTF-8 text",
        }
