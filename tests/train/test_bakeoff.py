"""The bake-off's pieces: its vectorizers are fitted as prepare fits them, its samples are bounded, and it
measures nothing (no TensorFlow) where there is nothing to measure on or the rule says n-grams.

Both families' training and the decision on real corpora: tests/vectorize/test_choice.py.
"""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import scipy.sparse as sp
from conftest import DEMO_TRAIN

from streamtrain.dataset.options import BakeoffRequest
from streamtrain.dataset.prepare import PrepareOptions
from streamtrain.dataset.val_sample import ValSample
from streamtrain.prepare import prepare
from streamtrain.train import bakeoff as B
from streamtrain.train import bakeoff_rows as R
from streamtrain.vectorize.choice import ChoiceSample, choose_vectorizer, decide, projections
from streamtrain.vectorize.labels import sort_labels
from streamtrain.vectorize.sequence import SequenceConfig
from streamtrain.vectorize.tfidf import NgramConfig, hash_counts
from streamtrain.vectorize.vectorizer import Vectorizer


def _demo() -> tuple[list[str], np.ndarray, list[str]]:
    with open(DEMO_TRAIN, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = sort_labels(sorted({r["label"] for r in rows}))
    index = {name: i for i, name in enumerate(names)}
    return [r["text"] for r in rows], np.array([index[r["label"]] for r in rows], np.int32), names


def _prepare(out, **kw):
    """The demo corpus, every row a training row (so the fitted vectorizer saw exactly the demo's texts)."""
    prepare(PrepareOptions(inputs=[str(DEMO_TRAIN)], data=str(out), val_fraction=0.0, **kw))
    return json.loads((out / "manifest.json").read_text()), Vectorizer.load(out).state


def test_ngrams_are_fitted_as_prepare_fits_them(tmp_path):
    imported = "tensorflow" in sys.modules
    manifest, theirs = _prepare(tmp_path / "data", top_k=300)  # auto: the rule says n-grams on the demo
    choice = manifest["choice"]
    assert choice["rule"] == choice["chosen"] == "ngram" and "bakeoff" not in choice
    assert imported or "tensorflow" not in sys.modules  # no bake-off, no TensorFlow
    texts, labels, _ = _demo()
    config = theirs.config
    ours, vocabulary = R.fit_ngrams(config, hash_counts(config, texts), labels)
    assert np.array_equal(vocabulary, np.flatnonzero(theirs.idf > 0))
    assert np.array_equal(ours.idf, theirs.idf[vocabulary])
    assert ours.n_features == 300 and np.array_equal(vocabulary[ours.selected], theirs.selected)
    val = ["my invoice was charged twice", "the app crashes on login", "nothing known here: zzqx"]
    train_rows, val_rows = R.ngram_rows(config, texts, labels, val, np.zeros(3, np.int32))
    for mine, texts_of in ((train_rows, texts), (val_rows, val)):
        expected = theirs.transform(texts_of)
        assert np.array_equal(mine.indptr, expected.indptr) and np.array_equal(mine.indices, expected.indices)
        np.testing.assert_allclose(mine.values, expected.values, rtol=1e-6)
    assert np.array_equal(train_rows.labels, labels)


def test_sequences_are_fitted_as_prepare_fits_them(tmp_path):
    _, theirs = _prepare(tmp_path / "data", vectorizer="sequence", max_length=40)
    texts, labels, _ = _demo()
    ours, train, val = R.sequence_rows(theirs.config, texts, labels, texts[:5], labels[:5])
    assert np.array_equal(ours.vocab, theirs.vocab) and ours.length == theirs.length == 40
    assert np.array_equal(train.tokens, theirs.transform(texts).tokens)
    assert np.array_equal(val.tokens, train.tokens[:5]) and np.array_equal(val.labels, labels[:5])


def test_squeeze_keeps_the_given_buckets_as_columns():
    counts = sp.csr_matrix(np.array([[0, 2, 0, 1, 0, 5], [1, 0, 0, 0, 0, 0], [0, 0, 3, 1, 0, 0]], np.float32))
    squeezed = R.squeeze(counts, np.array([1, 3, 5]))
    assert squeezed.shape == (3, 3)
    assert squeezed.toarray().tolist() == [[2, 1, 5], [0, 0, 0], [0, 1, 0]]
    assert R.squeeze(counts, np.zeros(0, np.int64)).nnz == 0


def test_rows_are_bounded_by_positions(monkeypatch):
    texts = [" ".join(["word"] * (1 + i % 50)) for i in range(1000)]  # longest: 50 tokens
    labels = np.arange(1000, dtype=np.int32)
    cut = B.bound_rows(SequenceConfig(max_length=500), texts, labels, texts[:300], labels[:300])
    assert len(cut[0]) == 1000 and len(cut[2]) == 300  # 1000 x 50 positions: within the bound
    monkeypatch.setattr(B, "POSITIONS", 10_000)  # 200 rows of 50 tokens
    train, train_labels, val, val_labels = B.bound_rows(SequenceConfig(max_length=500), texts, labels, texts, labels)
    assert len(train) == len(val) == 200 and train == val and np.array_equal(train_labels, val_labels)
    assert train_labels.tolist() == list(range(0, 1000, 5)) and train == [texts[i] for i in range(0, 1000, 5)]
    short = B.bound_rows(SequenceConfig(max_length=20), texts, labels, texts, labels)  # length 20: 500 rows
    assert len(short[0]) == 500 and short[1].tolist() == list(range(0, 1000, 2))


def test_nothing_to_measure_on_keeps_the_rule_without_tensorflow():
    imported = "tensorflow" in sys.modules
    rule = choose_vectorizer("auto", 30_000, 5.0)
    sample = ChoiceSample()
    sample.offer(["a b c", "d e f"], np.array([1, 0], np.int32), np.array([True, True]))
    settled = B.bakeoff(BakeoffRequest(rule, sample, ValSample(), ["x", "y"], np.array([1, 0]), None, None, 0))  # type: ignore[arg-type]
    assert settled["chosen"] == "sequence" and settled["bakeoff"]["skipped"] == "no validation rows"
    assert settled["bakeoff"]["sample"]["rows"] == 2 and settled["bakeoff"]["val_sample_rows"] == 0
    assert imported or "tensorflow" not in sys.modules
    empty = B.bakeoff(BakeoffRequest(rule, ChoiceSample(), ValSample(), ["x", "y"], np.array([1, 0]), None, None, 0))  # type: ignore[arg-type]
    assert empty["bakeoff"]["skipped"] == "no training rows in the sample" and empty["chosen"] == "sequence"


def test_a_signal_during_training_stops_it_and_runs_its_own_handler_after(tmp_path):
    """The bake-off trains on fit's loop: a SIGINT that arrives mid-training is held, training stops before its
    next batch (that epoch still validated, as Keras' fit did), and the process's own handler runs after."""
    import os
    import signal

    from streamtrain.train.fit import FitOptions
    from streamtrain.train.models import build_model
    from streamtrain.train.runtime import import_tensorflow
    from streamtrain.train.tfdata import sparse_dataset
    from streamtrain.train.tune import Candidate
    from streamtrain.vectorize.tfidf import NgramConfig

    import_tensorflow()
    texts, labels, names = _demo()
    train, val = R.ngram_rows(NgramConfig(top_k=500), texts[:3000], labels[:3000], texts[3000:], labels[3000:])
    model = build_model(
        Candidate("linear", learning_rate=0.03), train.n_cols, train.n_cols, len(names), FitOptions("", "")
    )
    chunks = []

    def dataset(make, *args):
        def counted():
            for chunk in make():
                chunks.append(len(chunk))
                if len(chunks) == 2 and make.__name__ == "shuffled":  # the second epoch's rows: mid-training
                    os.kill(os.getpid(), signal.SIGINT)
                yield chunk

        counted.__name__ = make.__name__
        return sparse_dataset(counted, *args)

    heard: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: heard.append(signum))
    try:
        got = B._train(model, train, val, dataset, train.n_cols, len(names), 128, 0, 40, 40)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert heard == [signal.SIGINT]  # once, after training
    assert 1 <= got["epochs_run"] <= 2 and len(got["history"]["val_loss"]) == got["epochs_run"]


def test_a_model_is_patient_for_fits_steps_however_few_its_epochs_have():
    """Without a patience given, a model stops after fit's patience for a round of its epoch's steps
    (``tune.patience_rounds``): at 3,000 rows an epoch is 24 steps of 128, so 64 steps take 3 epochs; at 600
    rows (5 steps) 13."""
    from streamtrain.train.fit import FitOptions
    from streamtrain.train.models import build_model
    from streamtrain.train.runtime import import_tensorflow
    from streamtrain.train.tfdata import sparse_dataset
    from streamtrain.train.tune import Candidate

    import_tensorflow()
    texts, labels, names = _demo()
    got = {}
    for rows in (3000, 600):
        train, val = R.ngram_rows(NgramConfig(top_k=500), texts[:rows], labels[:rows], texts[3000:], labels[3000:])
        mlp = Candidate("mlp", units=64, layers=2, learning_rate=0.01)  # learns fast, then overfits
        model = build_model(mlp, train.n_cols, train.n_cols, len(names), FitOptions("", ""))
        got[rows] = B._train(model, train, val, sparse_dataset, train.n_cols, len(names), 128, 0, 60, None)
    assert got[3000]["patience"] == 3 and got[600]["patience"] == 13
    for score in got.values():  # stopped by its patience, before the cap, on its best epoch's score
        assert score["epochs_run"] == score["best_epoch"] + score["patience"] < 60
        losses = score["history"]["val_loss"]
        assert min(losses) == losses[score["best_epoch"] - 1] == score["val_loss"]


def test_a_corpus_larger_than_the_sample_gets_each_familys_curve():
    """measure on the demo corpus as if it were a sample of a corpus 8 times larger: both families are trained
    again on every other row, and the decision is the projection's."""
    texts, labels, names = _demo()
    train, val = slice(0, 3000), slice(3000, None)
    args = (texts[train], labels[train], texts[val], labels[val], len(names), NgramConfig(), SequenceConfig(), 0)
    evidence = B.measure(*args, epochs=3, patience=1, corpus_rows=24_000)
    curve = evidence["curve"]
    assert curve["rows"] == 1500 and curve["corpus_rows"] == 24_000 and curve["seconds"] > 0
    assert curve["ngram"]["model"] == evidence["ngram"]["model"]  # the family's best candidate, again
    assert [c["model"] for c in curve["ngram"]["candidates"]] == [evidence["ngram"]["model"]]
    assert curve["sequence"]["model"] == "sepcnn" and curve["sequence"]["vocabulary"] > 0
    for family in ("ngram", "sequence"):
        assert 0 < curve[family]["val_accuracy"] <= 1 and curve[family]["epochs_run"] <= 3
    seen = projections(evidence)
    for family in ("ngram", "sequence"):
        assert seen[family].measured == evidence[family]["val_accuracy"] <= seen[family].projected <= 1
    settled = decide(choose_vectorizer("auto", 30_000, 5.0), evidence)
    assert "; projected to 24000 training rows from 1500 and 3000: " in settled["bakeoff"]["why"]
    few = (texts[:600], labels[:600], *args[2:])
    assert "curve" not in B.measure(*few, epochs=1, patience=1, corpus_rows=600)  # the corpus is the sample
