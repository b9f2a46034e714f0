"""``dataset.choosing``: the n-gram dataset written while the bake-off measures, kept or discarded by its answer."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from helpers import write_csv

from streamtrain.dataset.manifest import ModelInputs
from streamtrain.dataset.options import PrepareOptions
from streamtrain.dataset.prepare import prepare
from streamtrain.errors import DataError


def _short_texts(tmp_path: Path) -> Path:
    """3,000 rows of two words: S/W = 1,500, where the guide's rule says sequences (so a bake-off runs)."""
    rows = [(f"w{i % 37} {'ab'[i % 2]}{i % 11}", "ab"[i % 2]) for i in range(3000)]
    return write_csv(tmp_path / "short.csv", rows)


class _LateBakeoff:
    """A bake-off that answers ``chosen`` once n-gram shards are in the staging directory of ``data`` (or after
    ``wait`` seconds)."""

    def __init__(self, data: Path, chosen: str, wait: float) -> None:
        self.data, self.chosen, self.wait = data, chosen, wait
        self.shards_before_answer: list[str] = []

    @contextlib.contextmanager
    def __call__(self, request):
        answer: Future = Future()
        worker = threading.Thread(target=self._answer, args=(request.choice, answer))
        worker.start()
        try:
            yield answer
        finally:
            worker.join()

    def _answer(self, rule: dict, answer: Future) -> None:
        deadline = time.monotonic() + self.wait
        while not self.shards_before_answer and time.monotonic() < deadline:
            time.sleep(0.01)
            self.shards_before_answer = sorted(p.name for p in self.data.parent.glob(f"{self.data.name}.*/*.h5"))
        answer.set_result({**rule, "chosen": self.chosen, "bakeoff": {"decision": self.chosen, "why": "a test's"}})


def _prepare(
    tmp_path: Path, chosen: str, wait: float = 60.0, **options
) -> tuple[object, list[ModelInputs], _LateBakeoff]:
    tmp_path.mkdir(exist_ok=True)
    data = tmp_path / "d"
    announced: list[ModelInputs] = []
    bakeoff = _LateBakeoff(data, chosen, wait)
    opts = PrepareOptions(inputs=[str(_short_texts(tmp_path))], data=str(data), **options)
    return prepare(opts, announce=announced.append, bakeoff=bakeoff), announced, bakeoff


def test_ngrams_written_while_the_bakeoff_measures_are_the_dataset_when_it_keeps_them(tmp_path):
    manifest, announced, bakeoff = _prepare(tmp_path, "ngram")
    assert bakeoff.shards_before_answer, "no n-gram shard was written before the bake-off answered"
    assert manifest.encoding == "ngram" and manifest.choice.chosen == "ngram"
    assert sorted(p.name for p in (tmp_path / "d").glob("*.h5")) == sorted(s.path for s in manifest.shards)
    assert announced == [manifest.model_inputs]


def test_ngrams_written_ahead_are_discarded_when_the_bakeoff_chooses_sequences(tmp_path):
    manifest, announced, bakeoff = _prepare(tmp_path, "sequence")
    assert bakeoff.shards_before_answer, "no n-gram shard was written before the bake-off answered"
    assert manifest.encoding == "sequence" and manifest.choice.chosen == "sequence"
    data = tmp_path / "d"
    assert sorted(p.name for p in data.glob("*.h5")) == sorted(s.path for s in manifest.shards)
    assert not (data / "feature_names.json").exists() and manifest.feature_names is None
    # The n-gram stage announced its inputs before its shards, then the sequences' replaced them (the last is
    # the dataset's: train builds its model again).
    assert [a.encoding for a in announced] == ["ngram", "sequence"] and announced[-1] == manifest.model_inputs


def test_an_ngram_stage_that_finds_no_ngram_fails_only_if_the_bakeoff_keeps_ngrams(tmp_path):
    """``--min-df`` above the row count: no n-gram qualifies. Sequences need none."""
    manifest, _, bakeoff = _prepare(tmp_path / "seq", "sequence", wait=1.0, min_df=10_000)
    assert manifest.encoding == "sequence" and not bakeoff.shards_before_answer
    with pytest.raises(DataError, match="no n-gram occurs in 10000 or more training rows"):
        _prepare(tmp_path / "ngram", "ngram", wait=1.0, min_df=10_000)
