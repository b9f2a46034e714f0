"""Which vectorizer a corpus gets: the guide's samples-per-word rule, checked by a bake-off when it says sequences.

``choose_vectorizer`` applies the guide's rule: token sequences (for the
sepCNN) when samples / median words per sample S/W >= ``SW_THRESHOLD``,
TF-IDF n-grams (for the MLP) otherwise. The rule fails on short texts: a
47k-row corpus of one-line descriptions (7 median words, S/W 6,700) got
sequences + sepCNN at 0.774 test accuracy where n-grams + MLP reach 0.790.
So under ``--vectorizer auto``, when (and only when) the rule says sequences
(``needs_bakeoff``), prepare measures both families on a bounded sample
(``train.bakeoff``: TensorFlow is imported only then, so corpora the rule
gives n-grams, IMDB-like ones, pay nothing) and ``decide`` settles:

- the family with the higher validation accuracy on the sample wins, but the
  rule's pick (sequences) keeps ties within ``MARGIN`` (0.01), for two
  reasons. The sample is at most ``SAMPLE_ROWS`` of the corpus' S rows, and
  the sepCNN gains more than the MLP from more rows (the premise of the S/W
  rule), so a tie on the sample foretells a sequence lead on the whole
  corpus. And a smaller difference is noise: the standard error of a paired
  accuracy difference on a validation sample of 2,000 rows where the two
  models disagree on a fifth of them is sqrt(0.2 / 2000) = 0.01 (measured
  on AG News titles grown 2x, seeds 0 to 2: the sepCNN's sample validation
  accuracy moved by 0.03, the MLP's by 0.005).
- no validation rows (``--val-fraction 0``) or no training rows in the
  sample: nothing to measure on, the rule's pick stands.

``ChoiceSample`` is the bake-off's labelled training sample, kept by the
first pass: a systematic sample in input order, as ``ngram_names.NameSample``
keeps (every ``stride``-th training row, the stride doubling and the kept
rows thinned to it whenever the sample would exceed ``SAMPLE_ROWS`` rows or
``SAMPLE_BYTES`` bytes of UTF-8 text; each text cut to ``MAX_TEXT_CHARS``),
so a corpus ordered by class is sampled in every class; it ends between half
and all of either bound. Validation rows come from the first pass's
validation sample (``dataset.val_sample``). The bake-off may train on fewer
rows (``train.bakeoff.POSITIONS``: long texts make the sepCNN slow), and the
sample is what it measures: a corpus whose sequences win only beyond a few
thousand rows may get n-grams.

The manifest records the choice under ``choice``: ``requested``,
``chosen``, S (``samples``), W (``median_words_per_sample``),
``samples_per_word``, ``threshold``, ``rule`` (the rule's pick), ``why``
(one line) and, when a bake-off ran, ``bakeoff``: the evidence
(``train.bakeoff.measure``: rows used, per family its sample validation
accuracy and loss, epochs and seconds) plus ``margin``, ``decision`` and
``why``.
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
    """The guide's rule and the numbers behind it: sequences when S/W >= ``SW_THRESHOLD``."""
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
    """Whether to measure both families before committing: ``auto`` and the rule said sequences."""
    return choice["requested"] == "auto" and choice["rule"] == "sequence"


def decide(choice: dict, evidence: dict, margin: float = MARGIN) -> dict:
    """``choice`` settled by the bake-off's ``evidence`` (``train.bakeoff.measure``), the evidence recorded in it.

    ``evidence[family]["val_accuracy"]`` for ``family`` in ``FAMILIES``; ``evidence["skipped"]``: why
    nothing was measured (the rule's pick stands).
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


def choice_line(choice: dict) -> str:
    """The choice in one log line: S, W, S/W, the pick and why."""
    ratio = choice["samples_per_word"]
    line = (
        f"S = {choice['samples']} samples, W = {choice['median_words_per_sample']:g} median words per sample, "
        f"S/W = {float('inf') if ratio is None else ratio:.1f} -> {choice['chosen']}"
    )
    if choice["requested"] != "auto":
        return line + " (forced)"
    if "bakeoff" not in choice:
        return line + f" (threshold {choice['threshold']:g})"
    return line + f" (threshold {choice['threshold']:g} said {choice['rule']}; bake-off: {choice['bakeoff']['why']})"


class ChoiceSample(SystematicSample):
    """A systematic sample of labelled training rows, bounded in rows and bytes (see the module docstring)."""

    def __init__(self, max_rows: int = SAMPLE_ROWS, max_bytes: int = SAMPLE_BYTES):
        super().__init__(max_rows, max_bytes, MAX_TEXT_CHARS)

    @property
    def max_rows(self) -> int:
        return self.max_items

    def offer(self, texts: Sequence[str], labels: np.ndarray, train: np.ndarray) -> None:  # type: ignore[override]
        """Offer a chunk's rows and (provisional) label ids; those where ``train`` is true are training rows."""
        super().offer(texts, train, labels)

    def rows(self, remap: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
        """(texts, label ids) in input order; ``remap``: provisional id -> final id (``LabelIndex.finalize``)."""
        labels = np.fromiter((kept[2] for kept in self._kept), np.int32, count=len(self._kept))
        return [kept[1] for kept in self._kept], (labels if remap is None else remap[labels].astype(np.int32))

    def record(self) -> dict:
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
