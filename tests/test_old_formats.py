"""Datasets and model directories written by streamtrain 0.9.0 itself (``tests/fixtures/streamtrain-0.9.tar.gz``,
made by ``tools/old_release.py`` from the release's sources) are read as they are: verified, inspected, scored,
appended to, trained on and exported by today's code, and the files 0.9 wrote are left as they were."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from helpers import files_of, streamtrain, write_csv

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "streamtrain-0.9.tar.gz"


@pytest.fixture(scope="module")
def old(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("old")
    with tarfile.open(FIXTURE, "r:gz") as tar:
        tar.extractall(out, filter="data")
    return out / "streamtrain-0.9"


def ok(*args) -> str:
    result = streamtrain(*args)
    assert result.returncode == 0, f"streamtrain {' '.join(map(str, args))}: {result.returncode}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("kind", ["ngram", "sequence"])
def test_a_0_9_dataset_and_model_are_verified_inspected_and_scored(old: Path, kind: str) -> None:
    data, model = old / kind, old / f"model-{kind}"
    before = files_of(old)
    for directory in (data, model):
        ok("verify", directory)
        assert json.loads(ok("inspect", directory, "--json"))
    scores = json.loads(ok("evaluate", "--data", data, "--model-dir", model))
    metrics = json.loads((model / "current" / "metrics.json").read_text())
    assert scores["version"] == (model / "current").resolve().name
    assert scores["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert files_of(old) == before, "reading 0.9's files changed them"


def test_a_0_9_ngram_dataset_takes_an_append_and_a_new_version(old: Path, tmp_path: Path) -> None:
    data, model = old / "ngram", old / "model-ngram"
    rows = [(f"my parcel {i} never arrived, where is the shipment", "shipping") for i in range(30)]
    rows += [(f"I was charged twice for order {i}, refund the invoice", "billing") for i in range(30)]
    ok("prepare", write_csv(tmp_path / "night.csv", rows), "--data", data, "--append")
    ok("verify", data)
    old_version = (model / "current").resolve()
    ok("fit", "--data", data, "--model-dir", model, "--epochs", "1", "--force")
    ok("verify", model)
    assert (model / "current").resolve() != old_version, "the new version was not promoted"
    assert (model / "current" / "saved_model" / "saved_model.pb").is_file()
    ok("export", model, "--version", old_version.name, "--out", tmp_path / "served")
    assert (tmp_path / "served" / "saved_model.pb").is_file()
