"""The pass machinery (``dataset.passes``) and prepare's bake-off hook, on small inputs: batches come back in input
order with their row ids and splits whatever the executor, later passes replay the first one's splits, rows whose
label a frozen map lacks are dropped and recorded, and ``--vectorizer auto`` is settled by the ``bakeoff`` the
caller passes (without one, the rule's pick stands and the manifest says so)."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest
from helpers import write_csv

from streamtrain.dataset.choosing import NO_BAKEOFF
from streamtrain.dataset.options import PrepareOptions
from streamtrain.dataset.passes import ReadSpec, RowBatch, RowSplits, read_rows
from streamtrain.dataset.prepare import prepare
from streamtrain.dataset.reject_log import RejectLog
from streamtrain.io.readers import Portion
from streamtrain.vectorize.defaults import NGRAM_TOP_K
from streamtrain.vectorize.labels import LabelIndex
from streamtrain.vectorize.split import TEST


def _inputs(tmp_path):
    rows = [(f"text number {i} about {'ab'[i % 2]}", "ab"[i % 2]) for i in range(50)]
    train = write_csv(tmp_path / "train.csv", rows)
    test = write_csv(tmp_path / "test.csv", [(f"held out {i}", "abc"[i % 3]) for i in range(9)])  # "c": unknown
    return train, test


def _spec(tmp_path, **kw) -> ReadSpec:
    train, test = _inputs(tmp_path)
    opts = PrepareOptions(inputs=[str(train)], test=[str(test)], data=str(tmp_path / "d"), chunk_rows=7, **kw)
    return opts.read_spec()


def _batches(spec: ReadSpec, splits: RowSplits, labels: LabelIndex, executor=None, **kw) -> list[RowBatch]:
    return list(read_rows(spec, splits, labels, executor, **kw))


def test_a_read_spec_lists_the_training_inputs_first_with_their_portions(tmp_path):
    train, test = _inputs(tmp_path)
    portions = {str(train): Portion(stop=100)}
    opts = PrepareOptions(inputs=[str(train)], test=[str(test)], data="d", val_fraction=0.3, portions=portions)
    spec = opts.read_spec()
    assert spec.inputs == (("train", str(train)), ("test", str(test)))
    assert spec.portions == portions and spec.val_fraction == 0.3 and spec.columns == opts.columns()
    assert spec.total_bytes() == train.stat().st_size + test.stat().st_size


@pytest.mark.parametrize("workers", [None, 3], ids=["inline", "threads"])
def test_batches_come_in_input_order_numbered_from_the_first_row_id(tmp_path, workers):
    spec = _spec(tmp_path, val_fraction=0.2)
    splits, labels, rejects = RowSplits("blake2b", first_row_id=1000), LabelIndex(), RejectLog(tmp_path, 2)
    pool = ThreadPoolExecutor(workers) if workers else None
    try:
        batches = _batches(spec, splits, labels, pool, rejects=rejects, count_words=True)
    finally:
        if pool is not None:
            pool.shutdown()
    rejects.close()
    assert [(b.source, b.role) for b in batches] == [(0, "train")] * 8 + [(1, "test")] * 2  # chunks of 7 rows
    row_ids = np.concatenate([b.row_ids for b in batches])
    assert row_ids.tolist() == list(range(1000, 1000 + 50 + 6))  # the 3 test rows labelled "c" are dropped
    texts = [t for b in batches for t in b.chunk.texts]
    assert texts[:2] == ["text number 0 about a", "text number 1 about b"] and "held out 2" not in texts
    assert all(len(b.labels) == len(b.splits) == len(b.chunk) for b in batches)
    assert all((b.splits == TEST).all() for b in batches if b.role == "test")
    assert all(b.work.words is not None for b in batches if b.role == "train")
    assert all(b.work.words is None for b in batches if b.role == "test")
    assert rejects.by_reason == {"unknown_label": 3} and rejects.per_source == [0, 3]
    assert labels.frozen


@pytest.mark.parametrize("scratch", [False, True], ids=["in memory", "in scratch"])
def test_a_later_pass_replays_the_first_passes_splits(tmp_path, scratch):
    spec = _spec(tmp_path, val_fraction=0.5)
    splits, labels = RowSplits("lsh-bigrams", first_row_id=5), LabelIndex()
    if scratch:
        splits.spill_to(tmp_path / ".split")
        (tmp_path / ".split" / "foreign").write_text("not ours")
    first = np.concatenate([b.splits for b in _batches(spec, splits, labels)])
    splits.replay()
    assert splits.replaying and 0 < (first == 1).sum() < len(first) - 6  # both splits, besides the test rows
    if scratch:
        assert (tmp_path / ".split" / "decided-splits").stat().st_size == len(first)
    with ThreadPoolExecutor(2) as pool:
        again = _batches(spec, splits, labels, pool)
    assert np.array_equal(np.concatenate([b.splits for b in again]), first)
    assert all(b.work.splits is None for b in again)  # the workers no longer split
    splits.close()
    if scratch:  # what it wrote is gone; what it did not write stays
        assert [p.name for p in (tmp_path / ".split").iterdir()] == ["foreign"]


def test_a_failing_chunk_names_its_input_and_rows(tmp_path, monkeypatch):
    import streamtrain.dataset.passes as passes

    def broken(texts, *args):
        raise ValueError("boom")

    monkeypatch.setattr(passes, "analyze_chunk", broken)
    spec = _spec(tmp_path)
    with pytest.raises(ValueError, match="boom") as raised:
        _batches(spec, RowSplits("blake2b"), LabelIndex())
    assert "raised by the work on" in raised.value.__notes__[0] and "train.csv, rows 2-8" in raised.value.__notes__[0]


def _short_texts(tmp_path):
    """3,000 rows of two words: S/W = 1,500, where the guide's rule says sequences."""
    rows = [(f"w{i % 37} {'ab'[i % 2]}{i % 11}", "ab"[i % 2]) for i in range(3000)]
    return write_csv(tmp_path / "short.csv", rows)


def test_auto_is_settled_by_the_bakeoff_the_caller_passes(tmp_path):
    calls = []

    @contextlib.contextmanager
    def bakeoff(request):
        r = request
        calls.append((len(r.sample), r.label_names, r.ngram.top_k, r.sequence.max_length, r.seed))
        answer = Future()
        answer.set_result({**r.choice, "chosen": "ngram", "bakeoff": {"decision": "ngram", "why": "a test's"}})
        yield answer

    opts = PrepareOptions(inputs=[str(_short_texts(tmp_path))], data=str(tmp_path / "d"), seed=5, max_length=40)
    manifest = prepare(opts, bakeoff=bakeoff)
    assert calls == [(3000 - manifest.stats.rows["val"], ["a", "b"], NGRAM_TOP_K, 40, 5)]
    assert manifest.encoding == "ngram" and manifest.choice.bakeoff["why"] == "a test's"
    assert manifest.choice.rule == "sequence"


def test_without_a_bakeoff_the_rules_pick_stands_and_the_manifest_says_so(tmp_path):
    opts = PrepareOptions(inputs=[str(_short_texts(tmp_path))], data=str(tmp_path / "d"))
    manifest = prepare(opts)
    choice = json.loads((tmp_path / "d" / "manifest.json").read_text())["choice"]
    assert manifest.encoding == "sequence" and choice["chosen"] == choice["rule"] == "sequence"
    assert choice["bakeoff"]["decision"] == "sequence" and choice["bakeoff"]["skipped"] == NO_BAKEOFF
    assert choice["bakeoff"]["why"] == f"no bake-off ({NO_BAKEOFF}): the rule's pick stands"
