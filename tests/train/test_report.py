"""What users look at: training.png, confusion.png, report.md and the TensorBoard events of a version."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from streamtrain.dataset.counts import Append, Drift, RejectStats, Stats
from streamtrain.dataset.manifest import Manifest
from streamtrain.dataset.records import Choice
from streamtrain.dataset.shards import ShardInfo
from streamtrain.train.metrics import Metrics
from streamtrain.train.plots import confusion_png, training_png
from streamtrain.train.report import REPORT_NAME, per_class, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY = {
    "loss": [0.9, 0.6, 0.45, 0.38, 0.33],
    "accuracy": [0.6, 0.75, 0.82, 0.86, 0.88],
    "val_loss": [0.7, 0.55, 0.5, 0.52, 0.56],
    "val_accuracy": [0.7, 0.79, 0.81, 0.805, 0.8],
}


def _labels(n: int) -> list[str]:
    names = [f"class {i}" for i in range(n)]
    names[1] = "a very long class name that goes on and on well beyond any tick label's room " * 2
    names[2] = "billing | refunds *urgent*"
    names[3] = "Ünïcödé категория"
    return names


def _confusion(n: int, empty: int | None = None, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 20, (n, n))
    counts[np.arange(n), np.arange(n)] += rng.integers(50, 400, n)
    if empty is not None:
        counts[empty] = 0
    return counts.tolist()


def _png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) < 1_000_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_training_png_with_validation(tmp_path):
    path = tmp_path / "training.png"
    training_png(HISTORY, 3, path)
    width, height = _png_size(path)
    assert 800 <= width <= 2400 and 300 <= height <= 1200 and width > height  # two panels side by side


def test_training_png_one_epoch_without_validation(tmp_path):
    path = tmp_path / "training.png"
    training_png({"loss": [0.7], "accuracy": [0.55]}, None, path)
    width, height = _png_size(path)
    assert 800 <= width <= 2400 and 300 <= height <= 1200


def test_training_png_empty_history(tmp_path):
    training_png({}, None, tmp_path / "training.png")
    _png_size(tmp_path / "training.png")


def test_confusion_png_two_classes(tmp_path):
    path = tmp_path / "confusion.png"
    confusion_png([[11234, 1266], [1400, 11100]], ["neg", "pos"], path)
    width, height = _png_size(path)
    assert 400 <= width <= 1200 and 400 <= height <= 1200


@pytest.mark.parametrize("n", [25, 45])
def test_confusion_png_many_classes_long_names_and_an_empty_class(tmp_path, n):
    path = tmp_path / "confusion.png"
    small = tmp_path / "small.png"
    confusion_png(_confusion(n, empty=5), _labels(n), path)
    confusion_png(_confusion(2), ["neg", "pos"], small)
    width, height = _png_size(path)
    assert 1000 <= width <= 3000 and 1000 <= height <= 3000
    assert width > _png_size(small)[0]  # the figure grows with the classes


def test_confusion_png_no_rows_at_all(tmp_path):
    confusion_png([[0, 0], [0, 0]], ["a", "b"], tmp_path / "confusion.png")
    _png_size(tmp_path / "confusion.png")


def test_pictures_are_reproducible(tmp_path):
    training_png(HISTORY, 3, tmp_path / "a.png")
    training_png(HISTORY, 3, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_per_class_by_hand():
    # true 0: 5 right, 1 as class 1; true 1: 2 as 0, 3 right, 1 as 2; class 2 has no rows.
    scores = per_class([[5, 1, 0], [2, 3, 1], [0, 0, 0]], ["a", "b", "c"])
    assert [s["label"] for s in scores] == ["a", "b", "c"]
    a, b, c = scores
    assert a["support"] == 6 and a["predicted"] == 7
    assert a["precision"] == pytest.approx(5 / 7) and a["recall"] == pytest.approx(5 / 6)
    assert a["f1"] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6))
    assert b["support"] == 6 and b["precision"] == pytest.approx(3 / 4) and b["recall"] == pytest.approx(3 / 6)
    assert b["f1"] == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert c == {"label": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 1}


def test_per_class_never_predicted_and_wrong_shape():
    scores = per_class([[3, 0], [4, 0]], ["x", "y"])
    assert scores[1]["precision"] == 0.0 and scores[1]["recall"] == 0.0 and scores[1]["f1"] == 0.0
    with pytest.raises(ValueError):
        per_class([[1, 2]], ["x", "y"])


def _manifest(labels: list[str], appended: bool = False) -> Manifest:
    n = len(labels)
    per_class_rows = {
        "train": [100 + i for i in range(n)],
        "val": [10 + i for i in range(n)],
        "test": [20 + (i != 5) * i for i in range(n)],
    }
    appends = (
        [
            Append(
                night=1,
                at="2026-03-01T02:00:00+00:00",
                directory="append-0001",
                inputs=["/in/night.csv"],
                skipped=0,
                rows={"train": 50, "val": 5, "test": 0},
                first_row_id=0,
                rejected=RejectStats(rows=2),
                drift=Drift("share outside", 0.031, 31, 1000, 50, baseline=0.02),
                seed=0,
                shards=1,
            )
        ]
        if appended
        else []
    )
    return Manifest(
        shard_format="hdf5",
        encoding="ngram",
        n_features=20000,
        labels=labels,
        vectorizer={},
        shards=[ShardInfo(f"train-{i:05d}.h5", "train", 100, 10, 1000, "0" * 64, 64) for i in range(3)],
        stats=Stats(
            rows={split: sum(v) for split, v in per_class_rows.items()},
            rows_per_class=per_class_rows,
            rejected=RejectStats(rows=7, by_reason={"empty_text": 4, "unknown_label": 3}, lost_bytes=0),
        ),
        choice=Choice(
            requested="auto",
            chosen="ngram",
            samples=25000,
            median_words_per_sample=174.0,
            samples_per_word=25000 / 174,
            threshold=1500.0,
        ),
        appends=appends,
    )


def _documents(labels: list[str], confusion: list[list[int]], val: bool = True) -> dict:
    metrics = {
        "test_accuracy": 0.8934,
        "test_loss": 0.2712,
        "val_accuracy": 0.9012 if val else None,
        "val_loss": 0.2533 if val else None,
        "epochs": 5,
        "best_epoch": 3,
        "best_validation": 3,  # rounds: one per epoch here
        "train_rows": 20000,
        "val_rows": 2500 if val else 0,
        "validation_sample_rows": 1024 if val else 0,
        "test_rows": int(np.sum(confusion)),
        "classes": labels,
        "model": "mlp",
        "test_confusion": confusion,
        "train_seconds": 12.345,
        "train_samples_per_second": 8101.2,
    }
    config = {
        "data": "/data/tickets|2026",
        "model": "mlp",
        "units": 64,
        "layers": 2,
        "blocks": 2,
        "filters": 64,
        "embedding_dim": 200,
        "dropout": 0.2,
        "learning_rate": 0.001,
        "batch_size": 128,
        "epochs": 20,
        "patience": 2,
        "seed": 0,
        "warm_start_from": None,
        "encoding": "ngram",
    }
    promotion = {
        "at": "2026-03-01T03:00:00+00:00",
        "current_version": "20260228-030000-abcd",
        "max_regression": 0.005,
        "forced": False,
        "compared_on": "the dataset's validation split (2500 rows; both models use its vectorizer)",
        "rows": 2500,
        "candidate_accuracy": 0.9012,
        "current_accuracy": 0.8874,
        "promoted": True,
        "reason": "validation accuracy 0.9012 against the current 0.8874 (+0.0138; the guide allows -0.005)",
        "floor": {"majority_class_rate": 0.104, "majority_class": "class 3*", "beaten": True},
    }
    return {"metrics": Metrics.from_json(metrics), "history": HISTORY, "config": config, "promotion": promotion}


def test_report_names_every_class_and_embeds_the_pictures(tmp_path):
    labels = _labels(25)
    docs = _documents(labels, _confusion(25, empty=5))
    write_report(tmp_path, manifest=_manifest(labels, appended=True), version="20260301-030000-ef01", **docs)
    text = (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    assert text.startswith("# Model version `20260301-030000-ef01`: promoted to current")
    assert "![training](training.png)" in text and "![confusion](confusion.png)" in text
    assert docs["promotion"]["reason"] in text
    for heading in ("## Data", "## Model", "## Metrics", "## Per class (test)", "## Promotion", "## Pictures"):
        assert f"\n{heading}\n" in text
    per_class_section = text.split("## Per class (test)")[1].split("## Promotion")[0]
    rows = [line for line in per_class_section.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 25 + 1  # header, rule, one per class, macro average
    for name in labels:
        escaped = " ".join(name.split()).replace("|", "\\|").replace("*", "\\*")
        assert f"| {escaped} |" in per_class_section
    assert "billing \\| refunds \\*urgent\\*" in text  # a | in a class name cannot split a table cell
    _check_tables(text)
    assert "`/data/tickets\\|2026`" in text
    assert "2026-03-01" in text and "3.10%" in text  # the append and its drift
    assert "Requested **auto**, chosen **ngram**" in text and "143.7" in text  # S/W
    assert "empty\\_text 4" in text
    assert "| units | 64 |" in text and "| blocks |" not in text  # the MLP's options, not sepCNN's
    assert "**3** (best)" in text
    assert "| Rows per validation | 1,024 of 2,500 (evenly spaced blocks) |" in text  # the sample scored in training
    assert "| Floor (majority-class rate) | 0.1040 (class 3\\*): beaten |" in text


def _check_tables(text: str) -> None:
    """Every row of every table has as many cells as its header (an unescaped | would add one)."""
    width = None
    for line in text.splitlines():
        if not line.startswith("| "):
            width = None
            continue
        cells = len(line.replace("\\|", "").split("|")) - 2
        width = width or cells
        assert cells == width, line


def test_report_without_validation_rows_reads_n_a(tmp_path):
    labels = ["neg", "pos"]
    docs = _documents(labels, [[900, 100], [80, 920]], val=False)
    docs["history"] = {"loss": [0.5], "accuracy": [0.8]}
    docs["promotion"] = {
        "current_version": None,
        "promoted": False,
        "forced": False,
        "reason": "no validation rows to compare the two models on (prepare with --val-fraction > 0)",
    }
    write_report(tmp_path, manifest=_manifest(labels), version="v1", **docs)
    text = (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    assert text.startswith("# Model version `v1`: not promoted (current stays `nothing`)")
    assert "| Accuracy | n/a | 0.8934 |" in text
    assert "| Loss | n/a | 0.2712 |" in text
    assert "Rows per validation" not in text  # no sample of no rows
    assert "None" not in text and "nan" not in text.lower()
    assert "--val-fraction \\> 0" in text
    _check_tables(text)


# --- TensorBoard ---


def _events(log_dir: Path) -> list[tuple[int, str, str, object]]:
    """(step, tag, plugin, value) of every summary value in every event file under ``log_dir``, file by file."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    out = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                item = tensor.item().decode() if tensor.dtype == object else float(tensor)
                out.append((event.step, value.tag, value.metadata.plugin_data.plugin_name, item))
    return out


def _tiny_model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((64, 5)).astype("float32")
    y = rng.integers(0, 3, 64).astype("int32")
    return model, x, y


def test_tensorboard_scalars_per_epoch_and_config(tmp_path):
    from streamtrain.train.tensorboard import TensorBoardLog

    model, x, y = _tiny_model()
    config = {"model": "mlp", "seed": 0, "data": "/data/x|y", "warm_start_from": None}
    log = TensorBoardLog(tmp_path / "tensorboard", config)
    history = model.fit(x, y, epochs=3, batch_size=16, validation_data=(x, y), callbacks=[log], verbose=0)
    events = _events(tmp_path / "tensorboard")
    texts = [e for e in events if e[2] == "text"]
    assert len(texts) == 1 and texts[0][:2] == (0, "config")
    assert '| model | "mlp" |' in texts[0][3] and "/data/x\\|y" in texts[0][3]
    scalars = {(step, tag): value for step, tag, plugin, value in events if plugin == "scalars"}
    for tag in ("loss", "accuracy", "val_loss", "val_accuracy"):
        for epoch in range(3):
            assert scalars[(epoch + 1, tag)] == pytest.approx(history.history[tag][epoch], rel=1e-6)
    assert {step for step, _ in scalars} == {1, 2, 3}
    assert all(math.isfinite(v) for v in scalars.values())


def test_tensorboard_second_fit_and_resumed_process_append_later_steps(tmp_path):
    from streamtrain.train.tensorboard import TensorBoardLog

    model, x, y = _tiny_model()
    log_dir = tmp_path / "tensorboard"
    config = {"model": "mlp"}
    log = TensorBoardLog(log_dir, config)
    model.fit(x, y, epochs=2, validation_data=(x, y), callbacks=[log], verbose=0)
    model.fit(x, y, initial_epoch=2, epochs=3, validation_data=(x, y), callbacks=[log], verbose=0)  # same callback
    files = sorted(log_dir.glob("events.out.tfevents.*"))
    assert len(files) == 2  # the writer closed at train end and reopened at the next train begin
    steps = sorted({step for step, tag, _, _ in _events(log_dir) if tag == "val_loss"})
    assert steps == [1, 2, 3]
    assert [tag for _, tag, _, _ in _events(log_dir)].count("config") == 1  # once per callback

    resumed = TensorBoardLog(log_dir, config)  # a new process resuming after epoch 3
    model.fit(x, y, initial_epoch=3, epochs=5, validation_data=(x, y), callbacks=[resumed], verbose=0)
    events = _events(log_dir)
    assert len(sorted(log_dir.glob("events.out.tfevents.*"))) == 3
    for tag in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert sorted(step for step, t, _, _ in events if t == tag) == [1, 2, 3, 4, 5]
    json.dumps(events)  # plain values only


def test_report_shows_control_characters_in_labels_as_escapes(tmp_path):
    """An ANSI escape, a carriage return or a newline in a class name reaches report.md as its escape: nothing in
    the file drives a terminal that prints it, and every table row stays one line (before: the raw ESC)."""
    labels = ["neg", "\x1b[31mred\x1b[0m", "two\nlines", "car\rriage", "\u202eevil"]
    docs = _documents(labels, _confusion(5))
    write_report(tmp_path, manifest=_manifest(labels), version="20260301-030000-ef01", **docs)
    text = (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    assert not [ch for ch in text if ch != "\n" and not ch.isprintable()]
    _check_tables(text)
    per_class_section = text.split("## Per class (test)")[1].split("## Promotion")[0]
    assert len([line for line in per_class_section.splitlines() if line.startswith("| ")]) == 2 + 5 + 1
    for shown in ("\\\\x1b\\[31mred\\\\x1b\\[0m", "two\\\\nlines", "car\\\\rriage", "\\\\u202eevil"):
        assert f"| {shown} |" in per_class_section
