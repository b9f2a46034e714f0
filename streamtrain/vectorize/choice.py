"""Which vectorizer a corpus gets: the guide's S/W rule, settled by a bake-off when it says sequences.

``choose_vectorizer`` applies the rule: token sequences (for the sepCNN) when
samples / median words per sample (S/W) >= ``SW_THRESHOLD``, TF-IDF n-grams
(for the MLP) otherwise. Under ``--vectorizer auto``, and only when the rule
says sequences (``needs_bakeoff``), prepare trains both families on a bounded
sample (``train.bakeoff``) and ``decide`` settles: the other family wins only
when its sample validation accuracy beats the rule's pick by more than
``MARGIN``; with nothing to measure, the rule's pick stands. ``ChoiceSample``
keeps the bake-off's labelled training rows. The manifest records the result
under ``choice`` (``choose_vectorizer``'s keys, plus ``bakeoff`` when one ran);
``dataset.records.Choice`` records it and says it (log line, inspect, report.md).

Rationale and measurements: docs/design/vectorizer-choice.md
"""

from __future__ import annotations

from collections.abc import Sequence

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


def decide(choice: dict, evidence: dict, margin: float = MARGIN) -> dict:
    """``choice`` settled by the bake-off's ``evidence``, the evidence recorded in it.

    Args:
        choice: a record of ``choose_vectorizer`` whose rule said sequences.
        evidence: ``train.bakeoff.measure``'s result: ``evidence[family]["val_accuracy"]`` for each family of
            ``FAMILIES`` (None: not measured, which loses), or ``evidence["skipped"]``: why nothing was
            measured (then the rule's pick stands).
        margin: sample validation accuracy by which the other family must beat the rule's pick.

    Returns:
        ``choice`` with ``chosen`` and ``why`` settled and ``bakeoff``: the evidence plus ``margin``,
        ``decision`` and ``why``.
    """
    rule = choice["rule"]
    other = "ngram" if rule == "sequence" else "sequence"
    if evidence.get("skipped"):
        decision, why = rule, f"no bake-off ({evidence['skipped']}): the rule's pick stands"
    else:
        ours, theirs = (evidence[f].get("val_accuracy") for f in (rule, other))
        names = {f: evidence[f].get("model") or FAMILIES[f] for f in (rule, other)}
        scores = f"sample validation accuracy {other} + {names[other]} {_score(theirs)}, "
        scores += f"{rule} + {names[rule]} {_score(ours)}"
        ours, theirs = (-1.0 if v is None else v for v in (ours, theirs))  # a family that could not be built loses
        if theirs > ours + margin:
            decision, why = other, f"{scores}: {other} wins by more than the margin {margin:g}"
        elif theirs > ours:
            decision, why = (
                rule,
                f"{scores}: {other} leads by no more than the margin {margin:g}, the rule's pick stands",
            )
        else:
            decision, why = rule, f"{scores}: {rule} scores at least as high, the rule's pick stands"
    return {
        **choice,
        "chosen": decision,
        "why": f"the guide's rule said {rule} (S/W >= {choice['threshold']:g}); the bake-off chose {decision}",
        "bakeoff": {**evidence, "margin": margin, "decision": decision, "why": why},
    }


def _score(accuracy: float | None) -> str:
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
