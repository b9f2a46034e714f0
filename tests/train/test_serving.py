"""The promoted model leaves streamtrain: each version's SavedModel, checked before promotion, published to a
TensorFlow Serving directory, and loaded in process by ``streamtrain.load`` (real ``streamtrain`` processes)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DEMO_TEST, DEMO_TRAIN
from helpers import prepare_csv, streamtrain

from streamtrain.fs.versions import Versions

EDGE_TEXTS = ["", "  \t ", "ΟΔΟΣ ΣΟΦΙΑΣ", "Café naïve ½ ﬁle", "東京 한국어 🙂", "x" * 3000, "a\x00b\x1fc"]

# A fresh Python that imports only TensorFlow (-I: isolated; Keras unimportable): the artifact needs nothing else.
FRESH = r"""
import json, sys
sys.modules["keras"] = None  # as in TensorFlow Serving: no Keras
import tensorflow as tf
saved_models, texts = json.loads(sys.argv[1]), json.loads(sys.stdin.read())
out = []
for path in saved_models:
    serve = tf.saved_model.load(path).signatures["serving_default"]
    result = serve(text=tf.constant(texts, tf.string))
    info = json.load(open(path + "/assets.extra/streamtrain.json"))
    out.append({"version": info["version"], "probabilities": result["probabilities"].numpy().tolist(),
                "label": [x.decode() for x in result["label"].numpy()],
                "classes": [x.decode() for x in result["classes"].numpy()[0]] if len(texts) else []})
assert not [m for m in sys.modules if m.split(".")[0] == "streamtrain"]
print(json.dumps(out))
"""


def fresh_tensorflow(saved_models: list[Path], texts: list[str]) -> list[dict]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", FRESH, json.dumps([str(p) for p in saved_models])],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return prepare_csv(DEMO_TRAIN, tmp_path_factory.mktemp("serving-ngram") / "data", DEMO_TEST, vectorizer="ngram")


@pytest.fixture(scope="module")
def sequence_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serving-sequence") / "data"
    return prepare_csv(DEMO_TRAIN, out, DEMO_TEST, vectorizer="sequence")


def fit(data: Path, model: Path, *args, env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    argv = ["fit", "--data", data, "--model-dir", model, "--seed", "0", "--tune-seconds", "0", *args]
    if env is None:
        proc = streamtrain(*argv)
    else:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "streamtrain"), *map(str, argv)],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=600,
        )
    return proc, json.loads(proc.stdout) if proc.stdout.strip() else {}


@pytest.fixture(scope="module")
def first(data, tmp_path_factory) -> tuple[Path, dict]:
    """A model directory whose first version (n-grams) is promoted and published to ``serving/`` beside it."""
    root = tmp_path_factory.mktemp("serving-first")
    proc, metrics = fit(data, root / "model", "--epochs", "2", "--serving-dir", root / "serving")
    assert proc.returncode == 0, proc.stderr
    return root, metrics


def copy_of(first: tuple[Path, dict], into: Path) -> tuple[Path, Path, dict]:
    """A copy of ``first``'s model and serving directories in ``into``: (model, serving, first metrics)."""
    root, metrics = first
    for name in ("model", "serving"):
        shutil.copytree(root / name, into / name, symlinks=True)
    return into / "model", into / "serving", metrics


def demo_texts() -> list[str]:
    with open(DEMO_TEST, newline="", encoding="utf-8") as fh:
        return [row["text"] for row in csv.DictReader(fh)]


@pytest.mark.parametrize("kind", ["ngram", "sequence"])
def test_a_fresh_tensorflow_scores_raw_text_as_predict_does(kind, request, tmp_path):
    if kind == "ngram":
        root, metrics = request.getfixturevalue("first")
        model = root / "model"
    else:
        model = tmp_path / "model"
        proc, metrics = fit(request.getfixturevalue("sequence_data"), model, "--epochs", "2")
        assert proc.returncode == 0, proc.stderr
    check = metrics["promotion"]["serving_check"]
    assert check["passed"] and check["max_difference"] <= 1e-5, check

    shown = subprocess.run(
        [
            str(Path(sys.executable).parent / "saved_model_cli"),
            "show",
            "--dir",
            str(model / "current" / "saved_model"),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    text_input = shown.stdout.split("inputs['text']")[1].split("The given SavedModel")[0]
    assert "dtype: DT_STRING" in text_input and "shape: (-1)" in text_input, shown.stdout

    texts = demo_texts() + EDGE_TEXTS
    assert parity_with_predict(model, texts) <= 1e-5 + 5e-7  # predict prints 6 decimals
    [served] = fresh_tensorflow([model / "current" / "saved_model"], EDGE_TEXTS)
    assert served["version"] == metrics["version"]


def test_two_promoted_nights_a_rejected_one_and_a_rollback_fill_the_serving_dir(data, first, tmp_path):
    model, serving, m1 = copy_of(first, tmp_path)
    assert sorted(os.listdir(serving)) == ["1"]
    worse, m2 = fit(data, model, "--epochs", "1", "--serving-dir", serving)  # 0.54 against 0.80: the guard refuses
    assert worse.returncode == 3, worse.stderr
    assert sorted(os.listdir(serving)) == ["1"]
    again, m3 = fit(data, model, "--epochs", "2", "--serving-dir", serving)
    assert again.returncode == 0, again.stderr
    assert sorted(os.listdir(serving)) == ["1", "2"]

    rollback = streamtrain("promote", model, m1["version"], "--serving-dir", serving)
    assert rollback.returncode == 0, rollback.stderr
    assert sorted(os.listdir(serving)) == ["1", "2", "3"]
    served = fresh_tensorflow([serving / n for n in ("1", "2", "3")], ["the invoice charged me twice"])
    assert [s["version"] for s in served] == [m1["version"], m3["version"], m1["version"]]
    assert served[0]["probabilities"] == served[2]["probabilities"]
    assert m2["version"] not in {s["version"] for s in served}


def test_a_version_whose_export_is_broken_is_not_promoted(data, first, tmp_path):
    model, _, m1 = copy_of(first, tmp_path)
    broken, m2 = fit(data, model, "--epochs", "2", env={"STREAMTRAIN_FAULT": "break:export"})
    assert broken.returncode == 3, broken.stderr
    assert Versions(model).current() == m1["version"]
    decision = json.loads((model / "versions" / m2["version"] / "promotion.json").read_text())
    assert decision["promoted"] is False and "serving check" in decision["reason"], decision
    assert decision["serving_check"]["passed"] is False and decision["serving_check"]["max_difference"] > 1e-3


def test_load_follows_two_promotions_in_a_running_process(data, first, tmp_path):
    import streamtrain as st

    model, _, m1 = copy_of(first, tmp_path)
    served = st.load(model)
    texts = demo_texts()[:50]
    before = served.predict(texts)
    assert served.version == m1["version"] and len(before) == 50
    assert set(before[0]["probabilities"]) == set(served.classes)

    second, m2 = fit(data, model, "--epochs", "3")
    assert second.returncode == 0, second.stderr
    after = served.predict(texts)
    assert served.version == m2["version"]
    assert [a["probabilities"] for a in after] != [b["probabilities"] for b in before]

    rollback = streamtrain("promote", model, m1["version"])
    assert rollback.returncode == 0, rollback.stderr
    again = served.predict(texts)
    assert served.version == m1["version"]
    assert np.allclose(
        [list(a["probabilities"].values()) for a in again], [list(b["probabilities"].values()) for b in before]
    )


def parity_with_predict(model: Path, texts: list[str]) -> float:
    """The largest difference between ``streamtrain predict``'s probabilities and a fresh TensorFlow's through
    ``model``'s current SavedModel, over ``texts``; asserts every label agrees where the top two differ by 1e-4."""
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    predicted = streamtrain("predict", "--model-dir", model, "--input-format", "jsonl", "-", stdin=lines)
    assert predicted.returncode == 0, predicted.stderr
    lines_out = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(lines_out) == len(texts)
    scored = [i for i, r in enumerate(lines_out) if "error" not in r]
    assert all(not texts[i].strip() for i, r in enumerate(lines_out) if "error" in r)  # predict refuses empty text
    results = [lines_out[i] for i in scored]
    [served] = fresh_tensorflow([model / "current" / "saved_model"], texts)
    classes = served["classes"]
    ours = np.array([[r["probabilities"][c] for c in classes] for r in results])
    theirs = np.array(served["probabilities"])[scored]
    labels = [served["label"][i] for i in scored]
    assert ours.shape == theirs.shape == (len(scored), len(classes))
    top = np.sort(ours, axis=1)
    clear = top[:, -1] - top[:, -2] > 1e-4
    assert [r["label"] for r, c in zip(results, clear) if c] == [x for x, c in zip(labels, clear) if c]
    return float(np.abs(ours - theirs).max())


def test_a_fresh_tensorflow_scores_ag_news_as_predict_does(ag_news_csv, tmp_path):
    data, model = tmp_path / "data", tmp_path / "model"
    columns = ["--text-column", "1", "--text-column", "2", "--label-column", "0"]
    prepared = streamtrain("prepare", ag_news_csv, "--data", data, "--vectorizer", "ngram", *columns)
    assert prepared.returncode == 0, prepared.stderr
    proc, _ = fit(data, model, "--epochs", "3", "--model", "linear")  # the demo tests cover mlp and sepcnn
    assert proc.returncode == 0, proc.stderr
    with open(ag_news_csv, newline="", encoding="utf-8") as fh:
        texts = [f"{title} {description}" for _, title, description in csv.reader(fh)]
    assert len(texts) == 7_600
    assert parity_with_predict(model, texts) <= 1e-5 + 5e-7  # predict prints 6 decimals


def as_made_before_saved_models(version: Path) -> None:
    """Turn a version into what 0.11 wrote: no ``saved_model/``, and a ``checksums.json`` that never listed it."""
    shutil.rmtree(version / "saved_model")
    record = json.loads((version / "checksums.json").read_text())
    kept = {name: v for name, v in record.items() if not name.startswith("saved_model/")}
    (version / "checksums.json").write_text(json.dumps(kept))


def test_a_version_made_before_saved_models_is_exported_loaded_and_published(first, tmp_path):
    import streamtrain as st

    model, _, m1 = copy_of(first, tmp_path)
    as_made_before_saved_models(model / "versions" / m1["version"])
    out = tmp_path / "exported"
    exported = streamtrain("export", model, "--out", out)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["how"] == "exported from its model and vectorizer"
    again = streamtrain("export", model, "--out", out)
    assert again.returncode == 2 and "exists" in again.stderr
    assert not (model / "versions" / m1["version"] / "saved_model").exists()  # a version's files never change

    texts = demo_texts()[:20] + EDGE_TEXTS
    [served] = fresh_tensorflow([out], texts)
    assert served["version"] == m1["version"]
    in_process = st.load(model).probabilities(texts)  # exported in memory: the version has no saved_model/
    assert np.abs(in_process - np.array(served["probabilities"])).max() <= 1e-6

    published = streamtrain("promote", model, m1["version"], "--serving-dir", tmp_path / "fresh-serving")
    assert published.returncode == 0, published.stderr
    assert sorted(os.listdir(tmp_path / "fresh-serving")) == ["1"]
    [republished] = fresh_tensorflow([tmp_path / "fresh-serving" / "1"], texts)
    assert republished["probabilities"] == served["probabilities"]


def test_a_fit_killed_between_the_switch_and_the_publication_is_published_by_the_next_run(data, first, tmp_path):
    model, serving, _ = copy_of(first, tmp_path)
    killed, _ = fit(
        data, model, "--epochs", "3", "--serving-dir", serving, env={"STREAMTRAIN_FAULT": "kill:after-switch"}
    )
    assert killed.returncode == -9, killed.stderr
    new = Versions(model).current()
    assert sorted(os.listdir(serving)) == ["1"]  # current moved; the publication had not happened

    rerun = streamtrain("promote", model, new, "--serving-dir", serving)  # completes the journal first
    assert rerun.returncode == 0, rerun.stderr
    assert "completed the interrupted promotion step" in rerun.stderr
    assert sorted(os.listdir(serving)) == ["1", "2"]  # published once, by the recovery; promote found it there
    [served] = fresh_tensorflow([serving / "2"], ["the invoice charged me twice"])
    assert served["version"] == new


def test_a_dataset_made_before_codepoint_tokens_trains_without_a_saved_model_and_refuses_serving_dir(
    sequence_data, tmp_path
):
    old = tmp_path / "data"
    shutil.copytree(sequence_data, old)
    doc = json.loads((old / "vectorizer.json").read_text())
    del doc["config"]["lowercase"]  # as 0.11 wrote it: str.lower of the whole text
    (old / "vectorizer.json").write_text(json.dumps(doc))
    shown = streamtrain("inspect", old)
    assert "serving: no SavedModel for models trained on it: made before 0.12" in shown.stdout, shown.stdout

    model, serving = tmp_path / "model", tmp_path / "serving"
    refused, _ = fit(old, model, "--epochs", "1", "--serving-dir", serving)
    assert refused.returncode == 2 and "cannot be exported" in refused.stderr, refused.stderr
    assert not serving.exists() and not (model / "versions").exists()

    trained, metrics = fit(old, model, "--epochs", "2")
    assert trained.returncode == 0, trained.stderr
    assert metrics["promotion"]["serving"].startswith("not exported: made before 0.12")
    assert not (model / "current" / "saved_model").exists()


def test_an_export_traced_while_the_model_trains_holds_the_weights_it_ends_with(data, first, tmp_path, monkeypatch):
    """``ServingStep.trace_ahead`` traces before training ends (``train``'s prebuilt model): the SavedModel it
    writes must score with the weights the model has when exported, not those it had when traced."""
    from streamtrain.dataset.manifest import Manifest
    from streamtrain.serve import export
    from streamtrain.train.modeldir import load_model
    from streamtrain.train.scoring import predict_proba
    from streamtrain.train.serving import ServingStep

    root, _ = first
    model = load_model(root / "model" / "current")
    step = ServingStep.start(str(data), Manifest.load(data))
    try:
        step.trace_ahead(model)
        assert step.ahead is not None
        step.ahead.result()  # traced with the weights as they were
        texts = demo_texts()[:200] + EDGE_TEXTS
        before = predict_proba(model, step.vectorizer.transform(texts), len(step.labels))
        model.set_weights([w * 0.5 + 0.05 for w in model.get_weights()])  # "training" goes on
        after = predict_proba(model, step.vectorizer.transform(texts), len(step.labels))
        assert np.abs(after - before).max() > 0.01  # the change shows in the probabilities

        def traced_again(*_):
            raise AssertionError("the export traced again instead of writing the archive traced ahead")

        monkeypatch.setattr(export, "traced_export", traced_again)
        building = tmp_path / "v.training"
        building.mkdir()
        assert step.export(building, model) is None
    finally:
        step.close()
    [served] = fresh_tensorflow([building / "saved_model"], texts)
    assert np.abs(np.asarray(served["probabilities"]) - after).max() <= 1e-5


def test_writing_an_export_traced_ahead_traces_nothing_again(data, first, tmp_path, monkeypatch):
    """``tf.saved_model.save`` keys its traces by its save context: ``traced_export`` traces as inside it, so the
    write (on fit's critical path) only serializes what was traced ahead, and the result still serves."""
    from streamtrain.serve import export
    from streamtrain.train.modeldir import load_model
    from streamtrain.train.scoring import predict_proba
    from streamtrain.vectorize.vectorizer import Vectorizer

    root, _ = first
    model, vectorizer = load_model(root / "model" / "current"), Vectorizer.load(data)
    modules = []
    real = export.servable
    monkeypatch.setattr(export, "servable", lambda *args: modules.append(real(*args)) or modules[-1])
    archive = export.traced_export(vectorizer, model)
    [module] = modules
    functions = (module.serve, module.features)
    traced = [f.experimental_get_tracing_count() for f in functions]
    export.write_saved_model(tmp_path / "saved_model", vectorizer, model, "v", archive)
    assert [f.experimental_get_tracing_count() for f in functions] == traced
    texts = demo_texts()[:50] + EDGE_TEXTS
    [served] = fresh_tensorflow([tmp_path / "saved_model"], texts)
    expected = predict_proba(model, vectorizer.transform(texts), len(vectorizer.labels))
    assert np.abs(np.asarray(served["probabilities"]) - expected).max() <= 1e-5
