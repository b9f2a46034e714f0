"""The vectorizer choice: the guide's S/W rule, settled by a bake-off on a sample when it says sequences.

The real-corpus tests (AG News, skipped without $STREAMTRAIN_DATASETS) run prepare with ``--vectorizer auto``
on two short-text corpora where the rule says sequences, built by ``tools/short_texts.py``. Measured by hand
with forced families (full prepare + fit + evaluate on the corpus' held-out test file, default options,
2 CPU cores; commands in the commit message):

- AG News titles (65% of them, grown 2x: 9,876 rows): n-grams + MLP 0.744 test accuracy, sequences + sepCNN
  0.691 (2,662 test titles): auto must pick n-grams.
- word order (``g a f b h`` in two AG News title words, label: is ``a`` before ``b``; 11,000 rows):
  sequences + sepCNN 0.988, n-grams + MLP 0.502 (chance; 4,000 test rows): auto must keep sequences.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from helpers import load_tool, streamtrain

from streamtrain.dataset.prepare import PrepareOptions
from streamtrain.dataset.records import Choice
from streamtrain.prepare import prepare  # with the family bake-off, as the command runs it
from streamtrain.train.report import _choice as report_choice
from streamtrain.vectorize.choice import (
    MARGIN,
    ChoiceSample,
    choose_vectorizer,
    decide,
    needs_bakeoff,
    project,
    projections,
)
from streamtrain.vectorize.defaults import SW_THRESHOLD


def test_rule_boundaries():
    assert SW_THRESHOLD == 1500
    assert choose_vectorizer("auto", 1500, 1.0)["chosen"] == "sequence"
    assert choose_vectorizer("auto", 1499, 1.0)["chosen"] == "ngram"
    assert choose_vectorizer("auto", 30_000, 20.0)["chosen"] == "sequence"
    assert choose_vectorizer("auto", 25_000, 174.0)["chosen"] == "ngram"  # IMDB
    assert choose_vectorizer("ngram", 10**7, 1.0)["chosen"] == "ngram"  # forced choices win
    assert choose_vectorizer("sequence", 10, 100.0)["chosen"] == "sequence"
    c = choose_vectorizer("auto", 7600, 37.0)
    assert c["samples_per_word"] == pytest.approx(205.405, abs=1e-3) and c["requested"] == "auto"
    assert c["rule"] == "ngram" and c["why"] == "the guide's rule: S/W < 1500"
    forced = choose_vectorizer("ngram", 10**7, 1.0)
    assert forced["rule"] == "sequence" and forced["why"] == "forced by --vectorizer ngram"


def test_only_auto_with_a_rule_for_sequences_needs_a_bakeoff():
    assert needs_bakeoff(choose_vectorizer("auto", 30_000, 5.0))
    assert not needs_bakeoff(choose_vectorizer("auto", 25_000, 174.0))  # IMDB-like: the rule's n-grams, no cost
    assert not needs_bakeoff(choose_vectorizer("sequence", 30_000, 5.0))
    assert not needs_bakeoff(choose_vectorizer("ngram", 30_000, 5.0))


def _evidence(ngram: float | None, sequence: float) -> dict:
    return {"ngram": {"val_accuracy": ngram}, "sequence": {"val_accuracy": sequence}, "train_rows": 100}


def test_decide_needs_more_than_the_margin_to_overrule_the_rule():
    rule = choose_vectorizer("auto", 30_000, 5.0)
    won = decide(rule, _evidence(0.80, 0.77))
    assert won["chosen"] == "ngram" and won["rule"] == "sequence"
    assert won["bakeoff"]["decision"] == "ngram" and won["bakeoff"]["margin"] == MARGIN == 0.01
    assert won["bakeoff"]["train_rows"] == 100  # the evidence is kept
    assert (
        "ngram + mlp 0.8000, sequence + sepcnn 0.7700: ngram wins by more than the margin 0.01"
        in (won["bakeoff"]["why"])
    )
    assert won["why"] == "the guide's rule said sequence (S/W >= 1500); the bake-off chose ngram"
    tie = decide(rule, _evidence(0.775, 0.77))  # within the margin: the rule's pick stands
    assert tie["chosen"] == "sequence" and tie["bakeoff"]["why"].endswith(
        "ngram leads by no more than the margin 0.01, the rule's pick stands"
    )
    assert decide(rule, _evidence(0.78, 0.77))["chosen"] == "sequence"  # exactly the margin: not more
    lost = decide(rule, _evidence(0.70, 0.77))
    assert lost["chosen"] == "sequence" and lost["bakeoff"]["why"].endswith(
        "sequence scores at least as high, the rule's pick stands"
    )
    assert decide(rule, _evidence(0.78, 0.77), margin=0.0)["chosen"] == "ngram"
    broken = decide(rule, _evidence(None, 0.30))  # n-grams could not be built: they lose
    assert broken["chosen"] == "sequence" and "ngram + mlp not measured" in broken["bakeoff"]["why"]
    skipped = decide(rule, {"skipped": "no validation rows"})
    assert skipped["chosen"] == "sequence"
    assert skipped["bakeoff"]["why"] == "no bake-off (no validation rows): the rule's pick stands"


def test_projection_is_the_power_law_through_the_curves_two_points():
    # errors 0.2 on 500 rows, 0.1 on 1,000: each doubling halves the error, so 4,000 rows give 0.025
    assert project(0.9, 0.8, (1000, 500), 4000).projected == pytest.approx(0.975)
    assert project(0.9, 0.8, (1000, 500), 4000).gain == pytest.approx(0.075)
    steep = project(0.9, 0.8, (1000, 500), 1_000_000)
    assert 0.9 < steep.projected < 1.0  # never past a perfect score
    for flat in (
        project(0.9, 0.8, (1000, 500), 1000),  # the corpus is the sample: the measurement stands
        project(0.9, 0.9, (1000, 500), 4000),  # no gain from the doubling: none projected
        project(0.9, 0.95, (1000, 500), 4000),  # the half scored higher: none projected
        project(0.9, None, (1000, 500), 4000),  # no curve
        project(1.0, 0.8, (1000, 500), 4000),
    ):
        assert flat.projected == flat.measured and flat.gain == 0
    assert project(None, 0.8, (1000, 500), 4000).projected is None


def _curved(ngram: tuple[float, float], sequence: tuple[float, float], corpus_rows: int) -> dict:
    """Evidence of a bake-off on 1,000 rows with each family's (whole, half) accuracy."""
    whole = _evidence(ngram[0], sequence[0])
    curve = {"rows": 500, "corpus_rows": corpus_rows}
    curve |= {"ngram": {"val_accuracy": ngram[1]}, "sequence": {"val_accuracy": sequence[1]}}
    return {**whole, "train_rows": 1000, "curve": curve}


def test_a_curve_projects_both_families_to_the_corpus_before_the_margin():
    rule = choose_vectorizer("auto", 30_000, 5.0)
    # sequences lead by 3 points on the sample, but n-grams gain more from each doubling of the rows
    scale = _curved((0.92, 0.88), (0.95, 0.945), 32_000)
    seen = projections(scale)
    assert seen["ngram"].projected > seen["sequence"].projected + MARGIN  # 5 doublings: n-grams ahead
    won = decide(rule, scale)
    assert won["chosen"] == "ngram" and won["bakeoff"]["curve"] == scale["curve"]
    assert won["bakeoff"]["why"] == (
        "sample validation accuracy ngram + mlp 0.9200, sequence + sepcnn 0.9500; projected to 32000 training "
        f"rows from 500 and 1000: ngram {seen['ngram'].projected:.4f}, sequence {seen['sequence'].projected:.4f}: "
        "ngram wins by more than the margin 0.01"
    )
    # two doublings: still behind, within the margin, and gaining more: n-grams
    near = decide(rule, _curved((0.92, 0.88), (0.95, 0.945), 4_000))
    assert near["chosen"] == "ngram" and near["bakeoff"]["why"].endswith(
        "within the margin 0.01, ngram gains more from the corpus's rows"
    )
    # the same sample without room to grow: the measurement decides, and the rule's pick stands
    assert decide(rule, _curved((0.92, 0.88), (0.95, 0.945), 1_000))["chosen"] == "sequence"
    # n-grams lead on the sample, sequences gain more and draw level (SST-2's shape): sequences
    sst = decide(rule, _curved((0.837, 0.81), (0.831, 0.791), 4_000))
    assert sst["chosen"] == "sequence" and sst["bakeoff"]["why"].endswith(
        "ngram 0.8800, sequence 0.8895: within the margin 0.01, sequence gains at least as much from the corpus's rows"
    )
    tie = decide(rule, _curved((0.80, 0.78), (0.80, 0.78), 4_000))  # the same curves: the rule's pick
    assert tie["chosen"] == "sequence" and tie["bakeoff"]["why"].endswith(
        "within the margin 0.01, sequence gains at least as much from the corpus's rows"
    )
    lost = decide(rule, _curved((0.60, 0.50), (0.95, 0.94), 4_000))  # far behind even projected
    assert lost["chosen"] == "sequence" and lost["bakeoff"]["why"].endswith("the rule's pick stands")


def test_one_wording_says_what_decided():
    """The log line, inspect and report.md all say a choice in ``Choice``'s words."""
    ruled = Choice.from_json(choose_vectorizer("auto", 7600, 37.0))
    assert ruled.line() == (
        "S = 7600 samples, W = 37 median words per sample, S/W = 205.4 -> ngram "
        "(the guide's rule: sequence when S/W >= 1500)"
    )
    forced = Choice.from_json(choose_vectorizer("sequence", 7600, 37.0))
    assert forced.line().endswith("-> sequence (forced by --vectorizer sequence)")
    settled = Choice.from_json(decide(choose_vectorizer("auto", 30_000, 5.0), _evidence(0.80, 0.70)))
    assert settled.line() == (
        "S = 30000 samples, W = 5 median words per sample, S/W = 6000.0 -> ngram (the rule said sequence; "
        f"a bake-off on {settled.bakeoff['train_rows']} sample rows decided: sample validation accuracy ngram + mlp "
        "0.8000, sequence + sepcnn 0.7000: ngram wins by more than the margin 0.01)"
    )
    assert f"({settled.reason()})" in report_choice(settled)
    assert Choice.from_json({**settled.to_json(), "samples_per_word": None}).numbers().endswith("S/W = inf")


def test_choice_sample_is_systematic_bounded_and_labelled():
    sample = ChoiceSample(max_rows=100, max_bytes=10_000)
    n = 1000  # training rows in class order: 0..499 class 0, 500..999 class 1; every 4th row is not training
    texts = [f"text {i:04d}" for i in range(n * 4 // 3 + 1)]
    train = np.arange(len(texts)) % 4 != 3
    labels = np.where(np.cumsum(train) - 1 < n // 2, 7, 9).astype(np.int32)  # provisional ids
    for start in range(0, len(texts), 97):  # chunks of an odd size
        sample.offer(texts[start : start + 97], labels[start : start + 97], train[start : start + 97])
    kept, ids = sample.rows()
    assert sample.seen == int(train.sum()) and 50 <= len(sample) <= 100
    positions = [int(np.flatnonzero(np.cumsum(train) - 1 == k)[0]) for k in range(0, sample.seen, sample.stride)]
    assert kept == [texts[p] for p in positions]  # every stride-th training row, in input order
    assert set(ids.tolist()) == {7, 9}  # both halves of the input
    remap = np.zeros(10, np.int32)
    remap[9] = 1
    assert sorted(set(sample.rows(remap)[1].tolist())) == [0, 1]
    small = ChoiceSample(max_rows=10**6, max_bytes=500)  # the byte bound: 9-byte texts
    small.offer(texts, labels, train)
    assert 250 <= small.text_bytes <= 500 and small.record()["stride"] == small.stride > 1
    small.clear()
    assert len(small) == 0


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _prepare_auto(train, test, out) -> tuple[dict, str]:
    """prepare with the defaults (auto); the manifest and the log lines (a handler of its own: the CLI's logging
    setup, run in-process by other tests, stops propagation to pytest's)."""
    logger, lines = logging.getLogger("streamtrain"), _Lines()
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        prepare(PrepareOptions(inputs=[str(train)], test=[str(test)], data=str(out)))
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    return json.loads((out / "manifest.json").read_text()), "\n".join(lines.lines)


def _check_evidence(choice: dict) -> dict:
    bakeoff = choice["bakeoff"]
    assert choice["requested"] == "auto" and choice["rule"] == "sequence"
    assert choice["samples_per_word"] >= SW_THRESHOLD
    assert bakeoff["decision"] == choice["chosen"] and bakeoff["margin"] == MARGIN
    assert bakeoff["train_rows"] == bakeoff["sample"]["rows"] > 8000 and 500 < bakeoff["val_rows"] <= 5000
    for family, models in (("ngram", ("mlp 2 x 16", "linear")), ("sequence", ("sepcnn",))):
        got = bakeoff[family]  # n-grams: the better of fit's first two candidates (2 classes: the 16-unit MLP)
        assert got["model"] in models and 0 < got["val_accuracy"] <= 1 and got["val_loss"] > 0
        assert 1 <= got["best_epoch"] <= got["epochs_run"] <= bakeoff["epochs"] and got["seconds"] > 0
        assert got["val_accuracy"] == got["history"]["val_accuracy"][got["best_epoch"] - 1]
    assert bakeoff["seconds"] >= bakeoff["ngram"]["seconds"] + bakeoff["sequence"]["seconds"]
    return bakeoff


def test_auto_picks_ngrams_for_short_titles_where_they_score_higher(ag_news_csv, tmp_path):
    """AG News titles grown 2x (9,876 rows, S/W 1,646): the rule says sequences, the bake-off n-grams."""
    corpus = tmp_path / "titles"
    load_tool("short_texts").titles(str(ag_news_csv), corpus, factor=2, dropout=0.1, test_percent=35, seed=0)
    manifest, log = _prepare_auto(corpus / "train.csv", corpus / "test.csv", tmp_path / "data")
    choice = manifest["choice"]
    assert choice["chosen"] == "ngram" and manifest["encoding"] == "ngram"
    bakeoff = _check_evidence(choice)
    assert bakeoff["ngram"]["val_accuracy"] > bakeoff["sequence"]["val_accuracy"] + MARGIN
    assert "bake-off: sample validation accuracy ngram + " in log
    said = f"the rule said sequence; a bake-off on {bakeoff['train_rows']} sample rows decided: {bakeoff['why']}"
    assert f"-> ngram ({said})" in log
    # What a user reads later says the bake-off decided, not the rule, in the same words: inspect and the report.
    shown = streamtrain("inspect", tmp_path / "data").stdout
    assert f"chosen: ngram ({said})" in shown
    assert said in report_choice(Choice.from_json(choice))


def test_auto_keeps_sequences_where_word_order_decides(ag_news_csv, tmp_path):
    """Labels set by the order of two words around a random filler (11,000 rows, S/W 1,571): the rule and the
    bake-off say sequences."""
    corpus = tmp_path / "order"
    make = load_tool("short_texts").order
    make(str(ag_news_csv), corpus, rows=11_000, test_rows=10, test_percent=20, seed=0, carrier=2)
    manifest, log = _prepare_auto(corpus / "train.csv", corpus / "test.csv", tmp_path / "data")
    choice = manifest["choice"]
    assert choice["chosen"] == "sequence" and manifest["encoding"] == "sequence"
    bakeoff = _check_evidence(choice)
    assert bakeoff["sequence"]["val_accuracy"] > bakeoff["ngram"]["val_accuracy"] + 0.1
    assert bakeoff["ngram"]["val_accuracy"] < 0.6  # 1-2-grams cannot see the order
    assert "-> sequence (the rule said sequence; a bake-off on" in log
